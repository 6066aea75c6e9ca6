"""``zoning check-file IN --engine dask [--scheduler tcp://…] --out DIR``: the distributed batch."""

from __future__ import annotations

import time
from pathlib import Path

from api.cli.common import UserError, console, resolve_store


def check_file_distributed(in_file: Path, out: Path, *, crs: str, as_of: str | None, layers: str | None,
                           store, engine: str, scheduler: str | None, workers: int) -> None:
    from api.cli.lookup import _lookup_options
    from geo.distributed import check_points

    if engine != "dask":
        raise UserError(f"--engine must be local or dask, got {engine!r}")
    if not in_file.exists():
        raise UserError(f"{in_file} does not exist")
    crs, as_of, layer_list = _lookup_options(crs, as_of, layers)
    location = resolve_store(store).location
    start = time.perf_counter()
    try:
        result = check_points(in_file, out, location, engine="dask", scheduler=scheduler, n_workers=workers,
                              crs=crs, as_of=as_of, layers=layer_list)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    console.print(f"{result['partitions']} partition(s) looked up on dask "
                  f"({scheduler or f'local cluster, {workers} workers'}) in {time.perf_counter() - start:.1f} s, "
                  f"data {result['data_version']}; wrote GeoParquet partitions to {out}", highlight=False)
