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
from api.routers import IDLE_MOUNT_SECONDS, DeferredRouters, MountOnFirstUse
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
        log.info("serving %d zones, data version %s, store %s", snap.zone_count, snap.data_version, store.location)
        if settings.warm_on_start:
            # Load (or build) the lookup index in the background so the first check does not
            # wait for it; then, after the first answer, the zone table the other routes use.
            def warm() -> None:
                lookup_index(snap)
                app.state.routers.answered_one.wait(IDLE_MOUNT_SECONDS)
                snap.zones  # noqa: B018 - loaded now, off the request path

            threading.Thread(target=warm, name="warm-zones", daemon=True).start()
        notifier = None
        if settings.webhook_url:  # a signed notice per new data version (imports the impact report)
            from api.webhook import start_notifier

            notifier = start_notifier(store, settings)
        app.state.routers.start_background()
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

    @app.get("/healthz", tags=["service"], summary="Liveness, zone count and data version")
    def healthz(request: Request) -> dict:
        catalog = request.app.state.catalog
        snap = catalog.snapshot()
        # store_head: the store's latest version; ahead of data_version while a replica loads it.
        return {"status": "ok", "zones": snap.zone_count, "data_version": snap.data_version,
                "store_head": catalog.store.head()}

    from api import check  # /v1/check, /v1/check/site, /v1/zones: mounted now, the rest on first need

    app.include_router(check.router)
    eager = [r for r in app.router.routes if getattr(r, "path", None) != app.openapi_url]  # /healthz, the lookup
    routers = app.state.routers = DeferredRouters(app, eager)

    # Outermost last: the log line and request id cover the 413s and HEADs too. Exports answer HEAD
    # themselves; admin imports have their own upload bound, checked after the token.
    app.add_middleware(MountOnFirstUse, routers=routers)  # innermost: the other routers, on first need
    install_middleware(app, settings.cors_origins)  # answer cache, CORS, gzip
    app.add_middleware(LargeBodies, max_concurrent=settings.max_large_requests)
    app.add_middleware(EmptyQueryAsAbsent)
    app.add_middleware(HeadAsGet, exempt=("/v1/export",))
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes,
                       exempt=("/v1/admin/import", "/v1/workbench/sheets"))  # own upload bound, checked first
    app.add_middleware(RequestLog)

    generate_openapi = app.openapi

    def openapi() -> dict:
        routers.ensure()  # the document covers every router, whoever asks first
        return generate_openapi()

    app.openapi = openapi  # type: ignore[method-assign]
    install_contract(app)  # last: completes the OpenAPI document of every router above
    return app
