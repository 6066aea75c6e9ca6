"""Request parsing of the OGC API routes: format negotiation, integers, CRS URIs, bbox,
unknown parameters; and the OGC exception (``{"code", "description"}``) every error is.

Axis order follows each CRS (OGC API – Features Part 2): EPSG:4326 and EPSG:4490 are
latitude, longitude; EPSG:4548 is northing, easting; CRS84 and EPSG:3857 are easting first.
"""

from __future__ import annotations

import math

import pyproj
import shapely
from fastapi import Request

from api.errors import OGCException
from api.ogc_features import CRS84, OutputCRS
from geo import crs as geocrs

GEOJSON = "application/geo+json"
JSON = "application/json"


def _output_crs(uri: str, name: str) -> OutputCRS:
    epsg = {"wgs84": "EPSG:4326", "cgcs2000": "EPSG:4490"}.get(name, name)
    crs = pyproj.CRS.from_user_input(epsg)
    swap = uri != CRS84 and crs.axis_info[0].direction in ("north", "south")
    return OutputCRS(uri, name, swap, 7 if crs.is_geographic else 3)


SUPPORTED_CRS: dict[str, OutputCRS] = {
    uri: _output_crs(uri, geocrs.parse_crs(uri))
    for uri in (
        CRS84,
        "http://www.opengis.net/def/crs/EPSG/0/4326",
        "http://www.opengis.net/def/crs/EPSG/0/4490",
        "http://www.opengis.net/def/crs/EPSG/0/4548",
        "http://www.opengis.net/def/crs/EPSG/0/3857",
    )
}

def bad_request(message: str) -> OGCException:
    return OGCException(400, "InvalidParameterValue", message)


def not_found(message: str) -> OGCException:
    return OGCException(404, "NotFound", message)


# ------------------------------------------------------------------ request parsing


def check_known_params(request: Request, allowed: frozenset[str]) -> None:
    """OGC /req/core/query-param-unknown: an unknown parameter is a 400, not ignored."""
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise bad_request(f"unknown query parameter(s) {', '.join(unknown)}; "
                          f"this resource accepts {', '.join(sorted(allowed))}")


def wants_html(request: Request, f: str | None) -> bool:
    """``f=json|html`` wins; otherwise the Accept header (browsers ask for text/html)."""
    if f is not None:
        value = f.strip().lower()
        if value in ("json", "geojson"):
            return False
        if value == "html":
            return True
        raise bad_request(f"f={f!r} is not supported; use f=json or f=html")
    best_html, best_json = 0.0, 0.0
    for position, part in enumerate(request.headers.get("accept", "").split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        q -= position * 1e-6  # earlier entries win ties
        if media.lower() in ("text/html", "application/xhtml+xml"):
            best_html = max(best_html, q)
        elif media.lower() in (GEOJSON, JSON, "application/*"):
            best_json = max(best_json, q)
    return best_html > best_json


def parse_int(name: str, value: str | None, default: int, minimum: int) -> int:
    if value is None:
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise bad_request(f"{name}={value!r} is not an integer") from None
    if number < minimum:
        raise bad_request(f"{name}={number} is below the minimum {minimum}")
    return number


def parse_crs_uri(name: str, value: str | None) -> OutputCRS:
    if value is None:
        return SUPPORTED_CRS[CRS84]
    key = value.strip().strip("<>")
    if key.lower().startswith("https://"):
        key = "http://" + key[len("https://"):]
    for uri, out in SUPPORTED_CRS.items():
        if key.lower() == uri.lower():
            return out
    raise bad_request(f"{name}={value!r} is not supported; use one of {', '.join(SUPPORTED_CRS)}")


def _swap_xy(geoms):
    return shapely.transform(geoms, lambda c: c[:, ::-1])


def parse_bbox(value: str | None, bbox_crs: OutputCRS):
    """The bbox as a WGS84 (multi)polygon; None when absent."""
    if value is None:
        return None
    try:
        numbers = [float(v) for v in value.split(",")]
    except ValueError:
        raise bad_request(f"bbox={value!r} must be 4 (or 6) comma-separated numbers") from None
    if len(numbers) == 6:  # 3-D box: zones are 2-D, heights are ignored
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4 or not all(math.isfinite(n) for n in numbers):
        raise bad_request(f"bbox={value!r} must be 4 (or 6) finite comma-separated numbers")
    if bbox_crs.swap_axes:
        numbers = [numbers[1], numbers[0], numbers[3], numbers[2]]
    minx, miny, maxx, maxy = numbers
    if miny > maxy:
        raise bad_request(f"bbox={value!r}: the lower corner is above the upper corner")
    if bbox_crs.decimals == 7:  # geographic
        if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise bad_request(f"bbox={value!r} is outside longitude -180..180, latitude -90..90"
                              + (" (axis order is latitude, longitude for this bbox-crs)"
                                 if bbox_crs.swap_axes else ""))
        if minx > maxx:  # crosses the antimeridian
            return shapely.union(shapely.box(minx, miny, 180, maxy), shapely.box(-180, miny, maxx, maxy))
        return shapely.box(minx, miny, maxx, maxy)
    if minx > maxx:
        raise bad_request(f"bbox={value!r}: the lower corner is right of the upper corner")
    # A projected box is curved in lon/lat: densify its edges before converting.
    box = shapely.segmentize(shapely.box(minx, miny, maxx, maxy), max(maxx - minx, maxy - miny, 1.0) / 64)
    try:
        return geocrs.geometry_to_wgs84(box, bbox_crs.name)
    except ValueError as exc:
        raise bad_request(f"bbox={value!r} in {bbox_crs.uri}: {exc}") from None
