"""Point lookup over files larger than memory: dask-geopandas partitions on dask.distributed.

``check_points(INPUT, OUTPUT, store, engine="dask")`` reads GeoParquet (a file or a directory
of partitions; or Parquet/CSV with lon,lat or x,y columns), looks every point up and writes
GeoParquet partitions, one per input partition. Each partition is answered by the same
engine as in-process (``geo.lookup.ZoneIndex.lookup_points`` through :func:`lookup_frame`),
so ``engine="local"`` (one process, the partitions one after another) and ``engine="dask"``
give identical files row for row.

Every partition uses one pinned data version (the store's current version when the job
starts): a version published mid-job never mixes into the output. A worker loads that
version from the store once (``store_at(location).snapshot(version)``) and its lookup index
from the index saved beside the store (``geo.index_files``; built once, memory-mapped by
every worker on a machine), so tasks carry only the store location and version number.

Without ``scheduler`` a ``LocalCluster`` is started (``n_workers`` processes, one thread
each: the engine is NumPy/GEOS code that holds the GIL between calls); with
``scheduler="tcp://host:8786"`` the job runs on that cluster, whose workers must reach the
store (a PostGIS URL, or a GeoPackage path they share) and have this package installed.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import to_wgs84

TEXT = pd.StringDtype("pyarrow")
OUTPUT_COLUMNS = ("id", "lon_wgs84", "lat_wgs84", "zone_count", "zone_ids", "layers", "data_version")

_cache: dict[tuple[str, int], Any] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Job:
    """What every partition needs, small enough to send with each task."""

    store: str
    version: int
    crs: str = "wgs84"
    as_of: str | None = None
    layers: tuple[str, ...] | None = None


def _snapshot(store: str, version: int):
    """The pinned version's snapshot with its lookup index, once per process."""
    key = (store, version)
    with _cache_lock:
        if key not in _cache:
            from geo.catalog import Snapshot
            from geo.index_files import default_index_dir
            from geo.store import store_at

            backend = store_at(store)
            zones, info = backend.snapshot(version)
            snap = Snapshot(zones, info, default_index_dir(backend))
            snap.lookup_index()
            _cache[key] = snap
        return _cache[key]


