"""``GET /api``: the OGC API – Features (and – Tiles) service description as an OpenAPI 3.0 document.

FastAPI's ``/openapi.json`` (OpenAPI 3.1, the whole service, used by ``/docs``) has one
templated items path with every parameter typed as a string. Clients of the OGC API
read this one instead (the landing page's ``service-desc``): one typed path per
collection, so GDAL knows which properties it may filter on at the server; ``limit``
an integer with minimum, maximum and default; ``bbox`` an array of numbers; and the
responses each route really gives (GeoJSON, HTML, 304, OGC exceptions).

``filter-lang`` also lists ``cql-text``, the name GDAL 3.6 looks for before it sends
attribute filters as CQL text instead of evaluating them itself.
"""

from __future__ import annotations

from typing import Any

from api import ogc_query as q
from geo.schema import LAYERS

EXCEPTION = {"$ref": "#/components/responses/Exception"}
JSON_SCHEMA = "application/schema+json"


def _param(name: str, schema: dict[str, Any], description: str, *, explode: bool = True,
           location: str = "query", required: bool = False) -> dict[str, Any]:
    param = {"name": name, "in": location, "required": required, "description": description, "schema": schema}
    if location == "query":
        param.update({"style": "form", "explode": explode})
    return param


def _components(crs_uris: list[str], default_limit: int, max_limit: int) -> dict[str, Any]:
    string_list = {"type": "array", "items": {"type": "string"}}
    params = {
        "f": _param("f", {"type": "string", "enum": ["json", "html"]}, "Output format; default from Accept"),
        "bbox": _param("bbox", {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
                       "minx,miny,maxx,maxy in bbox-crs; zones whose geometry intersects it", explode=False),
        "bbox-crs": _param("bbox-crs", {"type": "string", "format": "uri", "enum": crs_uris}, "CRS of bbox"),
        "crs": _param("crs", {"type": "string", "format": "uri", "enum": crs_uris}, "CRS of the answer"),
        "datetime": _param("datetime", {"type": "string"},
                           f"Instant or interval ('..' = open) of the issue date, {q.TEMPORAL_PROPERTY}"),
        "in_force": _param("in_force", {"type": "string"}, "Instant or interval: zones in force then"),
        "limit": _param("limit", {"type": "integer", "minimum": 1, "maximum": max_limit, "default": default_limit},
                        f"Page size (values above {max_limit} are clamped)"),
        "offset": _param("offset", {"type": "integer", "minimum": 0, "default": 0}, "Zones to skip"),
        "filter": _param("filter", {"type": "string"}, "CQL2 filter on the queryables"),
        "filter-lang": _param("filter-lang", {"type": "string", "enum": ["cql2-text", "cql2-json", "cql-text"],
                                              "default": "cql2-text"}, "Language of filter"),
        "filter-crs": _param("filter-crs", {"type": "string", "format": "uri", "enum": [crs_uris[0]]},
                             "CRS of geometries in filter"),
        "sortby": _param("sortby", string_list, "Sort keys, '-' prefix = descending", explode=False),
        "properties": _param("properties", string_list, "Only these properties", explode=False),
        "skipGeometry": _param("skipGeometry", {"type": "boolean", "default": False}, "Features without geometry"),
        "featureId": _param("featureId", {"type": "string"}, "Zone id", location="path", required=True),
    }
    exception = {"type": "object", "required": ["code"],
                 "properties": {"code": {"type": "string"}, "description": {"type": "string"}}}
    return {
        "parameters": params,
        "schemas": {"exception": exception},
        "responses": {
            "Exception": {"description": "OGC API exception",
                          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}},
            "NotModified": {"description": "Not modified: If-None-Match matches the ETag"},
        },
    }


