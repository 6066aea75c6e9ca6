"""Zone recipes: the declarative YAML format and the geometry operations.

A recipe file (``data/boundaries/recipes/<district>.yaml``, described in full in that
folder's README.md) turns a gazette's words into zone rows::

    district:   {code, name_zh, name_en}
    documents:  {key: {doc_no, title, issuer, issued_on, effective_from, effective_to, seed}}
    rules:      {key: {text_zh, text_en}}               # verbatim wording + translation
    places:     {key: {name_zh, lon, lat, crs, source}}  # cited coordinates, never invented
    partitions: {key: {of: spec, seeds: {cell: place | [places]}, target_areas_km2: {cell: km2}}}
    zones:      [{id, parent, layer, kind, name_zh, name_en, document, article,
                  stated_area_km2, rules, accuracy, notes, method_note, geometry: spec}]
    checks:     [{sum_of: [...], equals: ...} | {area_matches: id} | {parts: [...], cover: ...}]

A geometry ``spec`` is a mapping ``{op: name, ...}``; in the lists of ``union``,
``intersection`` and ``difference`` a bare string is shorthand for ``{op: ref, id: ...}``.
Operations live in a registry: ``@operation("name")`` on a function ``(spec, ctx) ->
shapely geometry`` (WGS84) adds one. Metric work (buffers, partitions, cutting lines)
happens in EPSG:4548 through ``geo.crs.to_metric`` / ``from_metric``; areas are geodesic.
``{op: not_digitised, reason}`` marks a zone the texts name but that cannot be drawn
honestly: it is reported, not built.

This module parses recipes and builds geometries; ``geo.build`` turns the results into the
zone table, runs the checks and writes the report.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import yaml
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring

from geo import crs as geocrs
from geo.schema import ACCURACY, LAYERS

Spec = Mapping[str, Any]

TOP_KEYS = {"district", "documents", "rules", "places", "partitions", "zones", "checks"}
ZONE_KEYS = {
    "id", "parent", "layer", "kind", "name_zh", "name_en", "document", "article",
    "stated_area_km2", "stated_area_note", "rules", "accuracy", "notes", "method_note",
    "geometry", "district", "issuer", "issued_on", "effective_from", "effective_to",
}
DOCUMENT_KEYS = {"doc_no", "title", "issuer", "issued_on", "effective_from", "effective_to", "seed", "note"}
PLACE_KEYS = {"name_zh", "name_en", "lon", "lat", "crs", "source", "note"}
PARTITION_KEYS = {"of", "seeds", "target_areas_km2", "method_note"}


class RecipeError(ValueError):
    """A recipe is malformed or cannot be built; the message names file, zone and field."""


class NotDigitised(Exception):  # noqa: N818 - a state, not a failure
    """Raised by the ``not_digitised`` operation: the zone is reported, not built."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------- parsed recipe


@dataclass(frozen=True)
class Place:
    key: str
    name_zh: str
    name_en: str | None
    lon: float  # WGS84, converted from the cited CRS
    lat: float
    crs: str
    source: str
    cited: tuple[float, float]  # as typed in the recipe, in ``crs``

    @property
    def point(self) -> Point:
        return Point(self.lon, self.lat)


@dataclass
class ZoneEntry:
    id: str
    recipe: Recipe
    data: dict[str, Any]

    @property
    def geometry_spec(self) -> Spec:
        return self.data["geometry"]

    @property
    def digitised(self) -> bool:
        return self.geometry_spec.get("op") != "not_digitised"

    def where(self) -> str:
        return f"{self.recipe.path.name}: zone {self.id}"


@dataclass
class Recipe:
    path: Path
    district: dict[str, str]
    documents: dict[str, dict[str, Any]]
    rules: dict[str, dict[str, str]]
    places: dict[str, Place]
    partitions: dict[str, dict[str, Any]]
    zones: list[ZoneEntry] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)

    def place(self, key: Any, where: str) -> Place:
        if not isinstance(key, str) or key not in self.places:
            known = ", ".join(sorted(self.places)) or "none"
            raise RecipeError(f"{where}: unknown place {key!r} (places in {self.path.name}: {known})")
        return self.places[key]


