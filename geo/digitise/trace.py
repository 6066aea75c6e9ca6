"""Tracing a zone on a georeferenced sheet by its colour.

1. The picked colour and every pixel go to CIELAB (sRGB D65); a pixel belongs to the
   zone when its colour difference ΔE*ab to the pick is at most ``tolerance`` (ΔE ≈ 2.3 is
   a just-noticeable difference; JPEG noise on flat fills stays within ~10; 20–30 keeps
   a red fill apart from an orange one).
2. Morphological closing (scipy.ndimage) with a disk of ``close_px`` pixels fills the
   gaps between hatch lines and where grid lines and labels cross the fill.
3. ``rasterio.features.shapes`` vectorises the mask in pixel coordinates (exact pixel
   edges, holes kept); the georeference takes the vertices to EPSG:4548 metres.
4. Parts and holes smaller than ``min_area_m2`` are dropped (specks of the same colour:
   legend swatches; labels printed on the fill); half the drawn boundary line width (``line_width_px``) is taken
   off, because the legal line is the centre of the drawn line; the outline is
   simplified to ``simplify_m`` metres (Douglas–Peucker, topology kept); the result is
   clipped to the district and returned in WGS84.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geo import crs as crs_mod
from geo.base import district_layer
from geo.digitise.georef import Georef

_HEX = set("0123456789abcdefABCDEF")
MAX_TOLERANCE = 100.0


class TraceError(ValueError):
    """Bad trace parameters, or nothing of that colour on the sheet."""


@dataclass(frozen=True)
class TraceParams:
    colour: str  # '#RRGGBB'
    tolerance: float = 30.0  # ΔE*ab
    close_px: int = 6  # closing radius: fills hatch gaps up to ~2 × close_px wide
    min_area_m2: float = 10_000.0
    simplify_m: float = 5.0
    line_width_px: float = 0.0
    clip_district: str | None = None  # adcode

    def __post_init__(self) -> None:
        parse_colour(self.colour)
        if not 0 < self.tolerance <= MAX_TOLERANCE:
            raise TraceError(f"tolerance {self.tolerance} must be in (0, {MAX_TOLERANCE:g}] (ΔE*ab)")
        if not 0 <= self.close_px <= 50:
            raise TraceError(f"close_px {self.close_px} must be 0..50 pixels")
        for name in ("min_area_m2", "simplify_m", "line_width_px"):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise TraceError(f"{name} must be a non-negative number, got {getattr(self, name)!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TraceResult:
    geometry: BaseGeometry  # WGS84 Polygon or MultiPolygon
    params: TraceParams
    pixels: int  # pixels in the closed mask
    parts_dropped: int  # parts under min_area_m2
    area_m2: float  # geodesic

    def feature(self) -> dict[str, Any]:
        return {"type": "Feature", "geometry": shapely.geometry.mapping(self.geometry),
                "properties": {"trace": self.params.as_dict(), "area_m2": round(self.area_m2, 1),
                               "parts_dropped": self.parts_dropped}}

    def to_geojson(self) -> str:
        return json.dumps({"type": "FeatureCollection", "features": [self.feature()]}, ensure_ascii=False)


def parse_colour(text: str) -> tuple[int, int, int]:
    value = text.strip().lstrip("#")
    if len(value) != 6 or not set(value) <= _HEX:
        raise TraceError(f"colour {text!r} must be #RRGGBB, e.g. #d7301f")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 (..., 3) -> CIELAB (..., 3) float32, D65 white (the CIE formulas)."""
    c = rgb.astype(np.float32) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]], dtype=np.float32)
    xyz = linear @ m.T / np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    lab = np.empty_like(f)
    lab[..., 0] = 116 * f[..., 1] - 16
    lab[..., 1] = 500 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200 * (f[..., 1] - f[..., 2])
    return lab


def colour_mask(image: np.ndarray, colour: str, tolerance: float) -> np.ndarray:
    """Boolean mask of the pixels within ``tolerance`` ΔE*ab of ``colour``."""
    target = rgb_to_lab(np.array(parse_colour(colour), dtype=np.uint8))
    out = np.empty(image.shape[:2], dtype=bool)
    for start in range(0, image.shape[0], 512):  # bounded memory on large sheets
        lab = rgb_to_lab(image[start:start + 512, :, :3])
        out[start:start + 512] = np.sum((lab - target) ** 2, axis=-1) <= tolerance ** 2
    return out


