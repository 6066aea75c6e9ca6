"""PostGISStore: the zone store in a PostgreSQL + PostGIS database, same semantics as the GeoPackage.

Selected by a ``postgresql://`` (or ``postgres://``) location: ``ZONING_STORE`` or
``--store``. Everything lives in one schema (``zoning`` unless the URL's query names another
with ``?zoning_schema=…``), created on the first write:

* ``zone_history``  every zone row that was ever current, valid from version ``valid_from``
                    up to (not including) ``valid_to`` (NULL while current): the same temporal
                    layout as the GeoPackage, so a version costs only the rows it changes.
                    ``geom`` is ``geometry(Geometry, 4326)`` with a GiST index, and a partial
                    GiST index on the current rows;
* ``zones_current`` a view of the current rows: the table a GIS team queries and opens in
                    QGIS (served by the partial GiST index);
* ``zones_by_version`` a view: version *n* is ``SELECT … WHERE version = n``;
* ``versions``      one row per version (who, when, what, source, summary);
* ``audit``         the append-only audit log (a trigger refuses UPDATE and DELETE).

Every write is one transaction that first takes ``LOCK TABLE versions IN SHARE ROW EXCLUSIVE
MODE`` (the writer lock: a second writer waits, readers never do) and ends by
``NOTIFY zoning_versions`` with the new number, delivered to listeners on commit. Reads run
in one ``REPEATABLE READ`` read-only transaction, so zones and version info come from the
same committed state.

Replicas stay in step: :meth:`PostGISStore.head` (which the catalog asks on every request)
starts a listener thread that ``LISTEN``s on that channel and keeps the head version in
memory, so a version written through any server is noticed by all within milliseconds
and a request costs no query. The listener also re-reads ``max(version)`` every
``POLL_S`` seconds (a notification lost while it reconnected is caught by that poll); while
it is down, ``head`` queries the database itself.

Rows are compared and decoded exactly as the GeoPackage backend does (``gpkg.encode_rows`` /
``gpkg.decode_rows``; geometry as little-endian 2D WKB), so the same zones give the same
versions, summaries and ``data_version`` in both.
"""

from __future__ import annotations

import contextlib
import re
import struct
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from geo import paths, schema
from geo.store.base import StoreError, VersionInfo
from geo.store.gpkg import _wkb
from geo.store.sql import SQLStore
from geo.store.work import PostgresWorkTables

if TYPE_CHECKING:
    import geopandas as gpd

SCHEMES = ("postgresql://", "postgres://")
CHANNEL = "zoning_versions"
SRID = 4326
# The listener's fallback poll of max(version): a notification missed while reconnecting is
# noticed within this many seconds.
POLL_S = 0.5
# How long a writer waits for another writer's transaction before giving up.
LOCK_TIMEOUT = "60s"
# Connections of finished reads kept open for the next reads, per store object.
IDLE_CONNECTIONS = 4

_COLUMNS = schema.ZONE_COLUMNS
_COLS = ", ".join(f'"{c}"' for c in _COLUMNS)
_COLUMN_DDL = ", ".join(f'"{c}" {"double precision" if c in schema.FLOAT_COLUMNS else "text"}' for c in _COLUMNS)
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# A GeoPackage blob header with no envelope (little-endian, SRS 4326): wraps PostGIS WKB so
# the GeoPackage backend's row decoding is reused byte for byte.
_GP_HEADER = struct.pack("<2sBBi", b"GP", 0, 0b0000_0001, SRID)


def is_postgis_location(location: Any) -> bool:
    text = str(location)
    return text.startswith(SCHEMES) or text.startswith(("postgresql:/", "postgres:/"))


def _before_commit() -> None:
    """Called with a write's rows in place, just before COMMIT (tests stall and kill here)."""


