"""Georeferencing a sheet: control points -> a pixel -> world transform, its errors, a warp.

Pixel coordinates are continuous image coordinates: (0, 0) is the top-left corner of
the top-left pixel, x to the right, y down (GDAL's pixel/line convention, and what
``rasterio.features.shapes`` returns for an unreferenced array). World coordinates may
be given in any CRS ``geo.crs`` accepts (WGS84/CGCS2000 degrees, GCJ-02, BD-09 when the
sheet was drawn on a web basemap, EPSG:n), or ``gk`` for CGCS2000 Gauss-Krüger read off
a kilometre grid with or without the zone prefix (``geo.crs.detect_gk_crs`` decides).
Every fit happens in EPSG:4548 metres, so residuals are metres on the ground.

Transforms:

* ``affine`` (≥ 3 points) and ``poly2`` (second-order polynomial, ≥ 6 points): least
  squares, the same model as GDAL's GCP polynomial transformer (the tests check that
  GDAL's ``GCPTransformer`` gives the same coordinates to the millimetre); GDAL offers
  no way to ask that transformer for a fixed order on arbitrary points, only for warps.
* ``tps`` (thin-plate spline, ≥ 3 points): GDAL's TPS transformer through rasterio. It
  passes through every point, so its residuals are zero and the leave-one-out error is
  the honest figure.

Warping (:func:`warp_overlay`) is GDAL's warper (``rasterio.warp.reproject`` with the
control points and ``MAX_GCP_ORDER`` / ``SRC_METHOD=GCP_TPS``), into Web Mercator
because that is the grid Leaflet stretches an image overlay on; it is for display only.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from geo import crs as crs_mod

METHODS = {"affine": 3, "poly2": 6, "tps": 3}  # method -> minimum number of control points
METRIC = crs_mod.METRIC_CRS
DISPLAY_CRS = "EPSG:3857"  # Leaflet's image overlays are stretched linearly in Web Mercator
# A design matrix this ill-conditioned (after centring and scaling) means the points do
# not pin the transform down: collinear for affine, on one conic for poly2.
_MAX_CONDITION = 1e7
OUTLIER_FACTOR = 3.0
OUTLIER_FLOOR_M = 2.0  # below this a leave-one-out error is within clicking precision


class GeorefError(ValueError):
    """Too few or degenerate control points, an unknown method, or bad coordinates."""


@dataclass(frozen=True)
class ControlPoint:
    px: float
    py: float
    x: float
    y: float

    @classmethod
    def parse(cls, text: str) -> ControlPoint:
        """'PX,PY,X,Y' (the CLI's --gcp) -> ControlPoint."""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 4:
            raise GeorefError(f"control point {text!r} must be PX,PY,X,Y (pixel column, row, then world x, y)")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise GeorefError(f"control point {text!r} has a value that is not a number") from None
        if not all(math.isfinite(v) for v in values):
            raise GeorefError(f"control point {text!r} has a value that is not finite")
        return cls(*values)


@dataclass
class Georef:
    """A fitted transform with its control points and errors (JSON-serialisable)."""

    method: str
    crs: str  # as given
    crs_resolved: str  # the CRS actually used (gk -> its EPSG code)
    crs_reason: str
    points: list[dict[str, float]]  # px, py, x, y (as given), mx, my (EPSG:4548)
    residuals_m: list[float]
    rms_m: float
    loo_m: list[float | None]  # leave-one-out error of each point; None when too few remain
    loo_rms_m: float | None
    outlier: int | None  # index of the point flagged as probably misplaced
    coefficients: list[list[float]] | None  # polynomial: rows for mx and my; None for tps
    image_size: list[int] | None = None  # [width, height]
    sheet_sha256: str | None = None
    page: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    # -- transforms --------------------------------------------------------------------
    def pixel_to_metric(self, px, py) -> tuple[np.ndarray, np.ndarray]:
        px, py = np.asarray(px, dtype=float), np.asarray(py, dtype=float)
        if self.method == "tps":
            return _tps_transform(self._pixel_array(), self._metric_array(), px, py)
        return _poly_apply(np.asarray(self.coefficients), self.method, px, py)

    def pixel_to_wgs84(self, px, py) -> tuple[np.ndarray, np.ndarray]:
        mx, my = self.pixel_to_metric(px, py)
        return crs_mod.to_wgs84(mx, my, METRIC)

    def pixel_size_m(self) -> float:
        """Ground size of one pixel (m) at the centre of the control points."""
        pix = self._pixel_array()
        cx, cy = pix.mean(axis=0)
        mx, my = self.pixel_to_metric(np.array([cx, cx + 1, cx]), np.array([cy, cy, cy + 1]))
        return float(math.sqrt(abs((mx[1] - mx[0]) * (my[2] - my[0]) - (mx[2] - mx[0]) * (my[1] - my[0]))))

    def _pixel_array(self) -> np.ndarray:
        return np.array([[p["px"], p["py"]] for p in self.points], dtype=float)

    def _metric_array(self) -> np.ndarray:
        return np.array([[p["mx"], p["my"]] for p in self.points], dtype=float)

    # -- serialisation -----------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, indent=1)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Georef:
        try:
            return cls(**data)
        except TypeError as exc:
            raise GeorefError(f"not a georeference file ({exc})") from None

    @classmethod
    def from_json(cls, text: str) -> Georef:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GeorefError(f"the georeference file is not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise GeorefError("the georeference file must hold a JSON object")
        return cls.from_dict(data)

    def summary(self) -> dict[str, Any]:
        """What a draft's ``method`` records: enough to redo the fit."""
        return {"method": self.method, "crs": self.crs_resolved, "points": [
            {k: p[k] for k in ("px", "py", "x", "y")} for p in self.points],
            "rms_m": round(self.rms_m, 2), "loo_rms_m": None if self.loo_rms_m is None else round(self.loo_rms_m, 2),
            "coefficients": self.coefficients, "sheet_sha256": self.sheet_sha256, "page": self.page}


# ---------------------------------------------------------------- polynomial fitting


def _design(method: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    if method == "affine":
        return np.column_stack([np.ones_like(u), u, v])
    return np.column_stack([np.ones_like(u), u, v, u * u, u * v, v * v])


def _normaliser(pix: np.ndarray) -> tuple[np.ndarray, float]:
    centre = pix.mean(axis=0)
    scale = float(np.abs(pix - centre).max()) or 1.0
    return centre, scale


def _poly_fit(method: str, pix: np.ndarray, world: np.ndarray) -> np.ndarray:
    """Coefficients (2 × k, in raw pixel units) of the least-squares polynomial, or
    GeorefError when the points do not determine it."""
    centre, scale = _normaliser(pix)
    u, v = ((pix - centre) / scale).T
    a = _design(method, u, v)
    if np.linalg.matrix_rank(a) < a.shape[1] or np.linalg.cond(a) > _MAX_CONDITION:
        shape = "on one line" if method == "affine" else "on one line or one conic (e.g. a circle)"
        raise GeorefError(f"the control points are degenerate for {method}: they lie (nearly) {shape}; "
                          "spread them over the sheet / 控制点分布退化，请分散布设")
    coef_norm, *_ = np.linalg.lstsq(a, world, rcond=None)  # k × 2
    return _denormalise(method, coef_norm.T, centre, scale)


def _denormalise(method: str, coef: np.ndarray, centre: np.ndarray, scale: float) -> np.ndarray:
    """Coefficients over normalised (u, v) -> over raw pixels (px, py), exactly."""
    cx, cy = centre
    s = scale
    out = np.zeros_like(coef)
    for row in range(2):
        if method == "affine":
            c0, c1, c2 = coef[row]
            out[row] = [c0 - c1 * cx / s - c2 * cy / s, c1 / s, c2 / s]
        else:
            c0, c1, c2, c3, c4, c5 = coef[row]
            # u = (px - cx)/s, v = (py - cy)/s, expanded.
            out[row] = [
                c0 - c1 * cx / s - c2 * cy / s + c3 * cx * cx / s**2 + c4 * cx * cy / s**2 + c5 * cy * cy / s**2,
                c1 / s - 2 * c3 * cx / s**2 - c4 * cy / s**2,
                c2 / s - c4 * cx / s**2 - 2 * c5 * cy / s**2,
                c3 / s**2, c4 / s**2, c5 / s**2,
            ]
    return out


def _poly_apply(coef: np.ndarray, method: str, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    shape = np.shape(px)
    a = _design(method, np.ravel(px).astype(float), np.ravel(py).astype(float))
    world = a @ coef.T
    return world[:, 0].reshape(shape), world[:, 1].reshape(shape)


# ---------------------------------------------------------------- thin-plate spline (GDAL)


def _gcps(pix: np.ndarray, world: np.ndarray) -> list:
    from rasterio.control import GroundControlPoint

    # z=0: GDAL reads a missing height as the text "None" and refuses the transformer.
    return [GroundControlPoint(row=float(p[1]), col=float(p[0]), x=float(w[0]), y=float(w[1]), z=0.0)
            for p, w in zip(pix, world, strict=True)]


def _tps_transform(pix: np.ndarray, world: np.ndarray, px: np.ndarray, py: np.ndarray):
    from rasterio.transform import GCPTransformer

    shape = np.shape(px)
    with GCPTransformer(_gcps(pix, world), tps=True) as transformer:
        xs, ys = transformer.xy(np.ravel(py), np.ravel(px), offset="ul")
    return np.asarray(xs, dtype=float).reshape(shape), np.asarray(ys, dtype=float).reshape(shape)


def _check_tps(pix: np.ndarray) -> None:
    centred = pix - pix.mean(axis=0)
    if np.linalg.matrix_rank(centred, tol=1e-6 * (np.abs(centred).max() or 1)) < 2:
        raise GeorefError("the control points are degenerate for tps: they lie on one line; spread them "
                          "over the sheet / 控制点分布退化，请分散布设")


def _predict(method: str, pix: np.ndarray, world: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Fit on (pix, world) and transform the pixels ``at`` -> metric (n × 2)."""
    if method == "tps":
        _check_tps(pix)
        x, y = _tps_transform(pix, world, at[:, 0], at[:, 1])
    else:
        coef = _poly_fit(method, pix, world)
        x, y = _poly_apply(coef, method, at[:, 0], at[:, 1])
    return np.column_stack([x, y])


# ---------------------------------------------------------------- the fit


def resolve_crs(name: str, xs: np.ndarray, ys: np.ndarray) -> tuple[str, str]:
    """(CRS to use, why). ``gk`` picks the Gauss-Krüger CRS from the coordinates."""
    if name.strip().lower() in ("gk", "gauss-kruger", "gauss-krüger"):
        try:
            guess = crs_mod.detect_gk_crs(xs, ys)
        except crs_mod.CoordinateError as exc:
            raise GeorefError(f"the world coordinates are not Gauss-Krüger: {exc}") from None
        return guess.crs, guess.reason
    try:
        resolved = crs_mod.parse_crs(name)
    except crs_mod.UnknownCRSError as exc:
        raise GeorefError(str(exc)) from None
    return resolved, f"as given: {crs_mod.describe_crs(resolved)}"


def _outlier(loo: list[float | None]) -> int | None:
    values = np.array([np.nan if e is None else e for e in loo], dtype=float)
    if np.isnan(values).all() or len(values) < 4:
        return None
    worst = int(np.nanargmax(values))
    others = np.delete(values, worst)
    typical = float(np.nanmedian(others)) if not np.isnan(others).all() else 0.0
    return worst if values[worst] > OUTLIER_FACTOR * max(typical, OUTLIER_FLOOR_M) else None


def fit(points: list[ControlPoint], crs: str = "EPSG:4548", method: str = "affine", *,
        image_size: tuple[int, int] | None = None, sheet_sha256: str | None = None, page: int = 1) -> Georef:
    """Fit ``method`` to the control points (world coordinates in ``crs``).

    Residuals are the distances (m, EPSG:4548) between each point's given position and
    where the transform puts its pixel; the leave-one-out error of a point is the same
    distance when the transform is fitted without it (None when the others are too few).
    The flagged outlier is the point whose leave-one-out error exceeds
    ``OUTLIER_FACTOR`` × the median of the others (and ``OUTLIER_FLOOR_M``).
    """
    if method not in METHODS:
        raise GeorefError(f"transform {method!r} is not one of {', '.join(METHODS)}")
    need = METHODS[method]
    if len(points) < need:
        raise GeorefError(f"{method} needs at least {need} control points, got {len(points)} / "
                          f"控制点不足（{method} 至少 {need} 个）")
    pix = np.array([[p.px, p.py] for p in points], dtype=float)
    given = np.array([[p.x, p.y] for p in points], dtype=float)
    if image_size is not None:
        w, h = image_size
        outside = (pix[:, 0] < 0) | (pix[:, 0] > w) | (pix[:, 1] < 0) | (pix[:, 1] > h)
        if outside.any():
            i = int(np.argmax(outside))
            raise GeorefError(f"control point {i + 1} (pixel {pix[i, 0]:g}, {pix[i, 1]:g}) is outside the "
                              f"{w} × {h} image")
    _, counts = np.unique(pix.round(1), axis=0, return_counts=True)
    if (counts > 1).any():
        raise GeorefError("two control points share one pixel position; each point must be a different place")
    resolved, reason = resolve_crs(crs, given[:, 0], given[:, 1])
    try:
        mx, my = crs_mod.convert(given[:, 0], given[:, 1], resolved, METRIC)
    except (crs_mod.CoordinateError, crs_mod.UnknownCRSError) as exc:
        raise GeorefError(f"control point world coordinates: {exc}") from None
    world = np.column_stack([mx, my])

    predicted = _predict(method, pix, world, pix)
    residuals = np.hypot(*(predicted - world).T)
    loo: list[float | None] = []
    for i in range(len(points)):
        keep = np.arange(len(points)) != i
        if keep.sum() < need:
            loo.append(None)
            continue
        try:
            guess = _predict(method, pix[keep], world[keep], pix[i:i + 1])
            loo.append(float(np.hypot(*(guess[0] - world[i]))))
        except GeorefError:  # the others alone are degenerate
            loo.append(None)
    loo_known = [e for e in loo if e is not None]
    coefficients = None if method == "tps" else _poly_fit(method, pix, world).tolist()
    return Georef(
        method=method, crs=crs, crs_resolved=resolved, crs_reason=reason,
        points=[{"px": float(p[0]), "py": float(p[1]), "x": float(g[0]), "y": float(g[1]),
                 "mx": float(w[0]), "my": float(w[1])} for p, g, w in zip(pix, given, world, strict=True)],
        residuals_m=[float(r) for r in residuals], rms_m=float(np.sqrt(np.mean(residuals ** 2))),
        loo_m=loo, loo_rms_m=float(np.sqrt(np.mean(np.square(loo_known)))) if loo_known else None,
        outlier=_outlier(loo), coefficients=coefficients,
        image_size=list(image_size) if image_size else None, sheet_sha256=sheet_sha256, page=page)


# ---------------------------------------------------------------- the overlay


@dataclass(frozen=True)
class Overlay:
    png: bytes
    bounds: tuple[float, float, float, float]  # west, south, east, north (WGS84)


def warp_overlay(georef: Georef, image: np.ndarray, max_size: int = 2048) -> Overlay:
    """The sheet warped by GDAL onto a Web Mercator grid, as an RGBA PNG (transparent
    outside the sheet) with its WGS84 bounds, for a Leaflet image overlay."""
    import io

    import rasterio.warp
    from PIL import Image
    from rasterio.enums import Resampling

    height, width = image.shape[:2]
    pix, world = georef._pixel_array(), georef._metric_array()
    # GCPs in the display CRS: Web Mercator is conformal, so the fitted model carries over.
    lon, lat = crs_mod.to_wgs84(world[:, 0], world[:, 1], METRIC)
    wx, wy = crs_mod.from_wgs84(lon, lat, DISPLAY_CRS)
    gcps = _gcps(pix, np.column_stack([wx, wy]))
    options = ({"SRC_METHOD": "GCP_TPS"} if georef.method == "tps"
               else {"SRC_METHOD": "GCP_POLYNOMIAL", "MAX_GCP_ORDER": 1 if georef.method == "affine" else 2})
    # RGB plus an opaque alpha band, warped in one pass: outside the sheet stays transparent.
    src = np.concatenate([np.moveaxis(image[..., :3], -1, 0), np.full((1, height, width), 255, np.uint8)])
    transform, dst_w, dst_h = rasterio.warp.calculate_default_transform(
        DISPLAY_CRS, DISPLAY_CRS, width, height, gcps=gcps, **options)
    factor = max(dst_w, dst_h) / max_size
    if factor > 1:
        transform = transform @ transform.scale(factor, factor)
        dst_w, dst_h = math.ceil(dst_w / factor), math.ceil(dst_h / factor)
    dst = np.zeros((4, dst_h, dst_w), dtype=np.uint8)
    rasterio.warp.reproject(src, dst, gcps=gcps, src_crs=DISPLAY_CRS, dst_transform=transform, dst_crs=DISPLAY_CRS,
                            resampling=Resampling.bilinear, dst_nodata=0, **options)
    west, north = transform @ (0, 0)
    east, south = transform @ (dst_w, dst_h)
    lons, lats = crs_mod.to_wgs84(np.array([west, east]), np.array([south, north]), DISPLAY_CRS)
    out = io.BytesIO()
    # Fast deflate: the overlay is sent once per fit and a third bigger matters less than a second.
    Image.fromarray(np.moveaxis(dst, 0, -1), mode="RGBA").save(out, format="PNG", compress_level=1)
    return Overlay(out.getvalue(), (float(lons[0]), float(lats[0]), float(lons[1]), float(lats[1])))