def _iso_date(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise RecipeError(f"{where}: {value!r} is not a YYYY-MM-DD date") from None


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RecipeError(f"{where}: expected a mapping, got {type(value).__name__}")
    return dict(value)


def _unknown_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _parse_place(key: str, data: Any, where: str) -> Place:
    data = _mapping(data, where)
    _unknown_keys(data, PLACE_KEYS, where)
    for need in ("name_zh", "lon", "lat", "crs", "source"):
        if data.get(need) in (None, ""):
            raise RecipeError(f"{where}: {need} is required (every coordinate cites its source)")
    try:
        crs = geocrs.parse_crs(data["crs"])
        lon, lat = geocrs.to_wgs84(float(data["lon"]), float(data["lat"]), crs)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"{where}: {exc}") from None
    return Place(key, str(data["name_zh"]), data.get("name_en"), float(lon), float(lat), crs,
                 str(data["source"]), (float(data["lon"]), float(data["lat"])))


def _parse_rule(key: str, data: Any, where: str) -> dict[str, str]:
    data = _mapping(data, where)
    rule = {"code": str(data.get("code") or key), "text_zh": data.get("text_zh"), "text_en": data.get("text_en")}
    for need in ("text_zh", "text_en"):
        if not isinstance(rule[need], str) or not rule[need].strip():
            raise RecipeError(f"{where}: {need} is required")
    return rule


