"""What a new data version changes for registered sites (farms, permits, projects).

The sites registry is the ``sites`` work table of the zone store (``geo.store.work``: in
the GeoPackage file or the PostGIS schema, so every replica sees the same sites), replaced
whole in one transaction with its audit entry. A site is a point or a polygon in WGS84 with
``site_id``, ``name`` and the columns of the file it came from (kept as JSON). A registry
an earlier release kept beside a store file (``<store>.sites.gpkg``) is read until the
first import replaces it.

:func:`impact` compares the zones covering each site (points: covering, boundary
included; polygons: overlapping by more than 0 m²) at two data versions, both on the same
``as_of`` date, and lists per site and zone: ``entered`` (the zone covers the site in the
new version only), ``left`` (old only) and ``rules_changed`` (both, with different rule
codes or texts). A verdict function (activity verdicts) plugs in the same way as in
``geo.parcels``: when given, a ``verdict_changed`` row is added per activity whose verdict
differs.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from geo.atomic import atomic_path
from geo.lookup import ZoneIndex
from geo.parcels import parcel_overlaps, read_parcels
from geo.store import AuditEvent, StoreBackend

SITES_LAYER = "sites"
ID_COLUMNS = ("site_id", "编号", "许可证号", "code", "id")  # an "id" may be GeoJSON feature ids: last
NAME_COLUMNS = ("name", "名称", "单位名称", "养殖场名称", "项目名称")
CHANGES = ("entered", "left", "rules_changed", "verdict_changed")

# ("from" | "to", site geometries, zone indices covering each site in that version's table)
#   -> {activity: verdict per site}
VerdictFunction = Callable[[str, np.ndarray, list[np.ndarray]], dict[str, list[str]]]


def legacy_sites_path(store: StoreBackend) -> Path | None:
    """Where an earlier release kept a store file's registry (None for a database store)."""
    path = getattr(store, "path", None)  # a store file (GeoPackage); a database has none
    return None if path is None else Path(path).with_name(f"{Path(path).stem}.sites.gpkg")


def read_sites_file(path: Path, *, crs: str | None = None, workdir: Path, max_sites: int) -> gpd.GeoDataFrame:
    """A site file (any form ``geo.parcels`` reads, points allowed) as the registry's frame."""
    parcels = read_parcels(path, crs=crs, workdir=workdir, max_parcels=max_sites, allow_points=True)
    frame = parcels.attributes.reset_index(drop=True)
    names = {str(c).strip().lower(): c for c in frame.columns}
    id_col = next((names[c] for c in ID_COLUMNS if c in names), None)
    name_col = next((names[c] for c in NAME_COLUMNS if c in names), None)
    ids = frame[id_col].astype(str) if id_col is not None else pd.Series(np.arange(1, len(frame) + 1)).astype(str)
    if ids.duplicated().any():
        raise ValueError(f"site ids repeat ({', '.join(ids[ids.duplicated()].head(5))}); each site needs its own id")
    out = frame.drop(columns=[c for c in (id_col, name_col) if c is not None])
    out.insert(0, "site_id", ids.to_numpy())
    out.insert(1, "name", frame[name_col].astype(str).to_numpy() if name_col is not None else "")
    return gpd.GeoDataFrame(out, geometry=parcels.geoms, crs="EPSG:4326")


def save_sites(sites: gpd.GeoDataFrame, store: StoreBackend, audit: AuditEvent | None = None) -> None:
    """Replace the registry, and audit it, in one transaction of the store."""
    attributes = sites.drop(columns=[sites.geometry.name, "site_id", "name"])
    properties = (json.loads(attributes.to_json(orient="records", date_format="iso", force_ascii=False))
                  if len(attributes.columns) else [{} for _ in range(len(sites))])
    wkbs = shapely.to_wkb(sites.geometry.values, output_dimension=2)
    with store.work().writing() as tx:
        tx.execute("DELETE FROM sites")
        for i, (site_id, name, props, wkb) in enumerate(zip(sites["site_id"], sites["name"], properties, wkbs,
                                                            strict=True)):
            tx.execute("INSERT INTO sites (site_id, ordinal, name, properties, geom) VALUES (?, ?, ?, ?, ?)",
                       (str(site_id), i, str(name), json.dumps(props, ensure_ascii=False), wkb))
        if audit is not None:
            tx.audit(audit)


def load_sites(store: StoreBackend) -> gpd.GeoDataFrame:
    """The registry, empty when none was imported."""
    with store.work().reading() as tx:
        rows = [] if tx is None else tx.execute(
            "SELECT site_id, name, properties, geom FROM sites ORDER BY ordinal").fetchall()
    if not rows:
        legacy = legacy_sites_path(store)
        if legacy is not None and legacy.exists():
            return pyogrio.read_dataframe(legacy, layer=SITES_LAYER)
        return gpd.GeoDataFrame({"site_id": [], "name": []}, geometry=[], crs="EPSG:4326")
    frame = pd.DataFrame([{"site_id": r["site_id"], "name": r["name"], **json.loads(r["properties"])} for r in rows])
    return gpd.GeoDataFrame(frame, geometry=shapely.from_wkb([bytes(r["geom"]) for r in rows]), crs="EPSG:4326")


