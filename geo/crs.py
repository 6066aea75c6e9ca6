"""Coordinate systems for China: WGS84, CGCS2000, Gauss-Krüger, GCJ-02 and BD-09.

This module is the only place in the project where coordinates change system. Every
caller (API, CLI, import, map) goes through :func:`to_wgs84` / :func:`from_wgs84` or
their geometry and GeoDataFrame variants; stored data is always WGS84 lon/lat.

* ``wgs84`` — EPSG:4326, what GPS receivers and OpenStreetMap use.
* ``cgcs2000`` — EPSG:4490, the national datum official zone data uses. It differs from
  WGS84 by well under a metre in Beijing, so it is treated as identical to WGS84 here.
* ``gcj02`` — the obfuscated "Mars" system of Amap/Gaode, Tencent and WeChat: 500–600 m
  off in Beijing. No EPSG code; PROJ cannot do it.
* ``bd09`` — Baidu's extra offset on top of GCJ-02: about 1.4 km off in Beijing.
* ``EPSG:n`` — anything pyproj knows, e.g. the CGCS2000 3-degree Gauss-Krüger zones
  EPSG:4547/4548/4549 (central meridian 114/117/120°E) and their zone-prefixed twins
  EPSG:4526/4527/4528 (easting carries the zone number: 39 500 000-style).

GCJ-02 and BD-09 are numpy-vectorised in both directions. Their inverses are exact: a
fixed-point iteration on the forward formula until every point reproduces its input to
far below 1e-7° (the common one-step inverse is off by up to ~3 m).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import pyproj
import shapely

__all__ = [
    "METRIC_CRS", "NAMED_CRS", "CoordinateError", "UnknownCRSError", "GKGuess",
    "out_of_china", "gcj02_to_wgs84", "wgs84_to_gcj02", "bd09_to_gcj02", "gcj02_to_bd09",
    "bd09_to_wgs84", "wgs84_to_bd09", "parse_crs", "to_wgs84", "from_wgs84", "convert",
    "geometry_to_wgs84", "geometry_from_wgs84", "frame_to_wgs84", "frame_from_wgs84",
    "to_metric", "from_metric", "local_metric_epsg", "to_local_metric", "geodesic_area_m2", "geodesic_length_m",
    "geodesic_distance_m", "detect_gk_crs", "crs_from_prj", "describe_crs",
]

# Planar metric work (buffers, distances to boundaries) happens in CGCS2000 3-degree
# Gauss-Krüger CM 117°E: Beijing spans 115.4–117.5°E, so the scale error stays below
# 0.05 % in area everywhere in the city. Web Mercator at 40°N inflates areas by ~70 %.
METRIC_CRS = "EPSG:4548"

# Names accepted by parse_crs, mapped to their normalised form.
NAMED_CRS: dict[str, str] = {
    "wgs84": "wgs84", "wgs-84": "wgs84", "epsg:4326": "wgs84", "4326": "wgs84",
    "crs84": "wgs84", "ogc:crs84": "wgs84", "urn:ogc:def:crs:ogc:1.3:crs84": "wgs84",
    "http://www.opengis.net/def/crs/ogc/1.3/crs84": "wgs84",
    "cgcs2000": "cgcs2000", "epsg:4490": "cgcs2000", "4490": "cgcs2000",
    "gcj02": "gcj02", "gcj-02": "gcj02", "amap": "gcj02", "gaode": "gcj02",
    "tencent": "gcj02", "wechat": "gcj02", "mars": "gcj02",
    "bd09": "bd09", "bd-09": "bd09", "baidu": "bd09",
}
_LONLAT = {"wgs84", "cgcs2000", "gcj02", "bd09"}
_EPSG_URI = "http://www.opengis.net/def/crs/epsg/0/"

# The GCJ-02 formula works on the Krasovsky 1940 ellipsoid.
_GCJ_A = 6378245.0
_GCJ_EE = 0.00669342162296594323
# Baidu's constant shift and angular frequency (3000 per radian, expressed per degree).
_BD_DLON, _BD_DLAT = 0.0065, 0.0060
_BD_FREQ = np.pi * 3000.0 / 180.0

# Inverse iteration: stop when every residual |forward(w) - target| is below _TOL
# degrees. Each step shrinks the error ~150-fold (the offsets vary slowly), and the last
# residual is applied too, so results end ≤ 1e-10° (0.01 mm) from the exact inverse over
# all of China (measured on 1M random points); round trips stay far below 1 mm. Four
# steps suffice; the cap only guards against a non-converging input.
_TOL = 1e-8
_MAX_ITER = 30


class UnknownCRSError(ValueError):
    """A coordinate reference system name or code that we cannot interpret."""


class CoordinateError(ValueError):
    """A coordinate that is NaN, infinite or outside the range of its system.

    ``index`` is the flat position of the first offending point (None when the error is
    about the input as a whole), so callers can point at a row or vertex.
    """

    def __init__(self, message: str, index: int | None = None):
        super().__init__(message)
        self.index = index


# ---------------------------------------------------------------- GCJ-02 / BD-09 math


def _as_arrays(lon, lat):
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return np.broadcast_arrays(lon, lat)


def _result(lon, lat, scalar):
    if scalar:
        return np.float64(lon[()]), np.float64(lat[()])
    return lon, lat


def out_of_china(lon, lat):
    """True where a point lies outside the GCJ-02 area, i.e. is returned unchanged.

    The test is the common convention shared by the open implementations (eviltransform,
    coordtransform, prcoords): a plain rectangle, 72.004–137.8347°E and 0.8293–55.8271°N.
    It is a rectangle, not the border: parts of neighbouring countries fall inside it and
    are shifted too, exactly as Amap and Baidu themselves do. NaN counts as outside.
    """
    lon, lat = _as_arrays(lon, lat)
    inside = (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)
    return ~inside


def _gcj_offset(lon, lat):
    """The GCJ-02 shift (dlon, dlat) in degrees at WGS84 (lon, lat).

    The published formula needs twelve sines; the multiple-angle identities
    sin 3a = 3 sin a - 4 sin^3 a and sin 2a = 2 sin a cos a give the same values from
    seven, which is most of the cost of a conversion.
    """
    x = lon - 105.0
    y = lat - 35.0
    pi = np.pi
    a = x * (pi / 3.0)
    sin_a, cos_a = np.sin(a), np.cos(a)
    sin_px = sin_a * (3.0 - 4.0 * sin_a * sin_a)             # sin(pi x)
    cos_px = cos_a * (4.0 * cos_a * cos_a - 3.0)             # cos(pi x)
    sin_2px = 2.0 * sin_px * cos_px                          # sin(2 pi x)
    sin_6px = sin_2px * (3.0 - 4.0 * sin_2px * sin_2px)      # sin(6 pi x)
    sin_py3 = np.sin(y * (pi / 3.0))                         # sin(pi y / 3)
    sin_py = sin_py3 * (3.0 - 4.0 * sin_py3 * sin_py3)       # sin(pi y)
    sqrt_abs_x = np.sqrt(np.abs(x))
    harmonic_x = 20.0 * sin_6px + 20.0 * sin_2px
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
            + (harmonic_x + 20.0 * sin_py + 40.0 * sin_py3
               + 160.0 * np.sin(y * (pi / 12.0)) + 320.0 * np.sin(y * (pi / 30.0))) * (2.0 / 3.0))
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
            + (harmonic_x + 20.0 * sin_px + 40.0 * sin_a
               + 150.0 * np.sin(x * (pi / 12.0)) + 300.0 * np.sin(x * (pi / 30.0))) * (2.0 / 3.0))
    # The metre offsets become degrees on the Krasovsky ellipsoid.
    rad_lat = np.radians(lat)
    sin_lat = np.sin(rad_lat)
    magic = 1.0 - _GCJ_EE * sin_lat * sin_lat
    sqrt_magic = np.sqrt(magic)
    dlat = np.degrees(dlat * (magic * sqrt_magic) / (_GCJ_A * (1.0 - _GCJ_EE)))
    dlon = np.degrees(dlon * sqrt_magic / (_GCJ_A * np.cos(rad_lat)))
    return dlon, dlat


def _gcj_forward(lon, lat):
    dlon, dlat = _gcj_offset(lon, lat)
    return lon + dlon, lat + dlat


def _bd_forward(lon, lat):
    """GCJ-02 -> BD-09 without the China test."""
    r = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _BD_FREQ)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _BD_FREQ)
    return r * np.cos(theta) + _BD_DLON, r * np.sin(theta) + _BD_DLAT


def _bd_backward(lon, lat):
    """BD-09 -> GCJ-02 by the usual one-step formula (~1e-7° off): the inverse's start."""
    x, y = lon - _BD_DLON, lat - _BD_DLAT
    r = np.hypot(x, y) - 0.00002 * np.sin(y * _BD_FREQ)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _BD_FREQ)
    return r * np.cos(theta), r * np.sin(theta)


