"""HTTP middleware for every route: gzip and CORS.

* gzip (level 6) for answers over 1 KiB when the client accepts it — except export files,
  whose byte ranges must be ranges of the file itself, and what compresses itself (the
  map page, the vendored assets).
* CORS only when ``ZONING_CORS_ORIGINS`` is set (comma-separated origins, ``*`` = any), so a
  web map on another host can read the OGC API; the headers GIS clients read (ETag,
  Content-Crs, Content-Range, …) are exposed.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

GZIP_MIN_BYTES = 1024
NOT_GZIPPED = ("/v1/export", "/static/", "/map")


class GZipExceptFiles:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=GZIP_MIN_BYTES, compresslevel=6)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(NOT_GZIPPED):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def install_middleware(app: FastAPI, cors_origins: str | None) -> None:
    app.add_middleware(GZipExceptFiles)
    origins = [o.strip() for o in (cors_origins or "").split(",") if o.strip()]
    if origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=origins, allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
            allow_headers=["*"], max_age=3600,
            expose_headers=["ETag", "Content-Crs", "Content-Range", "Content-Location", "Content-Length",
                            "Last-Modified", "X-Data-Version"])
