"""``POST /v1/check/sites``: many parcels (polygons) against the zones, one row per
(parcel, zone) with geodesic overlap areas and shares (``geo.parcels``).

The body is the parcel file itself: GeoPackage, zipped Shapefile, GeoJSON, GeoParquet or
CSV with a ``wkt`` column — told by ``Content-Type`` or ``filename=`` (else by its first
bytes). The answer follows ``Accept`` (or ``format=``): CSV (default, streamed slice by
slice, last row ``#complete,<parcels>,<rows>,<data version>``), GeoPackage or GeoParquet.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import shapely
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from api import answers
from api.answers import lookup_index
from api.dependencies import (
    ACTIVITY_QUERY,
    AS_OF_QUERY,
    CRS_HELP,
    LAYERS_QUERY,
    InputError,
    parse_activity_field,
    parse_as_of_field,
    parse_crs_field,
    parse_layers_field,
    read_body,
    unprocessable,
)
from api.errors import PayloadTooLargeError
from geo import parcels as gparcels
from geo.importer import SourceError
from geo.lookup import Hits, Nearby

router = APIRouter(tags=["查询 lookup"])

FORMATS = {"csv": "text/csv; charset=utf-8", "gpkg": "application/geopackage+sqlite3",
           "parquet": "application/vnd.apache.parquet"}
SUFFIX_BY_TYPE = (("geopackage", ".gpkg"), ("sqlite", ".gpkg"), ("zip", ".zip"), ("json", ".geojson"),
                  ("parquet", ".parquet"), ("csv", ".csv"))


def body_suffix(content_type: str, filename: str | None, body: bytes) -> str:
    """The parcel file's suffix: from ``filename``, the content type, else its first bytes."""
    if filename and Path(filename).suffix.lower() in (*gparcels.GIS_SUFFIXES, *gparcels.PARQUET_SUFFIXES,
                                                       *gparcels.CSV_SUFFIXES):
        return Path(filename).suffix.lower()
    kind = content_type.lower()
    for needle, suffix in SUFFIX_BY_TYPE:
        if needle in kind:
            return suffix
    for magic, suffix in ((b"SQLite format 3", ".gpkg"), (b"PK", ".zip"), (b"PAR1", ".parquet")):
        if body.startswith(magic):
            return suffix
    return ".geojson" if body.lstrip()[:1] == b"{" else ".csv"


def parcel_verdicts(snap, parcels: gparcels.Parcels, activity: str, as_of: str) -> gparcels.VerdictColumn:
    """The verdict on ``activity`` for each row's parcel as a whole: every zone it overlaps by
    more than 0 m², and the undrawn zones of the district holding its representative point
    (``answers.batch_verdicts``, as for a point covered by those zones)."""
    def column(parcel, zone, overlap):
        keep = (zone >= 0) & (overlap > 0)
        ids, first = np.unique(parcel, return_inverse=True)
        where = shapely.point_on_surface(parcels.geoms[ids])
        lon, lat = shapely.get_x(where), shapely.get_y(where)
        hit_point, hit_zone = first[keep], zone[keep]
        order = np.lexsort((hit_zone, hit_point))
        hits = Hits(point=hit_point[order], zone=hit_zone[order], n_points=len(ids))
        found = answers.PointLookup(lon, lat, "wgs84", lon, lat, hits, np.zeros(hits.zone.size),
                                    Nearby(np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0)))
        decided = answers.batch_verdicts(snap, found, [activity], as_of)
        return np.array([decided[i][activity] for i in first], dtype=object)
    return column


def result_columns(snap, parcels: gparcels.Parcels, activities: list[str] | None,
                   as_of: str) -> dict[str, gparcels.VerdictColumn]:
    """The rule codes of each row's zone, and a ``verdict_<activity>`` column per activity."""
    columns = {"rules": gparcels.rule_codes_column(lookup_index(snap).zones)}
    for activity in activities or ():
        columns[f"verdict_{activity}"] = parcel_verdicts(snap, parcels, activity, as_of)
    return columns


def answer_format(accept: str, requested: str | None) -> str:
    if requested:
        return requested
    accept = accept.lower()
    return "gpkg" if "geopackage" in accept else "parquet" if "parquet" in accept else "csv"


