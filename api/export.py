"""GET /v1/export: the zones as a GIS file (GeoJSON, GeoPackage, Shapefile zip, KML, CSV)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from geo.crs import UnknownCRSError
from geo.export import FORMATS, ExportError, NothingToExportError, export_bytes, parse_format
from geo.selection import SelectionError, select_zones

router = APIRouter(tags=["exports"])


@router.get(
    "/v1/export",
    name="export",
    summary="Download zones as GeoJSON, GeoPackage, Shapefile (zip), KML or CSV",
    response_class=Response,
    responses={200: {"content": {f.media_type: {} for f in FORMATS.values()},
                     "description": "The export file, with the metadata fields and a provenance note"}},
)
def export(
    request: Request,
    format: str | None = Query(None, description=f"One of {', '.join(FORMATS)}"),  # noqa: A002 - the API's name
    layers: str | None = Query(None, description="Layer ids, comma-separated (default: all)"),
    district: str | None = Query(None, description="District adcode (110109) or name (门头沟区)"),
    crs: str | None = Query(None, description="Output CRS: EPSG:4326 (default), EPSG:4490, EPSG:4548, EPSG:3857 "
                            "or any EPSG code; KML is always WGS84"),
    as_of: str | None = Query(None, description="Only zones in force on this date (YYYY-MM-DD); default all"),
) -> Response:
    if format is None:
        raise HTTPException(400, f"format is required: one of {', '.join(FORMATS)}")
    snap = request.app.state.catalog.snapshot()
    try:
        export_format = parse_format(format)
        zones = select_zones(snap.zones, layers=layers, district=district, as_of=as_of)
        content = export_bytes(zones, export_format.name, data_version=snap.data_version, crs=crs,
                               selection={"layers": layers, "district": district, "as_of": as_of})
    except NothingToExportError as exc:
        raise HTTPException(404, str(exc)) from None
    except (ExportError, SelectionError, UnknownCRSError) as exc:
        raise HTTPException(400, str(exc)) from None
    name = "-".join(p for p in ("zoning", snap.data_version, district, as_of) if p)
    filename = f"{name}.{export_format.extension}"
    return Response(content, media_type=export_format.media_type, headers={
        "Content-Disposition": f"attachment; filename=\"{filename.encode('ascii', 'replace').decode()}\"; "
                               f"filename*=UTF-8''{quote(filename)}",
        "X-Data-Version": snap.data_version,
    })
