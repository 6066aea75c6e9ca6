"""Point-in-zone lookup: which zones cover a point, how far their boundaries are, and
how much of a site each zone overlaps. Everything is vectorised over point arrays.

Semantics (the API and the CLI answer with exactly these):

* A zone **covers** a point when the point is inside it *or on its boundary* (DE-9IM
  "covers", PostGIS ``ST_Covers``). A point on the line between two zones is in both;
  a point on the ring of a hole is in the zone, a point strictly inside the hole is not.
  A point zone (a monitoring section) covers only its own position.
* A zone applies on ``as_of`` when ``effective_from <= as_of < effective_to`` (an empty
  ``effective_to`` means still in force; see ``geo.selection``). ``as_of=None`` applies
  no date filter.
* Distances are planar metres in each zone's CGCS2000 3-degree Gauss-Krüger CRS (the
  zone of the central meridian nearest the zone's centre, ``geo.crs.local_metric_epsg``;
  EPSG:4548, CM 117°E, ``geo.crs.METRIC_CRS``, for every Beijing zone): within 1.5° of the
  meridian the scale error is below 0.14 % (Beijing, within 1.6° of 117°E: below 0.03 % —
  0.3 m at 1 km), and a point-to-segment distance is a plain planar computation (lon/lat
  degrees are not metres; Web Mercator is ~30 % long at 40°N; one CRS for all of China is
  tens of per cent off 40° from its meridian). Site and overlap areas are geodesic
  (``geo.crs.geodesic_area_m2``).

The index is a regular grid of ``grid_size`` x ``grid_size`` cells over the extent of
all zones. Building it, a quadtree per zone finds the cells the zone covers entirely
and the cells its boundary touches (cells it misses are not stored); each cell keeps
the list of its (zone, covered) entries. Looking up a point is array arithmetic: its
cell, then that cell's entries. A covered entry answers with no geometry test at all;
only boundary cells — a few per cent of points on the bundled zones — are tested,
against the zone's *original* prepared geometry, so the answer is exactly the
original's (the grid only decides which tests are needed). This is the "split large
polygons" step done as a grid: on the bundled zones it runs about ten times faster than
an STRtree of whole zones (``benchmarks/bench_lookup.py``). An STRtree of per-zone
quadtree cells, tried first, gained only 2x: making point geometries and walking the
tree cost more than the tests it saved.

Boundaries (rings, or the point itself for point zones) are densified, projected to the
zone's metric CRS and cut into chunks of at most ``BOUNDARY_CHUNK`` segments when a distance
to the zone is first asked (a national table has 300 000 zones; a point is near a few); an
STRtree per zone answers "distance to this zone's boundary" by nearest-neighbour search.
"Zones within ``near`` metres" takes candidates from an STRtree of the zones (a lon/lat box
that holds every place within ``near``), then their exact boundary distances — neither scans.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from geo.crs import geodesic_area_m2, local_metric_epsg, to_local_metric
from geo.selection import date_column, in_force_between, parse_date, parse_layers

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["BOUNDARY_CHUNK", "DEFAULT_GRID_SIZE", "Hits", "MetricPoints", "Nearby", "SiteOverlaps", "ZoneColumns",
           "ZoneIndex", "build_arrays"]

# Cells per side of the lookup grid over all zones (a power of two). 1024 over the four
# districts' extent gives cells of ~200 x 130 m: about 3 % of points need an exact test,
# and the grid builds in half a second. (Measured on the bundled zones: 512 and 1024 look
# up equally fast; 256 is 20 % slower; 2048 is slower and builds 7x longer.)
DEFAULT_GRID_SIZE = 1024
# Segments per boundary chunk: small enough that a chunk's box is tight, large enough
# that the tree stays small.
BOUNDARY_CHUNK = 16
# Points farther than this (degrees) outside the zones' extent have no zone within any
# searchable distance (the API's ``near`` stops at 50 km; a degree is >= 85 km here), so
# they are not projected: EPSG:4548 is a transverse Mercator on 117°E and fails (or
# distorts without bound) far from it, e.g. at lon 21.
DISTANCE_MARGIN_DEG = 1.0

# Vertex spacing (degrees, ~50 m) of boundaries before projection to a metric CRS.
DENSIFY_DEG = 0.0005
# Zones whose boundary trees are kept (built on first distance to the zone); past this the
# cache starts again, so a batch over a national table does not keep every boundary.
BOUNDARY_TREES_KEPT = 20_000

_POLYGONAL = (3, 6)  # shapely type ids: Polygon, MultiPolygon


@dataclass(frozen=True)
class Hits:
    """(point, zone) pairs: zone ``zone[k]`` covers point ``point[k]``.

    Sorted by point, then zone (the zone table's order); one pair per covering zone.
    """

    point: np.ndarray
    zone: np.ndarray
    n_points: int

    def zones_of(self, i: int) -> np.ndarray:
        """Zone indices covering point ``i``."""
        lo, hi = np.searchsorted(self.point, [i, i + 1])
        return self.zone[lo:hi]

    def by_point(self) -> list[np.ndarray]:
        """For every point (in input order) the zone indices covering it."""
        bounds = np.searchsorted(self.point, np.arange(self.n_points + 1))
        return [self.zone[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


@dataclass(frozen=True)
class Nearby:
    """Zones within the search distance that do not cover the point: (point, zone, distance_m)."""

    point: np.ndarray
    zone: np.ndarray
    distance_m: np.ndarray


@dataclass(frozen=True)
class SiteOverlaps:
    """The zones a site intersects, with overlap areas (geodesic m²)."""

    site_area_m2: float
    zone: np.ndarray
    overlap_m2: np.ndarray
    zone_area_m2: np.ndarray  # 0 for point zones

    @property
    def share_of_site(self) -> np.ndarray:
        return self.overlap_m2 / self.site_area_m2 if self.site_area_m2 > 0 else np.zeros(len(self.zone))

    @property
    def share_of_zone(self) -> np.ndarray:
        """Overlap / zone area; NaN for point zones, which have no area."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.zone_area_m2 > 0, self.overlap_m2 / self.zone_area_m2, np.nan)


def _grid_cells(geoms: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fine-grid cells (ids ``iy * G + ix``) that each zone covers entirely or touches
    without covering, as (cell, zone, covered) arrays, found top-down by a quadtree aligned
    with the grid.

    A node whose closed box does not meet the zone's boundary lies wholly inside or wholly
    outside the zone, and its centre says which; only nodes the boundary crosses are split.
    The quadtree of every zone advances one level at a time, each level a few vectorised
    shapely calls over all (zone, node) pairs: the same cells as one quadtree per zone, without
    Python work per zone (300 000 zones at national scale). ``geoms`` must be prepared.
    """
    size = xs.size - 1
    polygonal = np.isin(shapely.get_type_id(geoms), _POLYGONAL)
    cells, owner, covered = [np.zeros(0, np.int64)], [np.zeros(0, np.intp)], [np.zeros(0, bool)]
    points = np.flatnonzero(~polygonal)
    if points.size:  # point zones: each point's own cell, tested exactly
        coords, part = shapely.get_coordinates(geoms[points], return_index=True)
        cells.append(_cell_ids(coords[:, 0], coords[:, 1], xs, ys))
        owner.append(points[part].astype(np.intp))
        covered.append(np.zeros(part.size, bool))
    zones = np.flatnonzero(polygonal)
    boundary = shapely.boundary(geoms[zones])
    shapely.prepare(boundary)
    minx, miny, maxx, maxy = shapely.bounds(geoms[zones]).T
    k = np.arange(zones.size)  # (zone, node) pairs: k into ``zones``, node (i, j) at this level
    i = j = np.zeros(zones.size, np.int64)
    step = size
    while k.size:
        x0, x1, y0, y1 = xs[i * step], xs[(i + 1) * step], ys[j * step], ys[(j + 1) * step]
        near = (x0 <= maxx[k]) & (x1 >= minx[k]) & (y0 <= maxy[k]) & (y1 >= miny[k])
        k, i, j, x0, x1, y0, y1 = k[near], i[near], j[near], x0[near], x1[near], y0[near], y1[near]
        crossing = shapely.intersects(boundary[k], shapely.box(x0, y0, x1, y1))
        inside = ~crossing
        inside[inside] = shapely.intersects_xy(geoms[zones[k[inside]]], (x0[inside] + x1[inside]) / 2,
                                               (y0[inside] + y1[inside]) / 2)
        offs = np.arange(step)
        ci = (i[inside, None, None] * step + offs[None, None, :])
        cj = (j[inside, None, None] * step + offs[None, :, None])
        cells.append((cj * size + ci).reshape(-1))
        owner.append(np.repeat(zones[k[inside]], step * step).astype(np.intp))
        covered.append(np.ones(cells[-1].size, bool))
        if step == 1:
            cells.append(j[crossing] * size + i[crossing])
            owner.append(zones[k[crossing]].astype(np.intp))
            covered.append(np.zeros(int(crossing.sum()), bool))
            break
        k, i, j, step = k[crossing], i[crossing] * 2, j[crossing] * 2, step // 2
        k, i, j = np.tile(k, 4), np.concatenate([i, i + 1, i, i + 1]), np.concatenate([j, j, j + 1, j + 1])
    return np.concatenate(cells), np.concatenate(owner), np.concatenate(covered)


def _axis_index(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Index k with edges[k] <= v < edges[k+1] (the last edge belongs to the last cell);
    -1 outside the edges or for NaN. Exact, so a point always lands in a closed cell
    that really contains it.
    """
    size = edges.size - 1
    inside = (v >= edges[0]) & (v <= edges[-1])  # False for NaN
    if v.size <= 64:  # a few points: binary search, cheaper than the fixed costs below
        k = np.searchsorted(edges, v, side="right") - 1
    else:  # many points: arithmetic gives k to within one, a comparison with the edges fixes it
        span = edges[-1] - edges[0]
        scale = size / span if span > 0 else 0.0
        # (NaN and far-off values are replaced first: casting them to int is undefined.)
        k = ((np.where(inside, v, edges[0]) - edges[0]) * scale).astype(np.int64)
        k = np.minimum(np.maximum(k, 0), size - 1)
        k -= v < edges[k]
        k += v >= edges[k + 1]
    k[v == edges[-1]] = size - 1
    return np.where(inside, k, -1)


def _points(lon, lat) -> np.ndarray:
    # from an (n, 2) array: several times cheaper than shapely.points(x, y) for a few points
    return shapely.points(np.column_stack([np.asarray(lon, dtype=float).reshape(-1),
                                           np.asarray(lat, dtype=float).reshape(-1)]))


def _cell_ids(x: np.ndarray, y: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The grid cell of each point (``iy * G + ix``), -1 outside the grid."""
    ix, iy = _axis_index(x, xs), _axis_index(y, ys)
    return np.where((ix >= 0) & (iy >= 0), iy * (xs.size - 1) + ix, -1)


def _boundary_chunks(metric_geom: shapely.Geometry) -> np.ndarray:
    """A metric geometry's boundary as LineStrings of at most BOUNDARY_CHUNK segments
    (points for point zones: a point is its own boundary for distance purposes); consecutive
    chunks of a ring share their end vertex. Made in one vectorised call per zone."""
    parts = shapely.get_parts(metric_geom)
    if shapely.get_type_id(metric_geom) in (0, 4):
        return parts
    rings = shapely.get_rings(parts)
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    count = np.bincount(ring_of, minlength=len(rings))
    first = np.cumsum(count) - count
    per_ring = np.maximum(-(-(count - 1) // BOUNDARY_CHUNK), 0)  # ceil(segments / BOUNDARY_CHUNK)
    ring = np.repeat(np.arange(len(rings)), per_ring)
    start = first[ring] + (np.arange(ring.size) - np.repeat(np.cumsum(per_ring) - per_ring, per_ring)) * BOUNDARY_CHUNK
    length = np.minimum(start + BOUNDARY_CHUNK + 1, first[ring] + count[ring]) - start
    take = np.repeat(start - (np.cumsum(length) - length), length) + np.arange(length.sum())
    return shapely.linestrings(coords[take], indices=np.repeat(np.arange(ring.size), length))


def build_arrays(geoms: np.ndarray, grid_size: int = DEFAULT_GRID_SIZE) -> dict[str, np.ndarray]:
    """Everything ``ZoneIndex`` derives from the zone geometries up front, as plain arrays
    (what ``geo.index_files`` saves per data version, so a new process loads instead of building).

    ``area_m2`` geodesic zone areas; ``xs``/``ys`` the grid's cell edges; ``entry_zone``,
    ``entry_covered``, ``cell_start`` the cells' (zone, covered) entries CSR-style, sorted
    by (cell, zone), so a point's candidates come out sorted by zone; ``zone_crs`` each
    zone's metric CRS for distances (EPSG code, ``geo.crs.local_metric_epsg`` of the centre
    of its bounds: EPSG:4548 for every Beijing zone). Boundary chunks are not built here:
    ``ZoneIndex`` builds a zone's when a distance to it is first asked.
    """
    if grid_size < 1 or grid_size & (grid_size - 1):
        raise ValueError(f"grid_size must be a power of two, got {grid_size}")
    geoms = np.asarray(geoms, dtype=object)
    shapely.prepare(geoms)
    area_m2 = np.asarray(geodesic_area_m2(geoms), dtype=float) if len(geoms) else np.zeros(0)
    bounds = shapely.total_bounds(geoms) if len(geoms) else np.zeros(4)
    xs = np.linspace(bounds[0], bounds[2], grid_size + 1)
    ys = np.linspace(bounds[1], bounds[3], grid_size + 1)
    cells, owner, covered = _grid_cells(geoms, xs, ys)
    order = np.lexsort((owner, cells))
    cell_start = np.searchsorted(cells[order], np.arange(grid_size * grid_size + 1))
    zone_bounds = shapely.bounds(geoms).reshape(-1, 4)
    return {
        "area_m2": area_m2, "xs": xs, "ys": ys,
        "entry_zone": owner[order], "entry_covered": covered[order], "cell_start": cell_start,
        "zone_crs": local_metric_epsg((zone_bounds[:, 0] + zone_bounds[:, 2]) / 2),
    }


@dataclass
class MetricPoints:
    """WGS84 points (validated) for the distance methods, projected to a zone's metric CRS
    when first needed (one projection per CRS, kept). ``close`` is False for points more than
    DISTANCE_MARGIN_DEG outside the zones' extent: they stay empty points (no zone is near
    them, and the distance methods find nothing for an empty point)."""

    lon: np.ndarray
    lat: np.ndarray
    close: np.ndarray
    _projected: dict[int, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.lon.size

    def in_crs(self, epsg: int) -> np.ndarray:
        """The points as shapely points in EPSG ``epsg`` (empty where not ``close``)."""
        out = self._projected.get(int(epsg))
        if out is None:
            out = np.full(self.lon.size, shapely.Point(), dtype=object)
            if self.close.all():
                out = to_local_metric(_points(self.lon, self.lat), epsg)
            elif self.close.any():
                out[self.close] = to_local_metric(_points(self.lon[self.close], self.lat[self.close]), epsg)
            self._projected[int(epsg)] = out
        return out


@dataclass(frozen=True)
class ZoneColumns:
    """What the index reads of a zone table, in table order: the geometries, and the layer
    and validity dates that filter them (dates as ``geo.selection.date_column`` arrays)."""

    geoms: np.ndarray
    layer: np.ndarray
    effective_from: np.ndarray
    effective_to: np.ndarray

    @classmethod
    def of_frame(cls, zones: gpd.GeoDataFrame) -> ZoneColumns:
        return cls(np.asarray(zones.geometry.values, dtype=object).copy(), zones["layer"].to_numpy(dtype=object),
                   date_column(zones["effective_from"]), date_column(zones["effective_to"]))

    @classmethod
    def of_records(cls, records: Sequence[Mapping[str, Any]], geoms: np.ndarray) -> ZoneColumns:
        """From zone property records (``geo.schema.zone_properties``) and their geometries."""
        return cls(np.asarray(geoms, dtype=object), np.array([r["layer"] for r in records], dtype=object),
                   date_column(r["effective_from"] for r in records), date_column(r["effective_to"] for r in records))


class ZoneIndex:
    """Spatial index of a zone table; build once per data version (``geo.catalog``), or
    load the arrays a previous process saved (``geo.index_files``)."""

    def __init__(self, zones: gpd.GeoDataFrame, grid_size: int = DEFAULT_GRID_SIZE,
                 arrays: dict[str, np.ndarray] | None = None):
        """``arrays``: the result of ``build_arrays`` for exactly these zones, in this order
        (None builds them)."""
        zones = zones.reset_index(drop=True)
        self._setup(ZoneColumns.of_frame(zones), grid_size, arrays, lambda: zones)

    @classmethod
    def saved(cls, columns: ZoneColumns, arrays: dict[str, np.ndarray],
              load_zones: Callable[[], gpd.GeoDataFrame]) -> ZoneIndex:
        """The index of saved ``arrays`` over ``columns``, without the zone table: answering
        points needs no more. :attr:`zones` calls ``load_zones`` (which caches the table, with
        a RangeIndex in the order of ``columns``: ``geo.catalog.Snapshot.zones``)."""
        index = cls.__new__(cls)
        index._setup(columns, DEFAULT_GRID_SIZE, arrays, load_zones)
        return index

    def _setup(self, columns: ZoneColumns, grid_size: int, arrays: dict[str, np.ndarray] | None,
               load_zones: Callable[[], gpd.GeoDataFrame]) -> None:
        self.columns = columns
        self.geoms = columns.geoms
        shapely.prepare(self.geoms)
        self._load_zones = load_zones
        self._active: dict[tuple, np.ndarray] = {}
        if arrays is None:
            arrays = build_arrays(self.geoms, grid_size)
        self.arrays = arrays
        self.grid_size = arrays["xs"].size - 1
        self.area_m2, self.xs, self.ys = arrays["area_m2"], arrays["xs"], arrays["ys"]
        self.entry_zone, self.entry_covered = arrays["entry_zone"], arrays["entry_covered"]
        self.cell_start = arrays["cell_start"]  # CSR offsets: cell c holds entries cell_start[c]:cell_start[c + 1]
        self.zone_crs = arrays["zone_crs"]
        # Built on first use: a site check needs the zone tree, a distance a zone's boundary
        # tree; a national table has 300 000 zones, and a point touches a few.
        self._zone_tree_built: shapely.STRtree | None = None
        self._boundary_trees: dict[int, shapely.STRtree] = {}

    @classmethod
    def from_frame(cls, zones: gpd.GeoDataFrame, grid_size: int = DEFAULT_GRID_SIZE) -> ZoneIndex:
        return cls(zones, grid_size=grid_size)

    @property
    def zones(self) -> gpd.GeoDataFrame:
        """The zone table the index refers to by row (loaded on first use for a saved index)."""
        return self._load_zones()

    @property
    def _zone_tree(self) -> shapely.STRtree:
        if self._zone_tree_built is None:
            self._zone_tree_built = shapely.STRtree(self.geoms)
        return self._zone_tree_built

    def _boundary_tree(self, z: int) -> shapely.STRtree:
        """An STRtree of zone ``z``'s boundary chunks in its metric CRS, built on first use:
        densified to DENSIFY_DEG before projecting (an edge straight in lon/lat is slightly
        curved in Gauss-Krüger, metres off over a few km; with vertices every ~50 m the
        projected boundary follows the stored one to centimetres)."""
        tree = self._boundary_trees.get(z)
        if tree is None:
            metric = to_local_metric(shapely.segmentize(self.geoms[z], DENSIFY_DEG), int(self.zone_crs[z]))
            if len(self._boundary_trees) >= BOUNDARY_TREES_KEPT:
                self._boundary_trees.clear()
            tree = self._boundary_trees[z] = shapely.STRtree(_boundary_chunks(metric))
        return tree

    def __len__(self) -> int:
        return len(self.geoms)

    # ------------------------------------------------------------------ filters

    def active(self, as_of: str | None = None, layers: str | Iterable[str] | None = None) -> np.ndarray:
        """Boolean mask over zones: in force on ``as_of`` and in ``layers`` (None = no filter).

        Raises ``geo.selection.SelectionError`` for a malformed date or an unknown layer.
        Masks are cached: a service asks for the same few dates and layer sets all day.
        """
        names = parse_layers(layers)
        key = (as_of, None if names is None else tuple(names))
        mask = self._active.get(key)
        if mask is None:
            mask = np.ones(len(self), dtype=bool)
            if as_of is not None:
                day = parse_date(as_of)
                mask &= in_force_between(self.columns.effective_from, self.columns.effective_to, day, day)
            if names is not None:
                mask &= np.isin(self.columns.layer, names)
            if len(self._active) >= 1024:
                self._active.clear()
            self._active[key] = mask
        return mask

    # ------------------------------------------------------------------ points

    def lookup_points(self, lon, lat, as_of: str | None = None,
                      layers: str | Iterable[str] | None = None) -> Hits:
        """Every zone covering each WGS84 point (boundary counts as inside).

        ``lon``/``lat``: array-likes of equal length. NaN points match nothing; callers
        validate coordinates first (``geo.crs.to_wgs84`` does).
        """
        lon = np.asarray(lon, dtype=float).reshape(-1)
        lat = np.asarray(lat, dtype=float).reshape(-1)
        cell = _cell_ids(lon, lat, self.xs, self.ys)
        valid = np.flatnonzero(cell >= 0)
        # Offsets of the asked cells only: a diff over all 1024² cells would page in the whole
        # memory-mapped array (8 MiB) on the first answer after a start.
        first = self.cell_start[cell[valid]]
        count = self.cell_start[cell[valid] + 1] - first
        # Expand each point into its cell's (zone, covered) entries.
        pi = np.repeat(valid, count)
        entry = np.arange(pi.size) - np.repeat(np.cumsum(count) - count, count) + np.repeat(first, count)
        zi = self.entry_zone[entry]
        keep = self.active(as_of, layers)[zi]
        pi, zi, hit = pi[keep], zi[keep], self.entry_covered[entry[keep]]
        test = np.flatnonzero(~hit)
        if test.size:
            # Exact test on the original (prepared) geometry; for a point, intersects == covers.
            hit[test] = shapely.intersects_xy(self.geoms[zi[test]], lon[pi[test]], lat[pi[test]])
        return Hits(point=pi[hit], zone=zi[hit], n_points=lon.size)

    def metric_points(self, lon, lat) -> MetricPoints:
        """WGS84 points (validated) for the distance methods, which measure each zone in its
        own metric CRS (``zone_crs``; EPSG:4548 for Beijing).

        Points more than DISTANCE_MARGIN_DEG outside the zones' extent are never projected
        (a transverse Mercator fails, or distorts without bound, far from its meridian): no
        zone is near them, and the distance methods find nothing for them.
        """
        lon = np.asarray(lon, dtype=float).reshape(-1)
        lat = np.asarray(lat, dtype=float).reshape(-1)
        x0, y0, x1, y1 = self.xs[0], self.ys[0], self.xs[-1], self.ys[-1]
        m = DISTANCE_MARGIN_DEG
        close = (lon >= x0 - m) & (lon <= x1 + m) & (lat >= y0 - m) & (lat <= y1 + m)
        return MetricPoints(lon, lat, close)

    def _distances(self, points: MetricPoints, point: np.ndarray, zone: np.ndarray) -> np.ndarray:
        """Metres from point ``point[k]`` to zone ``zone[k]``'s boundary, in the zone's CRS."""
        out = np.zeros(zone.size)
        # dict.fromkeys, not np.unique: that imports numpy.ma on first use, 20 ms of a first answer.
        for z in dict.fromkeys(zone.tolist()):
            pairs = np.flatnonzero(zone == z)
            _, dist = self._boundary_tree(int(z)).query_nearest(points.in_crs(self.zone_crs[z])[point[pairs]],
                                                                return_distance=True, all_matches=False)
            out[pairs] = dist
        return out

    def distance_to_boundary_m(self, points_m: MetricPoints, hits: Hits) -> np.ndarray:
        """For each pair of ``hits``: metres from the point (``metric_points``) to that zone's boundary."""
        return self._distances(points_m, hits.point, hits.zone)

    def nearby(self, points_m: MetricPoints, near_m: float, hits: Hits, as_of: str | None = None,
               layers: str | Iterable[str] | None = None) -> Nearby:
        """Zones within ``near_m`` metres of each point (``metric_points``) that do not cover
        it (in force on ``as_of``, of ``layers``), with the distance to them; sorted by point,
        then distance.

        Candidates come from the zone tree: zones whose lon/lat box meets a box around the
        point that holds every place within ``near_m`` (1° of latitude is over 110.5 km, 1° of
        longitude over 111.0 km × cos(latitude); Gauss-Krüger distances are never shorter than
        the true ones). Each candidate's exact boundary distance then decides (``<= near_m``).
        """
        if near_m <= 0 or len(points_m) == 0 or len(self.geoms) == 0:
            return Nearby(np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0))
        close = np.flatnonzero(points_m.close)
        lon, lat = points_m.lon[close], points_m.lat[close]
        dlat = near_m / 110_500.0
        dlon = near_m / (111_000.0 * np.cos(np.radians(np.minimum(np.abs(lat) + dlat, 89.0))))
        qi, zi = self._zone_tree.query(shapely.box(lon - dlon, lat - dlat, lon + dlon, lat + dlat))
        pi = close[qi]
        # Drop the zones covering the point: hit keys are sorted, so a binary search finds them.
        n = len(self)
        key, hit_keys = pi.astype(np.int64) * n + zi, hits.point.astype(np.int64) * n + hits.zone
        at = np.minimum(np.searchsorted(hit_keys, key), max(hit_keys.size - 1, 0))
        covering = hit_keys[at] == key if hit_keys.size else np.zeros(key.size, bool)
        keep = self.active(as_of, layers)[zi] & ~covering
        pi, zi = pi[keep], zi[keep]
        dist = self._distances(points_m, pi, zi)
        within = dist <= near_m
        pi, zi, dist = pi[within], zi[within], dist[within]
        order = np.lexsort((zi, dist, pi))
        return Nearby(point=pi[order].astype(np.intp), zone=zi[order].astype(np.intp), distance_m=dist[order])

    # ------------------------------------------------------------------ sites

    def site_overlaps(self, site: shapely.Geometry, as_of: str | None = None,
                      layers: str | Iterable[str] | None = None) -> SiteOverlaps:
        """Zones intersecting a WGS84 polygon ``site`` (touching counts, with 0 m²).

        The caller checks that ``site`` is a valid polygon; overlap areas are geodesic.
        """
        candidates = np.sort(self._zone_tree.query(site))
        candidates = candidates[self.active(as_of, layers)[candidates]]
        zones = candidates[shapely.intersects(self.geoms[candidates], site)]
        overlap = shapely.intersection(self.geoms[zones], site)
        overlap_m2 = np.asarray(geodesic_area_m2(overlap), dtype=float) if zones.size else np.zeros(0)
        return SiteOverlaps(site_area_m2=float(geodesic_area_m2(site)), zone=zones.astype(np.intp),
                            overlap_m2=overlap_m2, zone_area_m2=self.area_m2[zones])
