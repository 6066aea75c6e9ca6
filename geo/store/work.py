"""WorkTables: the digitising workbench's tables in the zone store's own database.

Users, web sessions, uploaded map sheets (their bytes and page renders) and drafts live
beside the zone tables — in the GeoPackage file, or in the PostGIS store's schema — so one
backup holds the zones, their history, the audit log and the people, sheets and drafts
behind them, and every replica of a PostGIS deployment sees the same ones. They are plain
tables, not GeoPackage layers: GIS clients opening the store see only the zones.

One interface, one implementation per store backend (pygeoapi-style), and no backend test
anywhere else: ``geo.users``, ``geo.digitise.drafts`` and ``geo.digitise.sheets`` write the
same SQL (``?`` marks, ``INSERT … RETURNING id``) through a :class:`WorkTx`, and the
implementation translates what differs (the parameter mark, the column types of
:data:`TABLES`, where the tables are found, how their existence is checked).

Every write is one transaction of the store itself (its writer lock: SQLite's
``BEGIN IMMEDIATE``, PostGIS's lock on ``versions``) and takes its audit entry with it
(:meth:`WorkTx.audit`). A draft's publication runs inside the version's transaction
(``SQLStore.save(work=…)``): the new version and the draft marked published commit together.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from typing import Any

from geo.store.base import AuditEntry, AuditEvent

# The work tables, in the order they refer to each other (the order ``store copy`` fills
# them in). Column types are written for SQLite; ``{id}`` is an auto-numbered primary key.
TABLES: dict[str, str] = {
    "users": """CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT,
        token_sha256 TEXT UNIQUE, disabled INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL,
        created_by TEXT NOT NULL)""",
    "sessions": """CREATE TABLE IF NOT EXISTS sessions (id_sha256 TEXT PRIMARY KEY,
        name TEXT NOT NULL REFERENCES users(name), csrf TEXT NOT NULL, created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL)""",
    "sheets": """CREATE TABLE IF NOT EXISTS sheets (sha256 TEXT PRIMARY KEY, filename TEXT NOT NULL,
        media_type TEXT NOT NULL, size_bytes INTEGER NOT NULL, pages TEXT NOT NULL, uploaded_at TEXT NOT NULL,
        uploaded_by TEXT NOT NULL, dpi INTEGER, extra TEXT NOT NULL, original BLOB NOT NULL)""",
    "sheet_pages": """CREATE TABLE IF NOT EXISTS sheet_pages (sha256 TEXT NOT NULL REFERENCES sheets(sha256),
        page INTEGER NOT NULL, png BLOB NOT NULL, PRIMARY KEY (sha256, page))""",
    "drafts": """CREATE TABLE IF NOT EXISTS drafts (id {id}, zone_id TEXT NOT NULL,
        status TEXT NOT NULL, author TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        geometry TEXT NOT NULL, record TEXT NOT NULL, provenance TEXT NOT NULL, reviewer TEXT, comment TEXT,
        reviewed_at TEXT, version INTEGER)""",
    "sites": """CREATE TABLE IF NOT EXISTS sites (site_id TEXT PRIMARY KEY, ordinal INTEGER NOT NULL,
        name TEXT NOT NULL, properties TEXT NOT NULL, geom BLOB NOT NULL)""",
    "webhook_log": """CREATE TABLE IF NOT EXISTS webhook_log (id {id}, at TEXT NOT NULL, url TEXT NOT NULL,
        version INTEGER NOT NULL, attempt INTEGER NOT NULL, status INTEGER, error TEXT,
        delivered INTEGER NOT NULL)""",
    # Which process delivers each version's notice: replicas on one store claim it in a write
    # transaction, so exactly one of them sends it (``api.webhook``).
    "webhook_claims": """CREATE TABLE IF NOT EXISTS webhook_claims (version INTEGER NOT NULL, url TEXT NOT NULL,
        claimed_by TEXT NOT NULL, claimed_at TEXT NOT NULL, PRIMARY KEY (version, url))""",
}
INDEXES = ("CREATE INDEX IF NOT EXISTS drafts_zone ON drafts (zone_id, status)",)
# Tables whose ``id`` is auto-numbered (a copy keeps the numbers and moves the counter on).
NUMBERED = ("drafts", "webhook_log")


class Rows:
    """A statement's result: rows as dicts (``fetchone``, ``fetchall``, iteration) and ``rowcount``."""

    def __init__(self, cursor):
        self._cursor = cursor
        self._names = [d[0] for d in cursor.description] if cursor.description else []
        self.rowcount: int = cursor.rowcount

    def fetchone(self) -> dict[str, Any] | None:
        row = self._cursor.fetchone()
        return None if row is None else dict(zip(self._names, row, strict=True))

    def fetchall(self) -> list[dict[str, Any]]:
        return [dict(zip(self._names, row, strict=True)) for row in self._cursor.fetchall()]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.fetchall())


