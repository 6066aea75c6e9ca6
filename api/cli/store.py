"""Store commands: ``zoning store copy SRC DST`` (GeoPackage → PostGIS and back)."""

from __future__ import annotations

import typer

from api.cli.common import UserError, app, console, save_index_of, store_location

store_app = typer.Typer(help="Zone store: copy a store into another backend (GeoPackage ⇄ PostGIS).",
                        no_args_is_help=True)
app.add_typer(store_app, name="store")


@store_app.command("copy")
def copy(
    src: str = typer.Argument(..., metavar="SRC", help="Store to copy: a GeoPackage file or a postgresql:// URL."),
    dst: str = typer.Argument(..., metavar="DST", help="Empty store to copy into (created if missing)."),
) -> None:
    """Copy every version (numbers, data_version, who, when, summary) and the audit log of SRC into the empty DST,
    in one transaction: a GeoPackage into PostGIS (``postgresql://user@host/db``) or back."""
    from geo.store import StoreError, store_at
    from geo.store.copy import copy_store

    source, target = store_at(store_location(src)), store_at(store_location(dst))
    if not source.exists():
        raise UserError(f"{source.location} holds no version to copy")
    if target.exists():
        raise UserError(f"{target.location} already holds versions; copy only into an empty store")
    try:
        n = copy_store(source, target)
    except StoreError as exc:
        raise UserError(str(exc)) from None
    info = target.current()
    console.print(f"copied {n} version(s) from {source.location} to {target.location}; "
                  f"current {info.data_version}, {info.zone_count} zones")
    save_index_of(target)
