"""Who is asking: the bootstrap admin token, a user's API token, or a web session.

* ``Authorization: Bearer <ZONING_ADMIN_TOKEN>`` is the bootstrap admin (actor
  ``admin-token``): it exists so the first users can be created.
* ``Authorization: Bearer zt_…`` is a named user's API token (scripts).
* The ``zoning_session`` cookie is a web session (``POST /v1/auth/login``). It is
  HttpOnly, SameSite=Strict, and Secure unless the request came over plain HTTP to a
  loopback address (so a local test server works). A request that changes anything with a
  session cookie must also send the session's CSRF token in ``X-CSRF-Token``
  (synchroniser-token pattern; bearer requests need none, browsers never send them on
  their own).

``principal(request)`` answers who it is (or None); ``refusal(request, permission)`` the
401/403 answer when they may not, naming what is missing.
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from geo.store import AuditEvent
from geo.users import PERMISSIONS, Users, allowed

SESSION_COOKIE = "zoning_session"
CSRF_HEADER = "x-csrf-token"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    via: str  # admin-token | token | session
    csrf: str | None = None

    def may(self, permission: str) -> bool:
        return allowed(self.role, permission)


def users(request: Request) -> Users:
    return Users(request.app.state.catalog.store)


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def principal(request: Request) -> Principal | None:
    """The authenticated caller, or None (no or a wrong credential)."""
    cached = getattr(request.state, "principal", False)
    if cached is not False:
        return cached
    found = None
    settings = request.app.state.settings
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        if settings.admin_token and hmac.compare_digest(token.encode(), settings.admin_token.encode()):
            found = Principal("admin-token", "admin", "admin-token")
        else:
            user = users(request).by_token(token)
            found = Principal(user.name, user.role, "token") if user else None
    elif request.cookies.get(SESSION_COOKIE):
        session = users(request).session(request.cookies[SESSION_COOKIE])
        if session is not None:
            found = Principal(session.user.name, session.user.role, "session", session.csrf)
    request.state.principal = found
    return found


class FailedAttempts:
    """Failed authentications (wrong or missing token, session or password) per client address in a sliding window: past ``limit``
    failures within ``window_s`` seconds, that address is answered 429 until the oldest
    failure leaves the window, whatever token it sends (so a token cannot be guessed)."""

    def __init__(self, limit: int, window_s: float):
        self.limit, self.window_s = limit, window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.get(client, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None if it may now."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(client, now)
            if not times:
                self._failures.pop(client, None)
            if len(times) < self.limit:
                return None
            return max(1, math.ceil(times[0] + self.window_s - now))

    def record(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._failures[client] = self._recent(client, now)
            self._failures[client].append(now)


def failed_attempts(request: Request) -> FailedAttempts:
    state = request.app.state
    if getattr(state, "admin_failures", None) is None:
        settings = state.settings
        state.admin_failures = FailedAttempts(settings.admin_max_failures, settings.admin_failure_window_s)
    return state.admin_failures


def _refusal(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": message}, headers=headers or None)


def refusal(request: Request, permission: str) -> JSONResponse | None:
    """None when the caller may do ``permission``, else the 401/403 answer."""
    if permission not in PERMISSIONS:
        raise KeyError(permission)
    settings = request.app.state.settings
    client = client_address(request) or "?"
    wait = failed_attempts(request).retry_after(client)
    if wait is not None:  # whatever credential it sends now, so a token cannot be guessed
        return _refusal(429, f"尝试次数过多 / too many failed authentications from {client}; try again in {wait} s",
                        **{"Retry-After": str(wait)})
    who = principal(request)
    if who is None:
        if not settings.admin_token and not users(request).any():
            return _refusal(403, "管理接口未启用 / admin endpoints are off: no admin token is configured "
                                 "(set ZONING_ADMIN_TOKEN to enable them) and there are no users")
        failed_attempts(request).record(client)
        return _refusal(401, "需要登录或令牌 / a valid admin token, API token or session is required: "
                             "Authorization: Bearer <token>", **{"WWW-Authenticate": "Bearer"})
    if who.via == "session" and request.method not in _SAFE:
        sent = request.headers.get(CSRF_HEADER, "")
        if not who.csrf or not hmac.compare_digest(sent.encode(), who.csrf.encode()):
            return _refusal(403, "CSRF token missing or wrong: send the session's token in X-CSRF-Token")
    if not who.may(permission):
        roles = sorted(PERMISSIONS[permission] | {"admin"})
        return _refusal(403, f"权限不足 / {who.name} ({who.role}) may not do this: it needs the role "
                             f"{' or '.join(roles)}")
    return None


def audit_event(request: Request, action: str, target: str | None = None, **detail) -> AuditEvent:
    """An audit event for the caller of ``request`` (who, role, from where)."""
    who = principal(request)
    return AuditEvent(actor=who.name if who else "anonymous", role=who.role if who else None, action=action,
                      target=target, detail=detail, client=client_address(request))


# ---------------------------------------------------------------- login / logout

router = APIRouter(prefix="/v1/auth", tags=["auth"])


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.client is None or request.client.host not in (
        "127.0.0.1", "::1", "localhost", "testclient")


@router.post("/login", summary="Start a web session (sets an HttpOnly cookie; returns the CSRF token)")
def login(request: Request, name: str = Form(...), password: str = Form(...)) -> JSONResponse:
    client = client_address(request) or "?"
    wait = failed_attempts(request).retry_after(client)
    if wait is not None:
        return _refusal(429, f"尝试次数过多 / too many failed authentications from {client}; try again in {wait} s",
                        **{"Retry-After": str(wait)})
    registry = users(request)
    user = registry.check_password(name, password)
    if user is None:
        failed_attempts(request).record(client)
        request.app.state.catalog.store.append_audit(AuditEvent(
            actor=name[:40], action="login.refused", client=client_address(request)))
        return _refusal(401, "用户名或密码错误 / wrong user name or password")
    session = registry.start_session(user)
    response = JSONResponse({"user": {"name": user.name, "role": user.role}, "csrf": session.csrf,
                             "expires_at": session.expires_at})
    response.set_cookie(SESSION_COOKIE, session.id, httponly=True, samesite="strict", secure=_secure(request),
                        path="/", max_age=12 * 3600)
    return response


@router.post("/logout", summary="End the web session")
def logout(request: Request) -> JSONResponse:
    if request.cookies.get(SESSION_COOKIE):
        users(request).end_session(request.cookies[SESSION_COOKIE])
    response = JSONResponse({"detail": "logged out"})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me", summary="Who the request is authenticated as")
def me(request: Request) -> JSONResponse:
    who = principal(request)
    if who is None:  # a plain answer, not a 401: the page asks this before anyone logs in
        return JSONResponse({"name": None, "role": None, "via": None, "csrf": None, "may": []})
    return JSONResponse({"name": who.name, "role": who.role, "via": who.via, "csrf": who.csrf,
                         "may": sorted(p for p in PERMISSIONS if who.may(p))})


# ---------------------------------------------------------------- route guard


def requires(permission: str):
    """Mark an endpoint with the permission :class:`GuardedRoute` checks before the body is read."""
    if permission not in PERMISSIONS:
        raise KeyError(permission)

    def mark(endpoint):
        endpoint.__permission__ = permission
        return endpoint

    return mark


class GuardedRoute(APIRoute):
    """Refuses callers without the endpoint's permission before FastAPI reads the body, so
    nobody can make the service spool an upload without the right to send it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        permission = getattr(self.endpoint, "__permission__", None)
        if permission is None:
            raise RuntimeError(f"route {self.path} has no @requires(permission)")

        async def guarded(request: Request) -> Response:
            return refusal(request, permission) or await handler(request)

        return guarded
