"""The lookup API: is this point (or site) in a zone, which rules apply, under which document.

* ``GET /v1/check`` — one point: every zone covering it (boundary counts as inside),
  the distance to each one's boundary, and zones within ``near`` metres.
* ``POST /v1/check/batch`` — up to ``max_batch_points`` points as CSV or GeoJSON.
* ``POST /v1/check/site`` — a polygon: every zone it intersects, with overlap areas.
* ``GET /v1/zones`` and ``GET /v1/zones/{zone_id}`` — the zone catalogue.

Each request answers from one catalog snapshot (so a new data version is served as
soon as the store has it, and never mixed into a half-finished answer). Answers are
built by ``api.answers``, the same functions the CLI uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pydantic_core
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from api import answers
from api.dependencies import (
    ACTIVITY_QUERY,
    AS_OF_QUERY,
    CRS_QUERY,
    LANG_QUERY,
    LAYERS_QUERY,
    NEAR_QUERY,
    InputError,
    activity_param,
    answer_422,
    as_of_param,
    coordinate_errors,
    crs_param,
    lang_param,
    layers_param,
    lookup_params,
    parse_activity_field,
    parse_layers_field,
    read_body,
    read_points,
    read_site,
    row_error,
    unprocessable,
)
from api.errors import NotFoundError
from geo.catalog import Snapshot
from geo.crs import CoordinateError
from geo.schema import zones_to_geojson
from geo.selection import SelectionError, district_codes, parse_date, select_zones

router = APIRouter(tags=["查询 lookup"])

class JSONAnswer(JSONResponse):
    """JSON rendered by pydantic-core (Rust): several times faster than the standard
    library's encoder on the long rule texts of an answer, same bytes as compact JSON."""

    def render(self, content: Any) -> bytes:
        return pydantic_core.to_json(content)


# Batch answers are written in slices of this many points, so a 100 000-point answer
# streams out while it is being serialised instead of being built whole in memory.
BATCH_CHUNK = 2000


def _snapshot(request: Request) -> Snapshot:
    return request.app.state.catalog.snapshot()


@router.get(
    "/v1/check",
    summary="Zones covering a point 点位查询",
    description="Every zone in force on `as_of` that covers the point — a point on a boundary counts as "
                "inside — with its rules, source document and the distance to its boundary (metres, "
                "EPSG:4548); plus zones within `near` metres that do not contain it, and `not_digitised`: "
                "zones the documents of the point's district define but that could not be drawn, so an empty "
                "`inside` never reads as 'in no zone'. The disclaimer names the zones whose boundaries are "
                "not official.",
)
async def check(
    request: Request,
    lon: float = Query(..., description="Longitude (or x / easting for a projected `crs`)"),
    lat: float = Query(..., description="Latitude (or y / northing for a projected `crs`)"),
    crs: str = CRS_QUERY, as_of: str | None = AS_OF_QUERY, layers: str | None = LAYERS_QUERY,
    near: float = NEAR_QUERY, lang: str = LANG_QUERY, activity: list[str] | None = ACTIVITY_QUERY,
) -> JSONAnswer:
    # Answered on the event loop: one point costs well under a millisecond of CPU, less
    # than handing it to a worker thread would (batches and sites use worker threads).
    params = lookup_params(crs, as_of, layers, lang, near)
    with answer_422():
        activities = parse_activity_field(activity)
    snap = _snapshot(request)
    try:
        answer = answers.check_answer(snap, lon, lat, crs=params.crs, as_of=params.as_of, layers=params.layers,
                                      near_m=params.near_m, lang=params.lang, activities=activities)
    except CoordinateError as exc:
        raise unprocessable(*coordinate_errors(exc, lon, lat, params.crs)) from None
    return JSONAnswer(answer)


BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"},
                         "example": "id,lon,lat\nfarm-1,116.10,39.95\nfarm-2,115.98,39.94\n"},
            "application/geo+json": {"schema": {"type": "object"}, "example": {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "id": "farm-1", "properties": {},
                              "geometry": {"type": "Point", "coordinates": [116.10, 39.95]}}]}},
        },
    }
}


