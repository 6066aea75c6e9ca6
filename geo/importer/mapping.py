"""From source columns to zone fields: ``--map``/``--set``, common Chinese column names, dates,
units, ids, districts; builds the imported zones."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import schema
from geo.base import DISTRICTS_PATH, district_layer
from geo.importer.checks import _label
from geo.importer.options import (
    _DEFAULT_ACCURACY,
    AREA_UNITS,
    FIELD_ALIASES,
    MAPPABLE,
    ImportOptions,
    SourceError,
)

# ---------------------------------------------------------------- field mapping


def _iso_date(value: Any) -> str:
    """A YYYY-MM-DD string from a date, a timestamp or common Chinese spellings."""
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date | np.datetime64):
        return pd.Timestamp(value).date().isoformat()
    text = str(value).strip()
    m = re.fullmatch(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T].*)?", text) \
        or re.fullmatch(r"(\d{4})(\d{2})(\d{2})", text)
    if not m:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD, YYYY/M/D or YYYY年M月D日)")
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
    except ValueError:
        raise ValueError(f"{value!r} is not a real date") from None


def _text(value: Any) -> str | None:
    if schema._is_missing(value) or value is pd.NaT:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip() or None


def _slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", text.lower())).strip("-")


def _name_slug(name: str | None, index: int) -> str:
    """The id part for a zone name: the slug of an ASCII name, else a hash of the whole name
    (stable across re-imports, unlike a row number), else the row number."""
    if not name:
        return f"f{index + 1:03d}"
    slug = _slug(name) if name.isascii() else ""
    return slug or hashlib.sha1(name.encode()).hexdigest()[:8]


def _resolve_fields(frame: gpd.GeoDataFrame, options: ImportOptions) -> tuple[dict[str, str], dict[str, str]]:
    """(schema column -> source column, schema column -> description for the preview)."""
    columns = [c for c in frame.columns if c != frame.geometry.name]
    source_of: dict[str, str] = {}
    for key, column in options.mapping.items():
        col, _ = _split_unit(key, column)
        if col not in columns:
            raise SourceError(f"--map {key}={column}: the file has no column {col!r}; its columns: "
                              f"{', '.join(columns) or 'none'}")
        source_of[key] = col
    described = {k: f"column {v}" for k, v in options.mapping.items()}
    for key, aliases in {**{c: (c,) for c in MAPPABLE}, **FIELD_ALIASES}.items():
        if key in source_of or key in options.values:
            continue
        hit = next((a for a in aliases if a in columns), None)
        if key in FIELD_ALIASES and hit is None:
            hit = key if key in columns else None
        if hit is not None:
            source_of[key] = hit
            described[key] = f"column {hit} (auto)"
    for key, value in options.values.items():
        described[key] = f"value {value!r} (--set)"
    return source_of, described


def _split_unit(key: str, column: str) -> tuple[str, float]:
    if key == "stated_area_km2" and ":" in column:
        col, unit = column.rsplit(":", 1)
        if unit.lower() in AREA_UNITS:
            return col, AREA_UNITS[unit.lower()]
    return column, 1.0


def _district_table(current: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame | None, dict[str, str], str | None]:
    """(district polygons or None, adcode -> Chinese name, why the polygons are missing).

    Names also come from the zones already served, so a district stays nameable without
    the base layer.
    """
    names = {c: n for c, n in zip(current["district_code"], current["district_name"], strict=True)
             if isinstance(c, str) and isinstance(n, str)}
    frame = district_layer()
    if frame is None:
        return None, names, f"the district base layer ({DISTRICTS_PATH.name}) is not available"
    names.update(zip(frame["adcode"].astype(str), frame["name_zh"].astype(str), strict=True))
    return frame, names, None


def district_code(district: str, names: Mapping[str, str]) -> str:
    """The adcode of ``district``: an adcode (110109) or a Chinese name (门头沟区 / 门头沟)."""
    wanted = district.strip()
    if schema.ADCODE_RE.match(wanted):
        return wanted
    codes = sorted(c for c, n in names.items() if wanted in (n, n.removesuffix("区")))
    if len(codes) != 1:
        raise SourceError(f"--district {district!r} is not a known district name; pass its 6-digit adcode, "
                          "e.g. 110109 (门头沟区)")
    return codes[0]


def build_zones(frame: gpd.GeoDataFrame, geoms: np.ndarray, options: ImportOptions, *,
                source_name: str, format_label: str, crs_label: str, district_names: Mapping[str, str],
                repaired: Mapping[Any, shapely.Geometry], rules: list[dict[str, str]],
                ) -> tuple[gpd.GeoDataFrame, dict[str, str], list[str]]:
    """The imported zones (WGS84 geometry still to come), the field descriptions, problems."""
    source_of, described = _resolve_fields(frame, options)
    layer = options.layer
    problems: list[str] = []
    accuracy = options.values.get("accuracy") or options.accuracy or _DEFAULT_ACCURACY
    defaults = {
        "kind": layer, "accuracy": accuracy,
        "method": f"imported from {source_name} ({format_label}, {crs_label})",
    }
    if options.accuracy is None and "accuracy" not in source_of and "accuracy" not in options.values:
        described["accuracy"] = (f"default {_DEFAULT_ACCURACY!r} — pass --accuracy official if this file "
                                 "is the legal boundary (默认按近似边界导入)")
    elif options.accuracy:
        described["accuracy"] = f"value {options.accuracy!r} (--accuracy)"
    if options.district:
        described["district_code"] = f"value {options.district!r} (--district)"
    described.setdefault("kind", f"default {layer!r} (the layer)")
    described.setdefault("method", f"default {defaults['method']!r}")
    described.setdefault("effective_from", "default: issued_on")
    described.setdefault("name_en", "default: the layer's English title and name_zh")
    described.setdefault("zone_id", "generated: layer-district-slug of name (or FID)")
    if options.rules_from:
        described["rules"] = f"{len(rules)} rule(s) of zone {options.rules_from} (--rules-from)"
    described.setdefault("rules", "none (imported zones carry no rule texts)")

    records: list[dict[str, Any]] = []
    used_ids: dict[str, int] = {}
    for i, (fid, row) in enumerate(frame.iterrows()):
        rec: dict[str, Any] = {"layer": layer}
        name_guess = row.get(source_of["name_zh"]) if "name_zh" in source_of else None
        where = _label(fid, _text(name_guess))
        for key in MAPPABLE:
            if key in options.values:
                raw = options.values[key]
            elif key in source_of:
                raw = row[source_of[key]]
            else:
                continue
            try:
                rec[key] = _convert(key, raw, options.mapping.get(key, ""))
            except ValueError as exc:
                col = source_of.get(key)
                problems.append(f"{where}: {key}{f' (column {col})' if col else ''} {exc}")
        for key, value in defaults.items():
            rec.setdefault(key, value)
        if options.accuracy:
            rec["accuracy"] = options.accuracy
        if fid in repaired:
            rec["method"] = f"{rec['method']}; ring repaired with make_valid (几何已修复)"
        if options.district:
            if rec.get("district_code") not in (None, options.district):
                problems.append(f"{where}: district_code {rec['district_code']} differs from --district "
                                f"{options.district}")
            rec["district_code"] = options.district
        code = rec.get("district_code")
        if code and not rec.get("district_name"):
            rec["district_name"] = district_names.get(code)
        rec.setdefault("effective_from", rec.get("issued_on"))
        if rec.get("name_zh") and not rec.get("name_en"):
            rec["name_en"] = f"{schema.LAYERS[layer].title_en}: {rec['name_zh']}"
        if not rec.get("zone_id"):
            rec["zone_id"] = "-".join(p for p in (layer.replace("_", "-"), code, _name_slug(rec.get("name_zh"), i)) if p)
        rec["zone_id"] = _slug(rec["zone_id"])
        n = used_ids.get(rec["zone_id"], 0) + 1
        used_ids[rec["zone_id"]] = n
        if n > 1:
            rec["zone_id"] = f"{rec['zone_id']}-{n}"
        rec.setdefault("rules", list(rules))
        rec["geometry"] = geoms[i]
        rec["_fid"] = fid
        records.append(rec)
    unnamed = sorted({r["district_code"] for r in records if r.get("district_code") and not r.get("district_name")})
    if unnamed:
        problems.append(f"district name unknown for {', '.join(unnamed)}: --set district_name=… "
                        "(data/boundaries/base/districts.geojson names districts when present)")
    fids = [r.pop("_fid") for r in records]
    zones = gpd.GeoDataFrame(
        [{k: v for k, v in r.items() if k != "geometry"} for r in records],
        geometry=[r["geometry"] for r in records],
    )
    zones.index = pd.Index(fids, name="fid")
    return zones, described, problems


def _convert(key: str, value: Any, mapped: str) -> Any:
    if key in schema.DATE_COLUMNS:
        return None if _text(value) is None else _iso_date(value)
    if key in schema.FLOAT_COLUMNS:
        if _text(value) is None:
            return None
        _, factor = _split_unit(key, mapped)
        try:
            return float(str(value).replace(",", "")) * factor
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
    if key == "rules":
        rules = json.loads(value) if isinstance(value, str) else value
        if not isinstance(rules, list):
            raise ValueError("must be a JSON list of {code, text_zh, text_en}")
        return rules
    return _text(value)


