"""User and audit commands: ``users add|list|disable|token|password`` and ``audit``.

These run with the local account's access to the store (like ``rollback``); the audit
log records them as ``cli:<login>`` with the role ``admin``.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import typer
from rich.table import Table

from api.cli.common import UserError, app, console, resolve_store, store_option
from geo.users import ROLES, Users
from geo.users import UserError as BadUser

users_app = typer.Typer(help="Named users with roles (viewer, editor, reviewer, admin).", no_args_is_help=True)
app.add_typer(users_app, name="users")


def _actor() -> str:
    return f"cli:{getpass.getuser()}"  # as api.cli.common.cli_audit


def _registry(store: Path | None) -> Users:
    return Users(resolve_store(store))


@users_app.command("add")
def users_add(
    name: str = typer.Argument(..., help="User name: a-z, 0-9, '.', '_', '-'."),
    role: str = typer.Option(..., "--role", help=" | ".join(ROLES)),
    password: bool = typer.Option(False, "--password", help="Also set a password for the web page (prompted)."),
    store: Path | None = store_option(),
) -> None:
    """Add a user and print their API token (shown once; only its hash is stored)."""
    secret_password = None
    if password:
        secret_password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        user, token = _registry(store).add(name, role, password=secret_password, actor=_actor(), client="cli")
    except BadUser as exc:
        raise UserError(str(exc)) from None
    console.print(f"added {user.name} ({user.role}); API token (shown once): {token}", highlight=False)


@users_app.command("list")
def users_list(store: Path | None = store_option(), as_json: bool = typer.Option(False, "--json")) -> None:
    """Users, their roles and whether they are disabled."""
    found = _registry(store).list()
    if as_json:
        print(json.dumps([u.as_dict() for u in found], ensure_ascii=False, indent=1))
        return
    table = Table("name", "role", "disabled", "password", "token", "created (UTC)", "by")
    for u in found:
        table.add_row(u.name, u.role, "yes" if u.disabled else "", "yes" if u.has_password else "",
                      "yes" if u.has_token else "", u.created_at, u.created_by)
    console.print(table)


@users_app.command("disable")
def users_disable(name: str = typer.Argument(...), store: Path | None = store_option()) -> None:
    """Disable a user: their token and sessions stop working at once."""
    try:
        _registry(store).disable(name, actor=_actor(), client="cli")
    except BadUser as exc:
        raise UserError(str(exc)) from None
    console.print(f"{name} is disabled", highlight=False)


@users_app.command("token")
def users_token(name: str = typer.Argument(...), store: Path | None = store_option()) -> None:
    """Give a user a new API token (the old one stops working)."""
    try:
        token = _registry(store).new_token(name, actor=_actor(), client="cli")
    except BadUser as exc:
        raise UserError(str(exc)) from None
    console.print(f"new API token for {name} (shown once): {token}", highlight=False)


@users_app.command("password")
def users_password(name: str = typer.Argument(...), store: Path | None = store_option()) -> None:
    """Set a user's web password (prompted)."""
    secret = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        _registry(store).set_password(name, secret, actor=_actor(), client="cli")
    except BadUser as exc:
        raise UserError(str(exc)) from None
    console.print(f"password of {name} set", highlight=False)


@app.command()
def audit(limit: int = typer.Option(50, "--limit"), actor: str | None = typer.Option(None, "--actor"),
          action: str | None = typer.Option(None, "--action"), store: Path | None = store_option(),
          as_json: bool = typer.Option(False, "--json")) -> None:
    """The audit log, newest first: who, role, when, what, from where."""
    entries = resolve_store(store).audit(limit, actor=actor, action=action)
    if as_json:
        print(json.dumps([e.as_dict() for e in entries], ensure_ascii=False, indent=1))
        return
    table = Table("#", "at (UTC)", "who", "role", "action", "target", "version", "from", "detail")
    for e in entries:
        table.add_row(str(e.id), e.at, e.actor, e.role or "", e.action, e.target or "",
                      "" if e.version is None else str(e.version), e.client or "",
                      json.dumps(e.detail, ensure_ascii=False))
    console.print(table)
