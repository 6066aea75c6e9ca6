"""OGC API – Features (Part 1 Core, GeoJSON, HTML, OpenAPI 3.0; Part 2 CRS by reference).

One collection per zone layer present in the data (ids are ``geo.schema.LAYERS`` keys,
``admin`` included when the base layer is loaded). Every request answers from one
catalog snapshot, so paging and counts never mix two data versions.

Choices a client can rely on (also in the OpenAPI descriptions):

* ``limit`` defaults to 100; values above 10 000 are clamped to 10 000 (the standard
  lets servers clamp); non-integers and values below 1 are a 400.
* Paging is by ``offset`` through ``next``/``prev`` links.
* ``bbox`` keeps features whose real geometry intersects the box, not just its bounds.
* ``datetime`` selects zones in force at an instant or during an interval. A zone is in
  force from ``effective_from`` (inclusive) until ``effective_to`` (exclusive, open when
  empty); RFC 3339 instants are taken as Beijing dates (UTC+8), since gazette dates are.
* With ``crs``/``bbox-crs`` coordinates follow the CRS's own axis order (OGC API –
  Features Part 2): EPSG:4326 and EPSG:4490 are latitude, longitude; EPSG:4548 is
  northing, easting; CRS84 and EPSG:3857 are easting first.
* Unknown query parameters and bad values are a 400 that names the problem.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates

from api.dependencies import BEIJING
from geo import crs as geocrs
from geo.export import FORMATS
from geo.schema import (
    ACCURACY,
    ACCURACY_TEXT,
    ADCODE_RE,
    DATE_COLUMNS,
    FLOAT_COLUMNS,
    LAYERS,
    POINT_LAYERS,
    ZONE_COLUMNS,
    zone_properties,
    zones_to_geojson,
)
from geo.selection import in_force_mask

router = APIRouter(tags=["OGC API – Features"])
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
JSON_SCHEMA = "application/schema+json"

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
]
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000


@dataclass(frozen=True)
class OutputCRS:
    uri: str
    name: str  # geo.crs name used for the transformation
    swap_axes: bool  # the CRS's first axis is north (latitude or northing)
    decimals: int  # 1e-7 degree is ~1 cm; projected output to the millimetre


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

ITEM_FILTERS = ("district_code", "kind", "accuracy")
ITEMS_PARAMS = frozenset({"f", "bbox", "bbox-crs", "crs", "datetime", "limit", "offset", *ITEM_FILTERS})


def bad_request(message: str) -> HTTPException:
    return HTTPException(status_code=400, detail=message)


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


def _beijing_date(text: str, name: str) -> str:
    text = text.strip()
    try:
        if "T" not in text.upper():
            return dt.date.fromisoformat(text).isoformat()
        moment = dt.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"{name}={text!r} is not an RFC 3339 date or date-time") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(BEIJING)
    return moment.date().isoformat()


def parse_datetime(value: str | None) -> tuple[str | None, str | None]:
    """Inclusive (first, last) Beijing dates of an instant or interval; None = open end."""
    if value is None:
        return None, None
    parts = value.split("/")
    if len(parts) > 2 or not value.strip():
        raise bad_request(f"datetime={value!r} must be an instant or an interval 'start/end' ('..' = open)")
    if len(parts) == 1:
        if parts[0].strip() == "..":
            raise bad_request("datetime='..' is only allowed as one end of an interval")
        day = _beijing_date(parts[0], "datetime")
        return day, day
    start, end = (None if p.strip() in ("", "..") else _beijing_date(p, "datetime") for p in parts)
    if start and end and start > end:
        raise bad_request(f"datetime={value!r}: the interval starts after it ends")
    return start, end


def parse_list(name: str, value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise bad_request(f"{name} is empty")
    return items


# ------------------------------------------------------------------ selection


def select_items(zones: gpd.GeoDataFrame, *, bbox=None, first=None, last=None,
                 filters: dict[str, list[str]] | None = None) -> gpd.GeoDataFrame:
    mask = in_force_mask(zones, first, last)
    for column, values in (filters or {}).items():
        mask &= zones[column].isin(values).to_numpy()
    if bbox is not None:
        mask &= shapely.intersects(zones.geometry.values, bbox)
    return zones[mask]


def layer_zones(request: Request, layer: str):
    """(snapshot, zones of ``layer``) or 404 naming the collections that exist."""
    snap = request.app.state.catalog.snapshot()
    zones = snap.zones
    present = layers_present(zones)
    if layer not in present:
        raise HTTPException(404, f"no collection {layer!r}; collections are {', '.join(present)}")
    return snap, zones[zones["layer"] == layer]


def layers_present(zones: gpd.GeoDataFrame) -> list[str]:
    """Layers with at least one zone, in registry order."""
    present = set(zones["layer"])
    return [layer for layer in LAYERS if layer in present]


# ------------------------------------------------------------------ encoding


def features_in(frame: gpd.GeoDataFrame, out: OutputCRS) -> list[dict[str, Any]]:
    """GeoJSON features; RFC 7946 (lon/lat, counter-clockwise exteriors) for CRS84."""
    if len(frame) == 0:
        return []
    if out.uri != CRS84:
        frame = geocrs.frame_from_wgs84(frame, out.name)
        if out.swap_axes:
            frame = frame.set_geometry(_swap_xy(frame.geometry.values))
    return zones_to_geojson(frame, precision=out.decimals)["features"]


def link(href: str, rel: str, media: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": media, "title": title}


def url_with(request: Request, **params: Any) -> str:
    """The request URL with query parameters replaced (None removes one)."""
    url = request.url
    for key, value in params.items():
        url = url.remove_query_params(key) if value is None else url.include_query_params(**{key: value})
    return str(url)


def _self_and_alternate(request: Request, html: bool) -> list[dict[str, str]]:
    json_media = GEOJSON if "/items" in request.url.path else JSON
    as_json = link(url_with(request, f="json"), "self" if not html else "alternate", json_media, "JSON")
    as_html = link(url_with(request, f="html"), "self" if html else "alternate", HTML, "HTML 网页")
    return [as_html, as_json] if html else [as_json, as_html]


def _json(content: Any, media: str = JSON, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(content, media_type=media, headers=headers)


def _html(request: Request, template: str, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, template, {"layers": LAYERS, "accuracy_text": ACCURACY_TEXT,
                                                          **context})


def _temporal_iso(day: str | None) -> str | None:
    return f"{day}T00:00:00+08:00" if day else None


def collection_info(request: Request, zones: gpd.GeoDataFrame, layer: str) -> dict[str, Any]:
    meta = LAYERS[layer]
    subset = zones[zones["layer"] == layer]
    minx, miny, maxx, maxy = (round(float(v), 7) for v in subset.total_bounds)
    ends = subset["effective_to"]
    base = str(request.url_for("ogc_collection", layer=layer))
    items = str(request.url_for("ogc_items", layer=layer))
    accuracy = ", ".join(sorted(set(subset["accuracy"])))
    return {
        "id": layer,
        "title": f"{meta.title_zh} / {meta.title_en}",
        "description": (f"{meta.description_zh}。{meta.description_en}. "
                        f"边界精度 accuracy: {accuracy}. 由文本数字化的边界不是法定边界 / "
                        "boundaries digitised from text are not the legal line."),
        "keywords": [meta.title_zh, meta.title_en, layer],
        "itemType": "feature",
        "links": [
            link(base + "?f=json", "self", JSON, "本集合 this collection"),
            link(base + "?f=html", "alternate", HTML, "本集合网页 this collection as HTML"),
            link(items + "?f=json", "items", GEOJSON, "要素 GeoJSON items"),
            link(items + "?f=html", "items", HTML, "要素网页 items as HTML"),
            # "describedBy" (rel names compare case-insensitively) is what GDAL's OAPIF driver
            # reads to type the fields instead of guessing them from the first page.
            link(str(request.url_for("ogc_schema", layer=layer)), "describedBy", JSON_SCHEMA,
                 "要素属性结构 feature schema"),
        ],
        "extent": {
            "spatial": {"bbox": [[minx, miny, maxx, maxy]], "crs": CRS84},
            "temporal": {
                "interval": [[_temporal_iso(subset["effective_from"].min()),
                              None if ends.isna().any() else _temporal_iso(ends.max())]],
                "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
            },
        },
        "crs": list(SUPPORTED_CRS),
        "storageCrs": CRS84,
        "zoneCount": len(subset),
    }


# ------------------------------------------------------------------ routes

F_PARAM = Query(None, description="Output format: json (GeoJSON/JSON) or html; default from the Accept header")


@router.get("/", name="ogc_landing", summary="Landing page (OGC API – Features)", response_model=None)
def landing(request: Request, f: str | None = F_PARAM):
    check_known_params(request, frozenset({"f"}))
    html = wants_html(request, f)
    snap = request.app.state.catalog.snapshot()
    root = str(request.base_url).rstrip("/")
    links = _self_and_alternate(request, html) + [
        link(f"{root}/openapi.json", "service-desc", OPENAPI, "API 定义 OpenAPI 3.0 definition"),
        link(f"{root}/docs", "service-doc", HTML, "API 文档 API documentation"),
        link(f"{root}/conformance", "conformance", JSON, "符合的标准 conformance classes"),
        link(f"{root}/collections", "data", JSON, "图层集合 collections"),
        link(f"{root}/map", "related", HTML, "地图 map viewer"),
    ]
    downloads = [link(f"{root}/v1/export?format={fmt.name}", "enclosure", fmt.media_type, fmt.title)
                 for fmt in FORMATS.values()]
    body = {
        "title": request.app.title,
        "description": request.app.description,
        "dataVersion": snap.data_version,
        "links": links + downloads,
    }
    if html:
        return _html(request, "landing.html", body=body, links=links, downloads=downloads,
                     collections=layers_present(snap.zones), zone_count=len(snap.zones))
    return _json(body)


@router.get("/conformance", name="ogc_conformance", summary="Conformance classes", response_model=None)
def conformance(request: Request, f: str | None = F_PARAM):
    check_known_params(request, frozenset({"f"}))
    body = {"conformsTo": CONFORMANCE}
    if wants_html(request, f):
        return _html(request, "conformance.html", body=body, links=_self_and_alternate(request, True))
    return _json(body)


@router.get("/collections", name="ogc_collections", summary="Zone layers as feature collections",
            response_model=None)
def collections(request: Request, f: str | None = F_PARAM):
    check_known_params(request, frozenset({"f"}))
    html = wants_html(request, f)
    snap = request.app.state.catalog.snapshot()
    infos = [collection_info(request, snap.zones, layer) for layer in layers_present(snap.zones)]
    links = _self_and_alternate(request, html)
    body = {"links": links, "collections": infos, "crs": list(SUPPORTED_CRS), "dataVersion": snap.data_version}
    if html:
        return _html(request, "collections.html", body=body, links=links)
    return _json(body)


@router.get("/collections/{layer}", name="ogc_collection", summary="One zone layer", response_model=None)
def collection(request: Request, layer: str, f: str | None = F_PARAM):
    check_known_params(request, frozenset({"f"}))
    html = wants_html(request, f)
    snap, _ = layer_zones(request, layer)
    info = collection_info(request, snap.zones, layer)
    if html:
        return _html(request, "collection.html", info=info, links=info["links"],
                     data_version=snap.data_version)
    return _json(info)


def _property_schema(column: str) -> dict[str, Any]:
    if column in FLOAT_COLUMNS:
        return {"type": "number", "nullable": True}
    if column in DATE_COLUMNS:
        return {"type": "string", "format": "date", "nullable": True}
    if column == "rules":
        rule = {"type": "object", "properties": {k: {"type": "string"} for k in ("code", "text_zh", "text_en")}}
        return {"type": "array", "items": rule}
    if column == "accuracy":
        return {"type": "string", "enum": list(ACCURACY)}
    return {"type": "string", "nullable": True}


@router.get("/collections/{layer}/schema", name="ogc_schema", summary="Schema of the zones' properties",
            response_model=None)
def schema(request: Request, layer: str):
    """The feature schema (JSON Schema; ``nullable`` as in OpenAPI 3.0, which GDAL understands)."""
    check_known_params(request, frozenset({"f"}))
    layer_zones(request, layer)
    geometry = ["Point", "MultiPoint"] if layer in POINT_LAYERS else ["Polygon", "MultiPolygon"]
    body = {
        "$id": str(request.url_for("ogc_schema", layer=layer)),
        "title": f"{LAYERS[layer].title_zh} / {LAYERS[layer].title_en}",
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": "string"},
            "geometry": {"type": "object", "properties": {"type": {"type": "string", "enum": geometry}}},
            "properties": {
                "type": "object",
                "properties": {column: _property_schema(column) for column in ZONE_COLUMNS},
            },
        },
    }
    return _json(body, JSON_SCHEMA)


@router.get("/collections/{layer}/items", name="ogc_items", summary="Zones of one layer (GeoJSON or HTML)",
            response_model=None)
def items(
    request: Request,
    layer: str,
    f: str | None = F_PARAM,
    bbox: str | None = Query(None, description="minx,miny,maxx,maxy in bbox-crs (default CRS84 lon/lat); "
                             "keeps zones whose geometry intersects the box"),
    bbox_crs: str | None = Query(None, alias="bbox-crs", description="CRS URI of bbox (see the collection's crs list)"),
    crs: str | None = Query(None, description="Output CRS URI (see the collection's crs list); default CRS84"),
    datetime: str | None = Query(None, description="Instant or interval ('..' = open end): zones in force then"),
    limit: str | None = Query(None, description=f"Page size, 1..{MAX_LIMIT} (larger values are clamped), "
                              f"default {DEFAULT_LIMIT}"),
    offset: str | None = Query(None, description="Zones to skip (paging; follow the next/prev links)"),
    district_code: str | None = Query(None, description="District adcode(s), comma-separated, e.g. 110109"),
    kind: str | None = Query(None, description="Zone kind(s), comma-separated"),
    accuracy: str | None = Query(None, description=f"Accuracy level(s), comma-separated: {', '.join(ACCURACY)}"),
):
    check_known_params(request, ITEMS_PARAMS)
    html = wants_html(request, f)
    out = parse_crs_uri("crs", crs)
    box = parse_bbox(bbox, parse_crs_uri("bbox-crs", bbox_crs))
    first, last = parse_datetime(datetime)
    page_size = min(parse_int("limit", limit, DEFAULT_LIMIT, 1), MAX_LIMIT)
    skip = parse_int("offset", offset, 0, 0)
    filters = {name: values for name, values in
               (("district_code", parse_list("district_code", district_code)),
                ("kind", parse_list("kind", kind)),
                ("accuracy", parse_list("accuracy", accuracy))) if values is not None}
    for code in filters.get("district_code", []):
        if not ADCODE_RE.match(code):
            raise bad_request(f"district_code={code!r} is not a 6-digit adcode")
    for level in filters.get("accuracy", []):
        if level not in ACCURACY:
            raise bad_request(f"accuracy={level!r} is not one of {', '.join(ACCURACY)}")

    snap, zones = layer_zones(request, layer)
    matched = select_items(zones, bbox=box, first=first, last=last, filters=filters)
    page = matched.iloc[skip:skip + page_size]
    features = features_in(page, out)

    links = _self_and_alternate(request, html)
    link_media, link_f = (HTML, "html") if html else (GEOJSON, "json")
    if skip + len(page) < len(matched):
        links.append(link(url_with(request, f=link_f, offset=skip + page_size, limit=page_size), "next",
                          link_media, "下一页 next page"))
    if skip > 0:
        links.append(link(url_with(request, f=link_f, offset=max(0, skip - page_size), limit=page_size), "prev",
                          link_media, "上一页 previous page"))
    links.append(link(str(request.url_for("ogc_collection", layer=layer)), "collection", JSON,
                      "所属集合 the collection"))
    body = {
        "type": "FeatureCollection",
        "features": features,
        "links": links,
        "numberMatched": len(matched),
        "numberReturned": len(features),
        "timeStamp": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "dataVersion": snap.data_version,
    }
    headers = {"Content-Crs": f"<{out.uri}>"}
    if html:
        response = _html(request, "items.html", body=body, links=links, layer=layer, offset=skip,
                         crs_uri=out.uri)
        response.headers.update(headers)
        return response
    return _json(body, GEOJSON, headers)


@router.get("/collections/{layer}/items/{zone_id}", name="ogc_item", summary="One zone (GeoJSON or HTML)",
            response_model=None)
def item(
    request: Request,
    layer: str,
    zone_id: str,
    f: str | None = F_PARAM,
    crs: str | None = Query(None, description="Output CRS URI (see the collection's crs list); default CRS84"),
):
    check_known_params(request, frozenset({"f", "crs"}))
    html = wants_html(request, f)
    out = parse_crs_uri("crs", crs)
    snap, zones = layer_zones(request, layer)
    match = zones[zones["zone_id"] == zone_id]
    if match.empty:
        raise HTTPException(404, f"no zone {zone_id!r} in collection {layer!r}")
    feature = features_in(match, out)[0]
    links = _self_and_alternate(request, html) + [
        link(str(request.url_for("ogc_collection", layer=layer)), "collection", JSON, "所属集合 the collection"),
    ]
    feature["links"] = links
    headers = {"Content-Crs": f"<{out.uri}>"}
    if html:
        props = zone_properties(match.iloc[0].to_dict())
        svg = geometry_svg(match.geometry.iloc[0], LAYERS[layer].color)
        response = _html(request, "item.html", feature=feature, props=props, links=links, layer=layer,
                         data_version=snap.data_version, svg=svg)
        response.headers.update(headers)
        return response
    return _json(feature, GEOJSON, headers)


def geometry_svg(geom, color: str, size: int = 320) -> str:
    """A small inline SVG outline of a WGS84 geometry (north up, longitudes scaled by cos(lat))."""
    minx, miny, maxx, maxy = geom.bounds
    kx = math.cos(math.radians((miny + maxy) / 2))
    span = max((maxx - minx) * kx, maxy - miny, 1e-6)
    pad = span * 0.05
    # Map lon/lat to SVG coordinates: x right, y down.
    shape = shapely.transform(geom, lambda c: np.column_stack([(c[:, 0] - minx) * kx, maxy - c[:, 1]]))
    stroke = span / 150
    inner = shape.svg(scale_factor=stroke * (2 if shape.geom_type.endswith("Point") else 1), fill_color=color)
    view = f"{-pad} {-pad} {(maxx - minx) * kx + 2 * pad} {maxy - miny + 2 * pad}"
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="outline" viewBox="{view}" width="{size}" height="{size}" '
            f'preserveAspectRatio="xMidYMid meet" role="img" aria-label="zone outline">{inner}</svg>')
