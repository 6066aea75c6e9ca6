"""The zone table: its columns, the layer registry and validation.

One table holds every zone of every district. A zone row is legal metadata plus a
geometry in EPSG:4326 (lon/lat, WGS84 = CGCS2000 to well under a metre). The table is
a GeoDataFrame in memory, a GeoPackage layer in the store and a GeoJSON
FeatureCollection on disk (``data/boundaries/zones.geojson``) and over HTTP.

Dates are ISO ``YYYY-MM-DD`` strings: they sort lexicographically, survive every file
format unchanged and compare directly with an ``as_of`` date string.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

if TYPE_CHECKING:
    import geopandas as gpd

# geopandas and pandas are imported by the functions that build frames, not here: the first
# /v1/check after a start answers from the saved lookup table without them (``geo.catalog``).

CRS = "EPSG:4326"


@dataclass(frozen=True)
class Layer:
    id: str
    title_zh: str
    title_en: str
    color: str
    description_zh: str
    description_en: str


# The layer registry. A recipe may only use a layer listed here; the map and the OGC API
# take titles and colours from it, so adding a layer is one entry.
LAYERS: dict[str, Layer] = {
    layer.id: layer
    for layer in [
        Layer("livestock_ban", "畜禽养殖禁养区", "Livestock farming ban zones", "#d7301f",
              "禁止规模化畜禽养殖的区域", "Areas where scale livestock and poultry farming is prohibited"),
        Layer("water_source", "饮用水水源保护区", "Drinking-water source protection zones", "#2171b5",
              "集中式饮用水水源保护区及其分级", "Drinking-water source protection zones and their grades"),
        Layer("nature_reserve", "自然保护地", "Nature reserves and protected areas", "#238b45",
              "自然保护区核心区、缓冲区等", "Nature reserve core and buffer zones and other protected areas"),
        # Magenta, not red: the ban zones are red, and the two often overlap.
        Layer("eco_redline", "生态保护红线", "Ecological protection red line", "#c51b7d",
              "生态保护红线：面积不减少、功能不降低、性质不改变",
              "Ecological red line: area not reduced, function not degraded, nature not changed"),
        Layer("river_management", "河道管理范围", "River management ranges", "#41b6c4",
              "河道管理范围及河道整治工程范围内的禁止行为",
              "River management ranges and river works areas with their prohibitions"),
        Layer("collaboration", "协作区", "Collaboration zones", "#807dba",
              "跨区域、跨镇街协作区域", "Cross-boundary and inter-town collaboration zones"),
        Layer("development_area", "功能区与发展区", "Development and functional areas", "#fd8d3c",
              "规划确定的功能区、发展区和建成区", "Planned functional, development and built-up areas"),
        Layer("monitoring_section", "水质监测断面", "Water-quality monitoring sections", "#08519c",
              "跨界水质考核断面（点）", "Cross-boundary water-quality assessment sections (points)"),
        Layer("admin", "行政区划", "Administrative units", "#737373",
              "区、镇街等行政区划（参考底图）", "Districts, towns and streets (reference base layer)"),
    ]
}

# From most to least exact. `traced` (issue 14) is drawn on the official map sheet itself.
ACCURACY = ("official", "traced", "approximate", "schematic", "indicative")
ACCURACY_TEXT = {
    "official": ("官方边界", "official boundary"),
    "traced": ("描绘边界：依官方附图配准描绘，误差约为配准中误差加线宽",
               "traced from the official map sheet; error ≈ georeferencing RMS + line width"),
    "approximate": ("近似边界：依文本规则构建，非法定边界", "approximate: built from the text's rules, not the legal line"),
    "schematic": ("示意边界：仅示意位置和范围", "schematic: shows location and extent only"),
    "indicative": ("指示性范围：依文本组成推断，误差可能很大",
                   "indicative: inferred from the text's components, may be far off"),
}

# Column order is the order of every export and of the GeoJSON properties.
ZONE_COLUMNS: tuple[str, ...] = (
    "zone_id", "parent_id", "layer", "kind", "name_zh", "name_en",
    "district_code", "district_name",
    "source_doc_no", "source_title", "source_article", "issuer",
    "issued_on", "effective_from", "effective_to",
    "stated_area_km2", "area_km2", "rules", "accuracy", "method", "notes",
)
REQUIRED = ("zone_id", "layer", "kind", "name_zh", "name_en", "district_code", "district_name",
            "effective_from", "accuracy", "method")
# Non-admin zones exist because a document says so: they must cite it.
REQUIRED_UNLESS_ADMIN = ("source_doc_no", "source_title", "issuer", "issued_on")
DATE_COLUMNS = ("issued_on", "effective_from", "effective_to")
FLOAT_COLUMNS = ("stated_area_km2", "area_km2")
TEXT_COLUMNS = tuple(c for c in ZONE_COLUMNS if c not in DATE_COLUMNS + FLOAT_COLUMNS + ("rules",))

# What a rule does to an activity it governs (a rule's optional ``activities`` list).
RULE_EFFECTS = ("prohibited", "restricted", "required", "permitted")
ZONE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,79}$")
ADCODE_RE = re.compile(r"^\d{6}$")
POINT_LAYERS = frozenset({"monitoring_section"})


class ZoneValidationError(ValueError):
    """The zone table breaks the schema. ``problems`` lists every problem found."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = "; ".join(problems[:20])
        more = f" (+{len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} zone validation problem(s): {shown}{more}")


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def _check_date(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"must be a YYYY-MM-DD string, got {value!r}"
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return f"must be a YYYY-MM-DD date, got {value!r}"
    if len(value) != 10:
        return f"must be a YYYY-MM-DD date, got {value!r}"
    return None


def _check_rules(rules: Any) -> str | None:
    if not isinstance(rules, list):
        return f"must be a list of {{code, text_zh, text_en}}, got {type(rules).__name__}"
    for i, rule in enumerate(rules):
        if not isinstance(rule, Mapping):
            return f"item {i} must be an object, got {type(rule).__name__}"
        for key in ("code", "text_zh", "text_en"):
            if _is_missing(rule.get(key)):
                return f"item {i} lacks {key!r}"
        # Optional: the activities the rule governs (geo.activities), {activity, effect, ...} each.
        activities = rule.get("activities", [])
        if not isinstance(activities, list) or not all(
                isinstance(a, Mapping) and isinstance(a.get("activity"), str) and a.get("effect") in RULE_EFFECTS
                for a in activities):
            return f"item {i}: activities must be a list of {{activity, effect}} with effect one of {RULE_EFFECTS}"
    return None


def _check_geometry(geom: Any, layer: str) -> str | None:
    if geom is None or not isinstance(geom, BaseGeometry):
        return "is missing"
    if geom.is_empty:
        return "is empty"
    allowed = ("Point", "MultiPoint") if layer in POINT_LAYERS else ("Polygon", "MultiPolygon")
    if geom.geom_type not in allowed:
        return f"must be {' or '.join(allowed)} for layer {layer!r}, got {geom.geom_type}"
    if not geom.is_valid:
        return f"is invalid: {shapely.is_valid_reason(geom)}"
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        return f"has coordinates outside lon/lat range (bounds {geom.bounds}); is it projected?"
    return None


def validate_zones(zones: gpd.GeoDataFrame) -> None:
    """Raise ZoneValidationError listing every problem, each naming the zone and field."""
    import geopandas as gpd

    problems: list[str] = []
    if not isinstance(zones, gpd.GeoDataFrame):
        raise ZoneValidationError([f"expected a GeoDataFrame, got {type(zones).__name__}"])
    columns = [c for c in zones.columns if c != zones.geometry.name]
    missing = [c for c in ZONE_COLUMNS if c not in columns]
    unknown = [c for c in columns if c not in ZONE_COLUMNS]
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column(s): {', '.join(unknown)}")
    if zones.crs is None or not zones.crs.equals(CRS):
        problems.append(f"CRS must be {CRS} (lon/lat), got {zones.crs.to_string() if zones.crs else 'none'}")
    if problems:
        raise ZoneValidationError(problems)

    ids = zones["zone_id"].tolist()
    counts = Counter(i for i in ids if isinstance(i, str))  # one pass: ids.count per id is O(n²)
    dupes = sorted(i for i, c in counts.items() if c > 1)
    if dupes:
        problems.append(f"duplicate zone_id(s): {', '.join(dupes)}")
    known_ids = set(ids)

    geometry_column = zones.geometry.name  # looked up once: per row it costs more than the checks
    for row in zones.itertuples(index=False):
        rec = row._asdict()
        zid = rec["zone_id"] if isinstance(rec["zone_id"], str) else f"#{ids.index(rec['zone_id'])}"

        def bad(field: str, message: str, zid: str = zid) -> None:
            problems.append(f"zone {zid}: {field} {message}")

        for field in REQUIRED:
            if _is_missing(rec[field]):
                bad(field, "is required")
        if isinstance(rec["zone_id"], str) and not ZONE_ID_RE.match(rec["zone_id"]):
            bad("zone_id", "must be a lowercase slug of a-z, 0-9 and '-' (2-80 chars)")
        layer = rec["layer"]
        if not _is_missing(layer) and layer not in LAYERS:
            bad("layer", f"{layer!r} is unknown; known layers: {', '.join(LAYERS)}")
        if layer != "admin":
            for field in REQUIRED_UNLESS_ADMIN:
                if _is_missing(rec[field]):
                    bad(field, "is required (every non-admin zone cites its document)")
        if not _is_missing(rec["accuracy"]) and rec["accuracy"] not in ACCURACY:
            bad("accuracy", f"{rec['accuracy']!r} is not one of {', '.join(ACCURACY)}")
        if not _is_missing(rec["district_code"]) and not ADCODE_RE.match(str(rec["district_code"])):
            bad("district_code", f"must be a 6-digit adcode, got {rec['district_code']!r}")
        parent = rec["parent_id"]
        if not _is_missing(parent) and parent not in known_ids:
            bad("parent_id", f"{parent!r} is not a zone in this table")
        for field in DATE_COLUMNS:
            if not _is_missing(rec[field]):
                err = _check_date(rec[field])
                if err:
                    bad(field, err)
        start, end = rec["effective_from"], rec["effective_to"]
        if isinstance(start, str) and isinstance(end, str) and end <= start:
            bad("effective_to", f"{end} is not after effective_from {start}")
        for field in FLOAT_COLUMNS:
            value = rec[field]
            if _is_missing(value):
                continue
            if not isinstance(value, int | float | np.number) or not np.isfinite(value) or value < 0:
                bad(field, f"must be a non-negative number, got {value!r}")
        for field in TEXT_COLUMNS:
            if not _is_missing(rec[field]) and not isinstance(rec[field], str):
                bad(field, f"must be text, got {type(rec[field]).__name__}")
        err = _check_rules(rec["rules"])
        if err:
            bad("rules", err)
        geom = rec[geometry_column]
        err = _check_geometry(geom, layer if isinstance(layer, str) else "")
        if err:
            bad("geometry", err)
    if problems:
        raise ZoneValidationError(problems)


def _none_if_missing(value: Any) -> Any:
    return None if _is_missing(value) else value


def normalize_zones(zones: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Column order, None for missing values, float areas, RFC 7946 ring orientation."""
    import pandas as pd

    out = zones.copy()
    for col in ZONE_COLUMNS:
        if col not in out.columns:
            out[col] = None
    out = out[list(ZONE_COLUMNS) + [out.geometry.name]]
    if out.geometry.name != "geometry":
        out = out.rename_geometry("geometry")
    for col in ZONE_COLUMNS:
        if col in FLOAT_COLUMNS:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
        elif col == "rules":
            out[col] = [list(r) if isinstance(r, list | tuple) else r for r in out[col]]
        else:
            out[col] = pd.Series([_none_if_missing(v) for v in out[col]], index=out.index, dtype=object)
    # RFC 7946: exterior rings counter-clockwise, holes clockwise.
    out["geometry"] = shapely.orient_polygons(out.geometry.values, exterior_cw=False)
    return out.reset_index(drop=True)


def empty_zones() -> gpd.GeoDataFrame:
    import geopandas as gpd
    import pandas as pd

    frame = gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in ZONE_COLUMNS}, geometry=[], crs=CRS)
    return normalize_zones(frame)


def zones_from_records(records: Iterable[Mapping[str, Any]]) -> gpd.GeoDataFrame:
    """Build the zone frame from mappings with the schema's keys and a shapely ``geometry``."""
    import geopandas as gpd

    records = list(records)
    if not records:
        return empty_zones()
    frame = gpd.GeoDataFrame(
        [{k: v for k, v in r.items() if k != "geometry"} for r in records],
        geometry=[r.get("geometry") for r in records],
        crs=CRS,
    )
    return normalize_zones(frame)


def zones_from_geojson(data: Mapping[str, Any] | str) -> gpd.GeoDataFrame:
    """Parse a FeatureCollection (dict or JSON text) whose properties are the zone columns."""
    if isinstance(data, str):
        data = json.loads(data)
    if data.get("type") != "FeatureCollection":
        raise ZoneValidationError(["expected a GeoJSON FeatureCollection"])
    records = []
    for i, feature in enumerate(data.get("features", [])):
        props = dict(feature.get("properties") or {})
        try:
            geom = shapely.geometry.shape(feature["geometry"]) if feature.get("geometry") else None
        except (KeyError, TypeError, ValueError, shapely.errors.GEOSException) as exc:
            raise ZoneValidationError([f"feature {i}: geometry is malformed: {exc}"]) from exc
        records.append({**props, "geometry": geom})
    return zones_from_records(records)


def zone_properties(row: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-ready properties of one zone (NaN -> None, areas rounded for display)."""
    props: dict[str, Any] = {}
    for col in ZONE_COLUMNS:
        value = row.get(col)
        if isinstance(value, float | np.floating):
            value = None if np.isnan(value) else float(value)
        props[col] = value
    return props


def zones_to_geojson(zones: gpd.GeoDataFrame, precision: int = 7) -> dict[str, Any]:
    """FeatureCollection with the schema's column order; coordinates rounded to ``precision``."""
    features = []
    geoms = shapely.set_precision(zones.geometry.values, 10.0 ** -precision) if precision else zones.geometry.values
    geoms = shapely.orient_polygons(geoms, exterior_cw=False)
    for row, geom in zip(zones.to_dict("records"), geoms, strict=True):
        features.append({
            "type": "Feature",
            "id": row["zone_id"],
            "properties": zone_properties(row),
            "geometry": shapely.geometry.mapping(geom) if geom is not None else None,
        })
    return {"type": "FeatureCollection", "features": features}