@router.post(
    "/v1/check/batch",
    summary="Zones covering many points 批量查询",
    description="The body is CSV with a header (`lon,lat[,id]`; `x,y` also accepted; rows are numbered "
                "as in a spreadsheet, header = row 1) or a GeoJSON FeatureCollection of Points. At most "
                "`max_batch_points` (100 000) points: more is a 413. A bad row is a 422 naming it. The "
                "answer is one JSON object, streamed: `{as_of, crs, data_version, count, not_digitised, results: "
                "[{id, zone_ids}], disclaimer}` (`not_digitised`: zones the documents of the points' districts "
                "define but that could not be drawn); with `detail=true` each result also has `point`, `inside` and "
                "`nearby` exactly as GET /v1/check answers them.",
    openapi_extra=BATCH_BODY,
    response_class=StreamingResponse,
    responses={200: {"content": {"application/json": {}}, "description": "Streamed JSON answer"}},
)
async def check_batch(
    request: Request,
    crs: str = CRS_QUERY, as_of: str | None = AS_OF_QUERY, layers: str | None = LAYERS_QUERY,
    near: float = NEAR_QUERY, lang: str = LANG_QUERY,
    detail: bool = Query(False, description="Full zone objects, boundary distances and nearby zones per point"),
    activity: list[str] | None = ACTIVITY_QUERY,
) -> StreamingResponse:
    params = lookup_params(crs, as_of, layers, lang, near)
    with answer_422():
        activities = parse_activity_field(activity)
    settings = request.app.state.settings
    body = await read_body(request, settings.max_upload_bytes)
    snap = _snapshot(request)

    def look_up():
        with answer_422():
            points = read_points(body, request.headers.get("content-type", ""), settings.max_batch_points)
            if not points.ids:
                raise InputError(("body",), "the body has no points")
            try:
                found = answers.look_up(snap, points.x, points.y, crs=params.crs, as_of=params.as_of,
                                        layers=params.layers, near_m=params.near_m, distances=detail)
            except CoordinateError as exc:
                raise row_error(points, exc) from None
        # Verdicts weigh every covering zone, whatever layers the answer shows.
        every = found if params.layers is None or not activities else answers.look_up(
            snap, points.x, points.y, crs=params.crs, as_of=params.as_of, layers=None, near_m=0, distances=False)
        verdicts = answers.batch_verdicts(snap, every, activities, params.as_of) if activities else None
        return points, found, verdicts

    points, found, verdicts = await run_in_threadpool(look_up)
    missing = answers.relevant_undrawn(answers.not_digitised(snap, lon=found.lon, lat=found.lat, layers=params.layers),
                                       params.lang, params.as_of, activities)
    head = {"as_of": params.as_of, "crs": params.crs, "data_version": snap.data_version, "count": len(points.ids),
            **({"activities": activities} if activities else {}), "not_digitised": missing}
    tail = answers.disclaimer(answers.returned_zones(snap, found), params.lang, len(missing))
    return StreamingResponse(_stream_batch(snap, found, points.ids, detail, head, tail, verdicts, params.lang),
                             media_type="application/json")


def _stream_batch(snap: Snapshot, found: answers.PointLookup, ids: list[Any], detail: bool,
                  head: dict[str, Any], disclaimer: str,
                  verdicts: list[dict[str, str]] | None = None, lang: str | None = None) -> Iterator[bytes]:
    zone_ids = snap.zones["zone_id"].to_numpy()
    by_point = found.hits.by_point()
    yield pydantic_core.to_json(head)[:-1] + b', "results": ['
    for start in range(0, len(ids), BATCH_CHUNK):
        stop = min(start + BATCH_CHUNK, len(ids))
        details = answers.iter_point_results(snap, found, start, stop, lang=lang) if detail else None
        items = []
        for i in range(start, stop):
            item = {"id": ids[i], "zone_ids": zone_ids[by_point[i]].tolist()}
            if verdicts is not None:
                item["verdicts"] = verdicts[i]
            if details is not None:
                item.update(next(details))
            items.append(pydantic_core.to_json(item))
        yield (b"\n" if start == 0 else b",\n") + b",\n".join(items)
    yield b"\n], " + pydantic_core.to_json({"disclaimer": disclaimer})[1:] + b"\n"


SITE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/geo+json": {"schema": {"type": "object"}, "example": {
            "type": "Polygon",
            "coordinates": [[[116.09, 39.94], [116.11, 39.94], [116.11, 39.96], [116.09, 39.96], [116.09, 39.94]]]}}},
    }
}


