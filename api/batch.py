"""``POST /v1/check/batch``: zones covering many points, at the engine's speed.

The body's form comes from ``Content-Type`` (else from its first bytes): CSV
(``text/csv``; UTF-8, UTF-8 with BOM or GB18030/GBK, detected, ``encoding=`` forces one),
GeoJSON, Arrow IPC (``application/vnd.apache.arrow.stream``) or (Geo)Parquet
(``application/vnd.apache.parquet``). The answer's form comes from ``Accept`` (or
``format=``): JSON (default), CSV, Arrow IPC or GeoParquet.

JSON answers carry full detail on request and are limited to ``max_batch_points``
(100 000); the columnar answers (CSV, Arrow, GeoParquet) cost no per-point JSON and take
up to ``max_columnar_points`` (2 000 000) in a body of up to ``max_columnar_bytes``.

A batch answer cut short (a crash, a dropped connection) is detectable: the JSON object
ends with ``"returned": N, "complete": true``; the CSV's last row is ``#complete,N,<data
version>`` (and the ``X-Zoning-Count`` header says N up front); an Arrow stream's schema
metadata carries ``count`` (a stream cut between messages reads as fewer rows, one cut
inside a message does not read); a Parquet file cut anywhere has no footer and does not read.

``zoning check-file`` reads and writes with the same functions (``read_batch_points``,
``answer_table``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pydantic_core
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from api import answers
from api.dependencies import (
    ACTIVITY_QUERY,
    AS_OF_QUERY,
    CRS_QUERY,
    LANG_QUERY,
    LAYERS_QUERY,
    NEAR_QUERY,
    InputError,
    PointsInput,
    _too_many,
    lookup_params,
    parse_activity_field,
    point_problem,
    read_body,
    read_points_csv,
    read_points_geojson,
    unprocessable,
)
from api.errors import PayloadTooLargeError
from api.jsonbody import JSONBodyError, TooManyArraysError, load_json
from geo import batch as gbatch
from geo.catalog import Snapshot
from geo.crs import CoordinateError

router = APIRouter(tags=["查询 lookup"])

# JSON answers are written in slices of this many points, so a 100 000-point answer
# streams out while it is being serialised instead of being built whole in memory.
BATCH_CHUNK = 2000

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
            gbatch.ARROW_TYPE: {"schema": {"type": "string", "format": "binary"}},
            gbatch.PARQUET_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}

FORMATS = ("json", "csv", "arrow", "parquet")
MEDIA_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8", "arrow": gbatch.ARROW_TYPE,
               "parquet": gbatch.PARQUET_TYPE}


def input_format(content_type: str, body: bytes) -> str:
    """csv, json, arrow or parquet: from the content type, else from the first bytes."""
    kind = content_type.split(";")[0].strip().lower()
    if "arrow" in kind:
        return "arrow"
    if "parquet" in kind:
        return "parquet"
    if "json" in kind:
        return "json"
    if "csv" in kind:
        return "csv"
    if body[:4] == b"PAR1":
        return "parquet"
    if body[:6] == b"ARROW1" or body[:4] == b"\xff\xff\xff\xff":
        return "arrow"
    return "json" if body.lstrip()[:1] == b"{" else "csv"


def output_format(accept: str, requested: str | None) -> str:
    """The answer's form: ``format=`` if given, else the first form ``Accept`` names."""
    if requested:
        return requested
    accept = accept.lower()
    for name, needle in (("csv", "text/csv"), ("arrow", "arrow"), ("parquet", "parquet")):
        if needle in accept:
            return name
    return "json"


def _from_rows(points: PointsInput) -> gbatch.PointColumns:
    """The row-by-row reader's points as columns (ids keep their types when uniform)."""
    kinds = {type(i) for i in points.ids}
    ids = pa.array(points.ids if len(kinds) <= 1 else [str(i) for i in points.ids])
    unit = points.locs[0][1] if points.locs else "row"
    rows = np.array([loc[-1] for loc in points.locs], dtype=np.int64)
    return gbatch.PointColumns(ids, points.x, points.y, unit=unit, rows=rows)


