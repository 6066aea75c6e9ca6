"""The digitising workbench: ``GET /workbench`` (the page) and ``/v1/workbench/*`` (its API).

Every endpoint needs a session, API token or the admin token with the role it names
(``api.auth``): reading the worklist, sheets and drafts any role; uploading sheets,
georeferencing, tracing and saving drafts an editor; reviewing a reviewer who is not the
draft's author. Sheet uploads are size-checked before the body is read. The page and the
CLI (``api.cli.digitise``) call the same ``geo.digitise`` functions.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from api.admin import AdminRoute, upload_endpoint
from api.auth import client_address, principal, requires
from api.errors import NotFoundError
from geo import crs as gcrs
from geo.digitise import georef as georef_mod
from geo.digitise import sheets
from geo.digitise import trace as trace_mod
from geo.digitise.drafts import DraftError, DraftNotFoundError, DraftPermissionError, Drafts, area_check
from geo.digitise.worklist import worklist, zone_target
from geo.schema import ACCURACY, ACCURACY_TEXT
from maps.basemaps import tianditu_url

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
STATIC_DIR = Path(__file__).resolve().parent / "static"
OVERLAY_MAX_PX = 1600

router = APIRouter(prefix="/v1/workbench", tags=["workbench"], route_class=AdminRoute)
page_router = APIRouter(tags=["workbench"])


def _refusal(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": message})


def _store(request: Request):
    return request.app.state.catalog.store


def sheet_store(request: Request) -> sheets.SheetStore:
    settings = request.app.state.settings
    return sheets.SheetStore(_store(request), sheets.SheetLimits(max_bytes=settings.max_upload_bytes,
                                                                 max_pixels=settings.max_sheet_pixels),
                             legacy_dir=sheets.legacy_folder(_store(request), settings.sheets_dir))


def _who(request: Request):
    who = principal(request)
    assert who is not None  # the route guard let the request through
    return who


# ---------------------------------------------------------------- page


@page_router.get("/workbench", response_class=HTMLResponse, summary="The digitising workbench page")
def workbench_page(request: Request) -> HTMLResponse:
    token = request.app.state.settings.tianditu_token
    tianditu = [tianditu_url(layer, token) for layer in ("vec", "cva")] if token else []
    return TEMPLATES.TemplateResponse(request, "workbench.html", {
        "accuracy": {a: ACCURACY_TEXT[a] for a in ACCURACY}, "tianditu_urls": tianditu})


@page_router.get("/workbench/workbench.js", include_in_schema=False)
def workbench_js() -> FileResponse:
    return FileResponse(STATIC_DIR / "workbench.js", media_type="text/javascript")


# ---------------------------------------------------------------- worklist


@router.get("/worklist", summary="Zones to trace, per district, with their texts and progress")
@requires("workbench.read")
def get_worklist(request: Request) -> dict:
    snap = request.app.state.catalog.snapshot()
    return {"data_version": snap.data_version,
            "districts": worklist(snap.zones, Drafts(_store(request)).pending_counts())}


@router.get("/zones/{zone_id}", summary="A zone's metadata as the texts give it, and its served geometry")
@requires("workbench.read")
def get_zone(request: Request, zone_id: str) -> dict:
    import shapely

    snap = request.app.state.catalog.snapshot()
    target = zone_target(zone_id, snap.zones)
    if target is None:
        raise NotFoundError(f"zone {zone_id!r} is neither in the recipes nor served")
    served = snap.zones[snap.zones["zone_id"] == zone_id]
    return {"zone": target, "served": None if served.empty else {
        "accuracy": served["accuracy"].iloc[0], "area_km2": float(served["area_km2"].iloc[0]),
        "geometry": shapely.geometry.mapping(served.geometry.iloc[0])}}


@router.get("/districts/{adcode}", summary="A district's reference outline (GeoJSON), for context and snapping")
@requires("workbench.read")
def get_district(request: Request, adcode: str) -> dict:
    import shapely

    try:
        return {"type": "Feature", "properties": {"adcode": adcode},
                "geometry": shapely.geometry.mapping(trace_mod.district_outline(adcode))}
    except trace_mod.TraceError as exc:
        raise NotFoundError(str(exc)) from None


# ---------------------------------------------------------------- sheets


@router.post("/sheets", status_code=201, summary="Upload a map sheet (PNG, JPEG, TIFF or PDF)")
@requires("sheet.upload")
@upload_endpoint
def upload_sheet(request: Request, file: UploadFile = File(...)) -> JSONResponse:
    limit = request.app.state.settings.max_upload_bytes
    data = file.file.read(limit + 1)
    if len(data) > limit:
        return _refusal(413, f"the sheet is larger than the limit of {limit} bytes; 地图文件超过大小限制")
    try:
        who = _who(request)
        sheet = sheet_store(request).add(data, file.filename or "sheet", uploaded_by=who.name, role=who.role,
                                         client=client_address(request))
    except sheets.SheetTooLargeError as exc:
        return _refusal(413, str(exc))
    except sheets.SheetError as exc:
        return _refusal(415 if "not a PNG" in str(exc) else 422, str(exc))
    return JSONResponse(status_code=201, content=sheet.as_dict())


@router.get("/sheets", summary="Stored sheets, newest first")
@requires("workbench.read")
def list_sheets(request: Request) -> dict:
    return {"sheets": [s.as_dict() for s in sheet_store(request).list()]}


@router.get("/sheets/{sha256}/pages/{page}.png", summary="A sheet page as PNG")
@requires("workbench.read")
def sheet_page(request: Request, sha256: str, page: int) -> Response:
    try:
        png = sheet_store(request).page_png(sha256, page)
    except sheets.SheetError as exc:
        raise NotFoundError(str(exc)) from None
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})


# ---------------------------------------------------------------- georeference and trace


class PointIn(BaseModel):
    px: float
    py: float
    x: float
    y: float
    crs: str | None = Field(None, description="This point's CRS when it differs from the request's (a map click "
                            "is WGS84 while typed points are e.g. Gauss-Krüger)")


class GeorefIn(BaseModel):
    sheet: str = Field(..., description="The sheet's SHA-256")
    page: int = 1
    points: list[PointIn]
    crs: str = "EPSG:4548"
    method: str = "affine"
    overlay: bool = True


def _common_crs(body: GeorefIn) -> tuple[list[georef_mod.ControlPoint], str]:
    """The points in one CRS: as given when they share one, else each converted to EPSG:4548."""
    crs_of = [p.crs or body.crs for p in body.points]
    if len(set(crs_of)) <= 1:
        return [georef_mod.ControlPoint(p.px, p.py, p.x, p.y) for p in body.points], body.crs
    points = []
    for p, crs in zip(body.points, crs_of, strict=True):
        x, y = gcrs.convert([p.x], [p.y], georef_mod.resolve_crs(crs, [p.x], [p.y])[0], georef_mod.METRIC)
        points.append(georef_mod.ControlPoint(p.px, p.py, float(x[0]), float(y[0])))
    return points, georef_mod.METRIC


def _fit(request: Request, body: GeorefIn) -> tuple[georef_mod.Georef, Any]:
    store = sheet_store(request)
    try:
        sheet = store.get(body.sheet)
        width, height = sheet.page_size(body.page)
    except sheets.SheetError as exc:
        raise NotFoundError(str(exc)) from None
    points, crs = _common_crs(body)
    fitted = georef_mod.fit(points, crs, body.method, image_size=(width, height), sheet_sha256=sheet.sha256,
                            page=body.page)
    fitted.extra["filename"] = sheet.filename
    return fitted, store


@router.post("/georef", summary="Fit control points: residuals (m), RMS, leave-one-out, outlier; warped overlay")
@requires("draft.write")
def post_georef(request: Request, body: GeorefIn) -> dict:
    fitted, store = _fit(request, body)
    answer: dict[str, Any] = {"georef": fitted.as_dict()}
    if body.overlay:
        overlay = georef_mod.warp_overlay(fitted, store.page_array(body.sheet, body.page), OVERLAY_MAX_PX)
        answer["overlay"] = {"bounds": overlay.bounds,
                             "png": "data:image/png;base64," + base64.b64encode(overlay.png).decode()}
    return answer


class TraceIn(BaseModel):
    georef: GeorefIn
    colour: str
    tolerance: float = 30.0
    close_px: int = 6
    min_area_m2: float = 10_000.0
    simplify_m: float = 5.0
    line_width_px: float = 0.0
    clip_district: str | None = None


@router.post("/trace", summary="Trace a colour on the georeferenced sheet into a WGS84 polygon")
@requires("draft.write")
def post_trace(request: Request, body: TraceIn) -> dict:
    fitted, store = _fit(request, body.georef.model_copy(update={"overlay": False}))
    params = trace_mod.TraceParams(body.colour, body.tolerance, body.close_px, body.min_area_m2, body.simplify_m,
                                   body.line_width_px, body.clip_district)
    result = trace_mod.trace(store.page_array(body.georef.sheet, body.georef.page), fitted, params)
    return {"feature": result.feature(), "georef": fitted.summary()}


# ---------------------------------------------------------------- drafts


class DraftIn(BaseModel):
    zone_id: str
    geometry: dict[str, Any]
    georef: GeorefIn | None = None
    trace: dict[str, Any] | None = None
    edited: bool = False
    draft_id: int | None = None


def _draft_refusal(exc: DraftError) -> JSONResponse:
    status = 404 if isinstance(exc, DraftNotFoundError) else 403 if isinstance(exc, DraftPermissionError) else 422
    return _refusal(status, str(exc))


@router.post("/drafts", status_code=201, summary="Save a draft (the zone's text metadata + the traced geometry)")
@requires("draft.write")
def save_draft(request: Request, body: DraftIn) -> JSONResponse:
    who = _who(request)
    provenance: dict[str, Any] = {"trace": body.trace, "edited": body.edited}
    if body.georef is not None:
        fitted, store = _fit(request, body.georef.model_copy(update={"overlay": False}))
        sheet = store.get(body.georef.sheet)
        provenance.update(sheet={"sha256": sheet.sha256, "filename": sheet.filename, "page": body.georef.page},
                          georef=fitted.summary())
    try:
        draft = Drafts(_store(request)).save(body.zone_id, body.geometry, provenance, author=who.name, role=who.role,
                                             client=client_address(request), draft_id=body.draft_id)
    except DraftError as exc:
        return _draft_refusal(exc)
    return JSONResponse(status_code=201, content={
        **draft.as_dict(), "area_check": area_check(draft.shape, draft.record.get("stated_area_km2"))})


@router.get("/drafts", summary="Drafts, newest first")
@requires("workbench.read")
def list_drafts(request: Request, status: str | None = None) -> dict:
    found = Drafts(_store(request)).list(status)
    return {"drafts": [{**d.as_dict(), "area_check": area_check(d.shape, d.record.get("stated_area_km2"))}
                       for d in found]}


@router.get("/drafts/{draft_id}", summary="A draft for review: area check and the served version to compare")
@requires("workbench.read")
def get_draft(request: Request, draft_id: int) -> JSONResponse:
    drafts = Drafts(_store(request))
    try:
        draft = drafts.get(draft_id)
    except DraftError as exc:
        return _draft_refusal(exc)
    return JSONResponse(drafts.review_view(draft, request.app.state.catalog.snapshot().zones))


@router.get("/drafts/{draft_id}/overlay", summary="The draft's sheet warped by its control points, for review")
@requires("workbench.read")
def draft_overlay(request: Request, draft_id: int) -> JSONResponse:
    try:
        draft = Drafts(_store(request)).get(draft_id)
    except DraftError as exc:
        return _draft_refusal(exc)
    sheet, summary = draft.provenance.get("sheet"), draft.provenance.get("georef")
    if not sheet or not summary:
        raise NotFoundError(f"draft {draft_id} was drawn by hand without a georeferenced sheet")
    store = sheet_store(request)
    points = [georef_mod.ControlPoint(p["px"], p["py"], p["x"], p["y"]) for p in summary["points"]]
    fitted = georef_mod.fit(points, summary["crs"], summary["method"], sheet_sha256=sheet["sha256"],
                            page=sheet.get("page", 1))
    overlay = georef_mod.warp_overlay(fitted, store.page_array(sheet["sha256"], sheet.get("page", 1)), OVERLAY_MAX_PX)
    return JSONResponse({"bounds": overlay.bounds,
                         "png": "data:image/png;base64," + base64.b64encode(overlay.png).decode()})


class ReviewIn(BaseModel):
    approve: bool
    comment: str | None = None


@router.post("/drafts/{draft_id}/review", summary="Approve (publish as a new data version) or reject with a comment")
@requires("draft.review")
def review_draft(request: Request, draft_id: int, body: ReviewIn) -> JSONResponse:
    who = _who(request)
    try:
        draft = Drafts(_store(request)).review(draft_id, reviewer=who.name, role=who.role, approve=body.approve,
                                               comment=body.comment, client=client_address(request))
    except DraftError as exc:
        return _draft_refusal(exc)
    answer = draft.as_dict()
    if draft.status == "published":
        answer["data_version"] = request.app.state.catalog.refresh().data_version  # served at once
    return JSONResponse(answer)