def load_recipe(path: Path) -> Recipe:
    """Parse one recipe file; raises RecipeError naming the file and the entry."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path.name}: not valid YAML: {exc}") from None
    raw = _mapping(raw, path.name)
    _unknown_keys(raw, TOP_KEYS, path.name)
    district = _mapping(raw.get("district"), f"{path.name}: district")
    for need in ("code", "name_zh"):
        if not district.get(need):
            raise RecipeError(f"{path.name}: district.{need} is required")
    district = {k: str(v) for k, v in district.items()}

    documents = {}
    for key, doc in _mapping(raw.get("documents"), f"{path.name}: documents").items():
        where = f"{path.name}: document {key}"
        doc = _mapping(doc, where)
        _unknown_keys(doc, DOCUMENT_KEYS, where)
        for need in ("doc_no", "title", "issuer", "issued_on", "effective_from"):
            if not doc.get(need):
                raise RecipeError(f"{where}: {need} is required")
        for date_key in ("issued_on", "effective_from", "effective_to"):
            doc[date_key] = _iso_date(doc.get(date_key), f"{where}: {date_key}")
        documents[str(key)] = doc

    rules = {str(k): _parse_rule(str(k), v, f"{path.name}: rule {k}")
             for k, v in _mapping(raw.get("rules"), f"{path.name}: rules").items()}
    places = {str(k): _parse_place(str(k), v, f"{path.name}: place {k}")
              for k, v in _mapping(raw.get("places"), f"{path.name}: places").items()}
    partitions = {}
    for key, part in _mapping(raw.get("partitions"), f"{path.name}: partitions").items():
        where = f"{path.name}: partition {key}"
        part = _mapping(part, where)
        _unknown_keys(part, PARTITION_KEYS, where)
        if "of" not in part or not _mapping(part.get("seeds"), where):
            raise RecipeError(f"{where}: needs 'of' and 'seeds'")
        partitions[str(key)] = part

    recipe = Recipe(path, district, documents, rules, places, partitions)
    zones = raw.get("zones") or []
    if not isinstance(zones, list):
        raise RecipeError(f"{path.name}: zones must be a list")
    for i, data in enumerate(zones):
        recipe.zones.append(_parse_zone(recipe, data, f"{path.name}: zones[{i}]"))
    checks = raw.get("checks") or []
    if not isinstance(checks, list) or not all(isinstance(c, Mapping) for c in checks):
        raise RecipeError(f"{path.name}: checks must be a list of mappings")
    recipe.checks = [dict(c) for c in checks]
    return recipe


def _parse_zone(recipe: Recipe, data: Any, where: str) -> ZoneEntry:
    data = _mapping(data, where)
    zid = data.get("id")
    if not isinstance(zid, str) or not zid:
        raise RecipeError(f"{where}: id is required")
    where = f"{recipe.path.name}: zone {zid}"
    _unknown_keys(data, ZONE_KEYS, where)
    for need in ("layer", "kind", "name_zh", "name_en", "accuracy", "geometry"):
        if data.get(need) in (None, ""):
            raise RecipeError(f"{where}: {need} is required")
    if data["layer"] not in LAYERS:
        raise RecipeError(f"{where}: layer {data['layer']!r} is unknown; known: {', '.join(LAYERS)}")
    if data["accuracy"] not in ACCURACY:
        raise RecipeError(f"{where}: accuracy {data['accuracy']!r} is not one of {', '.join(ACCURACY)}")
    doc_key = data.get("document")
    if doc_key is not None and doc_key not in recipe.documents:
        raise RecipeError(f"{where}: unknown document {doc_key!r}")
    if doc_key is None and data["layer"] != "admin":
        raise RecipeError(f"{where}: document is required (every non-admin zone cites its document)")
    for date_key in ("issued_on", "effective_from", "effective_to"):
        if date_key in data:
            data[date_key] = _iso_date(data[date_key], f"{where}: {date_key}")
    data["rules"] = [_zone_rule(recipe, r, f"{where}: rules") for r in (data.get("rules") or [])]
    spec = data["geometry"]
    if not isinstance(spec, Mapping):
        raise RecipeError(f"{where}: geometry must be a mapping with 'op'")
    _check_spec(spec, where)
    if _calibrates(spec) and data["accuracy"] != "approximate":
        raise RecipeError(f"{where}: calibrate_area_km2 is only allowed with accuracy: approximate "
                          f"(got {data['accuracy']!r}); a calibrated geometry is never official")
    if spec.get("op") == "not_digitised" and not str(spec.get("reason") or "").strip():
        raise RecipeError(f"{where}: not_digitised needs a reason")
    return ZoneEntry(zid, recipe, data)


def _zone_rule(recipe: Recipe, rule: Any, where: str) -> dict[str, str]:
    if isinstance(rule, str):
        if rule not in recipe.rules:
            raise RecipeError(f"{where}: unknown rule {rule!r}")
        return dict(recipe.rules[rule])
    rule = _mapping(rule, where)
    if not rule.get("code"):
        raise RecipeError(f"{where}: an inline rule needs a code")
    return _parse_rule(str(rule["code"]), rule, where)


def _subspecs(spec: Spec) -> Iterable[Any]:
    """The nested geometry specs of a spec (strings are zone-id shorthands)."""
    for key in SPEC_PARAMS.get(spec.get("op"), ()):
        value = spec.get(key)
        if isinstance(value, list):
            yield from value
        elif value is not None:
            yield value


def _check_spec(spec: Any, where: str) -> None:
    if isinstance(spec, str):
        return
    if not isinstance(spec, Mapping) or "op" not in spec:
        raise RecipeError(f"{where}: a geometry spec must be a zone id or a mapping with 'op', got {spec!r}")
    if spec["op"] not in OPERATIONS:
        raise RecipeError(f"{where}: unknown op {spec['op']!r}; known: {', '.join(sorted(OPERATIONS))}")
    for sub in _subspecs(spec):
        _check_spec(sub, where)


def _calibrates(spec: Any) -> bool:
    if not isinstance(spec, Mapping):
        return False
    return "calibrate_area_km2" in spec or any(_calibrates(s) for s in _subspecs(spec))


def load_recipes(recipes_dir: Path) -> list[Recipe]:
    """Every ``*.yaml`` recipe in the folder, in file-name order."""
    recipes_dir = Path(recipes_dir)
    if not recipes_dir.is_dir():
        raise RecipeError(f"recipe folder {recipes_dir} does not exist")
    paths = sorted(recipes_dir.glob("*.yaml"))
    if not paths:
        raise RecipeError(f"no *.yaml recipes in {recipes_dir}")
    return [load_recipe(p) for p in paths]


# ---------------------------------------------------------------- base layers


class BaseLayers:
    """The base layers a recipe may use: districts, rivers, lakes (lazily read)."""

    FILES = {"districts": "districts.geojson", "rivers": "*rivers*.geojson", "lakes": "*lakes*.geojson"}

    def __init__(self, base_dir: Path):
        self.base_dir = Path(base_dir)
        self._frames: dict[str, gpd.GeoDataFrame] = {}
        self.files: dict[str, list[str]] = {}  # layer -> file names read, for method texts

    def frame(self, name: str) -> gpd.GeoDataFrame:
        if name not in self._frames:
            paths = sorted(self.base_dir.glob(self.FILES[name]))
            if not paths:
                raise RecipeError(f"base layer {self.FILES[name]} not found in {self.base_dir}")
            frames = [gpd.read_file(p) for p in paths]
            for path, frame in zip(paths, frames, strict=True):
                if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
                    raise RecipeError(f"base layer {path.name} must be WGS84 (EPSG:4326), got {frame.crs}")
            frame = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs="EPSG:4326")
            self.files[name] = [p.name for p in paths]
            self._frames[name] = frame
        return self._frames[name]

    def match(self, name: str, value: str, columns: tuple[str, ...]) -> gpd.GeoDataFrame:
        """Rows of a layer whose first present column in ``columns`` equals (or contains) value."""
        frame = self.frame(name)
        hits = np.zeros(len(frame), dtype=bool)
        for col in columns:
            if col in frame.columns:
                text = frame[col].astype(str)
                hits |= (text == value).to_numpy() | text.str.contains(value, regex=False).to_numpy()
        return frame[hits]


# ---------------------------------------------------------------- the operation registry


Operation = Callable[[Spec, "BuildContext"], BaseGeometry]
OPERATIONS: dict[str, Operation] = {}
SPEC_PARAMS: dict[str, tuple[str, ...]] = {}  # op -> parameters holding nested geometry specs


def operation(name: str, specs: tuple[str, ...] = ()) -> Callable[[Operation], Operation]:
    """Register a geometry operation under ``name`` (the recipe's ``op``).

    ``specs`` names the parameters that hold nested geometry specs, so dependency
    ordering and validation can walk into them.
    """
    def register(fn: Operation) -> Operation:
        OPERATIONS[name] = fn
        SPEC_PARAMS[name] = specs
        return fn
    return register


@dataclass
class PartitionResult:
    cells: dict[str, BaseGeometry]  # WGS84
    notes: list[str]


@dataclass
class BuiltZone:
    entry: ZoneEntry
    geometry: BaseGeometry | None
    method: str
    reason: str | None = None  # why it is not digitised

    @property
    def digitised(self) -> bool:
        return self.geometry is not None


class BuildContext:
    """All recipes in one context: zone ids are global, places/rules/partitions per file."""

    def __init__(self, recipes: list[Recipe], base: BaseLayers):
        self.recipes = recipes
        self.base = base
        self.entries: dict[str, ZoneEntry] = {}
        for recipe in recipes:
            for entry in recipe.zones:
                if entry.id in self.entries:
                    other = self.entries[entry.id].recipe.path.name
                    raise RecipeError(f"{entry.where()}: duplicate zone id (also in {other})")
                self.entries[entry.id] = entry
        self.built: dict[str, BuiltZone] = {}
        self._partitions: dict[tuple[Path, str], PartitionResult] = {}
        self.entry: ZoneEntry | None = None
        self._recipe: Recipe | None = None  # for specs evaluated outside a zone (checks)
        self._notes: list[str] = []

    # -- helpers for operations
    @property
    def recipe(self) -> Recipe:
        recipe = self.entry.recipe if self.entry else self._recipe
        if recipe is None:
            raise RecipeError("a geometry spec was evaluated outside any recipe")
        return recipe

    def where(self) -> str:
        if self.entry:
            return self.entry.where()
        return f"{self._recipe.path.name}: check" if self._recipe else "recipe"

    def evaluate(self, spec: Any, recipe: Recipe) -> BaseGeometry:
        """Build a spec outside any zone (for checks), with ``recipe``'s places and partitions."""
        saved = (self.entry, self._recipe, self._notes)
        self.entry, self._recipe, self._notes = None, recipe, []
        try:
            return self.geometry(spec)
        finally:
            self.entry, self._recipe, self._notes = saved

    def built_partitions(self) -> list[tuple[Recipe, str, PartitionResult]]:
        """Partitions some zone used, in recipe and key order."""
        return [(r, key, self._partitions[(r.path, key)]) for r in self.recipes
                for key in sorted(r.partitions) if (r.path, key) in self._partitions]

    def note(self, text: str) -> None:
        """Add a sentence to the current zone's generated method text."""
        if text not in self._notes:
            self._notes.append(text)

    def place(self, key: Any) -> Place:
        return self.recipe.place(key, self.where())

    def point_of(self, spec: Spec) -> Place:
        """A place from ``place: key`` or inline ``lon``/``lat``/``crs``/``source``."""
        if "place" in spec:
            return self.place(spec["place"])
        return _parse_place("inline", {k: spec.get(k) for k in ("lon", "lat", "crs", "source")}
                            | {"name_zh": spec.get("name_zh", "inline point")}, self.where())

    def geometry(self, spec: Any) -> BaseGeometry:
        """Build a spec (or a zone-id shorthand) to a WGS84 geometry."""
        if isinstance(spec, str):
            spec = {"op": "ref", "id": spec}
        op = spec.get("op")
        if op not in OPERATIONS:
            raise RecipeError(f"{self.where()}: unknown op {op!r}; known: {', '.join(sorted(OPERATIONS))}")
        geom = OPERATIONS[op](spec, self)
        if geom is None or geom.is_empty:
            raise RecipeError(f"{self.where()}: op {op} produced an empty geometry")
        return geom

    def partition(self, key: str) -> PartitionResult:
        recipe = self.recipe
        if key not in recipe.partitions:
            raise RecipeError(f"{self.where()}: unknown partition {key!r} in {recipe.path.name}")
        cache_key = (recipe.path, key)
        if cache_key not in self._partitions:
            self._partitions[cache_key] = build_partition(recipe.partitions[key], self, f"partition {key}")
        return self._partitions[cache_key]

    # -- the build
    def build_all(self, on_zone: Callable[[ZoneEntry], None] | None = None) -> dict[str, BuiltZone]:
        for zid in build_order(self.entries):
            entry = self.entries[zid]
            self.entry, self._notes = entry, []
            spec = entry.geometry_spec
            try:
                geom = self.geometry(spec)
                if not geom.is_valid:
                    geom = shapely.make_valid(geom)
                geom = _polygonal_or_points(geom)
                self.built[zid] = BuiltZone(entry, geom, self._method(entry))
            except NotDigitised as nd:
                self.built[zid] = BuiltZone(entry, None, self._method(entry), reason=nd.reason)
            except NotDigitisedRef as exc:
                raise RecipeError(f"{entry.where()}: {exc}") from None
            if on_zone:
                on_zone(entry)
        self.entry = None
        return self.built

    def _method(self, entry: ZoneEntry) -> str:
        parts = []
        if entry.data.get("method_note"):
            parts.append(str(entry.data["method_note"]).strip())
        if entry.digitised:
            parts.append(f"recipe: {describe(entry.geometry_spec, entry.recipe)}")
        parts.extend(self._notes)
        return " | ".join(parts)


def _polygonal_or_points(geom: BaseGeometry) -> BaseGeometry:
    """Drop stray lines/points that overlay operations leave in polygon results."""
    if geom.geom_type == "GeometryCollection":
        polys = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
        if polys:
            return shapely.union_all(polys)
    return geom


def describe(spec: Any, recipe: Recipe) -> str:
    """Compact text of a spec for the method column: op(key=value, …), places by name."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, list):
        return "[" + ", ".join(describe(s, recipe) for s in spec) + "]"
    if not isinstance(spec, Mapping):
        return str(spec)
    args = []
    for key, value in spec.items():
        if key in ("op", "source", "reason"):
            continue
        if key == "coords":
            value = f"{len(value)} vertices ({spec.get('crs', '?')}, source: {spec.get('source', '?')})"
        elif key in ("place", "from", "to") and isinstance(value, str) and value in recipe.places:
            value = recipe.places[value].name_zh
        elif key == "places" and isinstance(value, list):
            value = "→".join(recipe.places[v].name_zh if v in recipe.places else str(v) for v in value)
        elif isinstance(value, Mapping | list):
            value = describe(value, recipe)
        args.append(f"{key}={value}")
    return f"{spec.get('op')}({', '.join(args)})"


# ---------------------------------------------------------------- dependency order


def dependencies(spec: Any, recipe: Recipe) -> set[str]:
    """Zone ids a spec needs built first (refs, shorthands, partitions' areas)."""
    if isinstance(spec, str):
        return {spec}
    if not isinstance(spec, Mapping):
        return set()
    deps: set[str] = set()
    if spec.get("op") == "ref" and isinstance(spec.get("id"), str):
        deps.add(spec["id"])
    if spec.get("op") == "partition_cell" and spec.get("partition") in recipe.partitions:
        deps |= dependencies(recipe.partitions[spec["partition"]]["of"], recipe)
    for sub in _subspecs(spec):
        deps |= dependencies(sub, recipe)
    return deps


def build_order(entries: Mapping[str, ZoneEntry]) -> list[str]:
    """Zone ids so that every zone comes after the zones its geometry uses.

    Raises RecipeError for a reference to an unknown zone or a reference cycle (naming it).
    Ties are broken by id, so the order is deterministic.
    """
    deps = {}
    for zid, entry in entries.items():
        needed = dependencies(entry.geometry_spec, entry.recipe)
        for dep in sorted(needed):
            if dep not in entries:
                raise RecipeError(f"{entry.where()}: refers to unknown zone {dep!r}")
        deps[zid] = sorted(needed)
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(zid: str, path: list[str]) -> None:
        if state.get(zid) == 2:
            return
        if state.get(zid) == 1:
            cycle = path[path.index(zid):] + [zid]
            raise RecipeError(f"reference cycle between zones: {' -> '.join(cycle)}")
        state[zid] = 1
        for dep in deps[zid]:
            visit(dep, path + [zid])
        state[zid] = 2
        order.append(zid)

    for zid in sorted(entries):
        visit(zid, [])
    return order


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


class NotDigitisedRef(RecipeError):
    """A geometry refers to a zone that is not digitised."""

    def __init__(self, zid: str, reason: str):
        super().__init__(f"refers to zone {zid!r}, which is not digitised ({reason})")
        self.zid = zid


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
