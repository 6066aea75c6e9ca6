"""Site compliance reports: ``POST /v1/report`` and its permalink ``GET /v1/report``.

A report answers what ``/v1/check/site`` answers (or ``/v1/check`` for a point site) as a
document: PDF (default) or the same content as HTML (``Accept: text/html`` or
``format=html``), drawn by ``maps.report``. ``zoning report-site`` builds the same report
with :func:`build_report`.

The permalink names the site (compressed WKB, WGS84), the data version and the other
inputs, and ``GET /v1/report`` answers it from *that* data version (``store.load``), so
a report can be reproduced after the zones have changed.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
import urllib.parse
import zlib
from typing import Any

import numpy as np
import shapely
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api import answers
from api.dependencies import (
    BEIJING,
    InputError,
    answer_422,
    parse_activity_field,
    parse_as_of_field,
    parse_crs_field,
    parse_lang_field,
    read_body,
    read_site,
    unprocessable,
)
from api.errors import NotFoundError
from geo import crs as geocrs
from geo.catalog import Snapshot
from geo.schema import ACCURACY_TEXT
from geo.selection import select_zones
from geo.store import content_hash
from maps.report import ReportData, report_html, report_pdf

router = APIRouter(tags=["报告 reports"])

SQUARE_METRES_PER_MU = 10_000 / 15  # 1 亩 = 666.67 m²
TITLES = {"zh": "选址合规性审查报告 Site compliance report", "en": "Site compliance report 选址合规性审查报告"}
MEDIA = {"pdf": "application/pdf", "html": "text/html; charset=utf-8"}

def site_token(site: shapely.Geometry) -> str:
    """The WGS84 site as URL-safe text (zlib-compressed WKB, coordinates to 1e-7°)."""
    wkb = shapely.to_wkb(shapely.set_precision(site, 1e-7) if site.geom_type != "Point" else site)
    return base64.urlsafe_b64encode(zlib.compress(wkb, 9)).decode().rstrip("=")


def site_from_token(token: str) -> shapely.Geometry:
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)), bufsize=1 << 16)
        site = shapely.from_wkb(raw)
    except (ValueError, zlib.error, shapely.errors.GEOSException) as exc:
        raise InputError(("query", "site"), f"site is not a site token from a report permalink: {exc}") from None
    if site.geom_type not in ("Point", "Polygon", "MultiPolygon") or not site.is_valid:
        raise InputError(("query", "site"), "site does not hold a valid point or polygon")
    return site


def parse_site(geojson: Any, crs: str) -> shapely.Geometry:
    """A GeoJSON Point, Polygon or MultiPolygon (or a Feature of one) in ``crs`` -> WGS84."""
    geometry = geojson.get("geometry") if isinstance(geojson, dict) and geojson.get("type") == "Feature" else geojson
    if isinstance(geometry, dict) and geometry.get("type") == "Point":
        coords = geometry.get("coordinates")
        if not (isinstance(coords, list) and len(coords) >= 2 and all(isinstance(v, int | float) for v in coords[:2])):
            raise InputError(("body", "site"), f"the site Point needs [x, y] numbers, got {coords!r}")
        try:
            lon, lat = geocrs.to_wgs84([coords[0]], [coords[1]], crs)
        except geocrs.CoordinateError as exc:
            raise InputError(("body", "site"), f"the site point is outside {crs}: {exc}") from None
        return shapely.Point(float(lon[0]), float(lat[0]))
    return read_site(json.dumps(geojson).encode(), crs)


def _centroid(site: shapely.Geometry) -> dict[str, list[float]]:
    metric = geocrs.to_metric(np.array([site], dtype=object))[0]
    centre = metric.centroid if site.geom_type != "Point" else metric
    lon, lat = (float(v[0]) for v in geocrs.convert([centre.x], [centre.y], geocrs.METRIC_CRS, "wgs84"))
    return {"wgs84": [round(lon, 7), round(lat, 7)], "cgcs2000_gk": [round(centre.x, 2), round(centre.y, 2)]}


def build_report(snap: Snapshot, site: shapely.Geometry, *, input_crs: str, as_of: str, lang: str, project: str,
                 activity: str | None, permalink_base: str) -> ReportData:
    """The report's content for a WGS84 ``site`` at the snapshot's data version."""
    activities = [activity] if activity else None
    if site.geom_type == "Point":
        answer = answers.check_answer(snap, site.x, site.y, crs="wgs84", as_of=as_of, layers=None, near_m=0,
                                      lang=lang, activities=activities)
        zones = [{**z, "overlap_area_m2": 0.0, "share_of_site": 1.0, "share_of_zone": 0.0} for z in answer["inside"]]
        area_m2 = 0.0
    else:
        answer = answers.site_answer(snap, site, crs=input_crs, as_of=as_of, layers=None, lang=lang,
                                     activities=activities)
        zones, area_m2 = answer["zones"], float(geocrs.geodesic_area_m2(site))
    token = site_token(site)
    query = {"site": token, "version": snap.version.version, "as_of": as_of, "lang": lang, "project": project}
    if activity:
        query["activity"] = activity
    generated = dt.datetime.now(BEIJING).replace(microsecond=0)
    digest = hashlib.sha256(f"{token}|{snap.data_version}|{as_of}|{activity}|{project}|{generated.isoformat()}"
                            .encode()).hexdigest()
    return ReportData(
        lang=lang, title=TITLES[lang], project=project, report_id=f"R{generated:%Y%m%d}-{digest[:10]}",
        generated_at=generated.isoformat(), data_version=snap.data_version,
        content_hash=snap.derived("content_hash", content_hash), as_of=as_of, activity=activity,
        site_wgs84=site, site_input_crs=geocrs.describe_crs(input_crs),
        area={"m2": area_m2, "mu": area_m2 / SQUARE_METRES_PER_MU, "ha": area_m2 / 10_000},
        centroid=_centroid(site), zones=zones,
        verdicts=[_verdict_row(v) for v in answer.get("verdicts", [])],
        not_digitised=answer["not_digitised"],
        accuracy_labels={key: " / ".join(texts) for key, texts in ACCURACY_TEXT.items()},
        disclaimer=answer["disclaimer"],
        permalink=f"{permalink_base}v1/report?{urllib.parse.urlencode(query)}",
        map_zones=select_zones(snap.zones, as_of=as_of))


def _verdict_row(v: dict[str, Any]) -> dict[str, Any]:
    """A verdict of ``geo.activities`` as the report's table row: word, summary, deciding rules."""
    rules = [f"{d['name']} — {d['source']['doc_no'] or ''} {d['source']['article'] or ''}: {d['rule_text']}"
             + (f" ({d['condition']})" if d.get("condition") else "") for d in v.get("deciding", [])]
    rules += [f"? {u['name']}: {u['reason']}" for u in v.get("undrawn", [])]
    return {"activity": f"{v['name']} ({v['activity']})", "verdict": v["verdict"], "summary": v["summary"],
            "rules": rules}


