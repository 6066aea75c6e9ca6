"""Parcel batches: many polygons against the zones, one row per (parcel, zone).

Reading: GeoPackage, zipped Shapefile, GeoJSON and KML go through the import's
reader (``geo.importer``: allow-listed drivers chosen by extension, zip limits, DBF
encoding detection, CRS from the file with Gauss-Krüger zone checks) — the one call is
:func:`_read_gis_file`; GeoParquet is read by pyarrow (no GDAL) and CSV by pyarrow with a
``wkt`` (or ``geometry``) column. Any CRS ``geo.crs`` knows; the parcels' own columns are
kept. Invalid or non-polygon parcels are refused with their row and GEOS's reason, never
repaired.

Overlaps: candidate pairs from the zone index's STRtree; a zone that contains a parcel
properly (its prepared geometry answers that without building anything) overlaps it by the
parcel's whole area; only parcels crossing a zone boundary are intersected. Every area is
geodesic (GRS80, ``geo.crs.geodesic_area_m2``): the results equal geopandas ``overlay`` plus
geodesic area of the pieces (identical on the benchmark's 13 503 pairs) and come out
about 15-20× faster (``benchmarks/bench_parcels.py``: 20 000 parcels, 1.4 s against 27.6 s
on a loaded machine). A parcel that only touches a zone gets a row with 0 m²
(as ``/v1/check/site``); one that meets no zone gets one row with an empty ``zone_id``.

Extra columns plug in as functions of the rows (``columns``: parcel index, zone index, overlap
m²), so the activity verdicts add one column per activity without this module knowing them.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely

from geo import crs as gcrs
from geo import importer, uploads
from geo.crs import geodesic_area_m2
from geo.lookup import ZoneIndex

GIS_SUFFIXES = (".gpkg", ".zip", ".geojson", ".json", ".shp", ".kml")
PARQUET_SUFFIXES = (".parquet", ".geoparquet")
CSV_SUFFIXES = (".csv", ".txt")
RESULT_COLUMNS = ("zone_id", "layer", "zone_name_zh", "overlap_m2", "share_of_parcel", "share_of_zone",
                  "parcel_area_m2")
# Parcels per computed slice: answers stream out slice by slice.
CHUNK = 5000

# (parcel index, zone index (-1: no zone), overlap m²) per row -> the column's values
VerdictColumn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


class ParcelInputError(ValueError):
    """A parcel file that cannot be used; names the file's problem and the fix."""


class TooManyParcelsError(ParcelInputError):
    """More parcels than the limit."""


@dataclass(frozen=True)
class Parcels:
    """Parcels in WGS84 with their own columns (``attributes``, one row per parcel)."""

    attributes: pd.DataFrame
    geoms: np.ndarray
    crs: str
    crs_note: str

    def __len__(self) -> int:
        return len(self.geoms)


# ------------------------------------------------------------------ reading


def _read_gis_file(path: Path, *, crs: str | None, encoding: str | None, workdir: Path,
                   limits: uploads.UploadLimits) -> tuple[gpd.GeoDataFrame, str, str]:
    """(features, CRS, how it was found) through the import's allow-listed reader. The only
    place parcels meet GDAL: the import's hardening applies here too."""
    options = importer.ImportOptions(layer="parcels", crs=crs, encoding=encoding)
    try:
        frame, found, how = importer.read_features(path, options, workdir, limits)
    except (uploads.UploadTooLargeError, uploads.UnsafeArchiveError) as exc:
        raise ParcelInputError(str(exc)) from None
    return frame.reset_index(drop=True), found, how


def _read_parquet(path: Path, crs: str | None) -> tuple[gpd.GeoDataFrame, str, str]:
    try:
        frame = gpd.read_parquet(path)
    except (ValueError, OSError, pa.ArrowInvalid) as exc:
        raise ParcelInputError(f"{path.name} is not a GeoParquet file: {exc}") from None
    if crs:
        return frame, gcrs.parse_crs(crs), "given"
    if frame.crs is None:
        raise ParcelInputError(f"{path.name} declares no CRS; name it (crs=, --crs)")
    return frame, gcrs.parse_crs(frame.crs), "from the GeoParquet metadata"


