"""District outlines and names drawn under the zones as base context (reference, not official).

The blank default basemap shows nothing else, so these are what orient a reader offline.
Shared borders are drawn once: the districts are simplified as a coverage, then their
boundaries merged into lines, which halves the bytes compared with one outline each.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geo.base import DISTRICTS_PATH, district_layer
from maps.simplify import BASE_TOLERANCE_M, DISPLAY_DECIMALS, display_geometry

BEIJING_PREFIX = "11"  # Beijing adcodes; neighbouring counties in the file are left out

log = logging.getLogger("zoning.maps")


@dataclass(frozen=True)
class DistrictLabel:
    name_zh: str
    name_en: str
    lon: float
    lat: float


@dataclass(frozen=True)
class DistrictContext:
    lines: BaseGeometry              # every district border once, WGS84
    labels: tuple[DistrictLabel, ...]


def district_context_from(frame: gpd.GeoDataFrame, tolerance_m: float = BASE_TOLERANCE_M) -> DistrictContext:
    simplified = display_geometry(frame, tolerance_m, group_by=None)
    geoms = np.asarray(simplified.geometry.values)
    lines = shapely.line_merge(shapely.union_all(shapely.boundary(geoms)))
    lines = shapely.set_precision(lines, 10.0 ** -DISPLAY_DECIMALS)
    # Labels at a point inside each district of the full-precision polygon.
    points = shapely.point_on_surface(np.asarray(frame.geometry.values))
    labels = tuple(DistrictLabel(str(zh), str(en), round(p.x, 5), round(p.y, 5))
                   for zh, en, p in zip(frame["name_zh"], frame["name_en"], points, strict=True))
    return DistrictContext(lines, labels)


@functools.lru_cache(maxsize=4)
def _load(path: Path, mtime_ns: int) -> DistrictContext:
    frame = district_layer(path)
    keep = frame["adcode"].astype(str).str.startswith(BEIJING_PREFIX) & (frame["level"] == "district")
    return district_context_from(frame[keep].to_crs("EPSG:4326").reset_index(drop=True))


def district_context(path: Path = DISTRICTS_PATH) -> DistrictContext | None:
    """Beijing's district borders and names for display, or None when the base layer is absent."""
    if not path.exists():
        log.warning("no district base layer at %s: the map is drawn without district outlines", path)
        return None
    return _load(path, path.stat().st_mtime_ns)
