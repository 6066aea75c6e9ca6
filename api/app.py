"""FastAPI application factory."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request

from api.answers import lookup_index
from api.errors import install_error_handlers
from api.settings import Settings, get_settings
from geo.catalog import ZoneCatalog
from geo.store import open_store

log = logging.getLogger("zoning.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store = open_store(settings.store, settings.seed)
        app.state.catalog = ZoneCatalog(store, prepare=lookup_index)
        snap = app.state.catalog.snapshot()
        log.info("serving %d zones, data version %s, store %s", len(snap.zones), snap.data_version, store.location)
        if settings.warm_on_start:
            # Build the lookup index in the background so the first check does not wait ~0.5 s.
            threading.Thread(target=lookup_index, args=(snap,), name="warm-lookup-index", daemon=True).start()
        yield

    app = FastAPI(
        title="zoning — 北京区级规划分区查询 / Beijing district zoning lookup",
        version="0.1.0",
        description="Point-in-zone lookup, zone catalogue, OGC API – Features and exports for zones "
        "digitised from Beijing district gazettes. 文本数字化的分区为近似边界，法定边界以官方数据为准 / "
        "zones digitised from text are approximate; the legal boundary is the official one.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)

    @app.middleware("http")
    async def log_requests(request: Request, call_next):
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:12]
        start = time.perf_counter()
        response = await call_next(request)
        ms = (time.perf_counter() - start) * 1000
        response.headers["x-request-id"] = request_id
        log.info("%s %s %d %.1fms id=%s", request.method, request.url.path, response.status_code, ms, request_id)
        return response

    @app.get("/healthz", tags=["service"], summary="Liveness, zone count and data version")
    def healthz(request: Request) -> dict:
        catalog = request.app.state.catalog
        snap = catalog.snapshot()
        # store_head: the store's latest version; ahead of data_version while a replica loads it.
        return {"status": "ok", "zones": len(snap.zones), "data_version": snap.data_version,
                "store_head": catalog.store.head()}

    from api import check  # /v1/check, /v1/check/batch, /v1/check/site, /v1/zones

    app.include_router(check.router)

    from api import export, ogc  # OGC API – Features (including the landing page `/`) and exports

    app.include_router(ogc.router)
    app.include_router(export.router)

    from api import admin  # import, versions, diff, rollback (off without ZONING_ADMIN_TOKEN)

    app.include_router(admin.router)

    from api import tiles  # /tiles/{layer}/{z}/{x}/{y}.mvt

    app.include_router(tiles.router)

    from api import map as map_viewer  # GET /map and its vendored assets under /static/vendor

    app.include_router(map_viewer.router)
    map_viewer.mount_assets(app)
    return app
