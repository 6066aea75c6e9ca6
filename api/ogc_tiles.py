"""OGC API – Tiles (Part 1: core, tileset, tilesets list, geodata tilesets, MVT) over the zone layers.

The same vector tiles as ``/tiles/{layer}/{z}/{x}/{y}.mvt`` (``api.tiles``: in-process, or
``ST_AsMVT`` on a PostGIS store), described the way OGC clients (GDAL's OGCAPI driver,
OpenLayers' ``OGCVectorTile``, QGIS) discover them:

* ``/tileMatrixSets`` and ``/tileMatrixSets/WebMercatorQuad``: the one tiling scheme, as an
  OGC Two-Dimensional Tile Matrix Set 2.0 JSON document (256-pixel tiles, zoom 0–22);
* ``/collections/{collectionId}/tiles``: the collection's tilesets (one: WebMercatorQuad);
* ``/collections/{collectionId}/tiles/WebMercatorQuad``: the tileset metadata — the templated
  tile link, the tile matrix set, and ``tileMatrixSetLimits``: per zoom 0–``LIMITS_MAX_ZOOM``,
  the rows and columns that hold the layer's zones;
* ``/collections/{collectionId}/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}``: one
  tile (note the OGC order: zoom, **row (y)**, column (x)) as ``application/vnd.mapbox-vector-tile``.

A tile inside the grid but outside the limits is an empty tile (200), as on ``/tiles``; a
tile matrix, row or column outside the grid is a 404 naming the valid range, one that is not
an integer a 400. Errors are OGC exceptions (``api.ogc_params``).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.ogc_params import JSON, bad_request, check_known_params, not_found
from api.tiles import MEDIA_TYPE as MVT
from api.tiles import tile_response
from geo.schema import LAYERS, POINT_LAYERS

router = APIRouter(tags=["OGC API – Tiles"])

TMS_ID = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
CRS_3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
REL_TILESETS_VECTOR = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
REL_TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
REL_TILING_SCHEMES = "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes"
REL_GEODATA = "http://www.opengis.net/def/rel/ogc/1.0/geodata"
# Only what is implemented and tested (tests/test_ogc_tiles.py).
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
]
WORLD = 20037508.3427892  # half the Web Mercator world, metres
MAX_ZOOM = 22
# tileMatrixSetLimits stop here: a client that reads every limited tile (GDAL) picks the
# deepest one; zoom 16 is ~2.4 m per pixel, finer than any boundary drawn from text.
LIMITS_MAX_ZOOM = 16
ERRORS = {400: {"description": "Bad parameter (OGC exception: code, description)"},
          404: {"description": "No such collection, tiling scheme or tile (OGC exception)"}}
CACHEABLE = {304: {"description": "Not modified (If-None-Match matches the ETag)"}}


def tile_matrix_set() -> dict[str, Any]:
    """WebMercatorQuad as an OGC 2D Tile Matrix Set 2.0 JSON document.

    It also carries the TMS 1.0 member names (``identifier``, ``supportedCRS``,
    ``boundingBox`` corners, ``topLeftCorner``): GDAL up to 3.7 reads only those, and a
    2.0 reader ignores them."""
    matrices = []
    for z in range(MAX_ZOOM + 1):
        n = 2 ** z
        cell = 2 * WORLD / 256 / n
        matrices.append({"id": str(z), "identifier": str(z), "scaleDenominator": cell / 0.00028, "cellSize": cell,
                         "cornerOfOrigin": "topLeft", "pointOfOrigin": [-WORLD, WORLD], "topLeftCorner": [-WORLD, WORLD],
                         "tileWidth": 256, "tileHeight": 256, "matrixWidth": n, "matrixHeight": n})
    return {"id": TMS_ID, "identifier": TMS_ID, "title": "Google Maps Compatible for the World", "uri": TMS_URI,
            "crs": CRS_3857, "supportedCRS": CRS_3857, "orderedAxes": ["E", "N"],
            "boundingBox": {"crs": CRS_3857, "lowerLeft": [-WORLD, -WORLD], "upperRight": [WORLD, WORLD],
                            "lowerCorner": [-WORLD, -WORLD], "upperCorner": [WORLD, WORLD]},
            "wellKnownScaleSet": "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
            "tileMatrices": matrices}


def _link(href: str, rel: str, media: str, title: str, templated: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"href": href, "rel": rel, "type": media, "title": title}
    if templated:
        out["templated"] = True
    return out


def _json(content: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode(), media_type=JSON,
                    headers=headers)


def _root(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _layer_bounds(request: Request, collection_id: str) -> tuple[str, tuple[float, float, float, float]]:
    """(data version, lon/lat bounds of the layer's zones), or 404 naming the collections."""
    snap = request.app.state.catalog.snapshot()
    bounds = snap.derived("tile-layer-bounds", lambda zones: {
        layer: tuple(float(v) for v in zones[zones["layer"] == layer].total_bounds)
        for layer in LAYERS if (zones["layer"] == layer).any()})
    if collection_id not in bounds:
        raise not_found(f"no collection {collection_id!r}; collections are {', '.join(bounds)}")
    return snap.data_version, bounds[collection_id]


def _limits(bounds: tuple[float, float, float, float]) -> list[dict[str, Any]]:
    from maps.tiles import lonlat_tile

    minx, miny, maxx, maxy = bounds
    out = []
    for z in range(LIMITS_MAX_ZOOM + 1):
        col0, row0 = lonlat_tile(minx, maxy, z)  # north-west corner: smallest row and column
        col1, row1 = lonlat_tile(maxx, miny, z)
        out.append({"tileMatrix": str(z), "minTileRow": row0, "maxTileRow": row1,
                    "minTileCol": col0, "maxTileCol": col1})
    return out


def _tileset_summary(request: Request, collection_id: str) -> dict[str, Any]:
    base = f"{_root(request)}/collections/{collection_id}/tiles/{TMS_ID}"
    return {
        "title": f"{LAYERS[collection_id].title_zh} / {LAYERS[collection_id].title_en} — {TMS_ID}",
        "dataType": "vector", "crs": CRS_3857, "tileMatrixSetURI": TMS_URI,
        "links": [
            _link(base, "self", JSON, "瓦片集元数据 tileset metadata"),
            _link(f"{_root(request)}/tileMatrixSets/{TMS_ID}", REL_TILING_SCHEME, JSON, f"切片方案 {TMS_ID}"),
            _link(base + "/{tileMatrix}/{tileRow}/{tileCol}", "item", MVT, "矢量瓦片 Mapbox vector tiles",
                  templated=True),
        ],
    }


def tile_collection_links(request: Request, collection_id: str) -> list[dict[str, Any]]:
    """The links a collection adds for its vector tiles (used by ``api.ogc``)."""
    return [_link(f"{_root(request)}/collections/{collection_id}/tiles", REL_TILESETS_VECTOR, JSON,
                  "矢量瓦片集 vector tilesets")]


def landing_links(request: Request) -> list[dict[str, Any]]:
    """The landing page's link to the tiling schemes (used by ``api.ogc``)."""
    return [_link(f"{_root(request)}/tileMatrixSets", REL_TILING_SCHEMES, JSON, "切片方案 tiling schemes")]


@router.get("/tileMatrixSets", name="ogc_tile_matrix_sets", summary="Tiling schemes (OGC API – Tiles)",
            response_model=None, responses={400: ERRORS[400]})
def tile_matrix_sets(request: Request):
    check_known_params(request, frozenset({"f"}))
    href = f"{_root(request)}/tileMatrixSets/{TMS_ID}"
    return _json({"tileMatrixSets": [{"id": TMS_ID, "title": "Google Maps Compatible for the World",
                                      "uri": TMS_URI, "crs": CRS_3857,
                                      "links": [_link(href, "self", JSON, TMS_ID)]}]})


@router.get("/tileMatrixSets/{tileMatrixSetId}", name="ogc_tile_matrix_set", response_model=None,
            summary="One tiling scheme (OGC 2D Tile Matrix Set 2.0 JSON)", responses=ERRORS)
def tile_matrix_set_route(request: Request, tileMatrixSetId: str):  # noqa: N803 (the OGC name)
    check_known_params(request, frozenset({"f"}))
    if tileMatrixSetId != TMS_ID:
        raise not_found(f"no tile matrix set {tileMatrixSetId!r}; the one served is {TMS_ID}")
    return _json(tile_matrix_set())


@router.get("/collections/{collectionId}/tiles", name="ogc_tilesets", response_model=None, responses=ERRORS,
            summary="Vector tilesets of one zone layer (OGC API – Tiles)")
def tilesets(request: Request, collectionId: str):  # noqa: N803
    check_known_params(request, frozenset({"f"}))
    _layer_bounds(request, collectionId)
    self_href = f"{_root(request)}/collections/{collectionId}/tiles"
    return _json({"links": [_link(self_href, "self", JSON, "本页 this document")],
                  "tilesets": [_tileset_summary(request, collectionId)]})


@router.get("/collections/{collectionId}/tiles/{tileMatrixSetId}", name="ogc_tileset", response_model=None,
            responses={**CACHEABLE, **ERRORS}, summary="Tileset metadata: tile template and tile matrix limits")
def tileset(request: Request, collectionId: str, tileMatrixSetId: str):  # noqa: N803
    check_known_params(request, frozenset({"f"}))
    data_version, bounds = _layer_bounds(request, collectionId)
    if tileMatrixSetId != TMS_ID:
        raise not_found(f"no tileset {tileMatrixSetId!r} for {collectionId!r}; the one served is {TMS_ID}")
    from maps.tiles import PROPERTIES

    etag = f'W/"{data_version}"'
    if request.headers.get("if-none-match") in (etag, etag.removeprefix("W/")):
        return Response(status_code=304, headers={"ETag": etag})
    body = _tileset_summary(request, collectionId)
    body["links"].append(_link(f"{_root(request)}/collections/{collectionId}", REL_GEODATA, JSON,
                               "要素集合 the collection"))
    minx, miny, maxx, maxy = bounds
    body.update({
        "description": "由文本数字化的边界不是法定边界 / boundaries digitised from text are not the legal line",
        "tileMatrixSetLimits": _limits(bounds),
        "boundingBox": {"lowerLeft": [minx, miny], "upperRight": [maxx, maxy], "crs": CRS84},
        "layers": [{"id": collectionId, "dataType": "vector",
                    "geometryType": "points" if collectionId in POINT_LAYERS else "polygons",
                    "minTileMatrix": "0", "maxTileMatrix": str(MAX_ZOOM),
                    "propertiesSchema": {"type": "object",
                                         "properties": {p: {"type": "string"} for p in PROPERTIES}}}],
        "dataVersion": data_version,
    })
    return _json(body, headers={"ETag": etag})


@router.get("/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
            name="ogc_tile", response_class=Response, responses={
                200: {"content": {MVT: {}}, "description": "The tile (empty when no zone reaches it)"},
                **CACHEABLE, **ERRORS},
            summary="One vector tile: zoom (tileMatrix), row (y), column (x) — Mapbox Vector Tile")
async def tile(request: Request, collectionId: str, tileMatrixSetId: str, tileMatrix: str,  # noqa: N803
               tileRow: str, tileCol: str) -> Response:  # noqa: N803
    check_known_params(request, frozenset({"f"}))
    _layer_bounds(request, collectionId)
    if tileMatrixSetId != TMS_ID:
        raise not_found(f"no tileset {tileMatrixSetId!r} for {collectionId!r}; the one served is {TMS_ID}")
    numbers = {}
    for name, value in (("tileMatrix", tileMatrix), ("tileRow", tileRow), ("tileCol", tileCol)):
        try:
            numbers[name] = int(value)
        except ValueError:
            raise bad_request(f"{name} must be an integer, got {value!r}") from None
    z, row, col = numbers["tileMatrix"], numbers["tileRow"], numbers["tileCol"]
    if not 0 <= z <= MAX_ZOOM:
        raise not_found(f"tileMatrix {z} is not in {TMS_ID} (0–{MAX_ZOOM})")
    if not (0 <= row < 2 ** z and 0 <= col < 2 ** z):
        raise not_found(f"tile row {row}, column {col} is outside tile matrix {z} (rows and columns 0–{2 ** z - 1})")
    return await tile_response(request, collectionId, z, col, row)
