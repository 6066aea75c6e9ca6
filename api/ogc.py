"""OGC API – Features (Part 1 Core, GeoJSON, HTML, OpenAPI 3.0; Part 2 CRS by reference;
Part 3 queryables, property filters and CQL2 filters; sorting).

One collection per zone layer present in the data (ids are ``geo.schema.LAYERS`` keys,
``admin`` included when the base layer is loaded). Every request answers from one
catalog snapshot, so paging and counts never mix two data versions.

Choices a client can rely on (also in the OpenAPI descriptions):

* ``limit`` defaults to 100; values above 10 000 are clamped to 10 000 (the standard
  lets servers clamp); non-integers and values below 1 are a 400.
* Paging is by ``offset`` through ``next``/``prev`` links.
* ``bbox`` keeps features whose real geometry intersects the box, not just its bounds.
* ``datetime`` refers to each collection's temporal property ``issued_on``; ``in_force``
  selects zones in force at an instant or during an interval; ``filter`` (CQL2),
  ``sortby``, ``properties``, ``skipGeometry`` and ``name=value`` property filters are
  described in ``api.ogc_query``.
* Items are pre-encoded once per data version, layer and CRS (``api.ogc_features``);
  collections and items carry an ETag (``If-None-Match`` → 304).
* Errors are OGC exceptions: ``{"code": …, "description": …}`` (plus ``detail``, the
  same text, as every other route of the service answers).
* With ``crs``/``bbox-crs`` coordinates follow the CRS's own axis order (OGC API –
  Features Part 2): EPSG:4326 and EPSG:4490 are latitude, longitude; EPSG:4548 is
  northing, easting; CRS84 and EPSG:3857 are easting first.
* Unknown query parameters and bad values are a 400 that names the problem.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from api import ogc_openapi, ogc_tiles
from api import ogc_query as q
from api.ogc_features import CRS84, collection_bytes, encode_page, features_in, layer_data
from api.ogc_html import geometry_svg
from api.ogc_params import (
    GEOJSON,
    JSON,
    SUPPORTED_CRS,
    bad_request,
    check_known_params,
    not_found,
    parse_bbox,
    parse_crs_uri,
    parse_int,
    wants_html,
)
from geo.export import FORMATS
from geo.published import PUBLISHED_COLUMNS, column_type
from geo.schema import ACCURACY, ACCURACY_TEXT, LAYERS, POINT_LAYERS, zone_properties

router = APIRouter(tags=["OGC API – Features"])
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

HTML = "text/html"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
JSON_SCHEMA = "application/schema+json"

QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
# Only what is implemented and tested (tests/test_ogc.py, tests/test_ogc_query.py).
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/sorting",
]
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000


ITEMS_PARAMS = frozenset({"f", "bbox", "bbox-crs", "crs", "datetime", "in_force", "limit", "offset", "filter",
                          "filter-lang", "filter-crs", "sortby", "properties", "skipGeometry", *q.QUERYABLES})


def layer_snapshot(request: Request, layer: str):
    """(snapshot, the layer's LayerData) or 404 naming the collections that exist."""
    snap = request.app.state.catalog.snapshot()
    present = snap.derived("ogc-layers", layers_present)
    if layer not in present:
        raise not_found(f"no collection {layer!r}; collections are {', '.join(present)}")
    return snap, layer_data(snap, layer)


def layers_present(zones: gpd.GeoDataFrame) -> list[str]:
    """Layers with at least one zone, in registry order."""
    present = set(zones["layer"])
    return [layer for layer in LAYERS if layer in present]


# ------------------------------------------------------------------ encoding


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


def _etag(request: Request, data_version: str, html: bool) -> str:
    """Weak ETag of an answer: it is determined by the data version and the request (only
    ``timeStamp`` differs between two answers)."""
    key = f"{data_version}|{request.url}|{html}|{request.headers.get('accept', '')}"
    return 'W/"' + hashlib.blake2b(key.encode(), digest_size=12).hexdigest() + '"'


def _not_modified(request: Request, etag: str) -> Response | None:
    wanted = request.headers.get("if-none-match")
    if wanted and (wanted.strip() == "*" or etag.removeprefix("W/") in
                   [t.strip().removeprefix("W/") for t in wanted.split(",")]):
        return Response(status_code=304, headers={"ETag": etag})
    return None


def _json(content: Any, media: str = JSON, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(body, media_type=media, headers=headers)


def _html(request: Request, template: str, headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    response = templates.TemplateResponse(request, template, {"layers": LAYERS, "accuracy_text": ACCURACY_TEXT,
                                                              **context})
    response.headers.update(headers or {})
    return response


def _temporal_iso(day: str | None) -> str | None:
    return f"{day}T00:00:00+08:00" if day else None


def collection_info(request: Request, zones: gpd.GeoDataFrame, layer: str) -> dict[str, Any]:
    meta = LAYERS[layer]
    subset = zones[zones["layer"] == layer]
    minx, miny, maxx, maxy = (round(float(v), 7) for v in subset.total_bounds)
    issued = subset[q.TEMPORAL_PROPERTY].dropna()
    base = str(request.url_for("ogc_collection", layer=layer))
    items = str(request.url_for("ogc_items", layer=layer))
    accuracy = ", ".join(sorted(set(subset["accuracy"])))
    return {
        "id": layer,
        "title": f"{meta.title_zh} / {meta.title_en}",
        "description": (f"{meta.description_zh}。{meta.description_en}. "
                        f"边界精度 accuracy: {accuracy}. 由文本数字化的边界不是法定边界 / "
                        "boundaries digitised from text are not the legal line. "
                        f"时间范围与 datetime 参数指发布日期 {q.TEMPORAL_PROPERTY} / the temporal extent and the "
                        f"datetime parameter refer to the issue date, {q.TEMPORAL_PROPERTY}; in_force=DATE selects "
                        "the zones in force on that date."),
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
            link(str(request.url_for("ogc_queryables", layer=layer)), QUERYABLES_REL, JSON_SCHEMA,
                 "可查询属性 queryables"),
            *ogc_tiles.tile_collection_links(request, layer),
        ],
        "extent": {
            "spatial": {"bbox": [[minx, miny, maxx, maxy]], "crs": CRS84},
            "temporal": {
                "interval": [[_temporal_iso(issued.min()) if len(issued) else None,
                              _temporal_iso(issued.max()) if len(issued) else None]],
                "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
            },
        },
        # The property the temporal extent and `datetime` refer to (also x-ogc-role in the queryables).
        "temporalProperty": q.TEMPORAL_PROPERTY,
        "crs": list(SUPPORTED_CRS),
        "storageCrs": CRS84,
        "zoneCount": len(subset),
    }


# ------------------------------------------------------------------ routes

F_PARAM = Query(None, description="Output format: json (GeoJSON/JSON) or html; default from the Accept header")
ERRORS = {400: {"description": "Bad parameter (OGC exception: code, description)"},
          404: {"description": "No such collection or zone (OGC exception: code, description)"}}
CACHEABLE = {304: {"description": "Not modified (If-None-Match matches the ETag)"}}


@router.get("/", name="ogc_landing", summary="Landing page (OGC API – Features)", response_model=None,
            responses={400: ERRORS[400]})
def landing(request: Request, f: str | None = F_PARAM):
    check_known_params(request, frozenset({"f"}))
    html = wants_html(request, f)
    snap = request.app.state.catalog.snapshot()
    root = str(request.base_url).rstrip("/")
    links = _self_and_alternate(request, html) + [
        link(f"{root}/api", "service-desc", OPENAPI, "API 定义 OpenAPI 3.0 definition"),
        link(f"{root}/docs", "service-doc", HTML, "API 文档 API documentation"),
        link(f"{root}/conformance", "conformance", JSON, "符合的标准 conformance classes"),
        link(f"{root}/collections", "data", JSON, "图层集合 collections"),
        link(f"{root}/map", "related", HTML, "地图 map viewer"),
        *ogc_tiles.landing_links(request),
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


@router.get("/api", name="ogc_api", summary="OGC API definition (OpenAPI 3.0, one typed path per collection)",
            response_model=None, responses={
                200: {"content": {"application/vnd.oai.openapi+json;version=3.0": {"schema": {"type": "object"}}}},
                400: ERRORS[400]})
def api_definition(request: Request):
    check_known_params(request, frozenset({"f"}))
    snap = request.app.state.catalog.snapshot()
    root = str(request.base_url).rstrip("/")

    def build(zones: gpd.GeoDataFrame) -> bytes:
        doc = ogc_openapi.openapi_document(
            title=request.app.title, description=request.app.description, version=request.app.version,
            server=root, layers=layers_present(zones), crs_uris=list(SUPPORTED_CRS),
            property_schemas={c: property_schema(c) for c in PUBLISHED_COLUMNS},
            default_limit=DEFAULT_LIMIT, max_limit=MAX_LIMIT)
        return json.dumps(doc, ensure_ascii=False).encode()

    return Response(snap.derived(f"ogc-api:{root}", build), media_type=OPENAPI)


@router.get("/conformance", name="ogc_conformance", summary="Conformance classes", response_model=None,
            responses={400: ERRORS[400]})
def conformance(request: Request, f: str | None = F_PARAM):
    check_known_params(request, frozenset({"f"}))
    body = {"conformsTo": CONFORMANCE + ogc_tiles.CONFORMANCE}
    if wants_html(request, f):
        return _html(request, "conformance.html", body=body, links=_self_and_alternate(request, True))
    return _json(body)


@router.get("/collections", name="ogc_collections", summary="Zone layers as feature collections",
            response_model=None, responses={**CACHEABLE, 400: ERRORS[400]})
def collections(request: Request, f: str | None = F_PARAM):
    check_known_params(request, frozenset({"f"}))
    html = wants_html(request, f)
    snap = request.app.state.catalog.snapshot()
    etag = _etag(request, snap.data_version, html)
    if (unchanged := _not_modified(request, etag)) is not None:
        return unchanged
    infos = [collection_info(request, snap.zones, layer) for layer in layers_present(snap.zones)]
    links = _self_and_alternate(request, html)
    body = {"links": links, "collections": infos, "crs": list(SUPPORTED_CRS), "dataVersion": snap.data_version}
    if html:
        return _html(request, "collections.html", {"ETag": etag}, body=body, links=links)
    return _json(body, headers={"ETag": etag})


@router.get("/collections/{layer}", name="ogc_collection", summary="One zone layer", response_model=None,
            responses={**CACHEABLE, **ERRORS})
def collection(request: Request, layer: str, f: str | None = F_PARAM):
    check_known_params(request, frozenset({"f"}))
    html = wants_html(request, f)
    snap, _ = layer_snapshot(request, layer)
    etag = _etag(request, snap.data_version, html)
    if (unchanged := _not_modified(request, etag)) is not None:
        return unchanged
    info = collection_info(request, snap.zones, layer)
    if html:
        return _html(request, "collection.html", {"ETag": etag}, info=info, links=info["links"],
                     data_version=snap.data_version)
    return _json(info, headers={"ETag": etag})


def property_schema(column: str) -> dict[str, Any]:
    """JSON Schema of a published column (``nullable`` as OpenAPI 3.0, which GDAL reads)."""
    kind = column_type(column)
    if kind == "number":
        return {"type": "number", "nullable": True}
    if kind == "date":
        described = {"type": "string", "format": "date", "nullable": True}
        if column == q.TEMPORAL_PROPERTY:
            described["x-ogc-role"] = "primary-instant"
        return described
    if kind == "array":
        rule = {"type": "object", "properties": {k: {"type": "string"} for k in ("code", "text_zh", "text_en")}}
        return {"type": "array", "items": rule}
    if column == "accuracy":
        return {"type": "string", "enum": list(ACCURACY)}
    if column == "zone_id":
        return {"type": "string", "x-ogc-role": "id"}
    return {"type": "string", "nullable": True}


def _geometry_types(layer: str) -> list[str]:
    return ["Point", "MultiPoint"] if layer in POINT_LAYERS else ["Polygon", "MultiPolygon"]


@router.get("/collections/{layer}/schema", name="ogc_schema", summary="Schema of the zones' properties",
            response_model=None, responses=ERRORS)
def schema(request: Request, layer: str):
    """The feature schema: every published property with its one type, in every collection."""
    check_known_params(request, frozenset({"f"}))
    layer_snapshot(request, layer)
    body = {
        "$id": str(request.url_for("ogc_schema", layer=layer)),
        "title": f"{LAYERS[layer].title_zh} / {LAYERS[layer].title_en}",
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": "string"},
            "geometry": {"type": "object", "properties": {"type": {"type": "string",
                                                                   "enum": _geometry_types(layer)}}},
            "properties": {
                "type": "object",
                "properties": {column: property_schema(column) for column in PUBLISHED_COLUMNS},
            },
        },
    }
    return _json(body, JSON_SCHEMA)


@router.get("/collections/{layer}/queryables", name="ogc_queryables", response_model=None, responses=ERRORS,
            summary="Properties usable in filters, sortby and name=value (OGC API – Features Part 3)")
def queryables(request: Request, layer: str, f: str | None = F_PARAM):
    check_known_params(request, frozenset({"f"}))
    if f is not None and f.strip().lower() not in ("json", "geojson"):
        raise bad_request(f"f={f!r} is not supported here; queryables are JSON Schema (f=json)")
    layer_snapshot(request, layer)
    properties: dict[str, Any] = {
        "geometry": {"x-ogc-role": "primary-geometry",
                     "format": "geometry-" + _geometry_types(layer)[1].lower()},
    }
    for column in q.QUERYABLES:
        properties[column] = {"title": column, **{k: v for k, v in property_schema(column).items()
                                                  if k != "nullable"}}
    body = {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": str(request.url_for("ogc_queryables", layer=layer)),
        "type": "object",
        "title": f"{LAYERS[layer].title_zh} / {LAYERS[layer].title_en}",
        "properties": properties,
        "additionalProperties": False,
    }
    return _json(body, JSON_SCHEMA)


def _select(request: Request, table: gpd.GeoDataFrame, *, box, issued, in_force, cql) -> np.ndarray:
    """Positions of the zones matching every filter of the request, in collection order."""
    mask = np.ones(len(table), dtype=bool)
    if issued is not None:
        mask &= q.issued_mask(table, issued)
    if in_force is not None:
        mask &= q.in_force(table, in_force)
    for name in q.QUERYABLES:
        value = request.query_params.get(name)
        if value is not None:
            mask &= q.property_mask(table, name, value)
    if box is not None:
        mask &= shapely.intersects(table.geometry.values, box)
    if cql is not None and mask.any():
        mask &= q.filter_mask(table, cql)
    return np.flatnonzero(mask)


ITEM_QUERIES = {
    "bbox": Query(None, description="minx,miny,maxx,maxy in bbox-crs (default CRS84 lon/lat); keeps zones whose "
                                    "geometry intersects the box"),
    "bbox_crs": Query(None, alias="bbox-crs", description="CRS URI of bbox (see the collection's crs list)"),
    "crs": Query(None, description="Output CRS URI (see the collection's crs list); default CRS84"),
    "datetime": Query(None, description=f"Instant or interval ('..' = open end) of the issue date "
                                        f"({q.TEMPORAL_PROPERTY})"),
    "in_force": Query(None, description="Instant or interval: zones in force then (effective_from inclusive, "
                                        "effective_to exclusive)"),
    "limit": Query(None, description=f"Page size, 1..{MAX_LIMIT} (larger values are clamped), default {DEFAULT_LIMIT}"),
    "offset": Query(None, description="Zones to skip (paging; follow the next/prev links)"),
    "filter": Query(None, description="CQL2 filter on the queryables"),
    "filter_lang": Query(None, alias="filter-lang", description="cql2-text (default) or cql2-json"),
    "filter_crs": Query(None, alias="filter-crs", description="CRS of geometries in filter: CRS84 only"),
    "sortby": Query(None, description="Properties to sort by, comma-separated; '-' prefix = descending"),
    "properties": Query(None, description="Only these properties, comma-separated"),
    "skip_geometry": Query(None, alias="skipGeometry", description="true: features without geometry"),
    "district_code": Query(None, description="District adcode(s), comma-separated, e.g. 110109"),
    "kind": Query(None, description="Zone kind(s), comma-separated"),
    "accuracy": Query(None, description=f"Accuracy level(s), comma-separated: {', '.join(ACCURACY)}"),
}


@router.get("/collections/{layer}/items", name="ogc_items", summary="Zones of one layer (GeoJSON or HTML)",
            response_model=None, responses={**CACHEABLE, **ERRORS})
def items(
    request: Request,
    layer: str,
    f: str | None = F_PARAM,
    bbox: str | None = ITEM_QUERIES["bbox"],
    bbox_crs: str | None = ITEM_QUERIES["bbox_crs"],
    crs: str | None = ITEM_QUERIES["crs"],
    datetime: str | None = ITEM_QUERIES["datetime"],
    in_force: str | None = ITEM_QUERIES["in_force"],
    limit: str | None = ITEM_QUERIES["limit"],
    offset: str | None = ITEM_QUERIES["offset"],
    filter: str | None = ITEM_QUERIES["filter"],  # noqa: A002 - the standard's name
    filter_lang: str | None = ITEM_QUERIES["filter_lang"],
    filter_crs: str | None = ITEM_QUERIES["filter_crs"],
    sortby: str | None = ITEM_QUERIES["sortby"],
    properties: str | None = ITEM_QUERIES["properties"],
    skip_geometry: str | None = ITEM_QUERIES["skip_geometry"],
    district_code: str | None = ITEM_QUERIES["district_code"],
    kind: str | None = ITEM_QUERIES["kind"],
    accuracy: str | None = ITEM_QUERIES["accuracy"],
):
    check_known_params(request, ITEMS_PARAMS)
    html = wants_html(request, f)
    snap, data = layer_snapshot(request, layer)
    etag = _etag(request, snap.data_version, html)
    if (unchanged := _not_modified(request, etag)) is not None:
        return unchanged
    out = parse_crs_uri("crs", crs)
    box = parse_bbox(bbox, parse_crs_uri("bbox-crs", bbox_crs))
    page_size = min(parse_int("limit", limit, DEFAULT_LIMIT, 1), MAX_LIMIT)
    skip = parse_int("offset", offset, 0, 0)
    if filter_crs is not None and parse_crs_uri("filter-crs", filter_crs).uri != CRS84:
        raise bad_request(f"filter-crs={filter_crs!r}: geometries in filter must be CRS84")
    try:
        matched = _select(request, data.table, box=box, issued=q.parse_interval("datetime", datetime),
                          in_force=q.parse_interval("in_force", in_force),
                          cql=None if filter is None else q.parse_filter(filter, filter_lang))
        keys = q.parse_sortby(sortby)
        chosen = q.parse_properties(properties)
        no_geometry = q.parse_bool("skipGeometry", skip_geometry)
    except q.QueryError as exc:
        raise bad_request(str(exc)) from None
    if filter_lang is not None and filter is None:
        raise bad_request("filter-lang is given without filter")
    if keys:
        matched = q.sorted_positions(data.table, matched, keys)
    page = matched[skip:skip + page_size]

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
    members = {
        "links": links,
        "numberMatched": len(matched),
        "numberReturned": len(page),
        "timeStamp": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "dataVersion": snap.data_version,
    }
    headers = {"Content-Crs": f"<{out.uri}>", "ETag": etag}
    if html:
        body = {"type": "FeatureCollection", "features": features_in(data.zones.iloc[page], out), **members}
        return _html(request, "items.html", headers, body=body, links=links, layer=layer, offset=skip,
                     crs_uri=out.uri)
    features = encode_page(snap, layer, out, page, chosen, no_geometry)
    return Response(collection_bytes(features, members), media_type=GEOJSON, headers=headers)


@router.get("/collections/{layer}/items/{zone_id}", name="ogc_item", summary="One zone (GeoJSON or HTML)",
            response_model=None, responses={**CACHEABLE, **ERRORS})
def item(
    request: Request,
    layer: str,
    zone_id: str,
    f: str | None = F_PARAM,
    crs: str | None = ITEM_QUERIES["crs"],
):
    check_known_params(request, frozenset({"f", "crs"}))
    html = wants_html(request, f)
    out = parse_crs_uri("crs", crs)
    snap, data = layer_snapshot(request, layer)
    position = data.positions_by_id.get(zone_id)
    if position is None:
        raise not_found(f"no zone {zone_id!r} in collection {layer!r}")
    etag = _etag(request, snap.data_version, html)
    if (unchanged := _not_modified(request, etag)) is not None:
        return unchanged
    links = _self_and_alternate(request, html) + [
        link(str(request.url_for("ogc_collection", layer=layer)), "collection", JSON, "所属集合 the collection"),
    ]
    headers = {"Content-Crs": f"<{out.uri}>", "ETag": etag}
    if html:
        match = data.zones.iloc[[position]]
        feature = features_in(match, out)[0]
        feature["links"] = links
        props = zone_properties(match.iloc[0].to_dict())
        svg = geometry_svg(match.geometry.iloc[0], LAYERS[layer].color)
        return _html(request, "item.html", headers, feature=feature, props=props, links=links, layer=layer,
                     data_version=snap.data_version, svg=svg)
    (encoded,) = encode_page(snap, layer, out, [position], None, False)
    body = encoded[:-1] + b',"links":' + json.dumps(links, ensure_ascii=False).encode() + b"}"
    return Response(body, media_type=GEOJSON, headers=headers)
