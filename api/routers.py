"""The routers the service serves, and when each is mounted.

The point lookup (``api.check``: ``/v1/check``, ``/v1/check/site``, ``/v1/zones``) and
``/healthz`` are mounted when the app is created. Every other router — OGC API, exports,
batches, reports, the map, the workbench, admin, docs — is mounted once, by
:class:`DeferredRouters`, either in a background thread as soon as the first request has
been answered (or one second after start-up when no request comes), or by the first request
that needs one of them, whichever is first. A request for a path the lookup does not serve
waits for that mount (a few tenths of a second, once) and is then answered as usual: no
request ever sees a 404 because a router is not mounted yet.

Why: importing those routers and building their routes (FastAPI generates a pydantic model
per route) is ~0.3 s of CPU that the first ``/v1/check`` after ``zoning serve`` starts does
not need (``benchmarks/bench_coldstart.py``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from fastapi import FastAPI
from starlette.routing import BaseRoute, Match

from api.middleware import ASGIApp, Receive, Scope, Send

log = logging.getLogger("zoning.api")

IDLE_MOUNT_SECONDS = 1.0  # mount the rest this long after start-up when no request came


def mount_remaining(app: FastAPI) -> None:
    """Include every router but the lookup's, in the order they are matched."""
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

    from api import export, ogc  # OGC API – Features (including the landing page `/`) and exports

    app.include_router(ogc.router)
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


class DeferredRouters:
    """Mounts :func:`mount_remaining` exactly once, from whichever thread asks first."""

    def __init__(self, app: FastAPI, eager: list[BaseRoute]):
        self.app = app
        self.eager = eager
        self.mounted = threading.Event()
        self.answered_one = threading.Event()
        self._lock = threading.Lock()

    def ensure(self) -> None:
        """Mount the remaining routers unless done; blocks while another thread mounts them."""
        if self.mounted.is_set():
            return
        with self._lock:
            if not self.mounted.is_set():
                mount_remaining(self.app)
                self.mounted.set()

    def needs_mount(self, scope: Scope) -> bool:
        """Whether ``scope`` is for a path the eagerly mounted routes do not serve."""
        if self.mounted.is_set():
            return False
        return not any(route.matches(scope)[0] != Match.NONE for route in self.eager)

    def start_background(self) -> threading.Thread:
        """Mount in the background after the first answer (or after an idle second)."""
        def run() -> None:
            self.answered_one.wait(IDLE_MOUNT_SECONDS)
            try:
                self.ensure()
            except Exception:  # noqa: BLE001 - logged; the next request that needs a router retries
                log.exception("mounting the routers failed")

        thread = threading.Thread(target=run, name="mount-routers", daemon=True)
        thread.start()
        return thread


class MountOnFirstUse:
    """ASGI middleware: a request outside the eager routes waits until every router is mounted."""

    def __init__(self, app: ASGIApp, routers: DeferredRouters):
        self.app = app
        self.routers = routers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.routers.needs_mount(scope):
            await asyncio.to_thread(self.routers.ensure)  # the loop keeps answering /v1/check meanwhile
        if scope["type"] != "http" or self.routers.answered_one.is_set():
            await self.app(scope, receive, send)
            return

        async def noting_send(message: dict[str, Any]) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.routers.answered_one.set()

        await self.app(scope, receive, noting_send)