def _invert(forward, lon, lat, start=None):
    """Solve forward(x, y) == (lon, lat) by fixed-point iteration.

    Start from ``start(lon, lat)`` (default: the target) and move by the residual each
    step; the offsets vary so slowly that each step shrinks the error ~100-fold. Iterate
    until every residual is below _TOL (the returned point is better still, by that
    factor). Points that have converged drop out once they are the majority.
    """
    shape = np.shape(lon)
    lon, lat = lon.astype(float).reshape(-1), lat.astype(float).reshape(-1)
    x, y = start(lon, lat) if start else (lon.copy(), lat.copy())
    active = slice(None)
    for _ in range(_MAX_ITER):
        fx, fy = forward(x[active], y[active])
        ex, ey = fx - lon[active], fy - lat[active]
        x[active] -= ex
        y[active] -= ey
        unconverged = np.flatnonzero(np.maximum(np.abs(ex), np.abs(ey)) >= _TOL)
        if unconverged.size == 0:
            break
        if isinstance(active, slice):
            if unconverged.size < x.size // 2:
                active = unconverged
        else:
            active = active[unconverged]
    return x.reshape(shape), y.reshape(shape)


def _convert(fn, lon, lat):
    scalar = np.ndim(lon) == 0 and np.ndim(lat) == 0
    lon, lat = _as_arrays(lon, lat)
    lon, lat = lon.astype(float, copy=True), lat.astype(float, copy=True)
    inside = ~out_of_china(lon, lat)
    if inside.all():
        lon, lat = fn(lon, lat)
    elif inside.any():
        lon[inside], lat[inside] = fn(lon[inside], lat[inside])
    return _result(lon, lat, scalar)


