"""Request parsing shared by the routers: crs, as_of, layers, lang, near, point files.

Bad input is a 422 in FastAPI's own validation shape, so a client handles one format
whether FastAPI or we found the problem::

    {"detail": [{"loc": ["query", "lat"], "msg": "lat must be a finite number, got nan",
                 "type": "value_error"}]}

The parsers of request bodies (point files, site polygons) are plain functions raising
:class:`InputError`, so the CLI reads files with the same rules and messages.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from fastapi import HTTPException, Query, Request

from api.errors import PayloadTooLargeError
from api.jsonbody import JSONBodyError, TooManyArraysError, load_json
from geo import crs as geocrs
from geo.activities import ActivityError, parse_activities
from geo.selection import SelectionError, parse_date, parse_layers

# Beijing dates: gazettes date zones in local time, and "today" means today in Beijing.
BEIJING = dt.timezone(dt.timedelta(hours=8))
DEFAULT_NEAR_M = 1000.0
MAX_NEAR_M = 50_000.0


class InputError(ValueError):
    """Bad user input. ``loc`` says where, FastAPI-style: ("query", "lat"), ("body", "row", 5)."""

    def __init__(self, loc: tuple[str | int, ...], message: str):
        super().__init__(message)
        self.loc = loc
        self.message = message

    def detail(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.message, "type": "value_error"}


def unprocessable(*errors: InputError) -> HTTPException:
    return HTTPException(status_code=422, detail=[e.detail() for e in errors])


@contextlib.contextmanager
def answer_422() -> Iterator[None]:
    """Turn an InputError raised inside the block into its 422."""
    try:
        yield
    except InputError as exc:
        raise unprocessable(exc) from None


def today() -> str:
    return dt.datetime.now(BEIJING).date().isoformat()


# ------------------------------------------------------------------ plain parsers (API and CLI)


def parse_crs_field(value: str, name: str = "crs", location: str = "query") -> str:
    try:
        return geocrs.parse_crs(value)
    except geocrs.UnknownCRSError as exc:
        raise InputError((location, name), str(exc)) from None


def parse_as_of_field(value: str | None, name: str = "as_of", location: str = "query") -> str:
    """A YYYY-MM-DD date; None means today (Beijing)."""
    if value is None:
        return today()
    try:
        return parse_date(value, name)
    except SelectionError as exc:
        raise InputError((location, name), str(exc)) from None


def parse_layers_field(value: str | None, name: str = "layers", location: str = "query") -> list[str] | None:
    try:
        return parse_layers(value)
    except SelectionError as exc:
        raise InputError((location, name), str(exc).replace("layers is empty", f"{name} is empty")) from None


def parse_lang_field(value: str, name: str = "lang", location: str = "query") -> str:
    lang = value.strip().lower().split("-")[0]
    if lang not in ("zh", "en"):
        raise InputError((location, name), f"{name}={value!r} is not supported; use zh or en")
    return lang


def parse_activity_field(value: str | list[str] | None, name: str = "activity",
                         location: str = "query") -> list[str] | None:
    """Activity codes (comma-separated or repeated; aliases accepted), None when absent."""
    if isinstance(value, list):
        value = ",".join(value) if value else None
    try:
        return parse_activities(value)
    except ActivityError as exc:
        raise InputError((location, name), str(exc)) from None


def parse_near_field(value: float, name: str = "near", location: str = "query") -> float:
    if not math.isfinite(value) or not 0 <= value <= MAX_NEAR_M:
        raise InputError((location, name), f"{name} must be a distance in metres from 0 to {MAX_NEAR_M:.0f}, "
                                           f"got {value!r}")
    return float(value)


def coordinate_errors(exc: geocrs.CoordinateError, x: float, y: float, crs: str,
                      names: tuple[str, str] = ("lon", "lat"), location: str = "query") -> list[InputError]:
    """The field(s) a CoordinateError from ``to_wgs84`` is about."""
    xname, yname = names
    bad = []
    if not math.isfinite(x):
        bad.append(InputError((location, xname), f"{xname} must be a finite number, got {x!r}"))
    if not math.isfinite(y):
        bad.append(InputError((location, yname), f"{yname} must be a finite number, got {y!r}"))
    if bad:
        return bad
    message = point_problem(exc)
    lonlat = crs in ("wgs84", "cgcs2000", "gcj02", "bd09")
    if lonlat and abs(x) > 180 and abs(y) <= 90:
        return [InputError((location, xname), f"{xname}={x!r} is out of range: {message}")]
    if lonlat and abs(y) > 90 and abs(x) <= 180:
        return [InputError((location, yname), f"{yname}={y!r} is out of range: {message}")]
    return [InputError((location, xname), message), InputError((location, yname), message)]


def point_problem(exc: geocrs.CoordinateError) -> str:
    """geo.crs says "point 3 (lon=…, lat=…) is outside …"; the caller names the point."""
    return re.sub(r"^point \d+ ", "", str(exc))


# ------------------------------------------------------------------ FastAPI dependencies
# async: they only parse, so they run on the event loop instead of a worker thread.

CRS_HELP = ("Coordinate system of the input: wgs84 (GPS, default), cgcs2000, gcj02 (Amap/Tencent/WeChat), "
            "bd09 (Baidu) or EPSG:n (e.g. EPSG:4548, CGCS2000 Gauss-Krüger 117°E, x=easting y=northing)")


CRS_QUERY = Query("wgs84", description=CRS_HELP)
AS_OF_QUERY = Query(None, description="Date the rules apply on (YYYY-MM-DD); default today in Beijing. A zone "
                                      "applies from effective_from (inclusive) to effective_to (exclusive)")
LAYERS_QUERY = Query(None, description="Layer ids, comma-separated (default: all), e.g. livestock_ban,water_source")
LANG_QUERY = Query("zh", description="Language of the disclaimer: zh (default) or en")
ACTIVITY_QUERY = Query(None, description="Activity code(s), comma-separated or repeated (GET /v1/activities lists "
                                          "them), e.g. livestock_scale_farm_new: the answer opens with a verdict per "
                                          "activity — prohibited, restricted, unknown or no_rule_found")
NEAR_QUERY = Query(DEFAULT_NEAR_M, description=f"Also list zones within this many metres that do not contain the "
                                               f"point (0..{MAX_NEAR_M:.0f}; 0 = none)")


async def crs_param(crs: str = CRS_QUERY) -> str:
    with answer_422():
        return parse_crs_field(crs)


async def as_of_param(as_of: str | None = AS_OF_QUERY) -> str:
    with answer_422():
        return parse_as_of_field(as_of)


async def layers_param(layers: str | None = LAYERS_QUERY) -> list[str] | None:
    with answer_422():
        return parse_layers_field(layers)


async def lang_param(lang: str = LANG_QUERY) -> str:
    with answer_422():
        return parse_lang_field(lang)


async def activity_param(activity: list[str] | None = ACTIVITY_QUERY) -> list[str] | None:
    with answer_422():
        return parse_activity_field(activity)


async def near_param(near: float = NEAR_QUERY) -> float:
    with answer_422():
        return parse_near_field(near)


@dataclass(frozen=True)
class LookupParams:
    crs: str
    as_of: str
    layers: list[str] | None
    lang: str
    near_m: float


def lookup_params(crs: str, as_of: str | None, layers: str | None, lang: str, near: float) -> LookupParams:
    """All lookup parameters parsed at once; the 422 lists every bad one.

    The hot endpoints declare the parameters themselves (``crs: str = CRS_QUERY`` …) and
    call this, because FastAPI's cost per sub-dependency adds up to more than a lookup.
    """
    parsed, errors = {}, []
    for name, parse, value in (("crs", parse_crs_field, crs), ("as_of", parse_as_of_field, as_of),
                               ("layers", parse_layers_field, layers), ("lang", parse_lang_field, lang),
                               ("near_m", parse_near_field, near)):
        try:
            parsed[name] = parse(value)
        except InputError as exc:
            errors.append(exc)
    if errors:
        raise unprocessable(*errors)
    return LookupParams(**parsed)


# ------------------------------------------------------------------ request bodies


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refusing (413) more than ``max_bytes`` before reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLargeError(f"the body has {int(declared)} bytes; the limit is {max_bytes} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLargeError(f"the body is over the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class PointsInput:
    """Points read from a CSV or GeoJSON file; ``where[i]`` names point i for messages."""

    ids: list[Any]
    x: np.ndarray
    y: np.ndarray
    where: list[str]
    locs: list[tuple[str | int, ...]]


def _too_many(max_points: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"too many points: at most {max_points} points per request; "
                                "split the file into several requests")


def _number(text: str, loc: tuple, label: str, axis: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InputError(loc, f"{label}: {axis} {text!r} is not a number") from None
    except OverflowError:  # an integer of hundreds of digits
        raise InputError(loc, f"{label}: {axis} is a {int(text).bit_length()}-bit integer, too large for a "
                              "coordinate") from None
    if not math.isfinite(value):
        raise InputError(loc, f"{label}: {axis} must be a finite number, got {text!r}")
    return value


def read_points_csv(text: str, max_points: int | None = None) -> PointsInput:
    """CSV with a header naming ``lon`` and ``lat`` (or ``x`` and ``y``) and optionally
    ``id``; other columns are ignored. Rows are numbered as in a spreadsheet: the header
    is row 1. Without an id column a point's id is its row number."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(reader, None)
    names = [h.strip().lower() for h in header or []]
    xcol, ycol = ("lon", "lat") if {"lon", "lat"} <= set(names) else ("x", "y")
    if xcol not in names or ycol not in names:
        raise InputError(("body", "header"), "the CSV needs a header row naming lon and lat (or x and y) columns, "
                                             f"optionally id; got {','.join(header or []) or 'nothing'!r}")
    ix, iy = names.index(xcol), names.index(ycol)
    iid = names.index("id") if "id" in names else None
    ids, xs, ys, where, locs = [], [], [], [], []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        number = reader.line_num
        if max_points is not None and len(xs) >= max_points:
            raise _too_many(max_points)
        label, loc = f"row {number}", ("body", "row", number)
        if len(row) <= max(ix, iy):
            raise InputError(loc, f"{label}: has {len(row)} column(s), expected {xcol} and {ycol}")
        xs.append(_number(row[ix].strip(), loc, label, xcol))
        ys.append(_number(row[iy].strip(), loc, label, ycol))
        ids.append(row[iid].strip() if iid is not None and iid < len(row) and row[iid].strip() else number)
        where.append(label)
        locs.append(loc)
    return PointsInput(ids, np.array(xs, dtype=float), np.array(ys, dtype=float), where, locs)


