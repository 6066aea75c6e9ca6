"""Export files by URL: GeoJSON, GeoPackage, Shapefile zip, KML and CSV that GIS clients open directly.

* ``/v1/export/{data_version}/zones.{ext}`` — a stable URL: the same bytes for as long as
  the store keeps that version (``ext``: geojson, gpkg, zip (Shapefile), kml, csv; and
  ``zones.csvt`` / ``zones.prj``, the companions GDAL reads beside ``zones.csv``).
  ``latest`` in place of the data version is the current version.
* ``/v1/export?format=…`` — the current version, same bytes as the stable URL, which the
  ``Content-Location`` header names.

Each file is built once per data version and option set (``geo.export_cache``) and
served with ``HEAD``, ``Range`` (206; several ranges as multipart/byteranges; a range
past the end is 416), ``Content-Length``, a strong ``ETag`` (SHA-256 of the bytes),
``Last-Modified`` and ``If-None-Match`` → 304, which is what GDAL's ``/vsicurl/`` and
QGIS's HTTP(S) source need.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, PlainTextResponse, Response

from geo.crs import UnknownCRSError
from geo.export import FORMATS, ExportError, NothingToExportError, csv_companions, select_geometry
from geo.export_cache import ExportCache, ExportFile, ExportRequest, cache_dir_for
from geo.selection import SelectionError, select_zones
from geo.store import StoreError

router = APIRouter(tags=["exports"])

BY_EXTENSION = {f.extension: f for f in FORMATS.values()}
COMPANIONS = {"csvt": "text/plain; charset=utf-8", "prj": "text/plain; charset=utf-8"}
FILE_RESPONSES = {
    200: {"content": {f.media_type: {} for f in FORMATS.values()},
          "description": "The export file, with the metadata fields and a provenance note"},
    206: {"description": "The byte range(s) asked for with `Range`"},
    304: {"description": "Not modified: the `If-None-Match` ETag is current"},
    400: {"description": "A bad option (format, CRS, encoding, layer, district, date, geometry)"},
    404: {"description": "No such data version, or no zone matches the selection"},
    416: {"description": "The range starts past the end of the file"},
}

FORMAT_Q = Query(None, description=f"One of {', '.join(FORMATS)}")
LAYERS_Q = Query(None, description="Layer ids, comma-separated (default: all)")
DISTRICT_Q = Query(None, description="District adcode (110109) or name (门头沟区)")
CRS_Q = Query(None, description="Output CRS: EPSG:4326 (default), EPSG:4490, EPSG:4548, EPSG:3857 or any EPSG "
                                "code; KML is always WGS84")
AS_OF_Q = Query(None, description="Only zones in force on this date (YYYY-MM-DD); default all")
ENCODING_Q = Query(None, description="Shapefile DBF encoding: utf-8 (default) or gbk (.cpg 936, for ArcGIS 10.x "
                                     "and other GBK readers)")
GEOMETRY_Q = Query(None, description="Only point or only polygon zones (one geometry type per file, for loaders "
                                     "that type a layer from its first row)")


def export_cache(request: Request) -> ExportCache:
    """Files next to a file store; a store that is not a file (a database) keeps them in the temp folder."""
    cache = getattr(request.app.state, "export_cache", None)
    if cache is None:
        store_path = getattr(request.app.state.catalog.store, "path", None)
        root = cache_dir_for(Path(store_path)) if store_path else Path(tempfile.gettempdir()) / "zoning-exports"
        cache = request.app.state.export_cache = ExportCache(root)
    return cache


def _zones_of_version(request: Request, data_version: str):
    """(data_version, zones) of the current snapshot or of a stored earlier version."""
    snap = request.app.state.catalog.snapshot()
    if data_version in ("latest", snap.data_version):
        return snap.data_version, snap.zones
    store = request.app.state.catalog.store
    number = data_version[1:].split("-", 1)[0] if data_version.startswith("v") else ""
    try:
        if number.isdigit() and store.version(int(number)).data_version == data_version:
            return data_version, store.load(int(number))
    except StoreError:
        pass
    raise HTTPException(404, f"no data version {data_version!r}; the current one is {snap.data_version} "
                             "(or use 'latest')")


def _build(request: Request, data_version: str, options: ExportRequest) -> tuple[str, ExportFile]:
    version, zones = _zones_of_version(request, data_version)
    try:
        options = options.normalised()
        chosen = select_geometry(select_zones(zones, layers=options.layers, district=options.district,
                                              as_of=options.as_of), options.geometry)
        return version, export_cache(request).get(options, version, chosen)
    except NothingToExportError as exc:
        raise HTTPException(404, str(exc)) from None
    except (ExportError, SelectionError, UnknownCRSError) as exc:
        raise HTTPException(400, str(exc)) from None


def _disposition(filename: str) -> str:
    return (f"attachment; filename=\"{filename.encode('ascii', 'replace').decode()}\"; "
            f"filename*=UTF-8''{quote(filename)}")


def serve_file(request: Request, export: ExportFile, headers: dict[str, str]) -> Response:
    """The file with HEAD/Range/conditional handling; ``headers`` are added to every answer."""
    headers = {"ETag": export.etag, "Vary": "Accept-Encoding", **headers}
    wanted = request.headers.get("if-none-match")
    if wanted is not None and (wanted.strip() == "*" or export.etag in [t.strip().removeprefix("W/")
                                                                         for t in wanted.split(",")]):
        return Response(status_code=304, headers=headers)
    return FileResponse(export.path, media_type=export.media_type, headers=headers,
                        stat_result=os.stat(export.path))


def _stable_url(request: Request, version: str, extension: str) -> str:
    url = request.url_for("export_file", data_version=version, filename=f"zones.{extension}")
    query = request.url.remove_query_params("format").query
    return f"{url}?{query}" if query else str(url)


@router.get("/v1/export", name="export", operation_id="export", response_class=Response, responses=FILE_RESPONSES,
            summary="Download zones as GeoJSON, GeoPackage, Shapefile (zip), KML or CSV (current data version)")
@router.head("/v1/export", operation_id="export_head", response_class=Response, responses=FILE_RESPONSES,
             summary="Size, ETag and date of an export file, without the file")
def export(
    request: Request,
    format: str | None = FORMAT_Q,  # noqa: A002 - the API's name
    layers: str | None = LAYERS_Q,
    district: str | None = DISTRICT_Q,
    crs: str | None = CRS_Q,
    as_of: str | None = AS_OF_Q,
    encoding: str | None = ENCODING_Q,
    geometry: str | None = GEOMETRY_Q,
) -> Response:
    if format is None:
        raise HTTPException(400, f"format is required: one of {', '.join(FORMATS)}")
    options = ExportRequest(format, crs, encoding, layers, district, as_of, geometry)
    version, export_file = _build(request, "latest", options)
    name = "-".join(p for p in ("zoning", version, district, as_of) if p)
    return serve_file(request, export_file, {
        "Content-Disposition": _disposition(f"{name}.{export_file.extension}"),
        "Content-Location": _stable_url(request, version, export_file.extension),
        "Cache-Control": "no-cache",  # the current version changes with every import
        "X-Data-Version": version,
    })


@router.get("/v1/export/{data_version}/{filename}", name="export_file", operation_id="export_file",
            response_class=Response, responses=FILE_RESPONSES,
            summary="Export file of one data version at a stable URL (zones.gpkg, zones.zip, …; 'latest' = current)")
@router.head("/v1/export/{data_version}/{filename}", operation_id="export_file_head", response_class=Response,
             responses=FILE_RESPONSES, summary="Size, ETag and date of an export file at its stable URL")
def export_file(
    request: Request,
    data_version: str = PathParam(..., description="A data version (v3-1a2b3c4d, see /healthz) or latest"),
    filename: str = PathParam(..., description="zones.geojson, zones.gpkg, zones.zip (Shapefile), zones.kml, "
                                          "zones.csv, or zones.csvt / zones.prj (the CSV's companions)"),
    layers: str | None = LAYERS_Q,
    district: str | None = DISTRICT_Q,
    crs: str | None = CRS_Q,
    as_of: str | None = AS_OF_Q,
    encoding: str | None = ENCODING_Q,
    geometry: str | None = GEOMETRY_Q,
) -> Response:
    stem, _, extension = filename.rpartition(".")
    if stem != "zones" or (extension not in BY_EXTENSION and extension not in COMPANIONS):
        raise HTTPException(404, f"no file {filename!r}; files are "
                                 f"{', '.join(f'zones.{e}' for e in [*BY_EXTENSION, *COMPANIONS])}")
    if extension in COMPANIONS:
        version, _ = _zones_of_version(request, data_version)
        try:
            text = csv_companions(crs)[extension]
        except (ExportError, UnknownCRSError) as exc:
            raise HTTPException(400, str(exc)) from None
        return PlainTextResponse(text, media_type=COMPANIONS[extension], headers={"X-Data-Version": version})
    options = ExportRequest(BY_EXTENSION[extension].name, crs, encoding, layers, district, as_of, geometry)
    version, export = _build(request, data_version, options)
    immutable = data_version != "latest"
    return serve_file(request, export, {
        "Cache-Control": "public, max-age=86400" if immutable else "no-cache",
        "X-Data-Version": version,
    })