@router.post(
    "/v1/check/site",
    summary="Zones a site polygon intersects 地块查询",
    description="The body is a GeoJSON Polygon, MultiPolygon or a Feature of one, in `crs`. Answers the site "
                "area and, for every zone it intersects (touching counts, with 0 m²), the overlap area "
                "(geodesic m²), the share of the site and the share of the zone. An invalid polygon is a 422 "
                "with the reason and where (e.g. `Self-intersection[116.1 40]`); it is never repaired.",
    openapi_extra=SITE_BODY,
)
async def check_site(
    request: Request,
    crs: str = Depends(crs_param),
    as_of: str = Depends(as_of_param),
    layers: list[str] | None = Depends(layers_param),
    lang: str = Depends(lang_param),
    activities: list[str] | None = Depends(activity_param),
) -> JSONAnswer:
    body = await read_body(request, request.app.state.settings.max_upload_bytes)
    snap = _snapshot(request)

    def answer():
        with answer_422():
            site = read_site(body, crs)
        return answers.site_answer(snap, site, crs=crs, as_of=as_of, layers=layers, lang=lang, activities=activities)

    return JSONAnswer(await run_in_threadpool(answer))


@router.get(
    "/v1/zones",
    summary="The zone catalogue 分区目录",
    description="Zones (without geometry) filtered by layer, district, a text search on names and document "
                "numbers (Chinese or English, case-insensitive) and the date they apply on.",
)
def list_zones(
    request: Request,
    layer: str | None = Query(None, description="Layer id(s), comma-separated"),
    district: str | None = Query(None, description="District adcode (110109) or name (门头沟区 / 门头沟)"),
    q: str | None = Query(None, description="Text in the zone's name (zh or en), id or document number"),
    as_of: str | None = Query(None, description="Only zones in force on this date (YYYY-MM-DD); default: all"),
    lang: str = Depends(lang_param),
) -> JSONAnswer:
    snap = _snapshot(request)
    with answer_422():  # check each filter first so that a 422 names its field
        names = parse_layers_field(layer, "layer")
        if district is not None:
            _district_codes(snap.zones, district)
        day = _date(as_of) if as_of is not None else None
    selected = select_zones(snap.zones, layers=names, district=district, as_of=day)
    if q is not None and q.strip():
        # Column by column: DataFrame.agg on an empty selection returns a frame, not a Series.
        text = selected["zone_id"].fillna("").astype(str)
        for column in ("name_zh", "name_en", "source_doc_no"):
            text = text + " " + selected[column].fillna("").astype(str)
        selected = selected[text.str.casefold().str.contains(q.strip().casefold(), regex=False)]
    base = answers.zone_answers_in(snap, lang)
    found = [base[i] for i in snap.zones.index.get_indexer(selected.index)]
    return JSONAnswer({"data_version": snap.data_version, "count": len(found), "zones": found,
                         "disclaimer": answers.disclaimer(found, lang)})


def _district_codes(zones, district: str) -> list[str]:
    try:
        return district_codes(zones, district)
    except SelectionError as exc:
        raise InputError(("query", "district"), str(exc)) from None


def _date(value: str) -> str:
    try:
        return parse_date(value)
    except SelectionError as exc:
        raise InputError(("query", "as_of"), str(exc)) from None


@router.get(
    "/v1/zones/{zone_id}",
    summary="One zone with its geometry 分区详情",
    description="A GeoJSON Feature (WGS84): the zone object as properties, plus how it was digitised "
                "(`method`, `notes`), its parent zone and district name; 404 for an unknown id.",
)
def get_zone(request: Request, zone_id: str = Path(..., description="Zone id, e.g. mtg-jyq"),
             lang: str = Depends(lang_param)) -> JSONAnswer:
    snap = _snapshot(request)
    matches = np.flatnonzero(snap.zones["zone_id"].to_numpy() == zone_id)
    if matches.size == 0:
        raise NotFoundError(f"no zone {zone_id!r} in data version {snap.data_version}; "
                            "GET /v1/zones lists the zones")
    i = int(matches[0])
    row = snap.zones.iloc[i]
    zone = answers.zone_answers_in(snap, lang)[i]
    extra = {key: row[key] for key in ("parent_id", "district_name", "method", "notes")}
    return JSONAnswer({
        "type": "Feature",
        "id": zone_id,
        "properties": {**zone, **extra},
        "geometry": zones_to_geojson(snap.zones.iloc[[i]], precision=answers.COORD_DECIMALS)["features"][0]["geometry"],
        "data_version": snap.data_version,
        "disclaimer": answers.disclaimer([zone], lang),
    })
