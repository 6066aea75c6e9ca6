"""Migrate a zone store of the earlier layout to the temporal one, keeping every version.

The earlier layout (``geo/store.py`` before the temporal table) kept ``zones`` (current),
one full snapshot ``zones_v0001``, ``zones_v0002``… per version and ``versions``, all
written by GDAL. Migration reads every snapshot, replays them as versions of the temporal
table (so each version stores only the rows it changed), keeps each version's row in
``versions`` as it was (number, ``data_version``, author, summary …) and drops the
snapshot tables, all inside the caller's one transaction.
"""

from __future__ import annotations

import sqlite3

from geo import schema
from geo.store.base import StoreError
from geo.store.gpkg import (
    HISTORY_LAYER,
    _create_schema,
    _tables,
    _update_contents,
    _write_rows,
    decode_rows,
    encode_rows,
)

_VERSION_FIELDS = ("version", "data_version", "created_at", "author", "action", "source", "source_sha256",
                   "zone_count", "summary", "note")


def needs_migration(db: sqlite3.Connection) -> bool:
    tables = _tables(db)
    return "versions" in tables and HISTORY_LAYER not in tables


def _snapshot_table(version: int) -> str:
    return f"zones_v{version:04d}"


def _read_layer(db: sqlite3.Connection, table: str) -> list[tuple]:
    """Rows of (schema columns…, geometry blob) of a GDAL-written layer, in feature order; a
    column the layer lacks reads as NULL."""
    present = {r[1] for r in db.execute(f'PRAGMA table_info("{table}")')}
    geom = db.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (table,)).fetchone()
    if geom is None:
        raise StoreError(f"cannot migrate the zone store: {table} has no geometry column")
    select = ", ".join(f'"{c}"' if c in present else "NULL" for c in schema.ZONE_COLUMNS)
    return db.execute(f'SELECT {select}, "{geom[0]}" FROM "{table}" ORDER BY fid').fetchall()


def _drop_layer(db: sqlite3.Connection, table: str) -> None:
    geom = db.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (table,)).fetchone()
    if geom is not None:
        db.execute(f'DROP TABLE IF EXISTS "rtree_{table}_{geom[0]}"')
    db.execute(f'DROP TABLE IF EXISTS "{table}"')
    for meta in ("gpkg_extensions", "gpkg_geometry_columns", "gpkg_contents", "gpkg_ogr_contents"):
        if meta in _tables(db):
            db.execute(f"DELETE FROM {meta} WHERE lower(table_name) = lower(?)", (table,))


def migrate_snapshot_layout(db: sqlite3.Connection) -> int:
    """Rewrite the earlier layout in place (inside the caller's transaction); returns the
    number of versions migrated."""
    tables = _tables(db)
    versions = db.execute(f"SELECT {', '.join(_VERSION_FIELDS)} FROM versions ORDER BY version").fetchall()
    snapshots = []
    for row in versions:
        table = _snapshot_table(int(row[0]))
        if table not in tables:
            raise StoreError(f"cannot migrate the zone store: version {row[0]} has no snapshot table {table}")
        snapshots.append(decode_rows(_read_layer(db, table)))
    for table in sorted(t for t in tables if t == "zones" or t == "versions" or t.startswith("zones_v")):
        _drop_layer(db, table)
    _create_schema(db)
    for row, zones in zip(versions, snapshots, strict=True):
        _write_rows(db, int(row[0]), encode_rows(zones))
        db.execute(f"INSERT INTO versions ({', '.join(_VERSION_FIELDS)}) VALUES "
                   f"({', '.join('?' for _ in _VERSION_FIELDS)})", row)
        _update_contents(db, zones)
    return len(versions)
