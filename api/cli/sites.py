"""Parcel batches on the command line: ``zoning check-file PARCELS --sites`` (as POST /v1/check/sites)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from api.cli.common import UserError, console, err_console, resolve_store

OUT_FORMATS = {".csv": "csv", ".gpkg": "gpkg", ".parquet": "parquet", ".geoparquet": "parquet"}


def check_parcels_file(in_file: Path, out: Path, *, crs: str | None, as_of: str, layers: list[str] | None,
                       encoding: str | None, activities: list[str] | None, store: Path | None) -> None:
    """One row per (parcel, zone) written atomically to ``out`` (.csv, .gpkg or .parquet),
    with a progress bar over the parcels."""
    from rich.progress import Progress

    from api.answers import lookup_index
    from api.parcels import result_columns
    from api.settings import get_settings
    from geo import parcels as gparcels
    from geo.atomic import atomic_path
    from geo.catalog import ZoneCatalog
    from geo.importer import SourceError

    fmt = OUT_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise UserError(f"{out.name}: write .csv, .gpkg or .parquet")
    with tempfile.TemporaryDirectory(prefix="zoning-parcels-") as tmp:
        try:
            parcels = gparcels.read_parcels(in_file, crs=crs, encoding=encoding, workdir=Path(tmp),
                                            max_parcels=get_settings().max_parcels)
        except (gparcels.ParcelInputError, SourceError) as exc:
            raise UserError(f"{in_file.name}: {exc}") from None
    snap = ZoneCatalog(resolve_store(store)).snapshot()
    index = lookup_index(snap)
    columns = result_columns(snap, parcels, activities, as_of)
    counts = {"rows": 0, "touching": 0}
    with Progress(console=err_console) as progress:
        task = progress.add_task(in_file.name, total=len(parcels))

        def frames():
            for frame in gparcels.iter_results(index, parcels, as_of=as_of, layers=layers, verdict_columns=columns):
                counts["rows"] += len(frame)
                counts["touching"] += frame.loc[frame["zone_id"].notna(), "zone_id"].index.size
                progress.advance(task, frame.attrs["parcels"])
                yield frame

        with atomic_path(out) as path:
            gparcels.write_results(frames(), fmt, path)
    console.print(f"{len(parcels)} parcels ({parcels.crs}, {parcels.crs_note}), {counts['rows']} rows, "
                  f"{counts['touching']} (parcel, zone) overlaps; data {snap.data_version}; wrote {out}",
                  highlight=False)