def wgs84_to_gcj02(lon, lat):
    """WGS84 -> GCJ-02. Points outside China (see :func:`out_of_china`) are unchanged."""
    return _convert(_gcj_forward, lon, lat)


def gcj02_to_wgs84(lon, lat):
    """GCJ-02 -> WGS84, exact inverse of :func:`wgs84_to_gcj02` (≤ 1e-10° from exact)."""
    return _convert(lambda x, y: _invert(_gcj_forward, x, y), lon, lat)


def gcj02_to_bd09(lon, lat):
    """GCJ-02 -> BD-09. Points outside China are unchanged."""
    return _convert(_bd_forward, lon, lat)


def bd09_to_gcj02(lon, lat):
    """BD-09 -> GCJ-02, exact inverse of :func:`gcj02_to_bd09`."""
    return _convert(lambda x, y: _invert(_bd_forward, x, y, _bd_backward), lon, lat)


def wgs84_to_bd09(lon, lat):
    """WGS84 -> BD-09 (via GCJ-02). Points outside China are unchanged."""
    return _convert(lambda x, y: _bd_forward(*_gcj_forward(x, y)), lon, lat)


def bd09_to_wgs84(lon, lat):
    """BD-09 -> WGS84, exact inverse of :func:`wgs84_to_bd09` (via GCJ-02)."""
    def inverse(x, y):
        return _invert(_gcj_forward, *_invert(_bd_forward, x, y, _bd_backward))
    return _convert(inverse, lon, lat)


# ---------------------------------------------------------------- CRS names


def _accepted_names() -> str:
    return ("wgs84 (EPSG:4326, CRS84), cgcs2000 (EPSG:4490), gcj02 (amap, gaode, tencent, "
            "wechat, mars), bd09 (baidu), EPSG:<code> or "
            "http://www.opengis.net/def/crs/EPSG/0/<code> for any code PROJ knows")


