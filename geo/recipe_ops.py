"""Zone recipes, part 3: the geometry operations (``op:`` in a recipe).

Each ``@operation("name")`` function takes its spec and the build context
(``geo.recipe_context.BuildContext``) and returns a WGS84 geometry. Metric work (buffers,
partitions, cutting lines) happens in EPSG:4548 through ``geo.crs.to_metric`` /
``from_metric``; areas are geodesic.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring

from geo import crs as geocrs
from geo.recipe_format import (
    NotDigitised,
    NotDigitisedRef,
    RecipeError,
    Spec,
    _mapping,
    describe,
    operation,
)

if TYPE_CHECKING:
    from geo.recipe_context import BuildContext



@dataclass
class PartitionResult:
    cells: dict[str, BaseGeometry]  # WGS84
    notes: list[str]



# ---------------------------------------------------------------- metric helpers


def _metric(geom: BaseGeometry) -> BaseGeometry:
    return geocrs.to_metric(geom)


def _wgs84(geom: BaseGeometry) -> BaseGeometry:
    return geocrs.from_metric(geom)


def area_km2(geom: BaseGeometry) -> float:
    """Geodesic area of a WGS84 geometry in km²."""
    return geocrs.geodesic_area_m2(geom) / 1e6


def _spec_list(value: Any, where: str, key: str) -> list[Any]:
    if isinstance(value, str | Mapping):
        return [value]
    if not isinstance(value, list) or not value:
        raise RecipeError(f"{where}: '{key}' must be a non-empty list of geometry specs")
    return value


def _number(spec: Spec, key: str, where: str, positive: bool = True) -> float:
    value = spec.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RecipeError(f"{where}: '{key}' must be a number, got {value!r}")
    if positive and value <= 0:
        raise RecipeError(f"{where}: '{key}' must be positive, got {value!r}")
    return float(value)


# ---------------------------------------------------------------- operations


@operation("not_digitised")
def op_not_digitised(spec: Spec, ctx: BuildContext) -> BaseGeometry:
    raise NotDigitised(str(spec.get("reason", "")).strip())


@operation("ref")
def op_ref(spec: Spec, ctx: BuildContext) -> BaseGeometry:
    zid = spec.get("id")
    if zid not in ctx.entries:
        raise RecipeError(f"{ctx.where()}: refers to unknown zone {zid!r}")
    built = ctx.built.get(zid)
    if built is None:  # build_order guarantees this for well-formed recipes
        raise RecipeError(f"{ctx.where()}: zone {zid!r} is not built yet (reference cycle?)")
    if not built.digitised:
        raise NotDigitisedRef(zid, built.reason or "")
    return built.geometry



def _component_geometries(spec: Spec, ctx: BuildContext, key: str = "of") -> list[BaseGeometry]:
    """Build the listed specs; with ``skip_not_digitised`` missing zones are noted, not fatal."""
    geoms, skipped = [], []
    for sub in _spec_list(spec.get(key), ctx.where(), key):
        try:
            geoms.append(ctx.geometry(sub))
        except NotDigitisedRef as exc:
            if not spec.get("skip_not_digitised"):
                raise RecipeError(f"{ctx.where()}: {exc} (set skip_not_digitised: true to build without it)") from None
            skipped.append(exc.zid)
    if skipped:
        names = ", ".join(f"{z} ({ctx.entries[z].data['name_zh']})" for z in skipped)
        ctx.note(f"components not digitised and left out: {names}")
    if not geoms:
        raise NotDigitised(f"none of its components is digitised ({', '.join(skipped)})")
    return geoms


@operation("union", specs=("of",))
def op_union(spec: Spec, ctx: BuildContext) -> BaseGeometry:
    return shapely.union_all(_component_geometries(spec, ctx))


@operation("intersection", specs=("of",))
def op_intersection(spec: Spec, ctx: BuildContext) -> BaseGeometry:
    geoms = _component_geometries(spec, ctx)
    return shapely.intersection_all(geoms)


@operation("difference", specs=("of", "minus"))
def op_difference(spec: Spec, ctx: BuildContext) -> BaseGeometry:
    base = ctx.geometry(spec.get("of"))
    minus = _component_geometries(spec, ctx, "minus")
    return shapely.difference(base, shapely.union_all(minus))


@operation("clip", specs=("geometry", "to"))
def op_clip(spec: Spec, ctx: BuildContext) -> BaseGeometry:
    return shapely.intersection(ctx.geometry(spec.get("geometry")), ctx.geometry(spec.get("to")))


@operation("admin")
def op_admin(spec: Spec, ctx: BuildContext) -> BaseGeometry:
    if "adcode" in spec:
        rows = ctx.base.frame("districts")
        rows = rows[rows["adcode"].astype(str) == str(spec["adcode"])]
        label = f"adcode {spec['adcode']}"
    elif "name" in spec:
        frame = ctx.base.frame("districts")
        col = "name_zh" if "name_zh" in frame.columns else "name"
        rows = frame[frame[col].astype(str) == str(spec["name"])]
        label = f"name {spec['name']}"
    else:
        raise RecipeError(f"{ctx.where()}: admin needs 'adcode' or 'name'")
    if len(rows) != 1:
        raise RecipeError(f"{ctx.where()}: admin {label} matches {len(rows)} base districts (need exactly 1)")
    return rows.geometry.iloc[0]


@operation("lake")
def op_lake(spec: Spec, ctx: BuildContext) -> BaseGeometry:
    name = spec.get("name")
    rows = ctx.base.match("lakes", str(name), ("name", "name_zh", "name_en", "note"))
    if len(rows) != 1:
        raise RecipeError(f"{ctx.where()}: lake {name!r} matches {len(rows)} base lakes (need exactly 1)")
    return rows.geometry.iloc[0]


@operation("point")
def op_point(spec: Spec, ctx: BuildContext) -> BaseGeometry:
    place = ctx.point_of(spec)
    ctx.note(f"point {place.name_zh} ({place.source})")
    return place.point


@operation("buffer_point")
def op_buffer_point(spec: Spec, ctx: BuildContext) -> BaseGeometry:
    place = ctx.point_of(spec)
    radius = _number(spec, "radius_m", ctx.where())
    ctx.note(f"disc of {radius:g} m around {place.name_zh} ({place.source})")
    return _wgs84(_metric(place.point).buffer(radius, quad_segs=32))


@operation("buffer", specs=("of",))
def op_buffer(spec: Spec, ctx: BuildContext) -> BaseGeometry:
    distance = _number(spec, "distance_m", ctx.where(), positive=False)
    return _wgs84(_metric(ctx.geometry(spec.get("of"))).buffer(distance, quad_segs=16))


@operation("polygon")
def op_polygon(spec: Spec, ctx: BuildContext) -> BaseGeometry:
    coords = spec.get("coords")
    if not spec.get("source") or not spec.get("crs"):
        raise RecipeError(f"{ctx.where()}: polygon needs 'crs' and 'source' (never invent coordinates)")
    if not isinstance(coords, list) or len(coords) < 3:
        raise RecipeError(f"{ctx.where()}: polygon needs at least 3 [lon, lat] coords")
    try:
        xy = np.asarray(coords, dtype=float)
        lon, lat = geocrs.to_wgs84(xy[:, 0], xy[:, 1], spec["crs"])
    except (TypeError, ValueError, IndexError) as exc:
        raise RecipeError(f"{ctx.where()}: polygon coords: {exc}") from None
    poly = Polygon(np.column_stack([lon, lat]))
    return poly if poly.is_valid else shapely.make_valid(poly)


@operation("partition_cell")
def op_partition_cell(spec: Spec, ctx: BuildContext) -> BaseGeometry:
    result = ctx.partition(str(spec.get("partition")))
    cell = spec.get("cell")
    if cell not in result.cells:
        raise RecipeError(f"{ctx.where()}: partition {spec.get('partition')!r} has no cell {cell!r}; "
                          f"cells: {', '.join(sorted(result.cells))}")
    for text in result.notes:
        ctx.note(text)
    return result.cells[cell]


@operation("river_exit", specs=("area", "upstream"))
def op_river_exit(spec: Spec, ctx: BuildContext) -> BaseGeometry:
    """The point where a base river line last leaves ``area``, walking away from ``upstream``.

    For sections defined as "X出境断面" (where river X leaves a unit): the river is a named
    base river or, with ``river: nearest``, the base river line passing nearest ``upstream``
    (e.g. the reservoir it flows out of). Base rivers carry no flow direction, so the line is
    oriented to start at its end nearest ``upstream``.
    """
    where = ctx.where()
    river = spec.get("river")
    if not isinstance(river, str) or not river:
        raise RecipeError(f"{where}: river_exit needs 'river' (a base river name or 'nearest')")
    area = _metric(ctx.geometry(spec.get("area")))
    upstream = _metric(ctx.geometry(spec.get("upstream")))
    lines = _river_lines(spec, ctx)
    if not lines:
        raise RecipeError(f"{where}: no base river line matches {river!r}")
    pieces = shapely.get_parts(shapely.line_merge(shapely.union_all(lines)))
    line = min(pieces, key=upstream.distance)
    if Point(line.coords[-1]).distance(upstream) < Point(line.coords[0]).distance(upstream):
        line = line.reverse()
    crossings = shapely.get_coordinates(line.intersection(area.boundary))
    if not len(crossings):
        raise RecipeError(f"{where}: the river line never crosses the area's boundary")
    along = max(line.project(Point(xy)) for xy in crossings)
    if along < line.length and area.contains(line.interpolate(min(along + 10.0, line.length))):
        raise RecipeError(f"{where}: the river line ends inside the area; it has no exit point")
    exit_point = line.interpolate(along)
    ctx.note(f"last point where the base river line ({'nearest the upstream geometry' if river == 'nearest' else river}, "
             f"{line.length / 1000:.1f} km, oriented away from {describe(spec.get('upstream'), ctx.recipe)}, "
             f"{upstream.distance(line):.0f} m from it) leaves {describe(spec.get('area'), ctx.recipe)}; "
             f"{len(crossings)} boundary crossing(s)")
    return _wgs84(exit_point)


# ---------------------------------------------------------------- buffer_line


@operation("buffer_line", specs=("clip_to",))
def op_buffer_line(spec: Spec, ctx: BuildContext) -> BaseGeometry:
    where = ctx.where()
    line = _corridor_line(spec, ctx)
    clip = _metric(ctx.geometry(spec["clip_to"])) if spec.get("clip_to") is not None else None

    def corridor(half_width: float) -> BaseGeometry:
        poly = line.buffer(half_width, cap_style="flat", quad_segs=16)
        return _wgs84(poly.intersection(clip) if clip is not None else poly)

    if ("distance_m" in spec) == ("calibrate_area_km2" in spec):
        raise RecipeError(f"{where}: buffer_line needs exactly one of distance_m or calibrate_area_km2")
    if "distance_m" in spec:
        return corridor(_number(spec, "distance_m", where))
    if ctx.entry is not None and ctx.entry.data.get("accuracy") != "approximate":
        raise RecipeError(f"{where}: calibrate_area_km2 is only allowed with accuracy: approximate")
    target = _number(spec, "calibrate_area_km2", where)
    half_width, achieved = _calibrate_width(corridor, target, where)
    ctx.note(f"half-width calibrated by bisection to {half_width:.1f} m each side of the line "
             f"(corridor {2 * half_width:.0f} m wide), giving {achieved:.2f} km² for the stated {target:g} km²")
    return corridor(half_width)


def _river_lines(spec: Spec, ctx: BuildContext) -> list[LineString]:
    """Metric base-river lines: all of them (``river: nearest``) or those matching a name."""
    river = spec.get("river")
    if not isinstance(river, str) or not river:
        raise RecipeError(f"{ctx.where()}: 'river' must be a base river name or 'nearest'")
    frame = ctx.base.frame("rivers")
    if river != "nearest":
        frame = ctx.base.match("rivers", river, ("name", "name_zh", "name_en", "note"))
        if frame.empty:
            raise RecipeError(f"{ctx.where()}: no base river named {river!r}; the base rivers may be unnamed "
                              f"(GSHHG): use river: nearest")
    return [_metric(g) for g in shapely.get_parts(frame.geometry.values) if g.geom_type == "LineString"]


def _calibrate_width(corridor: Callable[[float], BaseGeometry], target_km2: float, where: str,
                     low: float = 1.0, high: float = 20_000.0) -> tuple[float, float]:
    """Half-width (m) whose corridor area matches ``target_km2``: bisection (area grows with width)."""
    if area_km2(corridor(high)) < target_km2:
        raise RecipeError(f"{where}: cannot reach {target_km2} km² even {high:.0f} m each side")
    if area_km2(corridor(low)) > target_km2:
        raise RecipeError(f"{where}: {target_km2} km² is smaller than a {low:.0f} m corridor")
    for _ in range(60):
        mid = (low + high) / 2
        if area_km2(corridor(mid)) < target_km2:
            low = mid
        else:
            high = mid
        if high - low < 0.05:
            break
    half = round((low + high) / 2, 1)
    return half, area_km2(corridor(half))


def _corridor_line(spec: Spec, ctx: BuildContext) -> LineString:
    """The metric centreline of a buffer_line: a base river or a polyline of places, cut."""
    where = ctx.where()
    anchors = [ctx.place(spec[k]) for k in ("from", "to") if spec.get(k) is not None]
    if "places" in spec:
        keys = spec["places"]
        if not isinstance(keys, list) or len(keys) < 2:
            raise RecipeError(f"{where}: 'places' needs at least two place keys")
        places = [ctx.place(k) for k in keys]
        line = _metric(LineString([p.point for p in places]))
        ctx.note("centreline through cited places: " + "; ".join(f"{p.name_zh} ({p.source})" for p in places))
        if len(anchors) == 2:
            line = _cut(line, *(_metric(a.point) for a in anchors))
        return line
    river = spec.get("river")
    if not isinstance(river, str) or not river:
        raise RecipeError(f"{where}: buffer_line needs 'river' (a name or 'nearest') or 'places'")
    lines = _river_lines(spec, ctx)
    if len(anchors) != 2:
        if river == "nearest":
            raise RecipeError(f"{where}: river: nearest needs 'from' and 'to' places")
        merged = shapely.line_merge(shapely.union_all(lines))
        ctx.note(f"centreline: base river {river!r}, whole length")
        return merged
    start, end = (_metric(a.point) for a in anchors)
    path = _river_path(lines, start, end, where)
    length_km = path.length / 1000
    gaps = ", ".join(f"{a.name_zh} {_metric(a.point).distance(path):.0f} m from the line ({a.source})" for a in anchors)
    ctx.note(f"centreline: base river line ({', '.join(ctx.base.files['rivers'])}) along the network from the point nearest "
             f"{anchors[0].name_zh} to the point nearest {anchors[1].name_zh}, {length_km:.1f} km; anchors: {gaps}")
    return path


def _cut(line: LineString, start: Point, end: Point) -> LineString:
    a, b = line.project(start), line.project(end)
    piece = substring(line, min(a, b), max(a, b))
    if piece.geom_type != "LineString" or piece.length == 0:
        raise RecipeError("the cut points coincide: the line between them is empty")
    return piece


def _river_path(lines: list[LineString], start: Point, end: Point, where: str) -> LineString:
    """Shortest path along the river network between the points nearest ``start`` and ``end``.

    River pieces (cut at data-bin edges, with small side loops) become a graph of
    segments; the anchors are snapped onto their nearest segment and Dijkstra finds the
    path, so tributaries and loops do not break the line the way a plain merge would.
    """
    def key(xy) -> tuple[float, float]:
        return (round(float(xy[0]), 3), round(float(xy[1]), 3))

    graph: dict[tuple, list[tuple[float, tuple]]] = {}
    segments = []
    for line in lines:
        coords = np.asarray(line.coords)
        for a, b in itertools.pairwise(coords):
            ka, kb = key(a), key(b)
            if ka == kb:
                continue
            d = float(np.hypot(*(b - a)))
            graph.setdefault(ka, []).append((d, kb))
            graph.setdefault(kb, []).append((d, ka))
            segments.append((ka, kb))
    if not segments:
        raise RecipeError(f"{where}: the base river layer has no line segments")

    def snap(p: Point, name: str) -> tuple[float, float]:
        best = min(segments, key=lambda s: LineString([s[0], s[1]]).distance(p))
        seg = LineString([best[0], best[1]])
        q = seg.interpolate(seg.project(p))
        kq = key(q.coords[0])
        for end_ in best:
            d = Point(end_).distance(q)
            graph.setdefault(kq, []).append((d, end_))
            graph.setdefault(end_, []).append((d, kq))
        return kq

    s, t = snap(start, "from"), snap(end, "to")
    dist, prev, heap = {s: 0.0}, {}, [(0.0, s)]
    while heap:
        d, node = heapq.heappop(heap)
        if node == t:
            break
        if d > dist.get(node, math.inf):
            continue
        for w, nxt in graph.get(node, []):
            nd = d + w
            if nd < dist.get(nxt, math.inf):
                dist[nxt], prev[nxt] = nd, node
                heapq.heappush(heap, (nd, nxt))
    if t not in dist:
        raise RecipeError(f"{where}: the river lines near the two anchors are not connected")
    nodes = [t]
    while nodes[-1] != s:
        nodes.append(prev[nodes[-1]])
    nodes.reverse()
    if len(nodes) < 2:
        raise RecipeError(f"{where}: the two anchors snap to the same river point")
    return LineString(nodes)


# ---------------------------------------------------------------- partitions (power diagrams)


def _halfplane_clip(poly: list[tuple[float, float]], a: float, b: float, c: float) -> list[tuple[float, float]]:
    """Clip a convex polygon (vertex list) to the half-plane a*x + b*y <= c (Sutherland–Hodgman)."""
    out = []
    n = len(poly)
    for i in range(n):
        p, q = poly[i], poly[(i + 1) % n]
        fp, fq = a * p[0] + b * p[1] - c, a * q[0] + b * q[1] - c
        if fp <= 0:
            out.append(p)
        if (fp < 0 < fq) or (fq < 0 < fp):
            t = fp / (fp - fq)
            out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    return out


def power_cells(points: np.ndarray, weights: np.ndarray, bounds: tuple[float, float, float, float]) -> list[Polygon]:
    """Power (weighted Voronoi) cells of ``points`` inside the box ``bounds``.

    Cell i = {x : |x - p_i|² - w_i <= |x - p_j|² - w_j for all j}: each constraint is a
    half-plane 2x·(p_j - p_i) <= |p_j|² - |p_i|² - w_j + w_i. Cells tile the box.
    """
    minx, miny, maxx, maxy = bounds
    box = [(minx, miny), (maxx, miny), (maxx, maxy), (minx, maxy)]
    cells = []
    sq = (points ** 2).sum(axis=1)
    for i, p in enumerate(points):
        poly = box
        for j, q in enumerate(points):
            if i == j or not poly:
                continue
            a, b = 2 * (q[0] - p[0]), 2 * (q[1] - p[1])
            c = sq[j] - sq[i] - weights[j] + weights[i]
            poly = _halfplane_clip(poly, a, b, c)
        cells.append(Polygon(poly) if len(poly) >= 3 else Polygon())
    return cells


def build_partition(part: Mapping[str, Any], ctx: BuildContext, label: str) -> PartitionResult:
    """Split an area into cells around seed places, calibrated to cited cell areas.

    A power diagram in EPSG:4548: the weights of cells with a target area are nudged
    until each cell's area (clipped to the area) is within 0.5 % of its target; cells
    without a cited area keep weight 0 and take what is left.
    """
    where = f"{ctx.where()} ({label})"
    region = _metric(ctx.geometry(part["of"]))
    seeds = _mapping(part["seeds"], where)
    targets = {str(k): float(v) for k, v in _mapping(part.get("target_areas_km2"), where).items()}
    unknown = sorted(set(targets) - set(seeds))
    if unknown:
        raise RecipeError(f"{where}: target_areas_km2 names cells without seeds: {', '.join(unknown)}")
    cell_names = list(seeds)
    owners, pts, used = [], [], []
    for ci, cell in enumerate(cell_names):
        keys = seeds[cell] if isinstance(seeds[cell], list) else [seeds[cell]]
        for key in keys:
            place = ctx.place(key)
            p = _metric(place.point)
            if not region.buffer(1.0).contains(p):
                raise RecipeError(f"{where}: seed {key!r} ({place.name_zh}) lies outside the partitioned area")
            owners.append(ci)
            pts.append((p.x, p.y))
            used.append(place)
    points, owners = np.asarray(pts), np.asarray(owners)
    minx, miny, maxx, maxy = region.bounds
    pad = max(maxx - minx, maxy - miny)
    bounds = (minx - pad, miny - pad, maxx + pad, maxy + pad)
    weights = np.zeros(len(cell_names))
    target_m2 = np.array([targets.get(c, np.nan) * 1e6 for c in cell_names])
    spacing = np.median([min(np.hypot(*(points - p).T)[np.arange(len(points)) != i]) for i, p in enumerate(points)]) \
        if len(points) > 1 else 1000.0

    def cells_for(w: np.ndarray) -> list[BaseGeometry]:
        raw = power_cells(points, w[owners], bounds)
        return [shapely.union_all([raw[k] for k in np.flatnonzero(owners == ci)]).intersection(region)
                for ci in range(len(cell_names))]

    cells = cells_for(weights)
    iterations = 0
    has_target = ~np.isnan(target_m2)
    for iterations in range(1, 301):  # noqa: B007 - the count is reported
        areas = np.array([c.area for c in cells])
        err = np.where(has_target, target_m2 - areas, 0.0)
        if not has_target.any() or np.all(np.abs(err[has_target]) <= 0.005 * target_m2[has_target]):
            break
        perimeters = np.array([max(c.length, 1.0) for c in cells])
        # Raising w_i by dw moves each shared edge ~dw/(2d) outward, so dA ~ P*dw/(2d).
        weights = weights + 0.8 * 2 * err * spacing / perimeters
        cells = cells_for(weights)
    wgs = [_wgs84(c) for c in cells]
    achieved = {c: area_km2(g) for c, g in zip(cell_names, wgs, strict=True)}
    for cell, geom in zip(cell_names, wgs, strict=True):
        if geom.is_empty:
            raise RecipeError(f"{where}: cell {cell!r} came out empty; its seed is crowded out")
    calib = "; ".join(f"{c} {targets[c]:g}→{achieved[c]:.2f}" for c in cell_names if c in targets)
    seeds_text = "; ".join(f"{p.name_zh} ({p.source})" for p in dict.fromkeys(used))
    notes = [f"{label}: power diagram (weighted Voronoi) of {len(used)} seed points in EPSG:4548, clipped to "
             f"{describe(part['of'], ctx.recipe)}; {iterations} weight iterations"
             + (f"; calibrated km² (target→achieved): {calib}" if calib else "; no cited cell areas, plain Voronoi")
             + f"; seeds: {seeds_text}"]
    if part.get("method_note"):
        notes.insert(0, str(part["method_note"]).strip())
    return PartitionResult(dict(zip(cell_names, wgs, strict=True)), notes)
