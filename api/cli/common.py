"""What every command module shares: the typer app, consoles, ``UserError`` and the store option.

Command modules (``api/cli/*.py``) register on ``app``; ``api.cli.main`` imports them all.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from api.settings import get_settings
from geo.store import open_store

app = typer.Typer(
    help="zoning: Beijing district zones digitised from gazettes — lookup, map, exports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# emoji off: user text such as /etc/passwd's 'root:x:0' must not turn ':x:' into an emoji.
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)
_state = {"debug": False}


class UserError(Exception):
    """A mistake in the command's input: printed as one line, exit code 2."""


@app.callback()
def _global(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")) -> None:
    _state["debug"] = debug


def store_location(value: str | None) -> Path | str | None:
    """A ``postgresql://`` URL stays text (a Path would collapse its ``//``); anything else is a path."""
    if value is None or str(value).startswith(("postgresql://", "postgres://")):
        return value
    return Path(value)


def store_option() -> Path:
    return typer.Option(None, "--store", parser=store_location, metavar="PATH|URL",
                        help="Zone store: a GeoPackage file or a postgresql:// URL (PostGIS). "
                             "Default: $ZONING_STORE or var/zones.gpkg")


def resolve_store(store: Path | None):
    settings = get_settings()
    return open_store(store or settings.store, settings.seed)


def cli_audit(action: str, target: str | None = None, **detail):
    """An audit event for a write made from the command line: the local account, which has
    the store file (and so an admin's power over it)."""
    import getpass

    from geo.store import AuditEvent

    return AuditEvent(actor=f"cli:{getpass.getuser()}", role="admin", action=action, target=target,
                      detail={k: v for k, v in detail.items() if v is not None}, client="cli")


def save_index_of(zone_store) -> None:
    """After a command wrote a version: save its lookup index, so the next ``zoning serve`` (or
    a running one noticing the version) loads it instead of building it. A failure only warns:
    the version is written, and a server builds the index itself."""
    import time

    from geo.catalog import save_lookup_index

    start = time.perf_counter()
    try:
        directory = save_lookup_index(zone_store)
    except Exception as exc:  # noqa: BLE001 - an optimisation failing must not fail the write
        err_console.print(f"warning: the lookup index was not saved ({exc}); the service will build it", highlight=False)
        return
    if directory is not None:
        err_console.print(f"lookup index saved for {directory.name} ({time.perf_counter() - start:.1f} s)",
                          highlight=False)