def parse_crs(name) -> str:
    """Normalise a CRS name: 'wgs84', 'cgcs2000', 'gcj02', 'bd09' or 'EPSG:<n>'.

    'cgcs2000' (EPSG:4490) is treated as WGS84: the two datums agree to well under 1 m in
    China, below the accuracy of any zone we hold. Integers and pyproj CRS objects with
    an EPSG code are accepted too. Raises :class:`UnknownCRSError` naming the value.
    """
    if isinstance(name, pyproj.CRS):  # e.g. a GeoDataFrame's .crs
        code = name.to_epsg()
        name = f"EPSG:{code}" if code is not None else name.to_string()
    if isinstance(name, (int, np.integer)) and not isinstance(name, bool):
        name = str(int(name))
    if not isinstance(name, str) or not name.strip():
        raise UnknownCRSError(f"unknown CRS {name!r}; accepted: {_accepted_names()}")
    key = name.strip().lower()
    if key.startswith("https://"):
        key = "http://" + key[len("https://"):]
    if key in NAMED_CRS:
        return NAMED_CRS[key]
    code = None
    if key.startswith(_EPSG_URI):
        code = key[len(_EPSG_URI):]
    elif key.startswith("epsg:"):
        code = key[len("epsg:"):]
    elif key.isdigit():
        code = key
    if code is not None and code.isdigit():
        normalised = f"EPSG:{int(code)}"
        if normalised in ("EPSG:4326", "EPSG:4490"):
            return NAMED_CRS[normalised.lower()]
        try:
            _pyproj_crs(normalised)
        except pyproj.exceptions.CRSError:
            raise UnknownCRSError(f"unknown CRS {name!r}: PROJ has no {normalised}") from None
        return normalised
    raise UnknownCRSError(f"unknown CRS {name!r}; accepted: {_accepted_names()}")


@functools.lru_cache(maxsize=64)
def _pyproj_crs(epsg: str) -> pyproj.CRS:
    return pyproj.CRS.from_user_input(epsg)


# The pipelines pyproj's database search finds for the metric CRS (tests/test_crs.py checks
# they still are): given directly, a new process's first distance skips that ~0.1 s search.
_TMERC_117 = "proj=tmerc lat_0=0 lon_0=117 k=1 x_0=500000 y_0=0 ellps=GRS80"
KNOWN_PIPELINES = {
    ("EPSG:4326", "EPSG:4548"): f"proj=pipeline step proj=unitconvert xy_in=deg xy_out=rad step {_TMERC_117}",
    ("EPSG:4548", "EPSG:4326"): f"proj=pipeline step inv {_TMERC_117} step proj=unitconvert xy_in=rad xy_out=deg",
}


@functools.lru_cache(maxsize=64)
def _transformer(src: str, dst: str) -> pyproj.Transformer:
    if (src, dst) in KNOWN_PIPELINES:
        return pyproj.Transformer.from_pipeline(KNOWN_PIPELINES[src, dst])
    return pyproj.Transformer.from_crs(src, dst, always_xy=True)


def describe_crs(crs) -> str:
    """A human-readable name, e.g. 'EPSG:4548 (CGCS2000 / 3-degree Gauss-Kruger CM 117E)'."""
    crs = parse_crs(crs)
    if crs in _LONLAT:
        return {"wgs84": "WGS84 (EPSG:4326)", "cgcs2000": "CGCS2000 (EPSG:4490)",
                "gcj02": "GCJ-02 (Amap/Tencent)", "bd09": "BD-09 (Baidu)"}[crs]
    return f"{crs} ({_pyproj_crs(crs).name})"


def _is_lonlat(crs: str) -> bool:
    return crs in _LONLAT or _pyproj_crs(crs).is_geographic


# ---------------------------------------------------------------- validation


def _first_bad(mask) -> int:
    return int(np.flatnonzero(np.ravel(mask))[0])


def _check_finite(x, y, xname: str, yname: str) -> None:
    for values, label in ((x, xname), (y, yname)):
        bad = ~np.isfinite(values)
        if bad.any():
            i = _first_bad(bad)
            raise CoordinateError(f"{label}[{i}]={float(np.ravel(values)[i])!r} is not a finite number", i)


def _check_lonlat(lon, lat, crs: str) -> None:
    _check_finite(lon, lat, "lon", "lat")
    bad = (np.abs(lon) > 180.0) | (np.abs(lat) > 90.0)
    if bad.any():
        i = _first_bad(bad)
        x, y = float(np.ravel(lon)[i]), float(np.ravel(lat)[i])
        hint = ""
        if 73.0 <= y <= 135.0 and 18.0 <= x <= 54.0:
            hint = " — did you swap lon and lat?"
        raise CoordinateError(
            f"point {i} (lon={x!r}, lat={y!r}) is outside the {crs} range "
            f"lon -180..180, lat -90..90{hint}", i)


# Projected coordinates beyond this are never real positions (Earth's circumference is
# 4e7 m; zone-prefixed GK eastings reach ~4.5e7).
_MAX_PROJECTED = 1e8
# Margin (degrees) around a projected CRS's area of use within which points are accepted:
# loose, because GK zones are routinely used a little beyond their 3-degree strip.
_AREA_MARGIN = 5.0