def read_points_geojson(data: Any, max_points: int | None = None) -> PointsInput:
    """A FeatureCollection of Point features. A point's id is the feature's ``id``, else
    its ``properties.id``, else its position in ``features`` (from 0)."""
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" \
            or not isinstance(data.get("features"), list):
        raise InputError(("body",), "expected a GeoJSON FeatureCollection of Point features")
    features = data["features"]
    if max_points is not None and len(features) > max_points:
        raise _too_many(max_points)
    ids, xs, ys, where, locs = [], [], [], [], []
    for i, feature in enumerate(features):
        label, loc = f"features[{i}]", ("body", "features", i)
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        if not isinstance(geometry, dict) or geometry.get("type") != "Point":
            kind = geometry.get("type") if isinstance(geometry, dict) else type(geometry).__name__
            raise InputError(loc, f"{label}: geometry must be a Point, got {kind}")
        coords = geometry.get("coordinates")
        if not isinstance(coords, list) or len(coords) < 2:
            raise InputError(loc, f"{label}: coordinates must be [x, y], got {coords!r}")
        for value, axis in ((coords[0], "x"), (coords[1], "y")):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(loc, f"{label}: {axis} {value!r} is not a number")
        xs.append(_number(coords[0], loc, label, "x"))
        ys.append(_number(coords[1], loc, label, "y"))
        props = feature.get("properties") or {}
        ids.append(feature.get("id", props.get("id", i) if isinstance(props, dict) else i))
        where.append(label)
        locs.append(loc)
    return PointsInput(ids, np.array(xs, dtype=float), np.array(ys, dtype=float), where, locs)