def _read_wkt_csv(path: Path, crs: str | None, encoding: str | None) -> tuple[gpd.GeoDataFrame, str, str]:
    from geo.batch import BatchInputError, decode_csv

    try:
        utf8, _ = decode_csv(path.read_bytes(), encoding, "--encoding / encoding=")
        table = pacsv.read_csv(io.BytesIO(utf8), convert_options=pacsv.ConvertOptions(strings_can_be_null=False))
    except BatchInputError as exc:
        raise ParcelInputError(exc.message) from None
    except pa.ArrowInvalid as exc:
        raise ParcelInputError(f"{path.name} is not a readable CSV: {exc}") from None
    names = {n.strip().lower(): n for n in table.column_names}
    column = names.get("wkt") or names.get("geometry")
    if column is None:
        raise ParcelInputError(f"{path.name} needs a wkt (or geometry) column with the parcels as WKT polygons; "
                               f"its columns: {', '.join(table.column_names)}")
    text = table.column(column).to_numpy(zero_copy_only=False)
    try:
        geoms = shapely.from_wkt(text)
    except shapely.errors.GEOSException as exc:
        raise ParcelInputError(f"{path.name}: a {column} value is not WKT: {exc}") from None
    frame = gpd.GeoDataFrame(table.drop_columns([column]).to_pandas(), geometry=geoms)
    return frame, gcrs.parse_crs(crs or "wgs84"), "given" if crs else "WGS84 (the default for CSV)"


def read_parcels(path: Path, *, crs: str | None = None, encoding: str | None = None, workdir: Path,
                 max_parcels: int, limits: uploads.UploadLimits = uploads.UploadLimits(),
                 allow_points: bool = False) -> Parcels:
    """Parcels of a file, validated and converted to WGS84 (``crs`` overrides the file's);
    ``allow_points`` also accepts points (registered sites may be either)."""
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        frame, found, how = _read_parquet(path, crs)
    elif suffix in CSV_SUFFIXES:
        frame, found, how = _read_wkt_csv(path, crs, encoding)
    elif suffix in GIS_SUFFIXES:
        frame, found, how = _read_gis_file(path, crs=crs, encoding=encoding, workdir=workdir, limits=limits)
    else:
        raise ParcelInputError(f"{path.name}: unsupported parcel file {suffix or '(no suffix)'}; use GeoPackage, "
                               "zipped Shapefile, GeoJSON, GeoParquet or CSV with a wkt column")
    if not len(frame):
        raise ParcelInputError(f"{path.name} has no parcels")
    if len(frame) > max_parcels:
        raise TooManyParcelsError(f"{path.name} has {len(frame)} parcels; the limit is {max_parcels} per request")
    geoms = np.asarray(frame.geometry.values, dtype=object)
    check_polygons(geoms, found, allow_points)
    try:
        wgs84 = gcrs.geometry_to_wgs84(geoms, found)
    except gcrs.CoordinateError as exc:
        raise ParcelInputError(f"a parcel has a coordinate outside {found}: {exc}") from None
    attributes = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    return Parcels(attributes, np.asarray(wgs84, dtype=object), found, how)


def check_polygons(geoms: np.ndarray, crs: str, allow_points: bool = False) -> None:
    kinds = shapely.get_type_id(geoms)
    bad = ~np.isin(kinds, (0, 3, 6) if allow_points else (3, 6)) | shapely.is_empty(geoms)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        kind = "empty" if geoms[i] is None or shapely.is_empty(geoms[i]) else geoms[i].geom_type
        wanted = "polygons or points" if allow_points else "polygons"
        raise ParcelInputError(f"parcel {i} (row {i + 1}) is {kind}; parcels must be {wanted} "
                               f"({int(bad.sum())} such)")
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        rows = np.flatnonzero(invalid)
        first = ", ".join(f"parcel {i}: {shapely.is_valid_reason(geoms[i])}" for i in rows[:3])
        raise ParcelInputError(f"{rows.size} parcel(s) are invalid polygons (coordinates in {crs}) — {first}; "
                               "fix them (parcels are not repaired automatically)")


