"""Checks of the imported geometries and zones: geometry type and validity (optional repair),
extent against the district, problems grouped by feature, the scope an import replaces."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import crs as gcrs
from geo import schema
from geo.importer.options import MAPPABLE

# Imported area outside the expected district beyond this tolerance is flagged.
DISTRICT_TOLERANCE_M = 1000.0
DISTRICT_OUTSIDE_WARN = 0.05


# ---------------------------------------------------------------- geometry


def _label(fid: Any, name: Any) -> str:
    return f"FID {fid}" + (f" «{name}»" if isinstance(name, str) and name else "")


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """The polygon parts of ``geom`` (make_valid may add lines or points)."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    polys = [q for p in parts for q in shapely.get_parts(p)]
    if not polys:
        return shapely.Polygon()
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def _location_lonlat(reason: str, crs: str) -> str:
    """' at lon, lat' for the [x y] location in a GEOS validity reason."""
    m = re.search(r"\[\s*([-+0-9.eE]+)\s+([-+0-9.eE]+)", reason)
    if not m:
        return ""
    try:
        lon, lat = gcrs.to_wgs84(float(m.group(1)), float(m.group(2)), crs)
    except ValueError:
        return ""
    return f" (lon {float(lon):.6f}, lat {float(lat):.6f})"


def clean_geometries(frame: gpd.GeoDataFrame, crs: str, layer: str, names: pd.Series,
                     repair: bool) -> tuple[np.ndarray, list[str], list[str], dict[Any, shapely.Geometry]]:
    """(geometries in the source CRS, problems, warnings, originals of repaired features)."""
    geoms = np.asarray(frame.geometry.values, dtype=object).copy()
    problems: list[str] = []
    notes: list[str] = []
    repaired: dict[Any, shapely.Geometry] = {}
    has_z = shapely.has_z(geoms) & ~shapely.is_missing(geoms)
    if has_z.any():
        notes.append(f"{int(has_z.sum())} feature(s) have Z (height) values: dropped, zones are 2D")
        geoms = shapely.force_2d(geoms)
    allowed = ("Point", "MultiPoint") if layer in schema.POINT_LAYERS else ("Polygon", "MultiPolygon")
    for i, (fid, geom) in enumerate(zip(frame.index, geoms, strict=True)):
        where = _label(fid, names.iloc[i])
        if geom is None or geom.is_empty:
            problems.append(f"{where}: has no geometry")
            continue
        if geom.geom_type not in allowed:
            problems.append(f"{where}: is a {geom.geom_type}; layer {layer!r} needs {' or '.join(allowed)}")
            continue
        if geom.is_valid:
            continue
        reason = shapely.is_valid_reason(geom)
        if not repair:
            problems.append(f"{where}: invalid geometry — {reason}{_location_lonlat(reason, crs)}; "
                            "fix it in GIS or import with --repair (几何无效)")
            continue
        fixed = _polygonal(shapely.make_valid(geom)) if allowed[0] == "Polygon" else shapely.make_valid(geom)
        if fixed.is_empty:
            problems.append(f"{where}: invalid geometry — {reason}; make_valid leaves no polygon")
            continue
        repaired[fid] = geom
        geoms[i] = fixed
    return geoms, problems, notes, repaired


# ---------------------------------------------------------------- checks


def check_districts(zones: gpd.GeoDataFrame, districts: gpd.GeoDataFrame | None,
                    missing_reason: str | None) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Share of each district's imported area outside that district: (rows, warnings, problems)."""
    if districts is None:
        return [], [f"{missing_reason}; the district extent of the data was not checked"], []
    rows, notes, problems = [], [], []
    for code, group in zones.groupby("district_code"):
        match = districts[districts["adcode"] == str(code)]
        if match.empty:
            notes.append(f"district {code} is not in the district boundaries; extent not checked")
            continue
        name = match["name_zh"].iloc[0]
        area = gcrs.to_metric(shapely.union_all(group.geometry.values))
        bound = gcrs.to_metric(shapely.union_all(match.geometry.values)).buffer(DISTRICT_TOLERANCE_M)
        if area.area > 0:
            outside = shapely.difference(area, bound).area / area.area
        else:  # points: share of points outside
            pts = shapely.get_parts(area)
            outside = float(np.mean(~shapely.contains(bound, pts))) if len(pts) else 0.0
        rows.append({"district_code": str(code), "district_name": name, "outside_share": round(outside, 4)})
        where = (f"outside {name} ({code}) (+{DISTRICT_TOLERANCE_M:.0f} m tolerance) — check --district "
                 "and the CRS (数据超出区界)")
        if outside > 0.999:  # nothing inside: the wrong district or the wrong CRS, never right
            problems.append(f"all imported data lies {where}")
        elif outside > DISTRICT_OUTSIDE_WARN:
            notes.append(f"{outside:.0%} of the imported data lies {where}")
    return rows, notes, problems


def _by_feature(problems: list[str], labels: Mapping[str, str], located: set[str]) -> list[str]:
    """Schema problems ('zone <id>: <message>') named by feature, one line per message.

    Geometry problems of features in ``located`` are dropped: they were reported already,
    with their location.
    """
    grouped: dict[str, list[str]] = {}
    out = []
    for p in problems:
        m = re.match(r"zone (\S+): (.*)", p)
        if not m or m.group(1) not in labels:
            out.append(p)
        elif not (m.group(2).startswith("geometry") and labels[m.group(1)] in located):
            grouped.setdefault(m.group(2), []).append(labels[m.group(1)])
    for message, where in grouped.items():
        field = message.split(" ", 1)[0]
        hint = ""
        if field == "district_code" and " is required" in message:
            hint = "; pass --district ADCODE or --map district_code=COLUMN"
        elif " is required" in message and field in MAPPABLE:
            hint = f"; map a column (--map {field}=COLUMN) or give one value (--set {field}=VALUE)"
        shown = ", ".join(where[:5]) + (f" and {len(where) - 5} more" if len(where) > 5 else "")
        out.append(f"{shown}: {message}{hint}")
    return out


def replace_scope(current: gpd.GeoDataFrame, layer: str, district: str | None) -> pd.Series:
    """The zones an import of ``layer`` (and ``district``) replaces."""
    mask = current["layer"] == layer
    if district:
        mask &= current["district_code"] == district
    return mask