# Site polygons: a vertex cap keeps one request from tying up a worker.
MAX_SITE_VERTICES = 100_000
MAX_SITE_RINGS = 10_000


def read_site(body: bytes, crs: str) -> shapely.Geometry:
    """A GeoJSON Polygon/MultiPolygon (or a Feature of one) in ``crs`` -> a valid WGS84
    polygon. Invalid polygons are refused with the reason (never repaired)."""
    try:
        # Every vertex is one "[": more than the cap (plus rings) is refused before parsing.
        data = load_json(body, max_arrays=MAX_SITE_VERTICES + MAX_SITE_RINGS, what="GeoJSON")
    except TooManyArraysError:
        raise InputError(("body",), f"the site has over {MAX_SITE_VERTICES} vertices; simplify it first") from None
    except JSONBodyError as exc:
        raise InputError(("body",), str(exc)) from None
    loc: tuple[str | int, ...] = ("body",)
    if isinstance(data, dict) and data.get("type") == "Feature":
        data, loc = data.get("geometry"), ("body", "geometry")
    if not isinstance(data, dict) or data.get("type") not in ("Polygon", "MultiPolygon"):
        kind = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise InputError(loc, f"the site must be a GeoJSON Polygon, MultiPolygon or a Feature of one; got {kind}")
    try:
        site = shapely.geometry.shape(data)
    except (KeyError, TypeError, ValueError, IndexError, OverflowError, shapely.errors.GEOSException) as exc:
        raise InputError(loc, f"the {data['type']} coordinates are malformed: {exc}") from None
    if site.is_empty:
        raise InputError(loc, "the site polygon is empty")
    if shapely.get_num_coordinates(site) > MAX_SITE_VERTICES:
        raise InputError(loc, f"the site has over {MAX_SITE_VERTICES} vertices; simplify it first")
    if not np.isfinite(shapely.get_coordinates(site)).all():
        raise InputError(loc, "the site has NaN or infinite coordinates")
    if not site.is_valid:
        raise InputError(loc, f"the site polygon is invalid: {shapely.is_valid_reason(site)} "
                              f"(coordinates in {crs}); fix it — polygons are not repaired automatically")
    try:
        wgs84 = geocrs.geometry_to_wgs84(site, crs)
    except geocrs.CoordinateError as exc:
        raise InputError(loc, f"the site has a coordinate outside {crs}: {exc}") from None
    if not wgs84.is_valid:
        raise InputError(loc, f"the site polygon becomes invalid in WGS84: {shapely.is_valid_reason(wgs84)}")
    return wgs84