def _check_projected_result(x, y, lon, lat, crs: str) -> None:
    bad = ~(np.isfinite(lon) & np.isfinite(lat))
    area = _pyproj_crs(crs).area_of_use
    if area is not None:
        west, south, east, north = area.bounds
        if west > east:  # area crosses the antimeridian; skip the longitude test
            west, east = -180.0, 180.0
        m = _AREA_MARGIN
        with np.errstate(invalid="ignore"):
            bad |= (lon < west - m) | (lon > east + m) | (lat < south - m) | (lat > north + m)
    if bad.any():
        i = _first_bad(bad)
        xi, yi = float(np.ravel(x)[i]), float(np.ravel(y)[i])
        where = f"outside the area of use of {describe_crs(crs)}"
        if area is not None:
            where += f" ({area.name}: {area.west}..{area.east}°E, {area.south}..{area.north}°N)"
        hint = ""
        if xi >= 1e7 and "Gauss-Kruger CM" in _pyproj_crs(crs).name:
            hint = "; the easting carries a zone prefix — try the zone-prefixed EPSG code (detect_gk_crs)"
        raise CoordinateError(f"point {i} (x={xi!r}, y={yi!r}) is {where}{hint}", i)


# ---------------------------------------------------------------- arrays


def to_wgs84(x, y, crs):
    """Convert coordinates in ``crs`` to WGS84 (lon, lat) float arrays.

    Raises :class:`CoordinateError` naming the first bad value and its index (NaN,
    infinity, out of range for a lon/lat system, outside a projected CRS's area of use)
    and :class:`UnknownCRSError` for an unknown CRS.
    """
    crs = parse_crs(crs)
    x, y = _as_arrays(x, y)
    x, y = x.astype(float), y.astype(float)
    if _is_lonlat(crs):
        _check_lonlat(x, y, crs)
    else:
        _check_finite(x, y, "x", "y")
        bad = (np.abs(x) > _MAX_PROJECTED) | (np.abs(y) > _MAX_PROJECTED)
        if bad.any():
            i = _first_bad(bad)
            raise CoordinateError(
                f"point {i} (x={float(np.ravel(x)[i])!r}, y={float(np.ravel(y)[i])!r}) is not a "
                f"plausible {crs} coordinate (magnitude above {_MAX_PROJECTED:.0e} m)", i)
    if crs in ("wgs84", "cgcs2000"):
        return x.copy(), y.copy()
    if crs == "gcj02":
        return gcj02_to_wgs84(x, y)
    if crs == "bd09":
        return bd09_to_wgs84(x, y)
    lon, lat = _transformer(crs, "EPSG:4326").transform(x, y, errcheck=False)
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    if not _pyproj_crs(crs).is_geographic:
        _check_projected_result(x, y, lon, lat, crs)
    return lon, lat


def from_wgs84(lon, lat, crs):
    """Convert WGS84 (lon, lat) to ``crs``; returns two float arrays. Validates the input."""
    crs = parse_crs(crs)
    lon, lat = _as_arrays(lon, lat)
    lon, lat = lon.astype(float), lat.astype(float)
    _check_lonlat(lon, lat, "wgs84")
    if crs in ("wgs84", "cgcs2000"):
        return lon.copy(), lat.copy()
    if crs == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if crs == "bd09":
        return wgs84_to_bd09(lon, lat)
    x, y = _transformer("EPSG:4326", crs).transform(lon, lat, errcheck=False)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        i = _first_bad(bad)
        raise CoordinateError(
            f"point {i} (lon={float(np.ravel(lon)[i])!r}, lat={float(np.ravel(lat)[i])!r}) "
            f"cannot be projected to {describe_crs(crs)}", i)
    return x, y


def convert(x, y, from_crs, to_crs):
    """Convert coordinates between any two systems (through WGS84)."""
    src, dst = parse_crs(from_crs), parse_crs(to_crs)
    lon, lat = to_wgs84(x, y, src)
    if src == dst:
        return np.asarray(x, dtype=float).copy(), np.asarray(y, dtype=float).copy()
    return from_wgs84(lon, lat, dst)


# ---------------------------------------------------------------- geometries and frames


def _transform_xy(fn):
    def apply(coords):
        x, y = fn(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])
    return apply


