"""Zone recipes, part 2: the build context — all recipes in one namespace, base layers,
dependency order, and building every zone's geometry through the operation registry
(``geo.recipe_format``; the operations themselves are in ``geo.recipe_ops``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from geo.recipe_format import (
    OPERATIONS,
    NotDigitised,
    NotDigitisedRef,
    Place,
    Recipe,
    RecipeError,
    Spec,
    ZoneEntry,
    _parse_place,
    _subspecs,
    describe,
)
from geo.recipe_ops import PartitionResult, build_partition

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
