"""The worklist: every polygon zone the texts define that is not drawn from an official
source yet, per district, with what the texts say about it.

A zone is *to do* when the recipes mark it not digitised and the store does not hold it,
*to improve* when the store holds it drawn from text (approximate, schematic,
indicative), and *done* when the store holds it official or traced. Point layers
(monitoring sections) are not traced from sheets, and district outlines (the base layer)
are not zones: both are left out.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import geopandas as gpd

from geo.build import entry_metadata
from geo.paths import RECIPES_DIR
from geo.recipes import ZoneEntry, load_recipes
from geo.schema import POINT_LAYERS, ZONE_COLUMNS, zone_properties

DONE = frozenset({"official", "traced"})
IMPROVABLE = frozenset({"approximate", "schematic", "indicative"})


@functools.lru_cache(maxsize=4)
def _recipe_entries(recipes_dir: str, _mtime: float) -> dict[str, ZoneEntry]:
    return {z.id: z for recipe in load_recipes(Path(recipes_dir)) for z in recipe.zones}


def recipe_entries(recipes_dir=RECIPES_DIR) -> dict[str, ZoneEntry]:
    """Recipe zones by id (parsed once per change of the recipe folder)."""
    mtime = max((p.stat().st_mtime for p in recipes_dir.glob("*.yaml")), default=0.0)
    return _recipe_entries(str(recipes_dir), mtime)


def zone_target(zone_id: str, zones: gpd.GeoDataFrame) -> dict[str, Any] | None:
    """The metadata a draft of ``zone_id`` takes: from its recipe if it has one (what the
    texts say), else from the served zone (an imported one). None if the zone is unknown."""
    entry = recipe_entries().get(zone_id)
    if entry is not None:
        meta = entry_metadata(entry)
        meta["boundary_text"] = (entry.geometry_spec.get("reason") if not entry.digitised
                                 else entry.data.get("method_note"))
        return meta
    served = zones[zones["zone_id"] == zone_id]
    if served.empty:
        return None
    row = zone_properties(served.iloc[0].to_dict())
    meta = {k: row[k] for k in ZONE_COLUMNS if k not in ("area_km2", "accuracy", "method")}
    meta["boundary_text"] = row["method"]
    return meta


def worklist(zones: gpd.GeoDataFrame, pending: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """Districts with their items and progress. ``pending``: zone id -> number of drafts
    awaiting review."""
    pending = pending or {}
    served = {r["zone_id"]: r for r in zones.drop(columns=zones.geometry.name).to_dict("records")}
    districts: dict[str, dict[str, Any]] = {}
    for zid, entry in sorted(recipe_entries().items()):
        data = entry.data
        if data["layer"] in POINT_LAYERS or data["layer"] == "admin":
            continue
        meta = entry_metadata(entry)
        zone = served.get(zid)
        if zone is None and entry.digitised:
            continue  # built from a parent or left out of this store: nothing to trace
        accuracy = zone["accuracy"] if zone is not None else None
        status = "todo" if zone is None else "done" if accuracy in DONE else "improve"
        item = {key: meta[key] for key in ("zone_id", "layer", "name_zh", "name_en", "source_doc_no",
                                           "source_article", "issuer", "stated_area_km2")}
        item.update(status=status, accuracy=accuracy, pending_drafts=pending.get(zid, 0),
                    area_km2=None if zone is None else zone["area_km2"],
                    boundary_text=data["geometry"].get("reason") if not entry.digitised else zone["method"],
                    rules=[r["text_zh"] for r in meta["rules"]])
        district = districts.setdefault(meta["district_code"], {
            "district_code": meta["district_code"], "district_name": meta["district_name"], "items": []})
        district["items"].append(item)
    for district in districts.values():
        items = district["items"]
        district["progress"] = {"done": sum(i["status"] == "done" for i in items), "total": len(items),
                                "todo": sum(i["status"] == "todo" for i in items),
                                "improve": sum(i["status"] == "improve" for i in items)}
    return sorted(districts.values(), key=lambda d: d["district_code"])
