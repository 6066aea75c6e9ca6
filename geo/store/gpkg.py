"""GeoPackageStore: the zone store as one GeoPackage file, every write one SQLite transaction.

The file is an ordinary GeoPackage that QGIS and GDAL open directly:

* ``zones``         the current zone table, a plain feature layer with an R-tree index;
* ``zone_history``  every zone row that was ever current, each valid from version
                    ``valid_from`` up to (not including) ``valid_to`` (NULL while current),
                    so a version costs only the rows it changes. Also a feature layer: in
                    QGIS, ``valid_from <= 5 AND (valid_to IS NULL OR valid_to > 5)`` is version 5;
* ``zones_by_version``  a view over ``zone_history`` and ``versions``: version *n* is
                    ``SELECT … WHERE version = n`` (what :meth:`load` reads);
* ``versions``      one row per version: who, when, what, source file and hash, summary;
* ``audit``         the append-only audit log (triggers refuse UPDATE and DELETE).

A write is one transaction: WAL journal, ``BEGIN IMMEDIATE`` as the writer lock (a second
writer waits, readers never do), ``synchronous=FULL``. It touches only the changed rows of
``zones`` and ``zone_history`` and appends to ``versions`` (and ``audit``). A writer killed at
any point leaves a transaction SQLite rolls back on the next open: no temporary file, no
rename, no copy. Readers read zones and version info in one read transaction.

Stores of the earlier layout (one full ``zones_v0001``… snapshot per version) are migrated
on first open, in one transaction, keeping every version and its ``data_version``.

Geometry is stored as GeoPackage binary (header with envelope + little-endian WKB), written
and read here with shapely; the R-tree triggers need ``ST_IsEmpty``/``ST_MinX``… which GDAL
provides to its own connections and :func:`_register_functions` to ours.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import math
import os
import sqlite3
import struct
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyproj
import shapely

from geo import schema
from geo.store.base import StoreError, VersionInfo
from geo.store.sql import SQLStore
from geo.store.work import SQLiteWorkTables

if TYPE_CHECKING:
    import geopandas as gpd

CURRENT_LAYER = "zones"
HISTORY_LAYER = "zone_history"
BY_VERSION_VIEW = "zones_by_version"
SRS_ID = 4326
# How long a writer waits for another writer's transaction before giving up.
WRITE_TIMEOUT_S = 60.0

_COLUMNS = schema.ZONE_COLUMNS
_COLS = ", ".join(f'"{c}"' for c in _COLUMNS)
_MARKS = ", ".join("?" for _ in _COLUMNS)
_COLUMN_DDL = ", ".join(f'"{c}" {"REAL" if c in schema.FLOAT_COLUMNS else "TEXT"}' for c in _COLUMNS)


def _before_commit() -> None:
    """Called with a write's rows in place, just before COMMIT (tests stall and kill here)."""


# -- GeoPackage geometry blobs ----------------------------------------------------------------
_FLAGS_LE_XY_ENVELOPE = 0b0000_0011  # little-endian header, envelope [minx, maxx, miny, maxy]
_FLAGS_LE_EMPTY = 0b0001_0001  # little-endian header, empty geometry, no envelope
_ENVELOPE_DOUBLES = (0, 4, 6, 6, 8)  # by envelope contents indicator (flags bits 1-3)


def geometry_blobs(geoms: Sequence[Any]) -> list[bytes | None]:
    """GeoPackage binary for each shapely geometry (None stays None), 2D."""
    geoms = np.asarray(geoms, dtype=object)
    wkbs = shapely.to_wkb(geoms, byte_order=1, output_dimension=2)
    bounds = shapely.bounds(geoms)
    blobs: list[bytes | None] = []
    for wkb, (x0, y0, x1, y1) in zip(wkbs, bounds, strict=True):
        if wkb is None:
            blobs.append(None)
        elif math.isnan(x0):
            blobs.append(struct.pack("<2sBBi", b"GP", 0, _FLAGS_LE_EMPTY, SRS_ID) + wkb)
        else:
            blobs.append(struct.pack("<2sBBi4d", b"GP", 0, _FLAGS_LE_XY_ENVELOPE, SRS_ID, x0, x1, y0, y1) + wkb)
    return blobs


def _wkb(blob: bytes) -> bytes:
    return blob[8 + 8 * _ENVELOPE_DOUBLES[(blob[3] >> 1) & 0b111]:]