def read_batch_points(body: bytes, fmt: str, *, encoding: str | None = None, max_points: int | None = None,
                      option: str = "encoding=") -> gbatch.PointColumns:
    """Points of a batch file in any form. Raises ``InputError`` (loc under ``body``) for
    bad input and ``PayloadTooLargeError`` over ``max_points``; no message says "body",
    so the CLI shows them as they are."""
    try:
        if fmt == "arrow":
            points = gbatch.read_arrow_points(body, max_points)
        elif fmt == "parquet":
            points = gbatch.read_parquet_points(body, max_points)
        elif fmt == "json":
            try:
                # Every point has one "[" (its coordinates); the slack covers the features array and bboxes.
                data = load_json(body, max_arrays=None if max_points is None else 2 * max_points + 64,
                                 subject="the file")
            except TooManyArraysError:
                raise _too_many(max_points) from None
            except JSONBodyError as exc:
                raise InputError(("body",), str(exc)) from None
            points = _from_rows(read_points_geojson(data, max_points))
        else:
            utf8, _ = gbatch.decode_csv(body, encoding, option)
            points = gbatch.read_csv_points(utf8, max_points)
            if points is None:  # not plain: the row-by-row reader accepts it or names the bad row
                points = _from_rows(read_points_csv(utf8.decode("utf-8"), max_points))
    except gbatch.TooManyPointsError as exc:
        raise PayloadTooLargeError(exc.message) from None
    except gbatch.BatchInputError as exc:
        raise InputError(("body", *exc.where), exc.message) from None
    if not len(points):
        raise InputError(("body",), "the file has no points")
    return points


def coordinate_error(points: gbatch.PointColumns, exc: CoordinateError) -> InputError:
    """A CoordinateError from converting ``points`` as an InputError naming the row."""
    where, label = points.where(exc.index if exc.index is not None else 0)
    return InputError(("body", *where), f"{label}: {point_problem(exc)}")


def answer_table(snap: Snapshot, points: gbatch.PointColumns, found: answers.PointLookup, *,
                 distances: bool = False, full: bool = False) -> pa.Table:
    """One row per point: ``id, zone_count, zone_ids`` (``;``-separated, zone table order)
    and, with ``distances``, ``distances_m`` (metres to each of those zones' boundaries, same
    order). ``full`` (the CLI's file) adds the input and WGS84 coordinates and ``layers``."""
    n = len(points)
    hits = found.hits
    offsets = gbatch.point_offsets(hits.point, n)
    zone_ids = pa.array(snap.zones["zone_id"].to_numpy().astype(str))
    columns: dict[str, Any] = {"id": points.ids}
    if full:
        columns |= {"x": points.x, "y": points.y, "lon_wgs84": np.round(found.lon, 7),
                    "lat_wgs84": np.round(found.lat, 7)}
    columns |= {"zone_count": np.diff(offsets).astype(np.int32),
                "zone_ids": gbatch.joined(gbatch.lists(offsets, zone_ids.take(pa.array(hits.zone))))}
    if full:
        layer_names, layer_code = np.unique(snap.zones["layer"].to_numpy().astype(str), return_inverse=True)
        layer_offsets, codes = gbatch.unique_per_point(hits.point, layer_code[hits.zone], n)
        columns["layers"] = gbatch.joined(gbatch.lists(layer_offsets, pa.array(layer_names).take(pa.array(codes))))
    if distances:
        columns["distances_m"] = gbatch.joined(gbatch.lists(offsets, gbatch.rounded_strings(found.distance_m)))
    return pa.table(columns)