def _coordinates(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(frame, gpd.GeoDataFrame) and frame._geometry_column_name in frame:
        geoms = np.asarray(frame.geometry.values, dtype=object)
        if len(geoms) and not (shapely.get_type_id(geoms) == 0).all():
            raise ValueError("the input geometry must be points")
        return shapely.get_x(geoms), shapely.get_y(geoms)
    for xcol, ycol in (("lon", "lat"), ("x", "y")):
        if {xcol, ycol} <= set(frame.columns):
            return frame[xcol].to_numpy(float), frame[ycol].to_numpy(float)
    raise ValueError(f"the input needs point geometry or lon,lat (or x,y) columns; it has {', '.join(frame.columns)}")


def _joined(hits, count: np.ndarray, zone_ids: np.ndarray, zone_layers: np.ndarray):
    """Per point: its covering zones' ids and their distinct layers, ``;``-joined. One zone
    (most points inside any) is an array take; several are joined once per combination."""
    ids, layers = np.full(count.size, "", dtype=object), np.full(count.size, "", dtype=object)
    first = np.searchsorted(hits.point, np.arange(count.size))
    one = np.flatnonzero(count == 1)
    ids[one], layers[one] = zone_ids[hits.zone[first[one]]], zone_layers[hits.zone[first[one]]]
    seen: dict[tuple, tuple[str, str]] = {}
    for i in np.flatnonzero(count > 1).tolist():
        zones = tuple(hits.zone[first[i]:first[i] + count[i]].tolist())
        if zones not in seen:
            seen[zones] = (";".join(zone_ids[list(zones)]), ";".join(dict.fromkeys(zone_layers[list(zones)])))
        ids[i], layers[i] = seen[zones]
    return ids, layers


def lookup_frame(frame: pd.DataFrame, job: Job) -> gpd.GeoDataFrame:
    """One partition's answers: per point its id, WGS84 position, covering zones (ids and
    layers, ``;``-separated, in zone-table order) and the data version."""
    snap = _snapshot(job.store, job.version)
    x, y = _coordinates(frame)
    lon, lat = to_wgs84(x, y, job.crs)
    lon, lat = np.atleast_1d(np.asarray(lon, float)), np.atleast_1d(np.asarray(lat, float))
    hits = snap.lookup_index().lookup_points(lon, lat, as_of=job.as_of, layers=job.layers)
    count = np.bincount(hits.point, minlength=len(lon))
    ids, layers = _joined(hits, count, snap.zones["zone_id"].to_numpy(dtype=object),
                          snap.zones["layer"].to_numpy(dtype=object))
    row_ids = frame["id"].to_numpy() if "id" in frame.columns else frame.index.to_numpy()
    out = pd.DataFrame({
        "id": row_ids,
        "lon_wgs84": lon, "lat_wgs84": lat,
        "zone_count": count.astype(np.int32), "zone_ids": ids, "layers": layers,
        "data_version": snap.data_version,
    }, index=frame.index).astype({c: TEXT for c in ("zone_ids", "layers", "data_version")})
    return gpd.GeoDataFrame(out, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")


def _meta(frame) -> gpd.GeoDataFrame:
    """The output's empty frame (dask needs the column types before it runs anything)."""
    id_type = frame._meta["id"].dtype if "id" in frame.columns else frame._meta.index.dtype
    frame = pd.DataFrame({"id": pd.Series(dtype=id_type), "lon_wgs84": pd.Series(dtype=float),
                          "lat_wgs84": pd.Series(dtype=float), "zone_count": pd.Series(dtype=np.int32),
                          "zone_ids": pd.Series(dtype=TEXT), "layers": pd.Series(dtype=TEXT),
                          "data_version": pd.Series(dtype=TEXT)})
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326")


def read_input(path: Path, blocksize: str = "64MB"):
    """The input as a dask (Geo)DataFrame, one partition per Parquet file / row group or CSV block."""
    import dask.dataframe as dd
    import dask_geopandas

    path = Path(path)
    if path.suffix.lower() == ".csv":
        return dd.read_csv(str(path), blocksize=blocksize)
    try:
        return dask_geopandas.read_parquet(str(path))
    except (ValueError, TypeError):  # plain Parquet with lon/lat columns, no geometry metadata
        return dd.read_parquet(str(path))


@contextlib.contextmanager
def output_directory(dst: Path) -> Iterator[Path]:
    """A temporary directory beside ``dst`` to write the partitions into: it replaces ``dst``
    when the block succeeds (any old ``dst`` is moved aside first, then removed), and is
    removed when it fails, so a failed job leaves no partial output and the old one intact."""
    dst = Path(dst)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.resolve().parent))
    try:
        yield tmp
        old = None
        if dst.exists():
            old = dst.with_name(f"{tmp.name}.old")
            dst.rename(old)
        tmp.rename(dst)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_on(compute: Callable[[Any], Any], engine: str, scheduler: str | None, n_workers: int) -> Any:
    """``compute(dask_scheduler)`` in this process (``engine="local"``: the synchronous
    scheduler), on the cluster at ``scheduler``, or on a ``LocalCluster`` of ``n_workers``
    one-thread processes started for it and closed after (also when the job fails, so no
    worker writes on after the output is removed)."""
    if engine == "local":
        return compute("synchronous")
    if engine != "dask":
        raise ValueError(f"engine must be dask or local, got {engine!r}")
    from dask.distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            return compute(client)
    # A failed task comes back to the caller as its exception (a refused partition names its
    # problem; a lost worker raises KilledWorker): the workers' own "Compute Failed" log lines
    # would print the same failure again, with a traceback, to the user's terminal.
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        return compute(client)


def check_points(src: Path, dst: Path, store: str, *, engine: str = "dask", scheduler: str | None = None,
                 n_workers: int = 2, crs: str = "wgs84", as_of: str | None = None,
                 layers: list[str] | None = None) -> dict[str, Any]:
    """Look up every point of ``src`` and write GeoParquet partitions to the directory ``dst``
    (replaced only when the job succeeds). Returns counts, the data version and the engine."""
    from geo.store import store_at

    if engine not in ("dask", "local"):
        raise ValueError(f"engine must be dask or local, got {engine!r}")
    info = store_at(store).current()
    job = Job(store=str(store), version=info.version, crs=crs, as_of=as_of,
              layers=None if layers is None else tuple(layers))
    frame = read_input(src)
    _coordinates(frame._meta)  # no coordinates: refused before any cluster starts
    answers = frame.map_partitions(lookup_frame, job, meta=_meta(frame))
    with output_directory(dst) as tmp:
        run_on(lambda sched: answers.to_parquet(str(tmp), write_index=False, compute_kwargs={"scheduler": sched}),
               engine, scheduler, n_workers)
    return {"partitions": frame.npartitions, "data_version": info.data_version, "engine": engine, "out": str(dst)}