def geometries(blobs: Sequence[bytes | None]) -> np.ndarray:
    """shapely geometries of GeoPackage blobs (any envelope, either byte order)."""
    return shapely.from_wkb([None if b is None else _wkb(b) for b in blobs])


def _envelope(blob: bytes | None) -> tuple[float, float, float, float] | None:
    """(minx, maxx, miny, maxy) from the header, or computed when it carries none."""
    if blob is None or blob[3] & 0b1_0000:
        return None
    if (blob[3] >> 1) & 0b111:
        return struct.unpack_from("<4d" if blob[3] & 1 else ">4d", blob, 8)
    x0, y0, x1, y1 = shapely.from_wkb(_wkb(blob)).bounds
    return x0, x1, y0, y1


def _register_functions(db: sqlite3.Connection) -> None:
    """The SQL functions the GeoPackage R-tree triggers call (GDAL registers the same)."""
    db.create_function("ST_IsEmpty", 1, lambda b: None if b is None else int(bool(b[3] & 0b1_0000)),
                       deterministic=True)
    for i, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        db.create_function(name, 1, lambda b, i=i: (e := _envelope(b)) and e[i], deterministic=True)


# -- rows <-> zone tables ---------------------------------------------------------------------
def encode_rows(zones: gpd.GeoDataFrame) -> list[tuple]:
    """One tuple per zone: the schema's columns as SQLite values, then the geometry blob.
    Equal tuples mean an unchanged row (the comparison that decides what a version writes)."""
    blobs = geometry_blobs(zones.geometry.values)
    rows = []
    for record, blob in zip(zones[list(_COLUMNS)].to_dict("records"), blobs, strict=True):
        values = []
        for col in _COLUMNS:
            value = record[col]
            if col == "rules":
                value = json.dumps(value, ensure_ascii=False)
            elif col in schema.FLOAT_COLUMNS:
                value = None if value is None or math.isnan(value) else float(value)
            values.append(value)
        rows.append((*values, blob))
    return rows


def decode_rows(rows: Sequence[Sequence[Any]], *, validate: bool = True) -> gpd.GeoDataFrame:
    """The zone table of rows of (columns…, geometry blob), validated unless it is only a
    part of a table (whose parent ids may point outside it)."""
    import geopandas as gpd

    if not rows:
        return schema.empty_zones()
    records = [dict(zip(_COLUMNS, row[:-1], strict=True)) for row in rows]
    for record in records:
        rules = record["rules"]
        record["rules"] = json.loads(rules) if isinstance(rules, str) and rules else []
    frame = gpd.GeoDataFrame(records, geometry=geometries([row[-1] for row in rows]), crs=schema.CRS)
    zones = schema.normalize_zones(frame)
    if validate:
        schema.validate_zones(zones)
    return zones


# -- schema -----------------------------------------------------------------------------------
def _gpkg_core_ddl() -> str:
    return """
    CREATE TABLE IF NOT EXISTS gpkg_spatial_ref_sys (srs_name TEXT NOT NULL, srs_id INTEGER PRIMARY KEY,
      organization TEXT NOT NULL, organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL,
      description TEXT);
    CREATE TABLE IF NOT EXISTS gpkg_contents (table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL,
      identifier TEXT UNIQUE, description TEXT DEFAULT '',
      last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
      min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER,
      CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id));
    CREATE TABLE IF NOT EXISTS gpkg_geometry_columns (table_name TEXT NOT NULL, column_name TEXT NOT NULL,
      geometry_type_name TEXT NOT NULL, srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL,
      CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name), CONSTRAINT uk_gc_table_name UNIQUE (table_name),
      CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
      CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id));
    CREATE TABLE IF NOT EXISTS gpkg_extensions (table_name TEXT, column_name TEXT, extension_name TEXT NOT NULL,
      definition TEXT NOT NULL, scope TEXT NOT NULL, CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name));
    """