def _json_response(description: str, media: str = "application/json", schema: dict | None = None) -> dict:
    return {"description": description,
            "content": {media: {"schema": schema or {"type": "object"}}, "text/html": {"schema": {"type": "string"}}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/parameters/{name}"}


def _collection_paths(layer: str, property_schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    meta = LAYERS[layer]
    title = f"{meta.title_zh} / {meta.title_en}"
    feature = {"type": "object", "required": ["type", "geometry", "properties"], "properties": {
        "type": {"type": "string", "enum": ["Feature"]},
        "id": {"type": "string"},
        "geometry": {"type": "object", "nullable": True},
        "properties": {"type": "object", "properties": property_schemas},
    }}
    collection = {"type": "object", "required": ["type", "features"], "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {"type": "array", "items": feature},
        "numberMatched": {"type": "integer", "minimum": 0},
        "numberReturned": {"type": "integer", "minimum": 0},
        "links": {"type": "array", "items": {"type": "object"}},
    }}
    standard = ["f", "bbox", "bbox-crs", "crs", "datetime", "in_force", "limit", "offset", "filter", "filter-lang",
                "filter-crs", "sortby", "properties", "skipGeometry"]
    equality = [_param(name, {k: v for k, v in schema.items() if k != "x-ogc-role"},
                       f"Only zones whose {name} equals this value"
                       + (" (comma-separated alternatives)" if name in q.LIST_FILTERS else ""))
                for name, schema in property_schemas.items() if name in q.QUERYABLES]
    errors = {"400": EXCEPTION, "404": EXCEPTION}
    base = f"/collections/{layer}"
    return {
        base: {"get": {"summary": title, "operationId": f"describe_{layer}", "tags": [layer],
                       "parameters": [_ref("f")],
                       "responses": {"200": _json_response("The collection"), "304": {
                           "$ref": "#/components/responses/NotModified"}, **errors}}},
        f"{base}/items": {"get": {
            "summary": f"{title}: zones", "operationId": f"get_{layer}_items", "tags": [layer],
            "parameters": [_ref(name) for name in standard] + equality,
            "responses": {"200": _json_response("The zones, paged", "application/geo+json", collection),
                          "304": {"$ref": "#/components/responses/NotModified"}, **errors}}},
        f"{base}/items/{{featureId}}": {"get": {
            "summary": f"{title}: one zone", "operationId": f"get_{layer}_item", "tags": [layer],
            "parameters": [_ref("featureId"), _ref("f"), _ref("crs")],
            "responses": {"200": _json_response("The zone", "application/geo+json", feature),
                          "304": {"$ref": "#/components/responses/NotModified"}, **errors}}},
        f"{base}/queryables": {"get": {
            "summary": f"{title}: queryables", "operationId": f"get_{layer}_queryables", "tags": [layer],
            "parameters": [_ref("f")],
            "responses": {"200": {"description": "JSON Schema of the queryables",
                                  "content": {JSON_SCHEMA: {"schema": {"type": "object"}}}}, **errors}}},
        f"{base}/schema": {"get": {
            "summary": f"{title}: feature schema", "operationId": f"get_{layer}_schema", "tags": [layer],
            "responses": {"200": {"description": "JSON Schema of the features",
                                  "content": {JSON_SCHEMA: {"schema": {"type": "object"}}}}, **errors}}},
    }


MVT = "application/vnd.mapbox-vector-tile"
NOT_MODIFIED = {"$ref": "#/components/responses/NotModified"}


def _path_param(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return _param(name, schema or {"type": "string"}, description, location="path", required=True)


def _tile_paths(layer: str) -> dict[str, Any]:
    """OGC API – Tiles paths of one collection (``api.ogc_tiles``)."""
    meta = LAYERS[layer]
    title = f"{meta.title_zh} / {meta.title_en}"
    base = f"/collections/{layer}/tiles"
    json_ok = {"description": "JSON", "content": {"application/json": {"schema": {"type": "object"}}}}
    tms = _path_param("tileMatrixSetId", "Tile matrix set: WebMercatorQuad", {"type": "string",
                                                                             "enum": ["WebMercatorQuad"]})
    cell = [_path_param("tileMatrix", "Zoom level 0–22", {"type": "integer", "minimum": 0, "maximum": 22}),
            _path_param("tileRow", "Row (y), 0 at the top", {"type": "integer", "minimum": 0}),
            _path_param("tileCol", "Column (x), 0 at the left", {"type": "integer", "minimum": 0})]
    errors = {"400": EXCEPTION, "404": EXCEPTION}
    return {
        base: {"get": {"summary": f"{title}: vector tilesets", "operationId": f"get_{layer}_tilesets",
                       "tags": [layer], "responses": {"200": json_ok, **errors}}},
        f"{base}/{{tileMatrixSetId}}": {"get": {
            "summary": f"{title}: tileset metadata", "operationId": f"get_{layer}_tileset", "tags": [layer],
            "parameters": [tms], "responses": {"200": json_ok, "304": NOT_MODIFIED, **errors}}},
        f"{base}/{{tileMatrixSetId}}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}": {"get": {
            "summary": f"{title}: one vector tile", "operationId": f"get_{layer}_tile", "tags": [layer],
            "parameters": [tms, *cell],
            "responses": {"200": {"description": "Mapbox vector tile (empty when no zone reaches it)",
                                  "content": {MVT: {"schema": {"type": "string", "format": "binary"}}}},
                          "304": NOT_MODIFIED, **errors}}},
    }


def openapi_document(*, title: str, description: str, version: str, server: str, layers: list[str],
                     crs_uris: list[str], property_schemas: dict[str, dict[str, Any]], default_limit: int,
                     max_limit: int) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, summary, operation in (("/", "Landing page", "landing"), ("/conformance", "Conformance", "conformance"),
                                     ("/collections", "Collections", "collections")):
        paths[path] = {"get": {"summary": summary, "operationId": operation, "parameters": [_ref("f")],
                               "responses": {"200": _json_response(summary), "400": EXCEPTION}}}
    paths["/api"] = {"get": {"summary": "This document", "operationId": "api", "responses": {"200": {
        "description": "OpenAPI 3.0", "content": {"application/vnd.oai.openapi+json;version=3.0": {
            "schema": {"type": "object"}}}}}}}
    json_ok = {"description": "JSON", "content": {"application/json": {"schema": {"type": "object"}}}}
    paths["/tileMatrixSets"] = {"get": {"summary": "Tiling schemes", "operationId": "tile_matrix_sets",
                                        "responses": {"200": json_ok, "400": EXCEPTION}}}
    paths["/tileMatrixSets/{tileMatrixSetId}"] = {"get": {
        "summary": "One tiling scheme (OGC 2D TMS 2.0 JSON)", "operationId": "tile_matrix_set",
        "parameters": [_path_param("tileMatrixSetId", "WebMercatorQuad")],
        "responses": {"200": json_ok, "400": EXCEPTION, "404": EXCEPTION}}}
    for layer in layers:
        paths.update(_collection_paths(layer, property_schemas))
        paths.update(_tile_paths(layer))
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "description": description, "version": version},
        "servers": [{"url": server}],
        "paths": paths,
        "components": _components(crs_uris, default_limit, max_limit),
    }