def point_verdicts(snap: Snapshot, points: gbatch.PointColumns, found: answers.PointLookup,
                   activities: list[str] | None, crs: str, as_of: str,
                   layers: list[str] | None) -> list[dict[str, str]] | None:
    """Per point ``{activity: verdict}`` (None without activities). Verdicts weigh every
    covering zone, whatever layers the answer shows."""
    if not activities:
        return None
    every = found if layers is None else answers.look_up(snap, points.x, points.y, crs=crs, as_of=as_of,
                                                         layers=None, near_m=0, distances=False)
    return answers.batch_verdicts(snap, every, activities, as_of)


def with_verdict_columns(table: pa.Table, verdicts: list[dict[str, str]] | None) -> pa.Table:
    """``verdict_<activity>`` columns, one per activity, after the answer's columns."""
    for activity in (verdicts[0] if verdicts else {}):
        table = table.append_column(f"verdict_{activity}", pa.array([v[activity] for v in verdicts]))
    return table


def _columnar_limit(fmt: str, settings) -> tuple[int, int]:
    if fmt == "json":
        return settings.max_batch_points, settings.max_upload_bytes
    return settings.max_columnar_points, settings.max_columnar_bytes


@router.post(
    "/v1/check/batch",
    summary="Zones covering many points 批量查询",
    description="The body is CSV with a header (`lon,lat[,id]`; `x,y` also accepted; rows are numbered as in a "
                "spreadsheet, header = row 1; UTF-8, UTF-8 with BOM or GB18030/GBK, detected, `encoding` forces "
                "one), a GeoJSON FeatureCollection of Points, an Arrow IPC stream "
                "(`application/vnd.apache.arrow.stream`) or a (Geo)Parquet file (`application/vnd.apache.parquet`) "
                "with lon/lat (or x/y) columns or WKB points. The answer's form follows `Accept` (or `format`): "
                "JSON (default; at most `max_batch_points`, 100 000) or, up to `max_columnar_points` (2 000 000), "
                "CSV (`id,zone_count,zone_ids[,distances_m]`, last row `#complete,N,<data version>`), Arrow IPC "
                "or GeoParquet (WGS84 point geometry, `zone_ids` a list). More points is a 413; a bad row a 422 "
                "naming it. JSON: `{as_of, crs, data_version, count, not_digitised, results: [{id, zone_ids}], "
                "disclaimer, returned, complete: true}` streamed; the last member `complete` shows the answer was not "
                "cut. With `detail=true` (JSON) each result also has `point`, `inside` and `nearby` as GET "
                "/v1/check answers them. With `activity`, each result has `verdicts` ({activity: verdict}); the "
                "columnar forms get a `verdict_<activity>` column per activity.",
    openapi_extra=BATCH_BODY,
    response_class=StreamingResponse,
    responses={200: {"content": {"application/json": {}, "text/csv": {}, gbatch.ARROW_TYPE: {},
                                 gbatch.PARQUET_TYPE: {}}, "description": "Streamed answer"}},
)
async def check_batch(
    request: Request,
    crs: str = CRS_QUERY, as_of: str | None = AS_OF_QUERY, layers: str | None = LAYERS_QUERY,
    near: float = NEAR_QUERY, lang: str = LANG_QUERY,
    detail: bool = Query(False, description="JSON: full zone objects, boundary distances and nearby zones per point"),
    distances: bool = Query(False, description="CSV/Arrow/GeoParquet: add distances_m, metres to each zone's boundary"),
    format: str | None = Query(None, description="Answer form, overriding Accept: json, csv, arrow or parquet"),
    encoding: str | None = Query(None, description="CSV text encoding, e.g. gb18030; default: detected "
                                                   "(UTF-8, UTF-8 with BOM, else GB18030/GBK)"),
    activity: list[str] | None = ACTIVITY_QUERY,
) -> Response:
    params = lookup_params(crs, as_of, layers, lang, near)
    try:
        activities = parse_activity_field(activity)
    except InputError as exc:
        raise unprocessable(exc) from None
    if format is not None and format not in FORMATS:
        raise unprocessable(InputError(("query", "format"), f"format={format!r}: use one of {', '.join(FORMATS)}"))
    out = output_format(request.headers.get("accept", ""), format)
    settings = request.app.state.settings
    max_points, max_bytes = _columnar_limit(out, settings)
    body = await read_body(request, max_bytes)
    snap = request.app.state.catalog.snapshot()
    fmt = input_format(request.headers.get("content-type", ""), body)

    def look_up():
        try:
            points = read_batch_points(body, fmt, encoding=encoding, max_points=max_points)
            try:
                found = answers.look_up(snap, points.x, points.y, crs=points.crs or params.crs, as_of=params.as_of,
                                        layers=params.layers, near_m=params.near_m,
                                        distances=detail if out == "json" else distances)
                verdicts = point_verdicts(snap, points, found, activities, points.crs or params.crs, params.as_of,
                                          params.layers)
            except CoordinateError as exc:
                raise coordinate_error(points, exc) from None
        except InputError as exc:
            raise unprocessable(exc) from None
        missing = answers.relevant_undrawn(
            answers.not_digitised(snap, lon=found.lon, lat=found.lat, layers=params.layers), params.lang,
            params.as_of, activities)
        return points, found, missing, verdicts

    points, found, missing, verdicts = await run_in_threadpool(look_up)
    if out == "json":
        head = {"as_of": params.as_of, "crs": points.crs or params.crs, "data_version": snap.data_version,
                "count": len(points), **({"activities": activities} if activities else {}), "not_digitised": missing}
        tail = answers.disclaimer(answers.returned_zones(snap, found), params.lang, len(missing))
        return StreamingResponse(_stream_json(snap, found, points.ids.to_pylist(), detail, head, tail, verdicts,
                                              params.lang), media_type=MEDIA_TYPES["json"])
    headers = {"X-Zoning-Count": str(len(points)), "X-Zoning-Data-Version": snap.data_version,
               "X-Zoning-As-Of": params.as_of, "X-Zoning-Not-Digitised": ",".join(e["zone_id"] for e in missing)}
    table = with_verdict_columns(await run_in_threadpool(answer_table, snap, points, found, distances=distances),
                                 verdicts)
    # An Arrow stream cut between two messages reads as a shorter table: the count is in the schema.
    table = table.replace_schema_metadata({"count": str(len(points)), "data_version": snap.data_version})
    if out == "csv":
        body_iter = gbatch.iter_csv(table, trailer=f"#complete,{len(points)},{snap.data_version}\n")
    elif out == "arrow":
        body_iter = gbatch.iter_arrow(table)
    else:
        table = table.append_column("geometry", gbatch.point_wkb(found.lon, found.lat))
        table = table.replace_schema_metadata({**table.schema.metadata, **gbatch.geoparquet_metadata()})
        table = table.set_column(table.column_names.index("zone_ids"), "zone_ids",
                                 gbatch.lists(gbatch.point_offsets(found.hits.point, len(points)),
                                              pa.array(snap.zones["zone_id"].to_numpy().astype(str))
                                              .take(pa.array(found.hits.zone))))
        return Response(await run_in_threadpool(gbatch.parquet_bytes, table), media_type=MEDIA_TYPES[out],
                        headers=headers)
    return StreamingResponse(body_iter, media_type=MEDIA_TYPES[out], headers=headers)


def _stream_json(snap: Snapshot, found: answers.PointLookup, ids: list[Any], detail: bool,
                 head: dict[str, Any], disclaimer: str, verdicts: list[dict[str, str]] | None = None,
                 lang: str | None = None) -> Iterator[bytes]:
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
    # Last: the count again and "complete", so a client can tell a whole answer from a cut one.
    closing = {"disclaimer": disclaimer, "returned": len(ids), "complete": True}
    yield b"\n], " + pydantic_core.to_json(closing)[1:] + b"\n"
