"""Admin endpoints: import official zone files, list versions, diff, roll back.

Off unless ``ZONING_ADMIN_TOKEN`` is set; then every request needs
``Authorization: Bearer <token>``. The token and an upload's declared size are checked
before the request body is read, so nobody can make the service spool a large upload
without the token. The service answers from a new version as soon as it is written and
loaded (the catalog notices the new version and swaps it in): no restart.
"""

from __future__ import annotations

import hmac
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from api.errors import NotFoundError
from geo import importer, uploads
from geo.store import StoreBackend, StoreError

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


def _check_request(request: Request) -> JSONResponse | None:
    """A refusal for a request without the admin token or with an oversized upload, else None."""
    settings = request.app.state.settings
    if not settings.admin_token:
        return _refusal(403, "管理接口未启用 / admin endpoints are off: no admin token is configured "
                             "(set ZONING_ADMIN_TOKEN to enable them)")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), settings.admin_token.encode()):
        return _refusal(401, "需要管理令牌 / a valid admin token is required: Authorization: Bearer <token>",
                        **{"WWW-Authenticate": "Bearer"})
    if request.method == "POST" and request.url.path.endswith("/import"):
        length = request.headers.get("content-length")
        if length is None or not length.isdigit():
            return _refusal(411, "an upload needs a Content-Length header")
        if int(length) > settings.max_upload_bytes + MULTIPART_SLACK_BYTES:
            return _refusal(413, f"upload of {int(length)} bytes is larger than the limit of "
                                 f"{settings.max_upload_bytes} bytes (ZONING_MAX_UPLOAD_BYTES); 上传文件超过大小限制")
    return None


class AdminRoute(APIRoute):
    """Runs :func:`_check_request` before FastAPI reads the body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            return _check_request(request) or await handler(request)

        return guarded


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


@router.post("/import", summary="Import an official zone file (Shapefile zip, GeoPackage, GeoJSON, KML)",
             responses={201: {"description": "Imported: a new data version is served"},
                        200: {"description": "Dry run: the preview, nothing written"},
                        401: {}, 403: {}, 413: {}, 415: {}, 422: {"description": "Refused: the report lists the problems"}})
def import_zones(
    request: Request,
    file: UploadFile = File(..., description="The file: a .zip of a Shapefile, .gpkg, .geojson or .kml"),
    layer: str = Form(..., description="Zone layer the file holds, e.g. livestock_ban"),
    district: str | None = Form(None, description="Adcode; only that district's zones of the layer are replaced"),
    mapping: list[str] = Form([], alias="map", description="FIELD=COLUMN pairs, e.g. name_zh=名称,source_doc_no=文号"),
    values: list[str] = Form([], alias="set", description="FIELD=VALUE, one per field, e.g. issuer=北京市门头沟区人民政府"),
    crs: str | None = Form(None, description="CRS when the file has none (e.g. EPSG:4548)"),
    accuracy: str | None = Form(None, description="official | approximate | schematic | indicative (default approximate)"),
    dry_run: bool = Form(False, description="Preview only; nothing is written"),
    repair: bool = Form(False, description="Repair invalid rings with make_valid (changes reported)"),
    layer_name: str | None = Form(None, description="Layer of a GeoPackage/KML or dataset inside a zip"),
    encoding: str | None = Form(None, description="Attribute encoding when detection fails"),
    rules_from: str | None = Form(None, description="Copy the rule texts of this existing zone"),
    author: str = Form("admin-api", description="Recorded in the version history"),
) -> JSONResponse:
    settings = request.app.state.settings
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
                                         source_name=name)
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
def versions(request: Request) -> dict:
    listed = _store(request).versions()  # one read: the current version is the last listed
    return {"current": listed[-1].data_version, "versions": [v.as_dict() for v in listed]}


@router.get("/diff", summary="Zones added, removed and changed between two versions, with area changes")
def diff(request: Request, from_version: int = Query(..., alias="from", ge=1),
         to_version: int | None = Query(None, alias="to", ge=1, description="Default: the current version")) -> dict:
    store = _store(request)
    to_version = to_version or store.current().version
    for number in (from_version, to_version):
        _known_version(store, number)
    return {"from": store.version(from_version).as_dict(), "to": store.version(to_version).as_dict(),
            **store.diff(from_version, to_version)}


@router.post("/rollback/{version}", status_code=201, summary="Serve an earlier version again (as a new version)")
def rollback(request: Request, version: int, author: str = Query("admin-api")) -> dict:
    store = _store(request)
    _known_version(store, version)
    info = store.rollback(version, author=author)
    return {"detail": f"version {version} is served again as version {info.version}",
            "version": info.as_dict(), "data_version": request.app.state.catalog.refresh().data_version}
