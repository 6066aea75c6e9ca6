"""``zoning check-file IN --engine dask [--scheduler tcp://…] --out DIR``: the distributed batch,
points (``geo.distributed``) or, with ``--sites``, parcels (``geo.parcels_distributed``)."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from api.cli.common import UserError, console, resolve_store


def check_file_distributed(in_file: Path, out: Path, *, crs: str | None, as_of: str | None, layers: str | None,
                           store, engine: str, scheduler: str | None, workers: int, sites: bool = False,
                           activity: list[str] | None = None) -> None:
    from api.cli.lookup import _lookup_options
    from geo.distributed import check_points

    if engine != "dask":
        raise UserError(f"--engine must be local or dask, got {engine!r}")
    if not in_file.exists():
        raise UserError(f"{in_file} does not exist")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; --engine dask writes a directory of GeoParquet partitions")
    crs_name, as_of, layer_list = _lookup_options(crs or "wgs84", as_of, layers)
    location = resolve_store(store).location
    where = scheduler or f"local cluster, {workers} workers"
    start = time.perf_counter()
    if sites:
        return _check_parcels(in_file, out, crs=crs and crs_name, as_of=as_of, layers=layer_list, activity=activity,
                              location=location, scheduler=scheduler, workers=workers, where=where)
    try:
        result = check_points(in_file, out, location, engine="dask", scheduler=scheduler, n_workers=workers,
                              crs=crs_name, as_of=as_of, layers=layer_list)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    console.print(f"{result['partitions']} partition(s) looked up on dask ({where}) in "
                  f"{time.perf_counter() - start:.1f} s, data {result['data_version']}; wrote GeoParquet partitions "
                  f"to {out}", highlight=False)


def _check_parcels(in_file: Path, out: Path, *, crs: str | None, as_of: str, layers: list[str] | None,
                   activity: list[str] | None, location: str, scheduler: str | None, workers: int,
                   where: str) -> None:
    """Parcels on dask: the rows, columns and verdicts of ``check-file --sites``, one GeoParquet
    file per partition."""
    from api.dependencies import parse_activity_field
    from api.parcels import result_columns
    from geo.parcels_distributed import check_parcels

    activities = parse_activity_field(activity, "--activity", "option")
    start = time.perf_counter()
    try:
        result = check_parcels(in_file, out, location, engine="dask", scheduler=scheduler, n_workers=workers,
                               crs=crs, as_of=as_of, layers=layers,
                               columns=partial(result_columns, activities=activities, as_of=as_of))
    except ValueError as exc:  # ParcelInputError from the client or a worker, an unknown engine
        raise UserError(str(exc)) from None
    console.print(f"{result['parcels']} parcels ({result['crs']}, {result['crs_note']}) in {result['partitions']} "
                  f"partition(s) on dask ({where}) in {time.perf_counter() - start:.1f} s: {result['rows']} rows, "
                  f"{result['overlaps']} (parcel, zone) overlaps; data {result['data_version']}; wrote GeoParquet "
                  f"partitions to {out}", highlight=False)