class WorkTx:
    """One transaction on the work tables (and the audit log) of a store."""

    def __init__(self, tables: WorkTables, db):
        self.tables, self.db = tables, db

    def execute(self, sql: str, params: tuple | list = ()) -> Rows:
        return Rows(self.db.execute(self.tables.sql(sql), tuple(params)))

    def insert(self, sql: str, params: tuple | list = ()) -> int:
        """Run ``INSERT … RETURNING id`` and return the id."""
        return self.execute(sql, params).fetchone()["id"]

    def audit(self, event: AuditEvent) -> AuditEntry:
        """Append ``event`` to the audit log in this transaction."""
        return self.tables.store._insert_audit(self.db, event, None)


class WorkTables(abc.ABC):
    """The work tables of one store. ``writing()`` and ``reading()`` give a :class:`WorkTx`;
    ``transaction(db)`` wraps a store transaction already open (a version's save)."""

    #: The driver's parameter mark; statements are written with ``?``.
    MARK = "?"

    def __init__(self, store):
        self.store = store

    @abc.abstractmethod
    def _table_count(self, db) -> int:
        """How many of :data:`TABLES` exist in this database."""

    @abc.abstractmethod
    def _ddl(self, statement: str) -> str:
        """A statement of :data:`TABLES` in this database's column types."""

    def _enter(self, db) -> None:
        """Anything a transaction needs before the work tables' statements (e.g. a search path)."""
        return None

    def renumber(self, tx: WorkTx, table: str) -> None:
        """Move ``table``'s id counter past the ids a copy wrote (SQLite's AUTOINCREMENT does)."""
        return None

    def sql(self, sql: str) -> str:
        return sql.replace("?", self.MARK) if self.MARK != "?" else sql

    def transaction(self, db) -> WorkTx:
        """The work tables inside the store's open write transaction ``db``; those missing
        (a new store, or one of a release with fewer of them) are created first."""
        self._enter(db)
        if not self._complete(db):
            for statement in (*TABLES.values(), *INDEXES):
                db.execute(self._ddl(statement))
        return WorkTx(self, db)

    def _complete(self, db) -> bool:
        """True when every work table exists (remembered by the store once it is so: tables
        are never dropped)."""
        if not self.store.work_tables_complete:
            self.store.work_tables_complete = self._table_count(db) == len(TABLES)
        return self.store.work_tables_complete

    @contextlib.contextmanager
    def writing(self) -> Iterator[WorkTx]:
        """One write transaction of the store: COMMIT only if the block succeeds."""
        self.store.upgrade()
        with self.store._writing() as db:
            yield self.transaction(db)

    @contextlib.contextmanager
    def reading(self) -> Iterator[WorkTx | None]:
        """One read transaction, or None when no work table was ever written. A store with
        only some of them (an earlier release's) gets the others first, in a write of its own."""
        with self.store._reading() as db:
            self._enter(db)
            if self._complete(db):
                yield WorkTx(self, db)
                return
            if self._table_count(db) == 0:
                yield None
                return
        with self.writing():
            pass
        with self.store._reading() as db:
            self._enter(db)
            yield WorkTx(self, db)


class SQLiteWorkTables(WorkTables):
    """In the GeoPackage file, as plain SQLite tables (not registered as GeoPackage content)."""

    def _table_count(self, db) -> int:
        return db.execute(f"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                          f"({', '.join('?' for _ in TABLES)})", tuple(TABLES)).fetchone()[0]

    def _ddl(self, statement: str) -> str:
        return statement.replace("{id}", "INTEGER PRIMARY KEY AUTOINCREMENT")


class PostgresWorkTables(WorkTables):
    """In the PostGIS store's schema (found through the transaction's ``search_path``)."""

    MARK = "%s"

    def _enter(self, db) -> None:
        db.execute(f"SET LOCAL search_path TO {self.store.schema}, public")

    def _table_count(self, db) -> int:
        return db.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename = ANY(%s)",
                          (self.store.schema, list(TABLES))).fetchone()[0]

    def _ddl(self, statement: str) -> str:
        return (statement.replace("{id}", "bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
                .replace(" BLOB ", " bytea "))

    def renumber(self, tx: WorkTx, table: str) -> None:
        tx.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false) "
                   f"FROM {table}")