@router.post(
    "/v1/check/sites",
    summary="Zones many parcels overlap 地块批量查询",
    description="The body is a parcel file — GeoPackage, zipped Shapefile, GeoJSON, GeoParquet or CSV with a "
                "`wkt` column (`Content-Type` or `filename` says which) — of at most `max_parcels` (100 000) "
                "valid polygons, in the file's CRS or `crs`. One row per (parcel, zone it intersects) with the "
                "parcel's own columns and `zone_id, layer, zone_name_zh, overlap_m2` (geodesic), "
                "`share_of_parcel, share_of_zone, parcel_area_m2, rules` and, per `activity`, `verdict_<activity>` (the "
                "parcel's verdict as a whole); a parcel meeting no zone appears "
                "once with an empty `zone_id`. CSV (default, streamed; last row `#complete,<parcels>,<rows>,"
                "<data version>`), GeoPackage or GeoParquet by `Accept` or `format`.",
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/geopackage+sqlite3": {"schema": {"type": "string", "format": "binary"}},
        "application/zip": {"schema": {"type": "string", "format": "binary"}},
        "application/geo+json": {"schema": {"type": "object"}},
        "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        "text/csv": {"schema": {"type": "string"}}}}},
    response_class=StreamingResponse,
    responses={200: {"content": {t: {} for t in FORMATS.values()}, "description": "One row per (parcel, zone)"}},
)
async def check_sites(
    request: Request,
    crs: str | None = Query(None, description=CRS_HELP + "; default: the CRS the file declares (CSV: wgs84)"),
    as_of: str | None = AS_OF_QUERY, layers: str | None = LAYERS_QUERY,
    format: str | None = Query(None, description="Answer form, overriding Accept: csv, gpkg or parquet"),
    filename: str | None = Query(None, description="The file's name, e.g. parcels.gpkg (tells its form)"),
    encoding: str | None = Query(None, description="Text encoding of a CSV or a Shapefile's attributes"),
    activity: list[str] | None = ACTIVITY_QUERY,
) -> Response:
    errors, parsed = [], {}
    for name, parse, value in (("crs", parse_crs_field, crs), ("as_of", parse_as_of_field, as_of),
                               ("layers", parse_layers_field, layers), ("activities", parse_activity_field, activity)):
        try:
            parsed[name] = parse(value) if value is not None or name not in ("crs", "activities") else None
        except InputError as exc:
            errors.append(exc)
    if format is not None and format not in FORMATS:
        errors.append(InputError(("query", "format"), f"format={format!r}: use one of {', '.join(FORMATS)}"))
    if errors:
        raise unprocessable(*errors)
    settings = request.app.state.settings
    body = await read_body(request, settings.max_upload_bytes)
    out = answer_format(request.headers.get("accept", ""), format)
    suffix = body_suffix(request.headers.get("content-type", ""), filename, body)
    snap = request.app.state.catalog.snapshot()

    def read():
        with tempfile.TemporaryDirectory(prefix="zoning-parcels-") as tmp:
            path = Path(tmp) / f"parcels{suffix}"
            path.write_bytes(body)
            try:
                return gparcels.read_parcels(path, crs=parsed["crs"], encoding=encoding, workdir=Path(tmp) / "x",
                                             max_parcels=settings.max_parcels)
            except gparcels.TooManyParcelsError as exc:
                raise PayloadTooLargeError(str(exc)) from None
            except (gparcels.ParcelInputError, SourceError, ValueError) as exc:
                message = str(exc).replace("--crs", "crs=").replace("--encoding", "encoding=")
                raise unprocessable(InputError(("body",), message.replace("--layer-name", "one file"))) from None

    parcels = await run_in_threadpool(read)
    index = await run_in_threadpool(lookup_index, snap)
    columns = result_columns(snap, parcels, parsed["activities"], parsed["as_of"])
    frames = gparcels.iter_results(index, parcels, as_of=parsed["as_of"], layers=parsed["layers"],
                                   verdict_columns=columns)
    headers = {"X-Zoning-Data-Version": snap.data_version, "X-Zoning-Parcels": str(len(parcels))}
    if out == "csv":
        def trailer(n_parcels: int, rows: int) -> str:
            return f"#complete,{n_parcels},{rows},{snap.data_version}\n"
        return StreamingResponse(gparcels.csv_chunks(frames, trailer), media_type=FORMATS["csv"], headers=headers)

    def write() -> bytes:
        with tempfile.TemporaryDirectory(prefix="zoning-parcels-out-") as tmp:
            path = Path(tmp) / f"parcel_zones.{out}"
            gparcels.write_results(frames, out, path)
            return path.read_bytes()

    headers["Content-Disposition"] = f'attachment; filename="parcel_zones.{out}"'
    return Response(await run_in_threadpool(write), media_type=FORMATS[out], headers=headers)