def render(data: ReportData, fmt: str) -> bytes:
    return report_pdf(data) if fmt == "pdf" else report_html(data).encode("utf-8")


def _format(request: Request, requested: str | None) -> str:
    if requested is not None:
        if requested not in MEDIA:
            raise unprocessable(InputError(("query", "format"), f"format={requested!r}: use pdf or html"))
        return requested
    return "html" if "text/html" in request.headers.get("accept", "") else "pdf"


def _respond(data: ReportData, fmt: str, content: bytes) -> Response:
    disposition = f'inline; filename="{data.report_id}.{fmt}"'
    return Response(content, media_type=MEDIA[fmt], headers={"Content-Disposition": disposition,
                                                            "X-Zoning-Report-Id": data.report_id,
                                                            "X-Zoning-Data-Version": data.data_version,
                                                            "X-Zoning-Permalink": data.permalink})


REPORT_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"},
    "example": {"site": {"type": "Polygon", "coordinates": [[[116.09, 39.94], [116.11, 39.94], [116.11, 39.96],
                                                             [116.09, 39.96], [116.09, 39.94]]]},
                "crs": "wgs84", "project": "某养殖场新建项目", "activity": "livestock_farm", "lang": "zh"}}}}}


@router.post(
    "/v1/report",
    summary="Site compliance report 选址合规性审查报告",
    description="The body is JSON: `site` (GeoJSON Polygon, MultiPolygon or Point, or a Feature of one), and "
                "optionally `crs`, `project`, `activity`, `lang` (zh|en), `as_of`. Answers an A4 PDF (default) or "
                "the same report as HTML (`Accept: text/html` or `format=html`): site area (m², 亩, ha), centroid "
                "(WGS84, CGCS2000 GK), a map, the zones overlapped with shares, rules with their documents, "
                "accuracy, zones not digitised, the disclaimer and a permalink that reproduces the report at "
                "this data version.",
    openapi_extra=REPORT_BODY,
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "text/html": {}}, "description": "The report"}},
)
async def post_report(request: Request, format: str | None = Query(None, description="pdf (default) or html")
                      ) -> Response:
    fmt = _format(request, format)
    body = await read_body(request, request.app.state.settings.max_upload_bytes)
    snap = request.app.state.catalog.snapshot()

    def build() -> tuple[ReportData, bytes]:
        with answer_422():
            try:
                spec = json.loads(body.decode("utf-8-sig"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise InputError(("body",), f"the report request is not JSON: {exc}") from None
            if not isinstance(spec, dict) or "site" not in spec:
                raise InputError(("body",), "the report request needs a site (GeoJSON geometry)")
            crs = parse_crs_field(str(spec.get("crs", "wgs84")), "crs", "body")
            as_of = parse_as_of_field(spec.get("as_of"), "as_of", "body")
            lang = parse_lang_field(str(spec.get("lang", "zh")), "lang", "body")
            site = parse_site(spec["site"], crs)
            project = str(spec.get("project") or "—")
            activities = parse_activity_field(spec.get("activity"), "activity", "body")
            if activities and len(activities) > 1:
                raise InputError(("body", "activity"), "a report decides one activity; ask one report per activity")
        data = build_report(snap, site, input_crs=crs, as_of=as_of, lang=lang, project=project,
                            activity=activities[0] if activities else None, permalink_base=str(request.base_url))
        return data, render(data, fmt)

    data, content = await run_in_threadpool(build)
    return _respond(data, fmt, content)


_version_snapshots: dict[int, Snapshot] = {}
_version_lock = threading.Lock()


def _snapshot_at(request: Request, version: int) -> Snapshot:
    """The snapshot of data version ``version`` (the current one, or loaded from the store)."""
    current = request.app.state.catalog.snapshot()
    if current.version.version == version:
        return current
    with _version_lock:
        if version not in _version_snapshots:
            store = request.app.state.catalog.store
            info = next((v for v in store.versions() if v.version == version), None)
            if info is None:
                raise NotFoundError(f"data version {version} is not in the store")
            if len(_version_snapshots) >= 4:
                _version_snapshots.pop(next(iter(_version_snapshots)))
            _version_snapshots[version] = Snapshot(store.load(version), info)
        return _version_snapshots[version]


@router.get(
    "/v1/report",
    summary="A report from its permalink 按链接重现报告",
    description="Rebuilds a report from the parameters of its permalink, answering from the data version it "
                "names (404 if that version is not in the store).",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "text/html": {}}, "description": "The report"}},
)
async def get_report(
    request: Request,
    site: str = Query(..., description="Site token from a report's permalink"),
    version: int = Query(..., ge=1, description="Data version number the report answers from"),
    as_of: str | None = Query(None, description="Date the rules apply on (YYYY-MM-DD)"),
    lang: str = Query("zh", description="zh or en"),
    project: str = Query("—", max_length=200, description="Project name"),
    activity: str | None = Query(None, max_length=100, description="Activity the report was asked about"),
    format: str | None = Query(None, description="pdf (default) or html"),
) -> Response:
    fmt = _format(request, format)
    with answer_422():
        geometry = site_from_token(site)
        day, language = parse_as_of_field(as_of), parse_lang_field(lang)
        parsed = parse_activity_field(activity)
        activity = parsed[0] if parsed else None

    def build() -> tuple[ReportData, bytes]:
        snap = _snapshot_at(request, version)
        data = build_report(snap, geometry, input_crs="wgs84", as_of=day, lang=language, project=project,
                            activity=activity, permalink_base=str(request.base_url))
        return data, render(data, fmt)

    data, content = await run_in_threadpool(build)
    return _respond(data, fmt, content)