def geometry_to_wgs84(geom, crs):
    """A shapely geometry (or array of them) in ``crs`` -> WGS84. Validates every vertex."""
    crs = parse_crs(crs)
    return shapely.transform(geom, _transform_xy(lambda x, y: to_wgs84(x, y, crs)))


def geometry_from_wgs84(geom, crs):
    """A shapely WGS84 geometry (or array of them) -> ``crs``."""
    crs = parse_crs(crs)
    return shapely.transform(geom, _transform_xy(lambda x, y: from_wgs84(x, y, crs)))


def _frame_crs_name(frame) -> str:
    if frame.crs is None:
        raise UnknownCRSError(
            "the frame has no CRS; pass crs= (GCJ-02 and BD-09 frames carry none, having no EPSG code)")
    return parse_crs(frame.crs)


def _with_geometry(frame, geoms, crs_label):
    """A copy of a GeoDataFrame/GeoSeries with new geometries and CRS label."""
    import geopandas as gpd  # geopandas only where frames are used

    series = gpd.GeoSeries(geoms, index=frame.index, crs=crs_label, name=frame.geometry.name)
    if isinstance(frame, gpd.GeoSeries):
        return series
    out = frame.copy()
    out[frame.geometry.name] = series
    return out.set_crs(crs_label, allow_override=True) if crs_label else _drop_crs(out)


def _drop_crs(gdf):
    gdf.geometry.array.crs = None
    return gdf


def frame_to_wgs84(frame, crs=None):
    """A GeoDataFrame/GeoSeries in ``crs`` (default: its own ``.crs``) -> a WGS84 copy (EPSG:4326).

    GCJ-02 and BD-09 frames have ``crs=None`` (no EPSG code exists), so pass ``crs``.
    """
    crs = parse_crs(crs) if crs is not None else _frame_crs_name(frame)
    geoms = geometry_to_wgs84(np.asarray(frame.geometry.values), crs)
    return _with_geometry(frame, geoms, "EPSG:4326")


def frame_from_wgs84(frame, crs):
    """A WGS84 GeoDataFrame/GeoSeries -> a copy in ``crs``.

    The result's ``.crs`` is the EPSG CRS, EPSG:4490 for 'cgcs2000', and ``None`` for
    GCJ-02/BD-09: they have no EPSG code and labelling them EPSG:4326 would be a lie.
    """
    if frame.crs is not None and parse_crs(frame.crs) not in ("wgs84", "cgcs2000"):
        raise UnknownCRSError(f"frame_from_wgs84 needs a WGS84 frame, got {frame.crs}")
    crs = parse_crs(crs)
    label = {"wgs84": "EPSG:4326", "cgcs2000": "EPSG:4490"}.get(crs, None if crs in _LONLAT else crs)
    geoms = geometry_from_wgs84(np.asarray(frame.geometry.values), crs)
    return _with_geometry(frame, geoms, label)


# ---------------------------------------------------------------- metric work


def _map_geoms(geoms, transformer, crs_label):
    """Apply a pyproj transformer to a geometry, an array of them or a GeoSeries."""
    fn = _transform_xy(lambda x, y: transformer.transform(x, y, errcheck=True))
    if hasattr(geoms, "geometry") and hasattr(geoms, "index"):
        import geopandas as gpd

        return gpd.GeoSeries(shapely.transform(np.asarray(geoms.geometry.values), fn),
                             index=geoms.index, crs=crs_label)
    return shapely.transform(geoms, fn)


def to_metric(geoms):
    """WGS84 geometries -> METRIC_CRS (EPSG:4548, metres) for planar work in Beijing."""
    return _map_geoms(geoms, _transformer("EPSG:4326", METRIC_CRS), METRIC_CRS)


