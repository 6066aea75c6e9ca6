"""Parcel batches over files larger than memory: dask-geopandas partitions on dask.distributed.

``check_parcels(INPUT, OUTPUT, store, engine="dask")`` reads parcels (polygons) from
partitioned GeoParquet (a directory of files), one GeoParquet file or one GeoPackage (a single
file is cut into partitions of ``partition_parcels`` rows), and writes one GeoParquet file per
input partition into the directory ``OUTPUT`` (``part.00000.parquet``, … : zero-padded so any
reader lists them in input order). Every partition is answered by exactly the in-process
parcel code — ``geo.parcels``' polygon checks, CRS conversion and ``iter_results`` with the
verdict columns of ``columns`` — so the partitions, read in order, equal the in-process
``check-file --sites`` answer row for row (``tests/test_parcels_distributed.py``).

One data version per job: the store's current version when the job starts, pinned for every
partition (``geo.distributed.Job``: a worker loads that version and its saved lookup index once).
Input problems that show without reading the parcels (no such file, a form that is not
supported, no geometry column, no or an unknown CRS) are refused before any cluster starts;
a partition with a parcel that is not a valid polygon or has a coordinate outside its CRS
fails the job with the partition and row named. Either way nothing is left behind: the
partitions are written into a temporary directory beside ``OUTPUT`` that replaces it only when
every partition succeeded (``geo.distributed.output_directory``).

Unlike the point files, the parcel answer keeps each parcel's own columns (no added
``data_version`` column, so it equals the in-process answer); the data version, as-of date and
input CRS are in every file's Parquet metadata under ``zoning``.

On a cluster (``scheduler="tcp://…"``) the workers must read ``INPUT``, write beside ``OUTPUT``
(shared storage) and reach the store, as for the points.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyproj
import shapely

from geo import crs as gcrs
from geo import parcels as gparcels
from geo.distributed import Job, _snapshot, output_directory, run_on

# Parcels per partition when one file is cut up: ~3-5 s of work per task on one core here,
# large enough that the scheduler's ~1 ms per task does not count, small enough to spread.
PARTITION_PARCELS = 50_000
COUNTS = pd.DataFrame({name: pd.Series(dtype=np.int64) for name in ("partition", "parcels", "rows", "overlaps")})

WGS84_PROJJSON = pyproj.CRS("EPSG:4326").to_json_dict()  # as geopandas writes it, so readers say EPSG:4326

# (the pinned snapshot, one partition's parcels) -> the verdict columns of its rows (name -> function),
# as in-process; None: the zones' rule codes alone (``geo.parcels.rule_codes_column``).
ColumnsFactory = Callable[[Any, gparcels.Parcels], Mapping[str, gparcels.VerdictColumn]]


@dataclass(frozen=True)
class ParcelJob:
    """What every partition needs: the pinned version, the options, where to write."""

    job: Job
    out_dir: str
    partitions: int
    crs_note: str
    columns: ColumnsFactory | None = None
    input_schema: pa.Schema | None = None  # the GeoParquet input's column types


def open_parcels(src: Path, crs: str | None = None, partition_parcels: int = PARTITION_PARCELS):
    """``src`` as a dask-geopandas frame and its CRS: ``(frame, crs, how the CRS was found)``.
    Raises ``ParcelInputError`` for what shows without reading the parcels."""
    import dask
    import dask_geopandas

    src = Path(src)
    if not src.exists():
        raise gparcels.ParcelInputError(f"{src} does not exist")
    suffix = src.suffix.lower()
    # Text columns stay Python strings, as the in-process reader gives them.
    with dask.config.set({"dataframe.convert-string": False}):
        if src.is_dir() or suffix in gparcels.PARQUET_SUFFIXES:
            try:
                frame = dask_geopandas.read_parquet(str(src))
            except (ValueError, TypeError, OSError, pa.ArrowException) as exc:
                raise gparcels.ParcelInputError(f"{src.name} is not GeoParquet (polygons with GeoParquet "
                                                f"metadata): {exc}") from None
            rows = pq.ParquetFile(src).metadata.num_rows if src.is_file() else 0
        elif suffix == ".gpkg":
            import pyogrio

            try:
                rows = int(pyogrio.read_info(src)["features"])
            except pyogrio.errors.DataSourceError as exc:
                raise gparcels.ParcelInputError(f"{src.name} is not a GeoPackage: {exc}") from None
            frame = dask_geopandas.read_file(str(src), npartitions=max(1, math.ceil(rows / partition_parcels)))
        else:
            raise gparcels.ParcelInputError(
                f"{src.name}: the dask engine reads parcels from GeoParquet (a file or a directory of partitions) "
                "or a GeoPackage; convert other forms first (ogr2ogr -f Parquet)")
    if not hasattr(frame, "geometry") or frame._meta.geometry.name not in frame._meta.columns:
        raise gparcels.ParcelInputError(f"{src.name} has no geometry column")
    if frame.npartitions == 1 and rows > partition_parcels:
        frame = frame.repartition(npartitions=math.ceil(rows / partition_parcels))
    try:
        if crs:
            return frame, gcrs.parse_crs(crs), "given"
        if frame._meta.crs is None:
            raise gparcels.ParcelInputError(f"{src.name} declares no CRS; name it with --crs")
        return frame, gcrs.parse_crs(frame._meta.crs), "from the file"
    except gcrs.UnknownCRSError as exc:
        raise gparcels.ParcelInputError(f"{src.name}: {exc}") from None


def input_schema(src: Path) -> pa.Schema | None:
    """The Arrow types of a GeoParquet input's columns (None for a GeoPackage)."""
    import pyarrow.dataset as pads

    src = Path(src)
    return pads.dataset(str(src), format="parquet").schema if src.is_dir() or src.suffix.lower() != ".gpkg" else None


