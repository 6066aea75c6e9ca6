"""GET /tiles/{layer}/{z}/{x}/{y}.mvt: a zone layer as Mapbox vector tiles (Web Mercator grid).

For maps of more zones than a page can inline. Tiles come from the data version being
served (a tile never mixes versions): a PostGIS store renders them in the database with
``ST_AsMVT``, any other store in-process (``maps.tiles``). The ETag is the data version.

``/tiles/districts/…`` is the district base layer (Beijing's districts and the neighbouring
counties, reference outlines from the file shipped with the package, not from the store): the
same in-process tiler on every backend, its ETag the file's content hash.
"""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api.errors import NotFoundError
from geo.schema import LAYERS

router = APIRouter(tags=["tiles"])
MEDIA_TYPE = "application/vnd.mapbox-vector-tile"


@router.get("/tiles/{layer}/{z}/{x}/{y}.mvt", response_class=Response,
            summary="Vector tile of a zone layer (Mapbox Vector Tile, Web Mercator z/x/y)",
            responses={200: {"content": {MEDIA_TYPE: {}}}, 404: {"description": "Unknown layer or tile outside the grid"}})
async def tile(request: Request, layer: str = Path(..., description="Zone layer id, e.g. eco_redline"),
               z: int = Path(..., description="Zoom 0–22"), x: int = Path(...), y: int = Path(...)) -> Response:
    from maps.tiles import BASE_LAYER, TileError, tile_bounds

    if layer not in LAYERS and layer != BASE_LAYER:
        raise NotFoundError(f"no layer {layer!r}; layers are {', '.join(LAYERS)} and {BASE_LAYER} (the district base)")
    try:
        tile_bounds(z, x, y)
    except TileError as exc:
        raise NotFoundError(str(exc)) from None
    if layer == BASE_LAYER:
        return await base_tile_response(request, z, x, y)
    return await tile_response(request, layer, z, x, y)


async def base_tile_response(request: Request, z: int, x: int, y: int) -> Response:
    """The district base layer's MVT at z/x/y, ETag the base file's content hash."""
    from maps.tiles import BASE_LAYER, base_tiles

    base = await run_in_threadpool(base_tiles)
    if base is None:
        raise NotFoundError("no district base layer is installed; the map is drawn without district outlines")
    etag = f'"{base.tag}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    body = await run_in_threadpool(base.tiler.tile, z, x, y, BASE_LAYER)
    return Response(body, media_type=MEDIA_TYPE, headers=headers)


async def tile_response(request: Request, layer: str, z: int, x: int, y: int) -> Response:
    """The MVT of ``layer`` at z/x/y (already checked to be on the grid) from the served data
    version, with its ETag (a 304 when ``If-None-Match`` names it). Also serves the OGC API –
    Tiles route (``api.ogc_tiles``)."""
    from maps.tiles import PROPERTIES, LayerTiler

    catalog = request.app.state.catalog
    snap = catalog.snapshot()
    etag = f'"{snap.data_version}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    store = catalog.store
    if hasattr(store, "mvt"):
        body = await run_in_threadpool(store.mvt, snap.version.version, layer, z, x, y, PROPERTIES)
    else:
        tiler = snap.derived(f"tiler:{layer}", lambda zones: LayerTiler.of(zones, layer))
        body = await run_in_threadpool(tiler.tile, z, x, y, layer)
    return Response(body, media_type=MEDIA_TYPE, headers=headers)