def local_metric_epsg(lon) -> np.ndarray:
    """For each longitude, the EPSG code (int) of the CGCS2000 3-degree Gauss-Krüger CRS
    (unprefixed, EPSG:4534–4554, central meridians 75–135°E) whose central meridian is
    nearest: planar metres with a scale error below 0.14 % within its 1.5° half-width
    (0.03 % for Beijing). A longitude in [115.5, 118.5) gets EPSG:4548 (METRIC_CRS, CM 117°E),
    so Beijing (115.4–117.5°E; its zones' centres lie east of 115.5°E) keeps it; longitudes
    outside China's span take the nearest end of the family."""
    meridian = np.clip(np.floor(np.asarray(lon, dtype=float) / 3 + 0.5) * 3, 75, 135)
    return (4534 + (meridian - 75) // 3).astype(np.int32)


def to_local_metric(geoms, epsg: int):
    """WGS84 geometries -> the Gauss-Krüger CRS ``epsg`` of ``local_metric_epsg`` (metres).
    For 4548 this is exactly ``to_metric``."""
    return _map_geoms(geoms, _transformer("EPSG:4326", f"EPSG:{int(epsg)}"), f"EPSG:{int(epsg)}")


def to_web_mercator(geoms):
    """WGS84 geometries -> EPSG:3857, for display only (vector tiles): never for areas or distances."""
    return _map_geoms(geoms, _transformer("EPSG:4326", "EPSG:3857"), "EPSG:3857")


def from_metric(geoms):
    """METRIC_CRS (EPSG:4548) geometries -> WGS84."""
    return _map_geoms(geoms, _transformer(METRIC_CRS, "EPSG:4326"), "EPSG:4326")


# CGCS2000 is defined on GRS80; the difference from WGS84's ellipsoid is sub-millimetre.
_GEOD = pyproj.Geod(ellps="GRS80")


def _geometry_array(geoms):
    if hasattr(geoms, "geometry") and hasattr(geoms, "index"):
        geoms = geoms.geometry.values
    return np.asarray(geoms, dtype=object).reshape(-1)


def _ring_sums(geoms, rings_of, measure):
    """Sum ``measure(ring)`` over ``rings_of(parts)`` for each geometry of an array."""
    arr = _geometry_array(geoms)
    parts, part_owner = shapely.get_parts(arr, return_index=True)
    rings, ring_part = rings_of(parts)
    totals = np.zeros(arr.size)
    for ring, owner in zip(rings, part_owner[ring_part], strict=True):
        totals[owner] += measure(ring)
    return totals


def geodesic_area_m2(geoms):
    """Geodesic area in m² (GRS80 ellipsoid) of each WGS84 geometry; a float for one geometry.

    Each exterior ring counts positive and each hole negative whatever their winding, so
    unoriented polygons with holes come out right. Non-polygons have area 0.
    """
    def rings_of(parts):
        polys = shapely.get_type_id(parts) == 3
        rings, idx = shapely.get_rings(parts[polys], return_index=True)
        # get_rings lists the exterior first, then the holes of each polygon
        first = np.r_[True, idx[1:] != idx[:-1]] if idx.size else np.zeros(0, bool)
        return list(zip(rings, first, strict=True)), np.flatnonzero(polys)[idx]

    def measure(ring_and_sign):
        ring, is_exterior = ring_and_sign
        coords = shapely.get_coordinates(ring)
        area = abs(_GEOD.polygon_area_perimeter(coords[:, 0], coords[:, 1])[0])
        return area if is_exterior else -area

    totals = _ring_sums(geoms, rings_of, measure)
    return float(totals[0]) if isinstance(geoms, shapely.Geometry) else totals


def geodesic_length_m(geoms):
    """Geodesic length in metres of each WGS84 geometry (lines; polygon rings = perimeter)."""
    def rings_of(parts):
        lines = np.isin(shapely.get_type_id(parts), (1, 2))
        polys = shapely.get_type_id(parts) == 3
        rings, idx = shapely.get_rings(parts[polys], return_index=True)
        owners = np.r_[np.flatnonzero(lines), np.flatnonzero(polys)[idx]].astype(int)
        return list(parts[lines]) + list(rings), owners

    def measure(line):
        coords = shapely.get_coordinates(line)
        return _GEOD.line_length(coords[:, 0], coords[:, 1])

    totals = _ring_sums(geoms, rings_of, measure)
    return float(totals[0]) if isinstance(geoms, shapely.Geometry) else totals


def geodesic_distance_m(lon1, lat1, lon2, lat2):
    """Geodesic distance in metres between WGS84 points (numpy-broadcast)."""
    lon1, lat1, lon2, lat2 = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (lon1, lat1, lon2, lat2)))
    _, _, dist = _GEOD.inv(lon1, lat1, lon2, lat2)
    dist = np.asarray(dist, dtype=float)
    return float(dist) if dist.ndim == 0 else dist


# ---------------------------------------------------------------- Gauss-Krüger helpers


class GKGuess(NamedTuple):
    crs: str
    reason: str


# EPSG numbering of the CGCS2000 3-degree Gauss-Krüger CRSs: zone-prefixed zones 25..45
# are EPSG:4513..4533; unprefixed central meridians 75..135°E are EPSG:4534..4554.
_GK_PREFIXED_ZONES = range(25, 46)
_GK_CENTRAL_MERIDIANS = range(75, 136, 3)