# ------------------------------------------------------------------ overlaps


@dataclass(frozen=True)
class ParcelOverlaps:
    """(parcel, zone) pairs that intersect, sorted by parcel then zone, with geodesic areas;
    ``parcel_area_m2`` has one entry per parcel."""

    parcel: np.ndarray
    zone: np.ndarray
    overlap_m2: np.ndarray
    parcel_area_m2: np.ndarray


def parcel_overlaps(index: ZoneIndex, geoms: np.ndarray, *, as_of: str | None = None,
                    layers: Iterable[str] | None = None) -> ParcelOverlaps:
    """Every zone (in force on ``as_of``, of ``layers``) each WGS84 parcel intersects."""
    geoms = np.asarray(geoms, dtype=object)
    parcel_area = np.asarray(geodesic_area_m2(geoms), dtype=float) if len(geoms) else np.zeros(0)
    # Box candidates, then the exact test with the zone's prepared geometry: the tree's own
    # predicate would prepare the small parcel and walk the big zone (60× slower here).
    pi, zi = index._zone_tree.query(geoms)
    keep = index.active(as_of, layers)[zi]
    pi, zi = pi[keep], zi[keep]
    meets = shapely.intersects(index.geoms[zi], geoms[pi])
    pi, zi = pi[meets], zi[meets]
    order = np.lexsort((zi, pi))
    pi, zi = pi[order], zi[order]
    overlap = np.zeros(pi.size)
    inside = shapely.contains_properly(index.geoms[zi], geoms[pi])
    overlap[inside] = parcel_area[pi[inside]]
    cut = np.flatnonzero(~inside)
    if cut.size:
        pieces = shapely.intersection(index.geoms[zi[cut]], geoms[pi[cut]])
        overlap[cut] = geodesic_area_m2(pieces)
    return ParcelOverlaps(pi.astype(np.intp), zi.astype(np.intp), overlap, parcel_area)


def result_frame(index: ZoneIndex, parcels: Parcels, start: int, stop: int, *, as_of: str | None,
                 layers: Iterable[str] | None,
                 verdict_columns: Mapping[str, VerdictColumn] | None = None) -> gpd.GeoDataFrame:
    """Rows for parcels ``start:stop``: the parcel's columns, then ``zone_id``, ``layer``,
    ``zone_name_zh``, ``overlap_m2``, ``share_of_parcel``, ``share_of_zone`` (empty for
    point zones), ``parcel_area_m2`` and the verdict columns; geometry = the parcel (WGS84)."""
    geoms = parcels.geoms[start:stop]
    found = parcel_overlaps(index, geoms, as_of=as_of, layers=layers)
    # Parcels meeting no zone get one row with no zone (zone index -1).
    lonely = np.setdiff1d(np.arange(len(geoms)), found.parcel)
    parcel = np.concatenate([found.parcel, lonely])
    zone = np.concatenate([found.zone, np.full(lonely.size, -1)])
    overlap = np.concatenate([found.overlap_m2, np.zeros(lonely.size)])
    order = np.lexsort((zone, parcel))
    parcel, zone, overlap = parcel[order], zone[order], overlap[order]
    has = zone >= 0
    zone_area = np.where(has, index.area_m2[np.maximum(zone, 0)], np.nan)
    area = found.parcel_area_m2[parcel]
    with np.errstate(divide="ignore", invalid="ignore"):
        share_parcel = np.where(area > 0, overlap / area, np.nan)
        share_zone = np.where(zone_area > 0, overlap / zone_area, np.nan)
    zones = index.zones
    out = parcels.attributes.iloc[start + parcel].reset_index(drop=True)
    taken = {name: name if name not in out.columns else f"{name}_" for name in RESULT_COLUMNS}
    out[taken["zone_id"]] = np.where(has, zones["zone_id"].to_numpy()[np.maximum(zone, 0)], None)
    out[taken["layer"]] = np.where(has, zones["layer"].to_numpy()[np.maximum(zone, 0)], None)
    out[taken["zone_name_zh"]] = np.where(has, zones["name_zh"].to_numpy()[np.maximum(zone, 0)], None)
    out[taken["overlap_m2"]] = np.round(overlap, 2)
    out[taken["share_of_parcel"]] = np.where(has, np.round(share_parcel, 6), np.nan)
    out[taken["share_of_zone"]] = np.round(share_zone, 9)
    out[taken["parcel_area_m2"]] = np.round(area, 2)
    for name, column in (verdict_columns or {}).items():
        out[name] = column(start + parcel, np.where(has, zone, -1), overlap)
    result = gpd.GeoDataFrame(out, geometry=geoms[parcel], crs="EPSG:4326")
    result.attrs["parcels"] = len(geoms)
    return result