def _ddl(s: str) -> str:
    cols = ", ".join(f'h."{c}"' for c in _COLUMNS)
    return f"""
    CREATE SCHEMA IF NOT EXISTS {s};
    CREATE TABLE {s}.versions (version integer PRIMARY KEY, data_version text NOT NULL, created_at text NOT NULL,
      author text NOT NULL, action text NOT NULL, source text, source_sha256 text, zone_count integer NOT NULL,
      summary text NOT NULL, note text);
    CREATE TABLE {s}.zone_history (fid bigserial PRIMARY KEY, valid_from integer NOT NULL, valid_to integer,
      ordinal integer NOT NULL, {_COLUMN_DDL}, geom geometry(Geometry, {SRID}));
    CREATE INDEX zone_history_open ON {s}.zone_history (valid_to, zone_id);
    CREATE INDEX zone_history_from ON {s}.zone_history (valid_from);
    CREATE INDEX zone_history_geom ON {s}.zone_history USING gist (geom);
    CREATE INDEX zone_history_current_geom ON {s}.zone_history USING gist (geom) WHERE valid_to IS NULL;
    CREATE UNIQUE INDEX zone_history_current_id ON {s}.zone_history (zone_id) WHERE valid_to IS NULL;
    CREATE VIEW {s}.zones_current AS SELECT fid, {cols}, h.geom FROM {s}.zone_history h
      WHERE h.valid_to IS NULL;
    CREATE VIEW {s}.zones_by_version AS SELECT v.version, h.fid, h.ordinal, {cols}, h.geom
      FROM {s}.versions v JOIN {s}.zone_history h
      ON h.valid_from <= v.version AND (h.valid_to IS NULL OR h.valid_to > v.version);
    COMMENT ON VIEW {s}.zones_current IS 'the zones being served (current version)';
    COMMENT ON TABLE {s}.zone_history IS 'every zone row of every version: valid_from <= v < valid_to';
    CREATE TABLE {s}.audit (id bigserial PRIMARY KEY, at text NOT NULL, actor text NOT NULL, role text,
      action text NOT NULL, target text, detail text NOT NULL DEFAULT '{{}}', client text,
      version integer REFERENCES {s}.versions (version));
    CREATE INDEX audit_actor ON {s}.audit (actor, id);
    CREATE FUNCTION {s}.audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
    CREATE TRIGGER audit_is_append_only BEFORE UPDATE OR DELETE ON {s}.audit
      FOR EACH ROW EXECUTE FUNCTION {s}.audit_is_append_only();
    CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON {s}.audit
      FOR EACH STATEMENT EXECUTE FUNCTION {s}.audit_is_append_only();
    """


def _blob(wkb: bytes | None) -> bytes | None:
    """PostGIS WKB as a GeoPackage blob, for ``gpkg.decode_rows``."""
    return None if wkb is None else _GP_HEADER + bytes(wkb)


