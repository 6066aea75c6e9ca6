"""What a zone table holds and what changed between two: content hash, diff, geodesic areas.

Backend-independent: every store backend computes ``data_version`` hashes and version
summaries with these, so the same zones give the same ``data_version`` in every backend.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from geo import schema
from geo.crs import geodesic_area_m2

if TYPE_CHECKING:
    import geopandas as gpd

# Zones serialised per step of content_hash: bounds its memory, not its result.
HASH_BATCH = 2_000


def content_hash(zones: gpd.GeoDataFrame) -> str:
    """SHA-256 of the canonical GeoJSON of the zones (order-independent): the UTF-8 text of
    ``json.dumps(schema.zones_to_geojson(zones sorted by zone_id), ensure_ascii=False,
    sort_keys=True)``.

    Fed to the hash feature by feature, ``HASH_BATCH`` zones at a time: the same digest as
    hashing that text at once, without holding a national table's text (or a Python object
    per coordinate, ~3 GB for 30 M vertices) in memory.
    """
    ordered = zones.sort_values("zone_id") if len(zones) else zones
    digest = hashlib.sha256(b'{"features": [')  # sort_keys puts "features" before "type"
    for start in range(0, len(ordered), HASH_BATCH):
        features = schema.zones_to_geojson(ordered.iloc[start:start + HASH_BATCH])["features"]
        for k, feature in enumerate(features):
            digest.update((", " if start or k else "").encode()
                          + json.dumps(feature, ensure_ascii=False, sort_keys=True).encode())
    digest.update(b'], "type": "FeatureCollection"}')
    return digest.hexdigest()


def with_computed_area(zones: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Set area_km2 to the geodesic (GRS80) area of each polygon; None for points."""
    out = zones.copy()
    areas = geodesic_area_m2(out.geometry.values) / 1e6
    polygonal = out.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    out["area_km2"] = [round(float(a), 4) if p else None for a, p in zip(areas, polygonal, strict=True)]
    out["area_km2"] = out["area_km2"].astype(float)
    return out


def _features_by_id(zones: gpd.GeoDataFrame) -> dict[str, dict[str, Any]]:
    """GeoJSON features by zone id with the geometry as comparable text: rounded like the
    GeoJSON, then in normal form, so the same shape drawn from another start vertex (as GIS
    tools re-save rings), or a one-part MultiPolygon (as the GeoPackage stores a Polygon),
    is not a change."""
    features = schema.zones_to_geojson(zones)["features"]
    geoms = shapely.set_precision(np.asarray(zones.geometry.values, dtype=object), 1e-7)
    one_part = np.isin(shapely.get_type_id(geoms), (4, 5, 6)) & (shapely.get_num_geometries(geoms) == 1)
    geoms = shapely.normalize(np.where(one_part, shapely.get_geometry(geoms, 0), geoms))
    for feature, wkt in zip(features, shapely.to_wkt(geoms), strict=True):
        feature["geometry"] = wkt
    return {f["id"]: f for f in features}


def diff_zones(old: gpd.GeoDataFrame, new: gpd.GeoDataFrame) -> dict[str, list[str]]:
    """Zone ids added, removed and changed (any attribute or the geometry) from old to new."""
    old_by_id = _features_by_id(old)
    new_by_id = _features_by_id(new)
    return {
        "added": sorted(set(new_by_id) - set(old_by_id)),
        "removed": sorted(set(old_by_id) - set(new_by_id)),
        "changed": sorted(i for i in set(old_by_id) & set(new_by_id) if old_by_id[i] != new_by_id[i]),
    }


def diff_details(old: gpd.GeoDataFrame, new: gpd.GeoDataFrame) -> dict[str, Any]:
    """diff_zones with each zone's name, layer, district and geodesic area before/after,
    the fields that changed, and the total area of each table (km²)."""
    ids = diff_zones(old, new)
    old_a, new_a = (with_computed_area(f) for f in (old, new))
    old_f, new_f = _features_by_id(old_a), _features_by_id(new_a)

    def row(feature: dict[str, Any]) -> dict[str, Any]:
        p = feature["properties"]
        return {k: p[k] for k in ("zone_id", "layer", "district_code", "name_zh", "area_km2")}

    changed = []
    for zid in ids["changed"]:
        before, after = old_f[zid]["properties"], new_f[zid]["properties"]
        fields = [k for k in schema.ZONE_COLUMNS if k != "area_km2" and before[k] != after[k]]
        if old_f[zid]["geometry"] != new_f[zid]["geometry"]:
            fields.append("geometry")
        a0, a1 = before["area_km2"], after["area_km2"]
        changed.append({**row(new_f[zid]), "area_before_km2": a0, "area_after_km2": a1,
                        "area_delta_km2": None if a0 is None or a1 is None else round(a1 - a0, 4),
                        "fields": fields})
    return {
        "added": [row(new_f[i]) for i in ids["added"]],
        "removed": [row(old_f[i]) for i in ids["removed"]],
        "changed": changed,
        "area_km2": {"before": round(float(old_a["area_km2"].sum()), 4),
                     "after": round(float(new_a["area_km2"].sum()), 4)},
    }
