"""FastAPI application factory."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request

from api.answers import lookup_index
from api.contract import install_contract
from api.errors import install_error_handlers
from api.middleware import (
    BodyLimit,
    EmptyQueryAsAbsent,
    HeadAsGet,
    LargeBodies,
    RequestLog,
    limit_malloc_arenas,
)
from api.settings import Settings, get_settings
from api.web import install_middleware
from geo.catalog import ZoneCatalog
from geo.store import open_store

log = logging.getLogger("zoning.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.check()
    limit_malloc_arenas()  # before any worker thread: freed memory is shared, not kept per thread
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
        from api.webhook import start_notifier  # ZONING_WEBHOOK_URL: a notice per new data version

        notifier = start_notifier(store, settings)
        yield
        if notifier is not None:
            notifier.stop()

    app = FastAPI(
        title="zoning — 北京区级规划分区查询 / Beijing district zoning lookup",
        version="0.1.0",
        description="Point-in-zone lookup, zone catalogue, OGC API – Features and exports for zones "
        "digitised from Beijing district gazettes. 文本数字化的分区为近似边界，法定边界以官方数据为准 / "
        "zones digitised from text are approximate; the legal boundary is the official one.",
        lifespan=lifespan,
        docs_url=None,  # api/docs.py serves /docs and /redoc from vendored assets
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)

    # Outermost last: the log line and request id cover the 413s and HEADs too. Exports answer HEAD
    # themselves; admin imports have their own upload bound, checked after the token.
    install_middleware(app, settings.cors_origins)  # answer cache, CORS, gzip (innermost)
    app.add_middleware(LargeBodies, max_concurrent=settings.max_large_requests)
    app.add_middleware(EmptyQueryAsAbsent)
    app.add_middleware(HeadAsGet, exempt=("/v1/export",))
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes,
                       exempt=("/v1/admin/import", "/v1/workbench/sheets"))  # own upload bound, checked first
    app.add_middleware(RequestLog)

    @app.get("/healthz", tags=["service"], summary="Liveness, zone count and data version")
    def healthz(request: Request) -> dict:
        catalog = request.app.state.catalog
        snap = catalog.snapshot()
        # store_head: the store's latest version; ahead of data_version while a replica loads it.
        return {"status": "ok", "zones": len(snap.zones), "data_version": snap.data_version,
                "store_head": catalog.store.head()}

    from api import check  # /v1/check, /v1/check/site, /v1/zones

    app.include_router(check.router)

    from api import batch  # /v1/check/batch (CSV, GeoJSON, Arrow, GeoParquet)

    app.include_router(batch.router)

    from api import parcels  # /v1/check/sites (parcel files)

    app.include_router(parcels.router)

    from api import reports  # /v1/report (site compliance report, PDF/HTML)

    app.include_router(reports.router)

    from api import impact  # /v1/admin/sites, /v1/admin/impact

    app.include_router(impact.router)

    from api import activities  # /v1/activities, /v1/coverage

    app.include_router(activities.router)

    from api import export, ogc, ogc_params  # OGC API – Features (including the landing page `/`) and exports

    app.include_router(ogc.router)
    ogc_params.install_error_handler(app)
    app.include_router(export.router)

    from api import admin, auth  # import, versions, diff, rollback, audit; login/logout (api.auth)

    app.include_router(admin.router)
    app.include_router(auth.router)

    from api import workbench  # /workbench and /v1/workbench: sheets, georeference, trace, drafts, review

    app.include_router(workbench.router)
    app.include_router(workbench.page_router)

    from api import tiles  # /tiles/{layer}/{z}/{x}/{y}.mvt

    app.include_router(tiles.router)

    from api import ogc_tiles  # OGC API – Tiles: /tileMatrixSets, /collections/{id}/tiles/...

    app.include_router(ogc_tiles.router)

    from api import map as map_viewer  # GET /map and its vendored assets under /static/vendor

    app.include_router(map_viewer.router)
    map_viewer.mount_assets(app)

    from api import compensation  # /v1/compensation: water-environment compensation calculator

    app.include_router(compensation.router)

    from api import docs  # /docs and /redoc, offline

    app.include_router(docs.router)
    docs.mount_assets(app)
    install_contract(app)  # last: completes the OpenAPI document of every router above
    return app