def close_mask(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary closing with a disk of ``radius`` px (border-safe: padded first)."""
    from scipy import ndimage

    if radius <= 0:
        return mask
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    disk = xx * xx + yy * yy <= radius * radius
    padded = np.pad(mask, radius + 1)
    closed = ndimage.binary_closing(padded, structure=disk)
    return closed[radius + 1:-radius - 1, radius + 1:-radius - 1]


def district_outline(adcode: str) -> BaseGeometry:
    """The district's (reference) outline from the base layer, WGS84."""
    layer = district_layer()
    hits = [] if layer is None else layer.geometry[layer["adcode"] == adcode].to_list()
    if hits:
        return hits[0]
    raise TraceError(f"district {adcode!r} is not in the district layer")


def _pixel_polygons(mask: np.ndarray) -> list[shapely.Polygon]:
    from rasterio import features

    return [shapely.geometry.shape(geom)
            for geom, value in features.shapes(mask.astype(np.uint8), mask=mask, connectivity=4) if value == 1]


def _to_metric(georef: Georef, polygon: shapely.Polygon) -> BaseGeometry:
    def transform(coords: np.ndarray) -> np.ndarray:
        mx, my = georef.pixel_to_metric(coords[:, 0], coords[:, 1])
        return np.column_stack([mx, my])

    return shapely.transform(polygon, transform)


def trace(image: np.ndarray, georef: Georef, params: TraceParams) -> TraceResult:
    """The zone of ``params.colour`` on ``image`` as a WGS84 (Multi)Polygon."""
    if image.ndim != 3 or image.shape[2] < 3:
        raise TraceError("the sheet image must be RGB")
    if georef.image_size and list(georef.image_size) != [image.shape[1], image.shape[0]]:
        raise TraceError(f"the georeference was fitted on a {georef.image_size[0]} × {georef.image_size[1]} "
                         f"image, this one is {image.shape[1]} × {image.shape[0]}: wrong sheet or page?")
    mask = close_mask(colour_mask(image, params.colour, params.tolerance), params.close_px)
    if not mask.any():
        raise TraceError(f"no pixel within ΔE {params.tolerance:g} of {params.colour} on the sheet; "
                         "pick the colour again or raise the tolerance / 图上没有该颜色")
    parts = [_to_metric(georef, p) for p in _pixel_polygons(mask)]
    parts = [shapely.make_valid(p) if not p.is_valid else p for p in parts]
    kept = [p for p in parts if p.area >= params.min_area_m2]
    dropped = len(parts) - len(kept)
    if not kept:
        raise TraceError(f"every patch of {params.colour} is smaller than {params.min_area_m2:g} m² "
                         "(min area); lower it or pick the colour again")
    metric = _drop_small_holes(shapely.union_all(kept), params.min_area_m2)
    if params.line_width_px:
        metric = metric.buffer(-params.line_width_px / 2 * georef.pixel_size_m(), join_style="mitre")
    if params.simplify_m:
        metric = metric.simplify(params.simplify_m, preserve_topology=True)
    geometry = crs_mod.from_metric(metric)
    if params.clip_district:
        geometry = geometry.intersection(district_outline(params.clip_district))
    geometry = _polygonal(shapely.make_valid(geometry))
    if geometry.is_empty:
        raise TraceError("nothing is left after clipping to the district: is the sheet georeferenced right?")
    area = float(crs_mod.geodesic_area_m2(geometry))
    return TraceResult(geometry, params, int(mask.sum()), dropped, area)


def _drop_small_holes(geom: BaseGeometry, min_area_m2: float) -> BaseGeometry:
    """Holes under ``min_area_m2`` are labels or symbols printed on the fill, not holes."""
    def fill(poly: shapely.Polygon) -> shapely.Polygon:
        return shapely.Polygon(poly.exterior, [r for r in poly.interiors if shapely.Polygon(r).area >= min_area_m2])

    if geom.geom_type == "Polygon":
        return fill(geom)
    return shapely.MultiPolygon([fill(p) for p in geom.geoms])


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """Only the polygon parts (clipping can leave lines and points on the edge)."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    polygons = [g for g in getattr(geom, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(polygons) if polygons else shapely.Polygon()