class PostGISStore(SQLStore):
    """Versioned zone table in a PostGIS database (see the module docstring for the layout)."""

    MARK = "%s"
    MAX_VERSION = 2**31  # the version column is an integer

    def _table(self, name: str) -> str:
        return f"{self.schema}.{name}"

    def __init__(self, url: str):
        import psycopg  # the `postgis` extra; imported here so a GeoPackage deployment never needs it

        self._psycopg = psycopg
        url = str(url)
        if not url.startswith(SCHEMES):  # a pathlib.Path collapsed "//" to "/"
            url = re.sub(r"^(postgres(?:ql)?):/", r"\1://", url)
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        self.schema = query.pop("zoning_schema", "zoning")
        if not _NAME.match(self.schema):
            raise StoreError(f"zoning_schema must be a plain lower-case SQL name, got {self.schema!r}")
        self.url = urlunsplit(parts._replace(query=urlencode(query)))
        netloc = parts.hostname or "localhost"
        self.location = urlunsplit((parts.scheme, f"{netloc}:{parts.port or 5432}", parts.path, "", ""))
        db = parts.path.strip("/") or "postgres"
        # Saved lookup indexes (geo.index_files): a local cache per database and schema.
        self.index_dir = paths.REPO_DIR / "var" / "index" / f"postgis-{netloc}-{parts.port or 5432}-{db}-{self.schema}"
        self._head_db = None
        self._head_lock = threading.Lock()
        self._listener: threading.Thread | None = None
        self._listened_head: int | None = None  # None: the listener is not (yet) in step
        self._stop = threading.Event()
        self._advance_lock = threading.Lock()
        self._idle: list[Any] = []  # connections of finished reads, kept for the next ones
        self._idle_lock = threading.Lock()

    # -- connections and transactions ------------------------------------------------------------
    def connect(self, **kwargs):
        try:
            return self._psycopg.connect(self.url, **kwargs)
        except self._psycopg.OperationalError as exc:
            raise StoreError(f"cannot connect to the zone store {self.location}: {str(exc).strip()}") from None

    def _has_schema(self, db) -> bool:
        return db.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{self.schema}.versions",)).fetchone()[0]

    def _missing(self) -> StoreError:
        return StoreError(f"zone store {self.location} (schema {self.schema}) holds no version; run `zoning serve` "
                          "or `zoning info` once to create it from the bundled zones, or `zoning store copy`")

    def _begin(self, statement: str) -> Any:
        """A connection with ``statement`` (a BEGIN) run on it: one kept idle from an earlier
        transaction when there is one (at most ``IDLE_CONNECTIONS`` are kept), else a new one.
        A new connection costs more than most reads (the workbench's token check: 20 ms with a
        new connection, 1.6 ms on a kept one, ``benchmarks/bench_worktables.py``). A kept
        connection the server dropped is replaced."""
        with self._idle_lock:
            db = self._idle.pop() if self._idle else None
        if db is not None:
            try:
                db.execute(statement)
                return db
            except self._psycopg.OperationalError:
                db.close()
        db = self.connect(autocommit=True)
        try:
            db.execute(statement)
        except BaseException:
            db.close()
            raise
        return db

    def _release(self, db) -> None:
        """Keep ``db`` idle for the next transaction (ending any still open), or close it."""
        if db.closed:
            return
        if db.info.transaction_status != self._psycopg.pq.TransactionStatus.IDLE:
            try:
                db.execute("ROLLBACK")
            except self._psycopg.Error:
                db.close()
                return
        with self._idle_lock:
            if len(self._idle) < IDLE_CONNECTIONS and not self._stop.is_set():
                self._idle.append(db)
                return
        db.close()

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Any]:
        """One read-only REPEATABLE READ transaction: every query sees the same committed state."""
        db = self._begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            if not self._has_schema(db):
                raise self._missing()
            yield db
        finally:
            self._release(db)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Any]:
        """One write transaction under the writer lock; COMMIT only if the block succeeds."""
        db = self._begin("BEGIN")
        try:
            db.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            # Serialise schema creation too: two servers starting on an empty database.
            db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"zoning:{self.schema}",))
            if not self._has_schema(db):
                db.execute(_ddl(self.schema))
            db.execute(f"LOCK TABLE {self.schema}.versions IN SHARE ROW EXCLUSIVE MODE")
            yield db
            _before_commit()
            db.execute("COMMIT")
        except BaseException:
            if not db.closed:
                db.execute("ROLLBACK")
            raise
        finally:
            self._release(db)

    def work(self) -> PostgresWorkTables:
        return PostgresWorkTables(self)

    def close(self) -> None:
        """Close the connections kept for :meth:`head` and for reads, and stop the listener."""
        self._stop.set()
        self._listened_head = None
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for db in idle:
            db.close()
        if self._head_db is not None:
            self._head_db.close()
            self._head_db = None

    # -- the head version, kept in step by LISTEN/NOTIFY ---------------------------------------------
    def listen(self) -> None:
        """Start the listener thread (idempotent); :meth:`head` does on its first call."""
        with self._head_lock:
            if self._listener is None or not self._listener.is_alive():
                self._stop.clear()
                self._listener = threading.Thread(target=self._listen, name="zoning-store-listen", daemon=True)
                self._listener.start()

    def _listen(self) -> None:
        prefix = f"{self.schema}:"
        while not self._stop.is_set():
            try:
                with self.connect(autocommit=True) as db:
                    db.execute(f"LISTEN {CHANNEL}")
                    while not self._stop.is_set():
                        # Poll after LISTEN: a version committed in between is not missed.
                        self._advance_head(self._query_head(db))
                        for note in db.notifies(timeout=POLL_S):
                            if note.payload.startswith(prefix):
                                self._advance_head(int(note.payload[len(prefix):]))
            except (self._psycopg.Error, StoreError):
                self._listened_head = None  # head() asks the database until the listener is back
                self._stop.wait(1.0)

    def _advance_head(self, number: int) -> None:
        """Versions only grow: a poll answered just before a commit never moves head back."""
        with self._advance_lock:
            self._listened_head = max(number, self._listened_head or 0)

    def _query_head(self, db) -> int:
        if not self._has_schema(db):
            return 0
        return db.execute(f"SELECT max(version) FROM {self.schema}.versions").fetchone()[0] or 0

    # -- reading ---------------------------------------------------------------------------------
    def head(self) -> int:
        """The current version: from the listener when it is in step, else one query."""
        if self._listener is None:
            self.listen()
        listened = self._listened_head
        if listened is not None:
            return listened
        with self._head_lock:
            for attempt in (1, 2):  # a dropped connection (server restart) is reopened once
                try:
                    if self._head_db is None or self._head_db.closed:
                        self._head_db = self.connect(autocommit=True)
                    return self._query_head(self._head_db)
                except self._psycopg.OperationalError:
                    self.close()
                    if attempt == 2:
                        raise
        return 0

    def _zone_rows(self, db, version: int | None, columns: str | None = None) -> list[tuple]:
        columns = columns or _COLS
        if version is None:
            rows = db.execute(f"SELECT {columns}, ST_AsBinary(geom, 'NDR') FROM {self.schema}.zone_history "
                              "WHERE valid_to IS NULL ORDER BY ordinal, fid").fetchall()
        else:
            rows = db.execute(f"SELECT {columns}, ST_AsBinary(geom, 'NDR') FROM {self.schema}.zones_by_version "
                              "WHERE version = %s ORDER BY ordinal, fid", (version,)).fetchall()
        return [(*r[:-1], _blob(r[-1])) for r in rows]

    # -- writing ---------------------------------------------------------------------------------
    def _write_rows(self, db, number: int, rows: list[tuple]) -> tuple[dict[str, list[str]], list[tuple]]:
        """As ``gpkg._write_rows``: close the history rows of zones removed or changed and
        insert rows for zones added or changed. Returns the ids and the touched zones' old rows."""
        s = self.schema
        # Rows compared as (columns…, WKB): what is stored, whatever header a blob had.
        current = {r[1]: (r[0], (*r[1:-1], bytes(r[-1]))) for r in db.execute(
            f"SELECT fid, {_COLS}, ST_AsBinary(geom, 'NDR') FROM {s}.zone_history WHERE valid_to IS NULL")}
        new = {row[0]: (i, (*row[:-1], _wkb(row[-1]))) for i, row in enumerate(rows)}
        ids = {"added": sorted(z for z in new if z not in current),
               "removed": sorted(z for z in current if z not in new),
               "touched": sorted(z for z in new if z in current and current[z][1] != new[z][1])}
        with db.cursor() as cur:
            cur.executemany(f"UPDATE {s}.zone_history SET valid_to = %s WHERE fid = %s",
                            [(number, current[z][0]) for z in ids["removed"] + ids["touched"]])
            marks = ", ".join("%s" for _ in _COLUMNS)
            cur.executemany(f"INSERT INTO {s}.zone_history (valid_from, ordinal, {_COLS}, geom) "
                            f"VALUES (%s, %s, {marks}, ST_GeomFromWKB(%s, {SRID}))",
                            [(number, new[z][0], *new[z][1]) for z in ids["added"] + ids["touched"]])
        return ids, [(*current[z][1][:-1], _blob(current[z][1][-1])) for z in ids["touched"]]

    def _after_save(self, db, info: VersionInfo, zones: gpd.GeoDataFrame) -> None:
        db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{self.schema}:{info.version}"))

    def _saved(self, info: VersionInfo) -> None:
        if self._listened_head is not None:  # this process sees its own write at once
            self._advance_head(info.version)

    # -- vector tiles ----------------------------------------------------------------------------
    def mvt(self, version: int, layer: str, z: int, x: int, y: int, properties: tuple[str, ...]) -> bytes:
        """Tile z/x/y of ``layer``'s zones in ``version`` as a Mapbox vector tile, by ``ST_AsMVT``
        (4096 units, 64 buffer, clipped): the same tile ``maps.tiles`` makes in-process."""
        cols = ", ".join(f'z."{c}"' for c in properties)
        sql = (f"WITH env AS (SELECT ST_TileEnvelope(%s, %s, %s) AS box), "
               f"features AS (SELECT ST_AsMVTGeom(ST_Transform(z.geom, 3857), env.box, 4096, 64, true) AS geom, "
               f"{cols} FROM {self.schema}.zones_by_version z, env WHERE z.version = %s AND z.layer = %s "
               f"AND z.geom && ST_Transform(ST_Expand(env.box, (ST_XMax(env.box) - ST_XMin(env.box)) / 64), 4326) "
               f"ORDER BY z.ordinal, z.fid) "
               f"SELECT ST_AsMVT(features, %s, 4096, 'geom') FROM features WHERE geom IS NOT NULL")
        with self._reading() as db:
            tile = db.execute(sql, (z, x, y, version, layer, layer)).fetchone()[0]
        return bytes(tile or b"")