def covering_zones(index: ZoneIndex, geoms: np.ndarray, as_of: str | None) -> list[dict[int, float]]:
    """Per site: {zone index: overlap m² (0 for points)} of the zones in force on ``as_of``."""
    geoms = np.asarray(geoms, dtype=object)
    out: list[dict[int, float]] = [{} for _ in range(len(geoms))]
    points = np.flatnonzero(shapely.get_type_id(geoms) == 0)
    if points.size:
        hits = index.lookup_points(shapely.get_x(geoms[points]), shapely.get_y(geoms[points]), as_of=as_of)
        for p, z in zip(hits.point, hits.zone, strict=True):
            out[points[p]][int(z)] = 0.0
    polygons = np.flatnonzero(shapely.get_type_id(geoms) != 0)
    if polygons.size:
        found = parcel_overlaps(index, geoms[polygons], as_of=as_of)
        for p, z, a in zip(found.parcel, found.zone, found.overlap_m2, strict=True):
            if a > 0:
                out[polygons[p]][int(z)] = float(a)
    return out


def _rules_key(rules: Any) -> str:
    return json.dumps(rules if isinstance(rules, list) else [], ensure_ascii=False, sort_keys=True)


def impact(old: gpd.GeoDataFrame, new: gpd.GeoDataFrame, sites: gpd.GeoDataFrame, *, as_of: str | None,
           verdicts: VerdictFunction | None = None) -> gpd.GeoDataFrame:
    """One row per (site, zone, change) between the ``old`` and ``new`` zone tables."""
    geoms = np.asarray(sites.geometry.values, dtype=object)
    indexes = ZoneIndex(old), ZoneIndex(new)
    before, after = (covering_zones(ix, geoms, as_of) for ix in indexes)
    old_ids, new_ids = (ix.zones["zone_id"].to_numpy() for ix in indexes)
    old_rules = {zid: _rules_key(r) for zid, r in zip(old_ids, indexes[0].zones["rules"], strict=True)}
    rows = []
    for i in range(len(geoms)):
        was = {old_ids[z]: (z, a) for z, a in before[i].items()}
        now = {new_ids[z]: (z, a) for z, a in after[i].items()}
        for zone_id in sorted(was.keys() | now.keys()):
            if zone_id in now and zone_id not in was:
                change = "entered"
            elif zone_id in was and zone_id not in now:
                change = "left"
            elif old_rules[zone_id] != _rules_key(indexes[1].zones["rules"].iloc[now[zone_id][0]]):
                change = "rules_changed"
            else:
                continue
            table, (z, _) = (indexes[1].zones, now[zone_id]) if zone_id in now else (indexes[0].zones, was[zone_id])
            rows.append({"site": i, "change": change, "zone_id": zone_id, "zone_name_zh": table["name_zh"].iloc[z],
                         "layer": table["layer"].iloc[z],
                         "rules": ";".join(r.get("code", "") for r in table["rules"].iloc[z]),
                         "overlap_m2_from": round(was.get(zone_id, (0, 0.0))[1], 2),
                         "overlap_m2_to": round(now.get(zone_id, (0, 0.0))[1], 2)})
    if verdicts is not None:
        zones_before = [np.array(sorted(b), dtype=np.intp) for b in before]
        zones_after = [np.array(sorted(a), dtype=np.intp) for a in after]
        old_v, new_v = verdicts("from", geoms, zones_before), verdicts("to", geoms, zones_after)
        for activity, values in new_v.items():
            for i, (a, b) in enumerate(zip(old_v.get(activity, [None] * len(geoms)), values, strict=True)):
                if a != b:
                    rows.append({"site": i, "change": "verdict_changed", "zone_id": None, "zone_name_zh": None,
                                 "layer": None, "rules": f"{activity}: {a} → {b}", "overlap_m2_from": None,
                                 "overlap_m2_to": None})
    frame = pd.DataFrame(rows, columns=["site", "change", "zone_id", "zone_name_zh", "layer", "rules",
                                        "overlap_m2_from", "overlap_m2_to"])
    site_rows = sites.iloc[frame["site"].to_numpy(dtype=int)].reset_index(drop=True)
    out = pd.concat([site_rows[["site_id", "name"]], frame.drop(columns="site")], axis=1)
    return gpd.GeoDataFrame(out, geometry=site_rows.geometry.values, crs="EPSG:4326")


def summary(changes: gpd.GeoDataFrame, sites: gpd.GeoDataFrame, *, version_from: int, version_to: int,
            data_versions: Iterable[str], as_of: str | None, examples: int = 20) -> dict[str, Any]:
    """Counts by change and layer, and the first rows, for the HTML/PDF summary and the webhook."""
    data_from, data_to = data_versions
    by_layer: dict[str, dict[str, int]] = {}
    for (change, layer), n in Counter(zip(changes["change"], changes["layer"].fillna(""), strict=True)).items():
        by_layer.setdefault(change, {})[layer] = n
    return {
        "from": version_from, "to": version_to, "data_version_from": data_from, "data_version_to": data_to,
        "as_of": as_of, "sites": len(sites), "sites_affected": int(changes["site_id"].nunique()),
        "changes": {c: int((changes["change"] == c).sum()) for c in CHANGES}, "by_layer": by_layer,
        "examples": changes.drop(columns="geometry").head(examples).astype(object)
                           .where(changes.drop(columns="geometry").head(examples).notna(), None).to_dict("records"),
    }


def write_changes(changes: gpd.GeoDataFrame, fmt: str, out: Path) -> None:
    """The change rows as csv or gpkg (site geometry, WGS84), atomically."""
    with atomic_path(out) as tmp:
        if fmt == "gpkg":
            pyogrio.write_dataframe(changes, tmp, layer="impact", driver="GPKG")
        else:
            frame = pd.DataFrame(changes.drop(columns="geometry"))
            frame.to_csv(tmp, index=False, encoding="utf-8")
