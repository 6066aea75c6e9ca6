"""Work tables kept in the zone store's own database: users, sessions, drafts.

They live beside the zone tables (the same SQLite/GeoPackage file today, the same
PostGIS database later) so that one backup holds the zones, their history, the audit log
and the people and drafts behind them. They are plain tables, not GeoPackage layers: GIS
clients opening the store see only the zones. Each write here is one SQLite transaction
(``BEGIN IMMEDIATE`` under SQLite's writer lock, WAL like the store).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from geo.store import StoreBackend, StoreError

TIMEOUT_S = 60.0


def _path(store: StoreBackend) -> Path:
    path = getattr(store, "path", None)
    if path is None:
        raise StoreError(f"the store at {store.location} keeps no work tables (users, drafts) yet")
    return Path(path)


def _connect(store: StoreBackend) -> sqlite3.Connection:
    path = _path(store)
    if not path.exists():
        raise StoreError(f"zone store {path} does not exist; run `zoning serve` or `zoning info` once to create it")
    db = sqlite3.connect(path, isolation_level=None, timeout=TIMEOUT_S, check_same_thread=False)
    db.row_factory = sqlite3.Row
    return db


@contextlib.contextmanager
def writing(store: StoreBackend, ddl: str) -> Iterator[sqlite3.Connection]:
    """One write transaction; ``ddl`` (CREATE … IF NOT EXISTS statements) runs first."""
    db = _connect(store)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in ddl.split(";"):
                if statement.strip():
                    db.execute(statement)
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    finally:
        db.close()


@contextlib.contextmanager
def reading(store: StoreBackend, table: str) -> Iterator[sqlite3.Connection | None]:
    """One read transaction, or None when ``table`` was never created (nothing written yet)."""
    db = _connect(store)
    try:
        db.execute("BEGIN")
        exists = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
        yield db if exists else None
    finally:
        db.close()