def _rtree_ddl(table: str) -> str:
    """The GeoPackage R-tree extension for ``table.geom``, triggers as the spec gives them."""
    rt = f'"rtree_{table}_geom"'
    box = 'NEW.fid, ST_MinX(NEW.geom), ST_MaxX(NEW.geom), ST_MinY(NEW.geom), ST_MaxY(NEW.geom)'
    has = "(NEW.geom NOT NULL AND NOT ST_IsEmpty(NEW.geom))"
    lacks = "(NEW.geom IS NULL OR ST_IsEmpty(NEW.geom))"
    return f"""
    CREATE VIRTUAL TABLE {rt} USING rtree(id, minx, maxx, miny, maxy);
    INSERT INTO gpkg_extensions VALUES ('{table}', 'geom', 'gpkg_rtree_index',
      'http://www.geopackage.org/spec120/#extension_rtree', 'write-only');
    CREATE TRIGGER "rtree_{table}_geom_insert" AFTER INSERT ON "{table}" WHEN {has}
      BEGIN INSERT OR REPLACE INTO {rt} VALUES ({box}); END;
    CREATE TRIGGER "rtree_{table}_geom_update1" AFTER UPDATE OF geom ON "{table}" WHEN OLD.fid = NEW.fid AND {has}
      BEGIN INSERT OR REPLACE INTO {rt} VALUES ({box}); END;
    CREATE TRIGGER "rtree_{table}_geom_update2" AFTER UPDATE OF geom ON "{table}" WHEN OLD.fid = NEW.fid AND {lacks}
      BEGIN DELETE FROM {rt} WHERE id = OLD.fid; END;
    CREATE TRIGGER "rtree_{table}_geom_update3" AFTER UPDATE ON "{table}" WHEN OLD.fid != NEW.fid AND {has}
      BEGIN DELETE FROM {rt} WHERE id = OLD.fid; INSERT OR REPLACE INTO {rt} VALUES ({box}); END;
    CREATE TRIGGER "rtree_{table}_geom_update4" AFTER UPDATE ON "{table}" WHEN OLD.fid != NEW.fid AND {lacks}
      BEGIN DELETE FROM {rt} WHERE id IN (OLD.fid, NEW.fid); END;
    CREATE TRIGGER "rtree_{table}_geom_delete" AFTER DELETE ON "{table}" WHEN OLD.geom NOT NULL
      BEGIN DELETE FROM {rt} WHERE id = OLD.fid; END;
    """


def _layers_ddl() -> str:
    register = ("INSERT INTO gpkg_contents (table_name, data_type, identifier, description, srs_id) "
                "VALUES ('{0}', '{1}', '{0}', '{2}', {3});")
    geometry = "INSERT INTO gpkg_geometry_columns VALUES ('{0}', 'geom', 'GEOMETRY', {1}, 0, 0);"
    version_cols = ", ".join(f"h.{c}" for c in ('"' + c + '"' for c in _COLUMNS))
    return f"""
    CREATE TABLE "{CURRENT_LAYER}" (fid INTEGER PRIMARY KEY AUTOINCREMENT, geom GEOMETRY, {_COLUMN_DDL});
    CREATE UNIQUE INDEX zones_zone_id ON "{CURRENT_LAYER}" (zone_id);
    {register.format(CURRENT_LAYER, 'features', 'current zones', SRS_ID)}
    {geometry.format(CURRENT_LAYER, SRS_ID)}
    {_rtree_ddl(CURRENT_LAYER)}
    CREATE TABLE "{HISTORY_LAYER}" (fid INTEGER PRIMARY KEY AUTOINCREMENT, geom GEOMETRY,
      valid_from INTEGER NOT NULL, valid_to INTEGER, ordinal INTEGER NOT NULL, {_COLUMN_DDL});
    CREATE INDEX zone_history_open ON "{HISTORY_LAYER}" (valid_to, zone_id);
    CREATE INDEX zone_history_from ON "{HISTORY_LAYER}" (valid_from);
    {register.format(HISTORY_LAYER, 'features', 'every zone row of every version, valid_from <= v < valid_to', SRS_ID)}
    {geometry.format(HISTORY_LAYER, SRS_ID)}
    CREATE TABLE versions (version INTEGER PRIMARY KEY, data_version TEXT NOT NULL, created_at TEXT NOT NULL,
      author TEXT NOT NULL, action TEXT NOT NULL, source TEXT, source_sha256 TEXT, zone_count INTEGER NOT NULL,
      summary TEXT NOT NULL, note TEXT);
    {register.format('versions', 'attributes', 'data versions: who, when, what', 'NULL')}
    CREATE VIEW "{BY_VERSION_VIEW}" AS SELECT v.version AS version, h.fid AS fid, h.ordinal AS ordinal,
      {version_cols}, h.geom AS geom FROM versions v JOIN "{HISTORY_LAYER}" h
      ON h.valid_from <= v.version AND (h.valid_to IS NULL OR h.valid_to > v.version);
    CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL, role TEXT,
      action TEXT NOT NULL, target TEXT, detail TEXT NOT NULL DEFAULT '{{}}', client TEXT,
      version INTEGER REFERENCES versions (version));
    CREATE INDEX audit_actor ON audit (actor, id);
    CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
      BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
      BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    {register.format('audit', 'attributes', 'append-only audit log', 'NULL')}
    """


