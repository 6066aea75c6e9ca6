"""ASGI middleware around every request: request id and log line, body-size bound, HEAD.

Pure ASGI (not ``BaseHTTPMiddleware``) so a request body is counted as it arrives and a
streamed answer is passed through untouched:

* :class:`RequestLog` gives each request an id (``X-Request-ID``, taken from the client or
  made up), logs one line per request with status and duration, and turns an exception
  that escapes the app into a logged traceback naming the id and a JSON 500 carrying it —
  so a client's report and the server log meet on one id.
* :class:`BodyLimit` refuses a body over ``max_body_bytes`` with 413 *before* the app
  parses it: on the declared ``Content-Length`` at once, and on the bytes counted while a
  chunked body streams in. ``/v1/admin/import`` has its own, larger upload bound, checked
  after the admin token (api.admin).
* :class:`HeadAsGet` answers ``HEAD`` wherever ``GET`` answers: the request runs as a GET
  and the body is dropped, headers (``Content-Length``, ``ETag``, …) kept.
* :class:`EmptyQueryAsAbsent` drops query parameters with an empty value (``?as_of=``, as
  an HTML form sends an empty field), so every endpoint treats them as absent: the
  default applies, or a required parameter is reported missing.
"""

from __future__ import annotations

import gc
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

log = logging.getLogger("zoning.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _send_json(send: Send, status: int, content: dict[str, Any],
                     headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps(content, ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


class RequestLog:
    """One log line per request with the request id; a 500 logged with its traceback and id."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = (_header(scope, b"x-request-id") or "")[:64] or uuid.uuid4().hex[:12]
        id_header = (b"x-request-id", request_id.encode("latin-1", "replace"))
        start = time.perf_counter()
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started, status = True, message["status"]
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("%s %s failed id=%s", scope["method"], scope["path"], request_id)
            if started:  # a streamed answer broke off: nothing more can be sent
                raise
            await _send_json(send, 500, {"detail": "internal server error; the log names this request id",
                                         "request_id": request_id}, [id_header])
        finally:
            ms = (time.perf_counter() - start) * 1000
            log.info("%s %s %d %.1fms id=%s", scope["method"], scope["path"], status, ms, request_id)


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a streamed body passes the limit."""


class BodyLimit:
    """413 for a request body over ``max_bytes``, before the app reads it (``exempt``: path prefixes
    with their own bound)."""

    def __init__(self, app: ASGIApp, max_bytes: int, exempt: tuple[str, ...] = ()):
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    def _message(self, size: int | None) -> dict[str, Any]:
        said = f"{size} bytes" if size is not None else "more bytes"
        return {"detail": f"请求体过大 / the request body has {said}; the limit is {self.max_bytes} bytes "
                          "(ZONING_MAX_BODY_BYTES)"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_bytes:
            await _send_json(send, 413, self._message(int(declared)))
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if started:
                raise
            await _send_json(send, 413, self._message(None))


class HeadAsGet:
    """HEAD runs the GET of the same URL, without the body (``exempt``: path prefixes that answer
    HEAD themselves)."""

    def __init__(self, app: ASGIApp, exempt: tuple[str, ...] = ()):
        self.app = app
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


class EmptyQueryAsAbsent:
    """``?as_of=&layers=`` means the same as no ``as_of`` and no ``layers``."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope.get("query_string", b"") if scope["type"] == "http" else b""
        if query:
            kept = [part for part in query.split(b"&") if part.partition(b"=")[2]]
            if len(kept) != query.count(b"&") + 1:
                scope = {**scope, "query_string": b"&".join(kept)}
        await self.app(scope, receive, send)


M_ARENA_MAX = -8  # glibc mallopt parameter


def _libc():
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def limit_malloc_arenas(count: int = 2) -> bool:
    """At most ``count`` glibc heaps for the whole process (as MALLOC_ARENA_MAX does), so memory
    freed by one worker thread is reused by the others instead of staying in a heap of its own.
    Call it before the worker threads start; False where there is no glibc.

    Measured (bench_memory.py, 8 clients sending maximal bodies): RSS 3 s after the burst 1.26x
    the baseline with glibc's default of 8 heaps per core, 1.16x with 2.
    """
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)
    return bool(mallopt and mallopt(M_ARENA_MAX, count))


def _malloc_trim() -> Callable[[], None] | None:
    """glibc's malloc_trim(0), or None where there is no glibc (musl, macOS)."""
    import ctypes

    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int

    def collect_and_trim() -> None:
        gc.collect()  # cycles left by a large request (exception frames, parsed trees) first
        trim(0)

    return collect_and_trim


class LargeBodies:
    """Requests with a large body (``min_body_bytes`` or more, or of unknown length) run at most
    ``max_concurrent`` at a time, and the memory they used is handed back to the system.

    Parsing and answering a 10 MB body costs CPU seconds and ~10x its size in objects; eight
    at once on two cores take no less time in total than one at a time, but hold up to eight
    times the memory. Measured (bench_memory.py, 8 clients, 2 rounds of maximal bodies):
    RSS 3 s after the burst 1.15x the warmed-up baseline with one at a time, 1.20x with two,
    2.3x with no gate and no trim. And glibc keeps freed memory in its heaps (one per worker thread), so a burst
    would leave the process several times its size for good: after each large request,
    ``malloc_trim(0)`` returns the free pages, in a worker thread, once more if another large
    request finished meanwhile. (benchmarks/bench_memory.py measures both.)
    """

    def __init__(self, app: ASGIApp, max_concurrent: int = 1, min_body_bytes: int = 1024 * 1024):
        import anyio

        self.app = app
        self.min_body_bytes = min_body_bytes
        self.gate = anyio.Semaphore(max_concurrent)
        self.trim = _malloc_trim()
        self._running = False
        self._pending = False

    def _is_large(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return False
        declared = _header(scope, b"content-length")
        return declared is None or not declared.strip().isdigit() or int(declared) >= self.min_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._is_large(scope):
            await self.app(scope, receive, send)
            return
        async with self.gate:
            await self.app(scope, receive, send)
        if self.trim is not None:
            await self._trim_soon()

    async def _trim_soon(self) -> None:
        """Trim now, or — while a trim runs — once more after it, so the last large request's
        memory is always given back."""
        if self._running:
            self._pending = True
            return
        import anyio

        self._running = True
        try:
            while True:
                self._pending = False
                await anyio.to_thread.run_sync(self.trim)
                if not self._pending:
                    break
        finally:
            self._running = False
