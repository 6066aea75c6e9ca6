"""Admin endpoints: import official zone files, list versions, diff, roll back.

Off unless ``ZONING_ADMIN_TOKEN`` is set or users exist; then every request needs the
bootstrap admin token, a user's API token or a web session (``api.auth``) with the role
the endpoint needs: versions and diff any editor, reviewer or admin; an import preview
(``dry_run``) an editor, reviewer or admin; a writing import, a rollback and the audit log
an admin only, since they change whole layers without a second person's review. The
caller and an upload's declared size are checked before the request body is read, so
nobody can make the service spool a large upload without the right to send it. The
service answers from a new version as soon as it is written and loaded (the catalog
notices the new version and swaps it in): no restart.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.auth import GuardedRoute, audit_event, client_address, principal, refusal, requires
from api.errors import NotFoundError
from geo import importer, uploads
from geo.store import StoreBackend, StoreError
from geo.users import UserError as BadUser
from geo.users import Users

# Room for the multipart framing and the form fields around the file itself.
MULTIPART_SLACK_BYTES = 64 * 1024

# Refusals of user input, most specific first.
_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (uploads.UploadTooLargeError, 413),
    (uploads.UnsafeArchiveError, 400),
    (importer.UnsupportedFormatError, 415),
    (ValueError, 422),  # BadArchiveError, SourceError, CRS and coordinate errors
)


def _refusal(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": message}, headers=headers or None)


def _upload_refusal(request: Request) -> JSONResponse | None:
    """A refusal for an upload without or over its declared size, else None (checked after
    the caller's permission and before the body is read)."""
    settings = request.app.state.settings
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        return _refusal(411, "an upload needs a Content-Length header")
    if int(length) > settings.max_upload_bytes + MULTIPART_SLACK_BYTES:
        return _refusal(413, f"upload of {int(length)} bytes is larger than the limit of "
                             f"{settings.max_upload_bytes} bytes (ZONING_MAX_UPLOAD_BYTES); 上传文件超过大小限制")
    return None


class AdminRoute(GuardedRoute):
    """The caller's permission (:class:`api.auth.GuardedRoute`), then an upload's declared
    size, both before FastAPI reads the body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not getattr(self.endpoint, "__upload__", False):
            return handler

        async def limited(request: Request) -> Response:
            permitted = refusal(request, self.endpoint.__permission__)
            return permitted or _upload_refusal(request) or await handler(request)

        return limited


router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=AdminRoute)


def _store(request: Request) -> StoreBackend:
    return request.app.state.catalog.store


def _known_version(store: StoreBackend, number: int) -> None:
    try:
        store.version(number)
    except StoreError as exc:
        raise NotFoundError(str(exc)) from None


def _status_of(exc: Exception) -> int | None:
    return next((status for cls, status in _STATUS if isinstance(exc, cls)), None)


def upload_endpoint(endpoint):
    """Mark an endpoint that takes an upload: AdminRoute checks its declared size first."""
    endpoint.__upload__ = True
    return endpoint


@router.post("/import", summary="Import an official zone file (Shapefile zip, GeoPackage, GeoJSON, KML)",
             responses={201: {"description": "Imported: a new data version is served"},
                        200: {"description": "Dry run: the preview, nothing written"},
                        401: {}, 403: {}, 413: {}, 415: {}, 422: {"description": "Refused: the report lists the problems"}})
@requires("import.preview")
@upload_endpoint
def import_zones(
    request: Request,
    file: UploadFile = File(..., description="The file: a .zip of a Shapefile, .gpkg, .geojson or .kml"),
    layer: str = Form(..., description="Zone layer the file holds, e.g. livestock_ban"),
    district: str | None = Form(None, description="Adcode; only that district's zones of the layer are replaced"),
    mapping: list[str] = Form([], alias="map", description="FIELD=COLUMN pairs, e.g. name_zh=名称,source_doc_no=文号"),
    values: list[str] = Form([], alias="set", description="FIELD=VALUE, one per field, e.g. issuer=北京市门头沟区人民政府"),
    crs: str | None = Form(None, description="CRS when the file has none (e.g. EPSG:4548)"),
    accuracy: str | None = Form(None, description="official | traced | approximate | schematic | indicative (default approximate)"),
    dry_run: bool = Form(False, description="Preview only; nothing is written"),
    repair: bool = Form(False, description="Repair invalid rings with make_valid (changes reported)"),
    layer_name: str | None = Form(None, description="Layer of a GeoPackage/KML or dataset inside a zip"),
    encoding: str | None = Form(None, description="Attribute encoding when detection fails"),
    rules_from: str | None = Form(None, description="Copy the rule texts of this existing zone"),
    author: str = Form("admin-api", description="Recorded in the version history (the bootstrap admin "
                       "token only: a named user is recorded by name)"),
) -> JSONResponse:
    settings = request.app.state.settings
    if not dry_run and (denied := refusal(request, "import.write")):
        return denied
    who = principal(request)
    if who is not None and who.via != "admin-token":
        author = who.name
    try:
        options = importer.ImportOptions(
            layer=layer, district=district or None, mapping=importer.parse_mapping(mapping),
            values=importer.parse_values(values), crs=crs or None, accuracy=accuracy or None, repair=repair,
            layer_name=layer_name or None, encoding=encoding or None, rules_from=rules_from or None)
        with tempfile.TemporaryDirectory(prefix="zoning-upload-") as tmp:
            name = uploads.safe_filename(file.filename)
            path = Path(tmp) / name
            uploads.copy_limited(file.file, path, settings.max_upload_bytes)
            report = importer.run_import(_store(request), path, options, dry_run=dry_run, author=author,
                                         source_name=name, audit=audit_event(
                                             request, "import", layer, district=district, file=name,
                                             author=author, accuracy=accuracy))
    except StoreError as exc:  # another import got in first
        return _refusal(409, str(exc))
    except Exception as exc:
        status = _status_of(exc)
        if status is None:
            raise
        return _refusal(status, str(exc))
    body = report.as_dict()
    if not report.ok:
        return JSONResponse(status_code=422, content={
            "detail": f"导入被拒绝 / import refused: {len(report.problems)} problem(s); nothing was written",
            "problems": report.problems, "report": body})
    if dry_run:
        return JSONResponse(status_code=200, content={"detail": "dry run: nothing was written", "report": body})
    snapshot = request.app.state.catalog.refresh()  # answer once the new version is served
    return JSONResponse(status_code=201, content={
        "detail": f"imported {report.zones} zone(s) as version {report.version['version']}",
        "data_version": snapshot.data_version, "report": body})


@router.get("/versions", summary="Data versions: who, when, what")
@requires("versions.read")
def versions(request: Request) -> dict:
    listed = _store(request).versions()  # one read: the current version is the last listed
    return {"current": listed[-1].data_version, "versions": [v.as_dict() for v in listed]}


@router.get("/diff", summary="Zones added, removed and changed between two versions, with area changes")
@requires("versions.read")
def diff(request: Request, from_version: int = Query(..., alias="from", ge=1),
         to_version: int | None = Query(None, alias="to", ge=1, description="Default: the current version")) -> dict:
    store = _store(request)
    to_version = to_version or store.current().version
    for number in (from_version, to_version):
        _known_version(store, number)
    return {"from": store.version(from_version).as_dict(), "to": store.version(to_version).as_dict(),
            **store.diff(from_version, to_version)}


@router.post("/rollback/{version}", status_code=201, summary="Serve an earlier version again (as a new version)")
@requires("rollback")
def rollback(request: Request, version: int, author: str = Query("admin-api")) -> dict:
    store = _store(request)
    _known_version(store, version)
    who = principal(request)
    if who is not None and who.via != "admin-token":
        author = who.name
    info = store.rollback(version, author=author, audit=audit_event(request, "rollback", str(version)))
    return {"detail": f"version {version} is served again as version {info.version}",
            "version": info.as_dict(), "data_version": request.app.state.catalog.refresh().data_version}


@router.get("/audit", summary="The audit log, newest first: who (and their role), when, what, from where")
@requires("audit.read")
def audit(request: Request, limit: int = Query(100, ge=1, le=1000), before: int | None = Query(None, ge=1),
          actor: str | None = None, action: str | None = None) -> dict:
    entries = _store(request).audit(limit, before=before, actor=actor, action=action)
    return {"entries": [e.as_dict() for e in entries]}



# ---------------------------------------------------------------- users (as `zoning users`)


class NewUser(BaseModel):
    name: str
    role: str
    password: str | None = None
    token: bool = True


def _users(request: Request) -> Users:
    return Users(_store(request))


@router.get("/users", summary="Named users and their roles")
@requires("users.manage")
def list_users(request: Request) -> dict:
    return {"users": [u.as_dict() for u in _users(request).list()]}


@router.post("/users", status_code=201, summary="Add a user; the answer holds their API token, shown once")
@requires("users.manage")
def add_user(request: Request, body: NewUser) -> JSONResponse:
    who = principal(request)
    try:
        user, token = _users(request).add(body.name, body.role, password=body.password, token=body.token,
                                          actor=who.name, actor_role=who.role, client=client_address(request))
    except BadUser as exc:
        return _refusal(409 if "exists" in str(exc) else 422, str(exc))
    return JSONResponse(status_code=201, content={"user": user.as_dict(), "token": token})


@router.post("/users/{name}/disable", summary="Disable a user: their token and sessions stop working at once")
@requires("users.manage")
def disable_user(request: Request, name: str) -> dict:
    who = principal(request)
    try:
        user = _users(request).disable(name, actor=who.name, actor_role=who.role, client=client_address(request))
    except BadUser as exc:
        raise NotFoundError(str(exc)) from None
    return {"user": user.as_dict()}
