"""Response middleware for every route, as plain ASGI (Starlette's ``BaseHTTPMiddleware`` costs
about as much per request as a whole cached OGC answer): gzip, CORS and the OGC answer cache.
(The request log and the input bounds are ``api.middleware``.)

* gzip (level 6) for answers over 1 KiB when the client accepts it — except export files,
  whose byte ranges must be ranges of the file itself, and what compresses itself (the
  map page, the vendored assets).
* CORS only when ``ZONING_CORS_ORIGINS`` is set (comma-separated origins, ``*`` = any), so a
  web map on another host can read the OGC API; the headers GIS clients read (ETag,
  Content-Crs, Content-Range, …) are exposed.
* OGC answer cache: a successful GET of the OGC API (``/``, ``/api``, ``/conformance``,
  ``/collections…``) is kept, keyed by data version, path, query and ``Accept``, and the
  same request is answered from it (or with 304 for its ETag) without running the
  route again. Bounded (``CACHE_ENTRIES`` answers, ``CACHE_BYTES`` in all); a new data
  version is a new key, so an import is visible at once. Measured in
  ``benchmarks/bench_ogc.py``, whose "new URL every request" row bypasses it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("zoning.api")

GZIP_MIN_BYTES = 1024
NOT_GZIPPED = ("/v1/export", "/static/", "/map")
CACHED_PREFIXES = ("/collections", "/conformance", "/api")
CACHE_ENTRIES = 512
CACHE_BYTES = 64 * 1024 * 1024
CACHE_MAX_ANSWER = 8 * 1024 * 1024


class GZipExceptFiles:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=GZIP_MIN_BYTES, compresslevel=6)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(NOT_GZIPPED):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class OGCAnswerCache:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answers: OrderedDict[tuple, tuple[int, list, bytes, bytes | None]] = OrderedDict()
        self.size = 0
        self.lock = threading.Lock()

    @staticmethod
    def _cacheable(scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] != "GET":  # lifespan scopes have no path
            return False
        return scope["path"] == "/" or scope["path"].startswith(CACHED_PREFIXES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        catalog = getattr(scope["app"].state, "catalog", None) if "app" in scope else None
        if catalog is None or not self._cacheable(scope):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = (catalog.snapshot().data_version, scope["path"], scope["query_string"], headers.get("accept", ""),
               headers.get("host", ""))
        with self.lock:
            hit = self.answers.get(key)
            if hit is not None:
                self.answers.move_to_end(key)
        if hit is not None:
            status, raw_headers, body, etag = hit
            wanted = headers.get("if-none-match")
            if etag is not None and wanted is not None and etag.removeprefix(b"W/").decode("latin-1") in [
                    t.strip().removeprefix("W/") for t in wanted.split(",")]:
                await send({"type": "http.response.start", "status": 304, "headers": [(b"etag", etag)]})
                await send({"type": "http.response.body", "body": b""})
                return
            await send({"type": "http.response.start", "status": status, "headers": list(raw_headers)})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, self._recorder(key, send))

    def _recorder(self, key: tuple, send: Send) -> Send:
        start: dict = {}
        chunks: list[bytes] = []

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                # A copy: the middleware outside (gzip) rewrites the headers of the message it is sent.
                start.update(message, headers=list(message.get("headers", [])))
            elif message["type"] == "http.response.body" and start.get("status") == 200:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    self._store(key, start, b"".join(chunks))
            await send(message)

        return record

    def _store(self, key: tuple, start: Message, body: bytes) -> None:
        if len(body) > CACHE_MAX_ANSWER:
            return
        raw_headers = list(start.get("headers", []))
        etag = next((v for k, v in raw_headers if k.lower() == b"etag"), None)
        with self.lock:
            if key in self.answers:
                return
            self.answers[key] = (200, raw_headers, body, etag)
            self.size += len(body)
            while len(self.answers) > CACHE_ENTRIES or self.size > CACHE_BYTES:
                _, (_, _, old, _) = self.answers.popitem(last=False)
                self.size -= len(old)


def install_middleware(app: FastAPI, cors_origins: str | None) -> None:
    """Innermost first: the answer cache, CORS, then gzip (``api.app`` adds the input bounds and
    the request log around them)."""
    app.add_middleware(OGCAnswerCache)
    origins = [o.strip() for o in (cors_origins or "").split(",") if o.strip()]
    if origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=origins, allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
            allow_headers=["*"], max_age=3600,
            expose_headers=["ETag", "Content-Crs", "Content-Range", "Content-Location", "Content-Length",
                            "Last-Modified", "X-Data-Version"])
    app.add_middleware(GZipExceptFiles)
