"""Registered sites and the impact of a data version: ``/v1/admin/sites`` and
``/v1/admin/impact``: reading needs an editor, reviewer or admin, replacing the registry an
editor or admin (``api.auth``); a replacement is audited.

``POST /v1/admin/sites`` replaces the registry with the sites of the uploaded file (points
or polygons; the same forms as ``/v1/check/sites``); ``GET /v1/admin/sites`` lists them.
``GET /v1/admin/impact?from=&to=`` lists the sites that entered or left zones, or whose
zones' rules or verdicts on an activity changed, between two versions (``geo.impact``): JSON summary (default), CSV,
GeoPackage, or the short summary as HTML or PDF.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from api import answers
from api.admin import AdminRoute
from api.auth import audit_event, requires
from api.dependencies import InputError, parse_as_of_field, read_body, unprocessable
from api.errors import NotFoundError
from api.parcels import body_suffix
from geo import activities as acts
from geo import impact as gimpact
from geo.catalog import Snapshot
from geo.importer import SourceError
from geo.lookup import Hits, Nearby
from geo.parcels import ParcelInputError
from geo.store import ZoneStore
from maps.report import impact_html, impact_pdf

router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=AdminRoute)

FORMATS = {"json": "application/json", "csv": "text/csv; charset=utf-8", "gpkg": "application/geopackage+sqlite3",
           "html": "text/html; charset=utf-8", "pdf": "application/pdf"}


def version_numbers(store: ZoneStore, version_from: int | None, version_to: int | None) -> tuple[Any, Any]:
    """(from, to) VersionInfo; defaults: the current version and the one before it."""
    versions = {v.version: v for v in store.versions()}
    latest = max(versions)
    to_info = versions.get(version_to or latest)
    from_info = versions.get(version_from or max(latest - 1, min(versions)))
    for number, info in ((version_from, from_info), (version_to, to_info)):
        if info is None:
            raise NotFoundError(f"data version {number} is not in the store")
    return from_info, to_info


def site_verdicts(snapshots: dict[str, Snapshot], as_of: str) -> gimpact.VerdictFunction:
    """Verdicts on every catalogued activity for each site at one version: the zones covering
    it and the undrawn zones of the district of its representative point, as a point covered
    by those zones is decided (``answers.batch_verdicts``)."""
    def verdicts(which: str, geoms: np.ndarray, covering: list[np.ndarray]) -> dict[str, list[str]]:
        where = shapely.point_on_surface(geoms)
        lon, lat = shapely.get_x(where), shapely.get_y(where)
        point = np.repeat(np.arange(len(geoms)), [len(c) for c in covering])
        zone = np.concatenate(covering) if covering else np.zeros(0, np.intp)
        hits = Hits(point=point.astype(np.intp), zone=zone.astype(np.intp), n_points=len(geoms))
        found = answers.PointLookup(lon, lat, "wgs84", lon, lat, hits, np.zeros(zone.size),
                                    Nearby(np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0)))
        codes = sorted(acts.activity_codes())
        decided = answers.batch_verdicts(snapshots[which], found, codes, as_of)
        return {code: [d[code] for d in decided] for code in codes}
    return verdicts


def compute_impact(store: ZoneStore, sites: gpd.GeoDataFrame, version_from: int | None, version_to: int | None,
                   as_of: str) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """The change rows and their summary between two versions of ``store`` for ``sites``."""
    old, new = version_numbers(store, version_from, version_to)
    snapshots = {"from": Snapshot(store.load(old.version), old), "to": Snapshot(store.load(new.version), new)}
    changes = gimpact.impact(snapshots["from"].zones, snapshots["to"].zones, sites, as_of=as_of,
                             verdicts=site_verdicts(snapshots, as_of))
    summary = gimpact.summary(changes, sites, version_from=old.version, version_to=new.version,
                              data_versions=(old.data_version, new.data_version), as_of=as_of)
    return changes, summary


@router.post("/sites", status_code=201, summary="Replace the registered sites (farms, permits, projects)")
@requires("sites.write")
async def import_sites(request: Request, crs: str | None = Query(None, description="CRS when the file has none"),
                       filename: str | None = Query(None, description="The file's name, e.g. farms.gpkg")) -> dict:
    settings = request.app.state.settings
    body = await read_body(request, settings.max_upload_bytes)
    suffix = body_suffix(request.headers.get("content-type", ""), filename, body)

    def save() -> int:
        with tempfile.TemporaryDirectory(prefix="zoning-sites-") as tmp:
            path = Path(tmp) / f"sites{suffix}"
            path.write_bytes(body)
            try:
                sites = gimpact.read_sites_file(path, crs=crs, workdir=Path(tmp) / "x", max_sites=settings.max_parcels)
            except (ParcelInputError, SourceError, ValueError) as exc:
                raise unprocessable(InputError(("body",), str(exc).replace("--crs", "crs="))) from None
        gimpact.save_sites(sites, request.app.state.catalog.store,
                           audit_event(request, "sites.replace", target=filename, sites=len(sites)))
        return len(sites)

    count = await run_in_threadpool(save)
    return {"detail": f"{count} site(s) registered", "sites": count}


@router.get("/sites", summary="The registered sites (GeoJSON)",
            responses={200: {"content": {"application/geo+json": {"schema": {"type": "object"}}}}})
@requires("sites.read")
def list_sites(request: Request) -> Response:
    sites = gimpact.load_sites(request.app.state.catalog.store)
    return Response(sites.to_json(ensure_ascii=False), media_type="application/geo+json")


@router.get("/impact", summary="Sites that entered or left zones between two data versions",
            responses={200: {"content": {t: {} for t in FORMATS.values()}}})
@requires("sites.read")
def get_impact(
    request: Request,
    version_from: int | None = Query(None, alias="from", ge=1, description="Default: the version before `to`"),
    version_to: int | None = Query(None, alias="to", ge=1, description="Default: the current version"),
    as_of: str | None = Query(None, description="Date the zones are compared on; default today in Beijing"),
    format: str = Query("json", description="json, csv, gpkg, html or pdf"),
) -> Response:
    if format not in FORMATS:
        raise unprocessable(InputError(("query", "format"), f"format={format!r}: use one of {', '.join(FORMATS)}"))
    try:
        day = parse_as_of_field(as_of)
    except InputError as exc:
        raise unprocessable(exc) from None
    store = request.app.state.catalog.store
    changes, summary = compute_impact(store, gimpact.load_sites(request.app.state.catalog.store), version_from, version_to, day)
    if format == "json":
        return JSONResponse(summary)
    if format in ("html", "pdf"):
        return Response(impact_pdf(summary) if format == "pdf" else impact_html(summary), media_type=FORMATS[format])
    with tempfile.TemporaryDirectory(prefix="zoning-impact-") as tmp:
        path = Path(tmp) / f"impact.{format}"
        gimpact.write_changes(changes, format, path)
        name = f"impact-v{summary['from']}-v{summary['to']}.{format}"
        return Response(path.read_bytes(), media_type=FORMATS[format],
                        headers={"Content-Disposition": f'attachment; filename="{name}"',
                                 "X-Zoning-Summary": json.dumps(summary["changes"])})
