"""The map viewer: ``GET /map`` and the vendored browser assets under ``/static/vendor``.

Up to ``ZONING_MAP_INLINE_MAX_VERTICES`` zone vertices (full precision) the page inlines every
zone, simplified for display; above it the page carries none and draws the layers from
``/tiles/{layer}/{z}/{x}/{y}.mvt`` (``maps.tile_layers``).
"""

from __future__ import annotations

import gzip
import hashlib
from typing import Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware

from api.errors import NotFoundError
from maps import VENDOR_DIR

router = APIRouter(tags=["map"])


def _page(request: Request, lang: str, zone: str | None) -> tuple[bytes, bytes, str]:
    """(html, gzipped html, etag) for this data version, built once per language and zone."""
    # Imported here: folium costs ~0.4 s, which the first /v1/check after a start should not wait for.
    from maps.context import district_context
    from maps.render import MapOptions, render_html
    from maps.simplify import display_geometry, vertex_count
    from maps.tile_layers import TILE_URL

    snap = request.app.state.catalog.snapshot()
    if zone is not None and not (snap.zones["zone_id"] == zone).any():
        raise NotFoundError(f"zone {zone!r} not found; GET /v1/zones lists the zone ids")
    settings = request.app.state.settings
    tiled = snap.derived("vertex-count", vertex_count) > settings.map_inline_max_vertices
    # Outside build(): Snapshot.derived holds a non-reentrant lock while building. In tile mode
    # nothing is simplified: the page carries no zone geometry, the tiles simplify per zoom.
    display = snap.zones if tiled else snap.derived("map-display", display_geometry)

    def build(_zones) -> tuple[bytes, bytes, str]:
        options = MapOptions(lang=lang, focus_zone=zone, api_base="v1/", data_version=snap.data_version,
                             tianditu_token=settings.tianditu_token, inline_assets=False,
                             tile_url=TILE_URL if tiled else None)
        html = render_html(display, district_context(), options).encode("utf-8")
        return html, gzip.compress(html, 6), '"' + hashlib.sha256(html).hexdigest()[:20] + '"'

    return snap.derived(f"map-page:{lang}:{zone or ''}:{'tiles' if tiled else 'inline'}", build)


@router.get("/map", response_class=HTMLResponse, summary="Map viewer: every zone layer, click to check a point",
            responses={404: {"description": "No zone with the id given in `zone`"}})
def map_page(
    request: Request,
    lang: Literal["zh", "en"] = Query("zh", description="Page language: zh (default) or en"),
    zone: str | None = Query(None, description="Open centred on this zone id, with its popup open"),
) -> Response:
    html, gz, etag = _page(request, lang, zone)
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(gz, media_type="text/html; charset=utf-8", headers={**headers, "Content-Encoding": "gzip"})
    return Response(html, media_type="text/html; charset=utf-8", headers=headers)


class VendorFiles(StaticFiles):
    """Vendored files live in versioned folders (leaflet-1.9.4/...), so browsers may keep them a week."""

    def file_response(self, *args, **kwargs) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "public, max-age=604800"
        return response


def mount_assets(app: FastAPI) -> None:
    """Serve maps/static/vendor at /static/vendor (gzip for the text assets)."""
    app.mount("/static/vendor", GZipMiddleware(VendorFiles(directory=VENDOR_DIR), minimum_size=1024), name="vendor")
