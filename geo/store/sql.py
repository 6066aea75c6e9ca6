"""SQLStore: what the GeoPackage and PostGIS backends share, parametrised by their dialects.

Both keep the same temporal layout (``zone_history`` with ``valid_from``/``valid_to``,
``zones_by_version``, ``versions``, ``audit``) and the same rules (one write transaction
under the database's writer lock, reads in one read transaction). What differs is small and
declared by each backend:

* ``MARK``: the driver's parameter placeholder (``?`` for sqlite3, ``%s`` for psycopg);
* ``MAX_VERSION``: past it a version number cannot be stored (SQLite's 64-bit integers,
  PostgreSQL's ``integer``), so it is simply absent;
* :meth:`SQLStore._table`: a table's name in SQL (PostGIS qualifies it with its schema);
* the transactions (:meth:`_reading`, :meth:`_writing`) and the zone rows
  (:meth:`_zone_rows` reads a version as ``(columns…, GeoPackage blob)``,
  :meth:`_write_rows` makes rows the next version) and two hooks around a save
  (:meth:`_after_save` inside its transaction, :meth:`_saved` after the commit).

The work tables (users, sessions, sheets, drafts: ``work.WorkTables``) live in the same
database; :meth:`SQLStore.save` takes a ``work`` callback that writes them in the version's
own transaction (a published draft is marked published with its version, or neither is).
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from geo import schema
from geo.store.base import AuditEntry, AuditEvent, StoreBackend, StoreError, VersionInfo
from geo.store.changes import content_hash, diff_zones, with_computed_area

if TYPE_CHECKING:
    import geopandas as gpd
    import numpy as np

VERSION_FIELDS = ("version", "data_version", "created_at", "author", "action", "source", "source_sha256",
                  "zone_count", "summary", "note")
AUDIT_FIELDS = ("id", "at", "actor", "role", "action", "target", "detail", "client", "version")


def now() -> str:
    """UTC now, ISO 8601 to the second (a version's ``created_at``)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


class SQLStore(StoreBackend):
    """A versioned zone table in an SQL database (see the module docstring)."""

    MARK = "?"
    MAX_VERSION = 2**63
    #: Set by ``work.WorkTables`` once it found every work table in this store.
    work_tables_complete = False

    # -- what each backend defines -----------------------------------------------------------
    @abc.abstractmethod
    def _reading(self) -> contextlib.AbstractContextManager[Any]:
        """One read transaction (the store must exist: :meth:`_missing` otherwise)."""

    @abc.abstractmethod
    def _writing(self) -> contextlib.AbstractContextManager[Any]:
        """One write transaction under the writer lock, the schema created if need be."""

    @abc.abstractmethod
    def _missing(self) -> StoreError:
        """The error for a store that holds no version, saying how to fill it."""

    @abc.abstractmethod
    def _zone_rows(self, db, version: int | None, columns: str | None = None) -> list[tuple]:
        """The zones of ``version`` (None: current) as ``(columns…, GeoPackage blob)``, in order;
        ``columns`` (SQL, quoted names; None: every column of the schema)."""

    @abc.abstractmethod
    def _write_rows(self, db, number: int, rows: list[tuple]) -> tuple[dict[str, list[str]], list[tuple]]:
        """Make ``rows`` (``gpkg.encode_rows``) version ``number``; the ids added, removed and
        touched, and the touched zones' previous rows (as :meth:`_zone_rows` gives them)."""

    def _table(self, name: str) -> str:
        return name

    def _after_save(self, db, info: VersionInfo, zones: gpd.GeoDataFrame) -> None:
        """Inside the save's transaction, after its rows and version row are written."""

    def _saved(self, info: VersionInfo) -> None:
        """After the save committed."""

    # -- SQL helpers -------------------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql.replace("?", self.MARK) if self.MARK != "?" else sql

    def _head_in(self, db) -> int:
        return db.execute(f"SELECT max(version) FROM {self._table('versions')}").fetchone()[0] or 0

    def _info(self, db, number: int | None) -> VersionInfo | None:
        if number is not None and not 0 < number < self.MAX_VERSION:
            return None
        sql = f"SELECT {', '.join(VERSION_FIELDS)} FROM {self._table('versions')} "
        row = db.execute(self._sql(sql + ("ORDER BY version DESC LIMIT 1" if number is None else "WHERE version = ?")),
                         () if number is None else (number,)).fetchone()
        return None if row is None else VersionInfo(*row)

    def _absent(self, db, number: int, wording: str) -> StoreError:
        last = self._head_in(db)
        known = f"versions are 1 to {last}" if last else "it holds no version yet"
        return StoreError(wording.format(number=number, path=self.location) + f"; {known}")

    def _insert_version(self, db, info: VersionInfo) -> None:
        db.execute(self._sql(f"INSERT INTO {self._table('versions')} ({', '.join(VERSION_FIELDS)}) "
                             f"VALUES ({', '.join('?' for _ in VERSION_FIELDS)})"),
                   [getattr(info, f) for f in VERSION_FIELDS])

    def _insert_audit(self, db, event: AuditEvent, version: int | None, at: str | None = None) -> AuditEntry:
        at = at or dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        detail = json.dumps(event.detail, ensure_ascii=False, sort_keys=True)
        entry_id = db.execute(
            self._sql(f"INSERT INTO {self._table('audit')} (at, actor, role, action, target, detail, client, version) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"),
            (at, event.actor, event.role, event.action, event.target, detail, event.client, version)).fetchone()[0]
        return AuditEntry(id=entry_id, at=at, actor=event.actor, role=event.role, action=event.action,
                          target=event.target, detail=json.loads(detail), client=event.client, version=version)

    # -- reading -----------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.head() > 0

    def versions(self) -> list[VersionInfo]:
        with self._reading() as db:
            rows = db.execute(f"SELECT {', '.join(VERSION_FIELDS)} FROM {self._table('versions')} "
                              "ORDER BY version").fetchall()
        return [VersionInfo(*row) for row in rows]

    def version(self, number: int) -> VersionInfo:
        with self._reading() as db:
            info = self._info(db, number)
            if info is None:
                raise self._absent(db, number, "no version {number} in {path}")
        return info

    def current(self) -> VersionInfo:
        with self._reading() as db:
            info = self._info(db, None)
        if info is None:
            raise self._missing()
        return info

    def _rows_of(self, version: int | None, columns: str | None = None) -> tuple[list[tuple], VersionInfo]:
        """The zone rows of ``version`` (None: current) and its version row, in one read
        (``columns=``: as :meth:`_zone_rows`)."""
        with self._reading() as db:
            info = self._info(db, version)
            if info is None:
                if version is None:
                    raise self._missing()
                raise self._absent(db, version, "version {number} is not in {path}")
            # The current version's rows are the open ones: an index lookup, not the by-version view.
            current = version is None or version == self._head_in(db)
            return self._zone_rows(db, None if current else version, columns), info

    def snapshot(self, version: int | None = None) -> tuple[gpd.GeoDataFrame, VersionInfo]:
        from geo.store.gpkg import decode_rows

        rows, info = self._rows_of(version)
        return decode_rows(rows), info

    def zone_geometries(self, version: int | None = None) -> tuple[list[str], np.ndarray, VersionInfo]:
        from geo.store.gpkg import geometries

        rows, info = self._rows_of(version, columns='"zone_id"')
        return [row[0] for row in rows], geometries([row[-1] for row in rows]), info

    # -- writing -----------------------------------------------------------------------------
    def save(self, zones: gpd.GeoDataFrame, *, action: str, author: str = "zoning",
             source: str | None = None, source_sha256: str | None = None, note: str | None = None,
             base_version: int | None = None, audit: AuditEvent | None = None,
             work: Callable[[Any, VersionInfo], None] | None = None) -> VersionInfo:
        from geo.store.gpkg import decode_rows, encode_rows

        zones = with_computed_area(schema.normalize_zones(zones))
        schema.validate_zones(zones)
        rows = encode_rows(zones)
        digest = content_hash(zones)
        self.upgrade()
        with self._writing() as db:
            head = self._head_in(db)
            if base_version is not None and head != base_version:
                raise StoreError(f"the store changed while this change was prepared (version {head} is "
                                 f"current, the change was based on {base_version}); run it again")
            number = head + 1
            ids, before = self._write_rows(db, number, rows)
            touched = set(ids["touched"])
            after = zones[zones["zone_id"].isin(touched)]
            changed = diff_zones(decode_rows(before, validate=False), after)["changed"] if touched else []
            summary = {"added": ids["added"], "removed": ids["removed"], "changed": changed}
            info = VersionInfo(version=number, data_version=f"v{number}-{digest[:8]}", created_at=now(),
                               author=author, action=action, source=source, source_sha256=source_sha256,
                               zone_count=len(zones), summary=json.dumps(summary, ensure_ascii=False), note=note)
            self._insert_version(db, info)
            self._after_save(db, info, zones)
            if audit is not None:
                self._insert_audit(db, audit, number)
            if work is not None:
                work(self.work().transaction(db), info)
        self._saved(info)
        return info

    # -- audit log ---------------------------------------------------------------------------
    def append_audit(self, event: AuditEvent) -> AuditEntry:
        self.upgrade()
        with self._writing() as db:
            return self._insert_audit(db, event, None)

    def audit(self, limit: int = 100, *, before: int | None = None, actor: str | None = None,
              action: str | None = None) -> list[AuditEntry]:
        where, params = [], []
        for clause, value in (("id < ?", before), ("actor = ?", actor), ("action = ?", action)):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = (f"SELECT {', '.join(AUDIT_FIELDS)} FROM {self._table('audit')} "
               f"{'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY id DESC LIMIT ?")
        with self._reading() as db:
            rows = db.execute(self._sql(sql), (*params, int(limit))).fetchall()
        return [AuditEntry(**{**dict(zip(AUDIT_FIELDS, r, strict=True)), "detail": json.loads(r[6])})
                for r in rows]

