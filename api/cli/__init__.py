"""The `zoning` command line.

One module per job registers its commands on the shared typer ``app`` (``common``):
``service`` (serve, info), ``lookup`` (convert, check, check-file), ``data`` (build, report,
export, map, import, history, diff, rollback, base), ``digitise`` (georef, trace, publish,
review, drafts), ``users`` (users add|list|disable|token|password, audit). Errors print one line and exit non-zero
(2 for bad input); ``--debug`` shows the traceback. Each command is a thin wrapper over `geo`
(and `maps`), like the API.
"""

from __future__ import annotations

import typer

# Importing registers the commands; help lists them in this order.
from api.cli import service  # noqa: F401  # isort: skip
from api.cli import lookup  # noqa: F401  # isort: skip
from api.cli import data  # noqa: F401  # isort: skip
from api.cli import compensation  # noqa: F401  # isort: skip
from api.cli import digitise  # noqa: F401  # isort: skip
from api.cli import users  # noqa: F401  # isort: skip
from api.cli import reports  # noqa: F401  # isort: skip
from api.cli import impact  # noqa: F401  # isort: skip
from api.cli import store  # noqa: F401  # isort: skip
from api.cli.common import UserError, _state, app, console, err_console
from geo.store import StoreError

__all__ = ["app", "console", "err_console", "UserError", "main"]


def main() -> None:
    """Console entry point: one-line errors unless --debug."""
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            raise SystemExit(code)
    except SystemExit:
        raise
    except (typer.Exit, typer.Abort) as exc:
        raise SystemExit(getattr(exc, "exit_code", 1)) from None
    except Exception as exc:  # noqa: BLE001 - the CLI's one place that turns errors into exit codes
        if _state["debug"]:
            raise
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        code = 2 if isinstance(exc, UserError | ValueError | FileNotFoundError) else 1
        if isinstance(exc, StoreError):
            code = 1
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise SystemExit(code) from None