def iter_results(index: ZoneIndex, parcels: Parcels, *, as_of: str | None, layers: Iterable[str] | None,
                 verdict_columns: Mapping[str, VerdictColumn] | None = None,
                 chunk: int = CHUNK) -> Iterator[gpd.GeoDataFrame]:
    """``result_frame`` slice by slice (for streaming and progress bars)."""
    for start in range(0, len(parcels), chunk):
        yield result_frame(index, parcels, start, min(start + chunk, len(parcels)), as_of=as_of, layers=layers,
                           verdict_columns=verdict_columns)


def rule_codes_column(zones: gpd.GeoDataFrame) -> VerdictColumn:
    """The default verdict column until activities exist: the zone's rule codes (``;``)."""
    codes = np.array([";".join(rule.get("code", "") for rule in rules) for rules in zones["rules"]] + [""],
                     dtype=object)
    return lambda _parcel, zone, _overlap: codes[zone]  # zone -1 picks the trailing ""


# ------------------------------------------------------------------ writing


def attribute_table(frame: gpd.GeoDataFrame) -> pa.Table:
    plain = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    for name in plain.columns:  # mixed object columns (text and numbers) are written as text
        if plain[name].dtype == object:
            plain[name] = plain[name].map(lambda v: v if v is None or isinstance(v, str) else str(v))
    return pa.Table.from_pandas(plain, preserve_index=False)


def csv_chunks(frames: Iterable[gpd.GeoDataFrame], trailer: Callable[[int, int], str] | None = None
               ) -> Iterator[bytes]:
    """The result frames as one CSV (no geometry: the parcel's own columns identify it),
    then ``trailer(parcels, rows)`` if given."""
    rows = parcels = 0
    for frame in frames:
        sink = pa.BufferOutputStream()
        pacsv.write_csv(attribute_table(frame), sink,
                        pacsv.WriteOptions(include_header=rows == 0, quoting_style="needed"))
        rows += len(frame)
        parcels += int(frame.attrs.get("parcels", 0))
        yield sink.getvalue().to_pybytes()
    if trailer is not None:
        yield trailer(parcels, rows).encode("utf-8")


def write_results(frames: Iterable[gpd.GeoDataFrame], fmt: str, out: Path) -> None:
    """Write the result frames to ``out`` as csv, gpkg or parquet (GeoParquet, WGS84)."""
    if fmt == "csv":
        with open(out, "wb") as f:
            for chunk in csv_chunks(frames):
                f.write(chunk)
        return
    frame = pd.concat(list(frames), ignore_index=True)
    frame = gpd.GeoDataFrame(frame, geometry="geometry", crs="EPSG:4326")
    if fmt == "gpkg":
        import pyogrio

        pyogrio.write_dataframe(frame, out, layer="parcel_zones", driver="GPKG")
    else:
        frame.to_parquet(out)