def parcels_of_partition(part, crs: str, crs_note: str, where: str) -> gparcels.Parcels:
    """One partition as ``Parcels`` in WGS84, checked as the in-process reader checks a file;
    ``where`` names the partition in the errors."""
    geoms = np.asarray(part.geometry.values, dtype=object)
    try:
        gparcels.check_polygons(geoms, crs)
        wgs84 = gcrs.geometry_to_wgs84(geoms, crs) if len(geoms) else geoms
    except gcrs.CoordinateError as exc:
        raise gparcels.ParcelInputError(f"in {where}, a parcel has a coordinate outside {crs}: {exc}") from None
    except gparcels.ParcelInputError as exc:
        raise gparcels.ParcelInputError(f"in {where}, {exc}") from None
    attributes = pd.DataFrame(part.drop(columns=part.geometry.name))
    return gparcels.Parcels(attributes, np.asarray(wgs84, dtype=object), crs, crs_note)


def answer_partition(part, task: ParcelJob, partition_info: dict | None = None) -> pd.DataFrame:
    """Answer one partition with the in-process code and write it as ``part.<k>.parquet``;
    returns its counts (one row)."""
    k = partition_info["number"] if partition_info else 0
    job = task.job
    parcels = parcels_of_partition(part, job.crs, task.crs_note, f"partition {k + 1} of {task.partitions}")
    rows = overlaps = 0
    if len(parcels):
        snap = _snapshot(job.store, job.version)
        index = snap.lookup_index()
        columns = (task.columns(snap, parcels) if task.columns is not None
                   else {"rules": gparcels.rule_codes_column(index.zones)})
        frames = list(gparcels.iter_results(index, parcels, as_of=job.as_of, layers=job.layers,
                                            verdict_columns=columns))
        frame = pd.concat(frames, ignore_index=True)
        zone_id = "zone_id_" if "zone_id" in parcels.attributes.columns else "zone_id"
        rows, overlaps = len(frame), int(frame[zone_id].notna().sum())
        write_partition(frame, Path(task.out_dir) / f"part.{k:05d}.parquet",
                        {"data_version": snap.data_version, "as_of": job.as_of, "input_crs": job.crs},
                        task.input_schema)
    return pd.DataFrame({"partition": [k], "parcels": [len(parcels)], "rows": [rows], "overlaps": [overlaps]},
                        dtype=np.int64)


def write_partition(frame, path: Path, about: dict[str, Any], input_schema: pa.Schema | None = None) -> None:
    """One partition's rows as GeoParquet (WKB, WGS84), the columns typed alike in every
    partition: a column with no value in this partition gets the input's type for it (an
    answer column: text) rather than Arrow's null type, so the partitions read back as one table."""
    table = gparcels.attribute_table(frame)
    for i, field in enumerate(table.schema):
        if pa.types.is_null(field.type):
            typed = input_schema.field(field.name).type if input_schema and field.name in input_schema.names \
                else pa.string()
            table = table.set_column(i, field.name, table.column(i).cast(typed))
    geoms = np.asarray(frame.geometry.values, dtype=object)
    table = table.append_column("geometry", pa.array(shapely.to_wkb(geoms), pa.binary()))
    types = sorted(set(shapely.get_type_id(geoms).tolist()))
    geo = {"version": "1.0.0", "primary_column": "geometry", "columns": {"geometry": {
        "encoding": "WKB", "crs": WGS84_PROJJSON, "geometry_types": [{3: "Polygon", 6: "MultiPolygon"}[t] for t in types],
        "bbox": list(shapely.total_bounds(geoms))}}}
    pq.write_table(table.replace_schema_metadata({b"geo": json.dumps(geo).encode(),
                                                  b"zoning": json.dumps(about).encode()}), path)


def check_parcels(src: Path, dst: Path, store: str, *, engine: str = "dask", scheduler: str | None = None,
                  n_workers: int = 2, crs: str | None = None, as_of: str | None = None,
                  layers: list[str] | None = None, columns: ColumnsFactory | None = None,
                  partition_parcels: int = PARTITION_PARCELS) -> dict[str, Any]:
    """Answer every parcel of ``src`` and write GeoParquet partitions to the directory ``dst``
    (replaced only when every partition succeeded). ``crs`` overrides the file's CRS;
    ``columns`` makes the verdict columns (picklable: it travels to the workers). Returns the
    counts, the data version and the engine."""
    from geo.store import store_at

    if engine not in ("dask", "local"):
        raise ValueError(f"engine must be dask or local, got {engine!r}")
    frame, found, how = open_parcels(src, crs, partition_parcels)
    info = store_at(store).current()
    job = Job(store=str(store), version=info.version, crs=found, as_of=as_of,
              layers=None if layers is None else tuple(layers))
    with output_directory(dst) as tmp:
        task = ParcelJob(job, str(tmp), frame.npartitions, how, columns, input_schema(src))
        counts = frame.map_partitions(answer_partition, task, meta=COUNTS)
        done = run_on(lambda sched: counts.compute(scheduler=sched), engine, scheduler, n_workers)
        if not done["parcels"].sum():
            raise gparcels.ParcelInputError(f"{Path(src).name} has no parcels")
    return {"partitions": frame.npartitions, "parcels": int(done["parcels"].sum()), "rows": int(done["rows"].sum()),
            "overlaps": int(done["overlaps"].sum()), "data_version": info.data_version, "crs": found,
            "crs_note": how, "engine": engine, "out": str(dst)}
