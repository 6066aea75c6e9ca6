"""Display geometry: zones simplified per layer so the map page stays light.

Only for drawing. Lookups, areas and exports always use the full-precision geometry.
Simplification runs in EPSG:4548 (metres) with a tolerance per layer, topology-preserving:
a layer whose zones tile without overlaps (a coverage, e.g. partition cells) is simplified
as a coverage so shared edges stay shared; any other layer zone by zone with
``preserve_topology=True`` so no polygon collapses or self-intersects.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from geo import crs

DEFAULT_TOLERANCE_M = 10.0
# Reference layers are only context: coarser is fine and saves most of the bytes.
TOLERANCE_M: dict[str, float] = {"admin": 30.0}
BASE_TOLERANCE_M = 100.0
# Big zones (a whole district) get a tolerance in proportion to their size, up to a cap:
# their outline is seen at low zoom, and it is most of the page's bytes.
RELATIVE_TOLERANCE = 0.002  # of the square root of the zone's area
MAX_TOLERANCE_M = 80.0
DISPLAY_DECIMALS = 5  # ~1 m in Beijing, far below the tolerances


def _simplify_metric(geoms: np.ndarray, tolerance_m: float) -> np.ndarray:
    polygonal = np.array([g is not None and g.geom_type in ("Polygon", "MultiPolygon") for g in geoms])
    out = geoms.copy()
    if not polygonal.any() or tolerance_m <= 0:
        return out
    metric = np.asarray(crs.to_metric(geoms[polygonal]))
    tolerances = np.clip(RELATIVE_TOLERANCE * np.sqrt(shapely.area(metric)), tolerance_m,
                         max(tolerance_m, MAX_TOLERANCE_M))
    simplified = None
    if len(metric) > 1 and bool(shapely.coverage_is_valid(metric)):
        # One tolerance for the whole coverage so shared edges stay identical.
        simplified = shapely.coverage_simplify(metric, float(tolerances.min()))
    if simplified is None or not shapely.is_valid(simplified).all():
        simplified = shapely.simplify(metric, tolerances, preserve_topology=True)
    # Keep the original wherever simplification would erase or break a zone.
    bad = shapely.is_empty(simplified) | ~shapely.is_valid(simplified)
    simplified[bad] = metric[bad]
    out[polygonal] = np.asarray(crs.from_metric(simplified))
    return out


def _round(geoms: np.ndarray) -> np.ndarray:
    rounded = shapely.set_precision(geoms, 10.0 ** -DISPLAY_DECIMALS, mode="pointwise")
    # Rounding can only nudge vertices by ~1 m; keep the unrounded shape if that breaks it.
    broken = shapely.is_empty(rounded) | ~shapely.is_valid(rounded)
    rounded[broken] = geoms[broken]
    return rounded


def display_geometry(frame: gpd.GeoDataFrame, tolerance_m: float | dict[str, float] | None = None,
                     group_by: str | None = "layer") -> gpd.GeoDataFrame:
    """A copy of ``frame`` (WGS84) with geometry simplified for drawing.

    ``tolerance_m`` is one tolerance, or a mapping from the ``group_by`` value (the
    layer) to a tolerance (default: ``TOLERANCE_M``, else ``DEFAULT_TOLERANCE_M``).
    """
    out = frame.copy()
    geoms = np.asarray(frame.geometry.values, dtype=object)
    result = geoms.copy()
    groups = frame[group_by].to_numpy() if group_by else np.zeros(len(frame), dtype=int)
    per_group = tolerance_m if isinstance(tolerance_m, dict) else {}
    for group in dict.fromkeys(groups):
        mask = groups == group
        if isinstance(tolerance_m, int | float):
            tol = float(tolerance_m)
        else:
            tol = per_group.get(group, TOLERANCE_M.get(group, DEFAULT_TOLERANCE_M))
        result[mask] = _simplify_metric(geoms[mask], tol)
    out[out.geometry.name] = _round(result)
    return out


def vertex_count(frame: gpd.GeoDataFrame) -> int:
    return int(shapely.get_num_coordinates(np.asarray(frame.geometry.values)).sum())