def _create_schema(db: sqlite3.Connection) -> None:
    """A new GeoPackage 1.3 with the store's tables (inside the caller's transaction)."""
    db.execute("PRAGMA application_id = 1196444487")  # 'GPKG'
    db.execute("PRAGMA user_version = 10300")
    _executescript(db, _gpkg_core_ddl())
    wgs84 = pyproj.CRS.from_epsg(SRS_ID).to_wkt("WKT1_GDAL")
    db.executemany("INSERT OR IGNORE INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)", [
        ("Undefined cartesian SRS", -1, "NONE", -1, "undefined", "undefined cartesian coordinate reference system"),
        ("Undefined geographic SRS", 0, "NONE", 0, "undefined", "undefined geographic coordinate reference system"),
        ("WGS 84 geodetic", SRS_ID, "EPSG", SRS_ID, wgs84, "longitude/latitude coordinates in decimal degrees"),
    ])
    _executescript(db, _layers_ddl())


def _executescript(db: sqlite3.Connection, script: str) -> None:
    """Run ``script`` statement by statement inside the open transaction (sqlite3's
    executescript would COMMIT first)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""


def _tables(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}


def _write_rows(db: sqlite3.Connection, number: int, rows: list[tuple]) -> tuple[dict[str, list[str]], list[tuple]]:
    """Make ``rows`` (from :func:`encode_rows`) version ``number``: close the history rows of
    zones removed or changed, insert rows for zones added or changed, and apply the same to
    ``zones``. Returns the ids added/removed/touched and the previous rows of touched zones."""
    current = {r[1]: (r[0], r[1:]) for r in db.execute(
        f'SELECT fid, {_COLS}, geom FROM "{HISTORY_LAYER}" WHERE valid_to IS NULL')}
    new = {row[0]: (i, row) for i, row in enumerate(rows)}
    ids = {"added": sorted(z for z in new if z not in current),
           "removed": sorted(z for z in current if z not in new),
           "touched": sorted(z for z in new if z in current and current[z][1] != new[z][1])}
    db.executemany(f'UPDATE "{HISTORY_LAYER}" SET valid_to = ? WHERE fid = ?',
                   [(number, current[z][0]) for z in ids["removed"] + ids["touched"]])
    db.executemany(f'INSERT INTO "{HISTORY_LAYER}" (valid_from, ordinal, {_COLS}, geom) VALUES (?, ?, {_MARKS}, ?)',
                   [(number, new[z][0], *new[z][1]) for z in ids["added"] + ids["touched"]])
    db.executemany(f'DELETE FROM "{CURRENT_LAYER}" WHERE zone_id = ?', [(z,) for z in ids["removed"]])
    assignments = ", ".join(f'"{c}" = ?' for c in _COLUMNS[1:])
    db.executemany(f'UPDATE "{CURRENT_LAYER}" SET {assignments}, geom = ? WHERE zone_id = ?',
                   [(*new[z][1][1:], z) for z in ids["touched"]])
    db.executemany(f'INSERT INTO "{CURRENT_LAYER}" ({_COLS}, geom) VALUES ({_MARKS}, ?)',
                   [new[z][1] for z in ids["added"]])
    return ids, [current[z][1] for z in ids["touched"]]


def _update_contents(db: sqlite3.Connection, zones: gpd.GeoDataFrame) -> None:
    """Extent and last_change of both layers in gpkg_contents (history's extent only grows)."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
    bounds = [None] * 4 if zones.empty else [float(b) for b in zones.total_bounds]
    db.execute("UPDATE gpkg_contents SET min_x = ?, min_y = ?, max_x = ?, max_y = ?, last_change = ? "
               "WHERE table_name = ?", (*bounds, now, CURRENT_LAYER))
    if not zones.empty:
        db.execute("UPDATE gpkg_contents SET min_x = min(coalesce(min_x, ?), ?), min_y = min(coalesce(min_y, ?), ?), "
                   "max_x = max(coalesce(max_x, ?), ?), max_y = max(coalesce(max_y, ?), ?), last_change = ? "
                   "WHERE table_name = ?",
                   (bounds[0], bounds[0], bounds[1], bounds[1], bounds[2], bounds[2], bounds[3], bounds[3],
                    now, HISTORY_LAYER))


class GeoPackageStore(SQLStore):
    """Versioned zone table in one GeoPackage file (see the module docstring for the layout)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.location = str(self.path)
        self._head_db: sqlite3.Connection | None = None
        self._head_lock = threading.Lock()
        self._upgraded = False

    # -- connections and transactions ------------------------------------------------------------
    def _connect(self, *, create: bool = False) -> sqlite3.Connection:
        uri = f"{self.path.resolve().as_uri()}?mode={'rwc' if create else 'rw'}"
        try:
            db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=WRITE_TIMEOUT_S,
                                 check_same_thread=False)
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot open the zone store {self.path}: {exc}") from exc
        _register_functions(db)
        return db

    def _missing(self) -> StoreError:
        return StoreError(f"zone store {self.path} does not exist; run `zoning serve` or `zoning info` "
                          "once to create it from the bundled zones")

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query in it sees the same committed state."""
        if not self.path.exists():
            raise self._missing()
        self.upgrade()
        db = self._connect()
        try:
            db.execute("BEGIN")
            if HISTORY_LAYER not in _tables(db):
                raise self._missing()
            yield db
        finally:
            db.close()  # ends the read transaction

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction under SQLite's writer lock; COMMIT only if the block succeeds."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect(create=True)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("BEGIN IMMEDIATE")
            try:
                if HISTORY_LAYER not in _tables(db):
                    if "versions" in _tables(db):  # the earlier layout, written since upgrade() looked
                        raise StoreError(f"zone store {self.path} has the old layout; open it again to migrate")
                    _create_schema(db)
                yield db
                _before_commit()
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        finally:
            db.close()

    def work(self) -> SQLiteWorkTables:
        return SQLiteWorkTables(self)

    def close(self) -> None:
        """Close the connection kept for :meth:`head`."""
        if self._head_db is not None:
            self._head_db.close()
            self._head_db = None

    # -- reading ---------------------------------------------------------------------------------
    def head(self) -> int:
        if not self.path.exists():
            return 0
        with self._head_lock:
            if self._head_db is None:
                self._head_db = self._connect()
            try:
                return self._head_db.execute("SELECT max(version) FROM versions").fetchone()[0] or 0
            except sqlite3.OperationalError:  # an empty file: no versions table yet
                return 0

    def _zone_rows(self, db: sqlite3.Connection, version: int | None, columns: str | None = None) -> list[tuple]:
        columns = columns or _COLS
        if version is None:  # the open rows: an index lookup, same result as the view at head
            return db.execute(f'SELECT {columns}, geom FROM "{HISTORY_LAYER}" WHERE valid_to IS NULL '
                              "ORDER BY ordinal, fid").fetchall()
        return db.execute(f'SELECT {columns}, geom FROM "{BY_VERSION_VIEW}" WHERE version = ? '
                          "ORDER BY ordinal, fid", (version,)).fetchall()

    # -- writing ---------------------------------------------------------------------------------
    def _write_rows(self, db: sqlite3.Connection, number: int, rows: list[tuple]):
        return _write_rows(db, number, rows)

    def _after_save(self, db: sqlite3.Connection, info: VersionInfo, zones: gpd.GeoDataFrame) -> None:
        _update_contents(db, zones)

    # -- the earlier layout ------------------------------------------------------------------------
    def upgrade(self) -> bool:
        """Migrate a store of the snapshot-per-version layout, once; True if it did."""
        if self._upgraded or not self.path.exists():
            return False
        from geo.store.migrate import migrate_snapshot_layout, needs_migration

        db = self._connect()
        try:
            if not needs_migration(db):
                self._upgraded = True
                return False
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a zone store (a GeoPackage): {exc}") from exc
        finally:
            db.close()
        # The earlier code serialised writers with flock on "<store>.lock": hold it too, so a
        # writer of that code still running finishes before its file is migrated.
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            db = self._connect()
            try:
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("BEGIN IMMEDIATE")
                try:
                    migrated = needs_migration(db)
                    if migrated:
                        migrate_snapshot_layout(db)
                        _before_commit()
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                if migrated:
                    db.execute("VACUUM")  # give back the pages of the dropped snapshots
                    for stale in self.path.parent.glob(f".{self.path.name}.*.tmp.gpkg"):
                        stale.unlink(missing_ok=True)  # temp files of the earlier code's killed writers
            finally:
                db.close()
        self._upgraded = True
        return migrated