def _gk_prefixed_epsg(zone: int) -> str:
    return f"EPSG:{4513 + zone - 25}"


def _gk_unprefixed_epsg(central_meridian: int) -> str:
    return f"EPSG:{4534 + (central_meridian - 75) // 3}"


def detect_gk_crs(x, y, central_meridian: float | None = None) -> GKGuess:
    """Guess the CGCS2000 3-degree Gauss-Krüger CRS of projected coordinates.

    An easting of 10 000 000 or more carries the zone number in front (39 500 000 is zone
    39, central meridian 117°E -> EPSG:4527). A plain easting (500 000 ± 300 000) carries no
    zone: the central meridian is ``central_meridian`` if given, else 117°E (Beijing,
    EPSG:4548) — say which in ``reason``. Raises CoordinateError for anything else.
    """
    x, y = _as_arrays(x, y)
    _check_finite(x, y, "x", "y")
    easting = float(np.median(x))
    northing = float(np.median(y))
    if not 0 < northing < 6.5e6:
        raise CoordinateError(
            f"northing {northing:.0f} m is not a Gauss-Krüger northing in China (0..6 500 000 m)")
    if easting >= 1e7:
        zones = np.unique((x // 1e6).astype(int))
        if zones.size != 1 or int(zones[0]) not in _GK_PREFIXED_ZONES:
            raise CoordinateError(
                f"eastings carry zone prefixes {sorted(int(z) for z in zones)}; "
                f"expected one 3-degree zone in 25..45")
        zone = int(zones[0])
        crs = _gk_prefixed_epsg(zone)
        return GKGuess(crs, f"eastings ≥ 10 000 000 carry zone prefix {zone} "
                            f"(central meridian {zone * 3}°E): {describe_crs(crs)}")
    if not 1e5 <= easting <= 9e5:
        raise CoordinateError(
            f"easting {easting:.0f} m is neither a plain Gauss-Krüger easting (~500 000) "
            f"nor a zone-prefixed one (≥ 10 000 000)")
    if central_meridian is None:
        cm, how = 117, "no zone prefix; central meridian assumed 117°E (Beijing)"
    else:
        cm, how = int(round(central_meridian)), f"no zone prefix; central meridian {central_meridian}°E given"
        if cm not in _GK_CENTRAL_MERIDIANS or cm != central_meridian:
            raise CoordinateError(
                f"central meridian {central_meridian} is not a 3-degree zone meridian (75, 78, …, 135)")
    crs = _gk_unprefixed_epsg(cm)
    return GKGuess(crs, f"{how}: {describe_crs(crs)}")


def crs_from_prj(wkt: str) -> str | None:
    """The 'EPSG:n' (or normalised name) of a .prj / WKT text, or None if unidentifiable.

    pyproj identifies ESRI-style names such as CGCS2000_3_Degree_GK_CM_117E (EPSG:4548)
    and CGCS2000_3_Degree_GK_Zone_39 (EPSG:4527). When it cannot, a CGCS2000 transverse
    Mercator with unit scale, a 3-degree central meridian and false easting 500 000 (or
    zone × 1 000 000 + 500 000) is recognised by its parameters.
    """
    try:
        crs = pyproj.CRS.from_user_input(wkt)
    except pyproj.exceptions.CRSError:
        return None
    code = crs.to_epsg(min_confidence=70)
    if code is not None:
        return parse_crs(f"EPSG:{code}")
    return _cgcs2000_gk_by_parameters(crs)


def _cgcs2000_gk_by_parameters(crs: pyproj.CRS) -> str | None:
    datum = (crs.datum.name if crs.datum else "").lower().replace(" ", "_")
    if crs.coordinate_operation is None or not ("2000" in datum and "china" in datum or "cgcs" in datum):
        return None
    params = {p.name.lower(): p.value for p in crs.coordinate_operation.params}
    cm = params.get("longitude of natural origin")
    fe = params.get("false easting")
    k = params.get("scale factor at natural origin")
    if cm is None or fe is None or k != 1 or cm not in _GK_CENTRAL_MERIDIANS:
        return None
    if fe == 500000:
        return _gk_unprefixed_epsg(int(cm))
    zone = int(cm) // 3
    if fe == zone * 1e6 + 500000 and zone in _GK_PREFIXED_ZONES:
        return _gk_prefixed_epsg(zone)
    return None
