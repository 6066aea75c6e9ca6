"""Copy a zone store into another backend, every version and the audit log: ``zoning store copy``.

A GeoPackage store migrates into PostGIS (and back) with its history intact: each version
keeps its number, ``data_version``, time, author, action, source and summary, and the audit
entries keep their time, actor and version. The whole copy is one transaction in the
destination, which must hold no version yet: a copy that fails half-way leaves it empty.
Each version's zones are checked against its ``data_version`` hash on the way, so a copy
that would not reproduce the source exactly is refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import geopandas as gpd

from geo.store import gpkg, postgis
from geo.store.base import AuditEntry, StoreBackend, StoreError, VersionInfo
from geo.store.changes import content_hash

_VERSION_FIELDS = ("version", "data_version", "created_at", "author", "action", "source", "source_sha256",
                   "zone_count", "summary", "note")
_AUDIT_FIELDS = ("at", "actor", "role", "action", "target", "detail", "client", "version")


def _versions(src: StoreBackend) -> Iterator[tuple[gpd.GeoDataFrame, VersionInfo]]:
    for info in src.versions():
        zones, _ = src.snapshot(info.version)
        if content_hash(zones)[:8] != info.data_version.split("-", 1)[1]:
            raise StoreError(f"version {info.version} of {src.location} does not hash to its data_version "
                             f"{info.data_version}; not copying a store that does not reproduce itself")
        yield zones, info


def _audit(src: StoreBackend) -> list[AuditEntry]:
    entries, before = [], None
    while page := src.audit(1000, before=before):
        entries.extend(page)
        before = page[-1].id
    return entries[::-1]  # oldest first


def _audit_row(entry: AuditEntry) -> tuple:
    return (entry.at, entry.actor, entry.role, entry.action, entry.target,
            json.dumps(entry.detail, ensure_ascii=False, sort_keys=True), entry.client, entry.version)


def _into_gpkg(dst: gpkg.GeoPackageStore, versions, audit: list[AuditEntry]) -> int:
    dst.upgrade()
    n = 0
    with dst._writing() as db:
        if db.execute("SELECT max(version) FROM versions").fetchone()[0]:
            raise StoreError(f"{dst.location} already holds versions; copy only into an empty store")
        for zones, info in versions:
            gpkg._write_rows(db, info.version, gpkg.encode_rows(zones))
            db.execute(f"INSERT INTO versions ({', '.join(_VERSION_FIELDS)}) VALUES "
                       f"({', '.join('?' for _ in _VERSION_FIELDS)})", [getattr(info, f) for f in _VERSION_FIELDS])
            gpkg._update_contents(db, zones)
            n += 1
        db.executemany(f"INSERT INTO audit ({', '.join(_AUDIT_FIELDS)}) VALUES "
                       f"({', '.join('?' for _ in _AUDIT_FIELDS)})", [_audit_row(e) for e in audit])
    return n


def _into_postgis(dst: postgis.PostGISStore, versions, audit: list[AuditEntry]) -> int:
    s, n = dst.schema, 0
    with dst._writing() as db:
        if db.execute(f"SELECT max(version) FROM {s}.versions").fetchone()[0]:
            raise StoreError(f"{dst.location} already holds versions; copy only into an empty store")
        for zones, info in versions:
            dst._write_rows(db, info.version, gpkg.encode_rows(zones))
            db.execute(f"INSERT INTO {s}.versions ({', '.join(_VERSION_FIELDS)}) VALUES "
                       f"({', '.join('%s' for _ in _VERSION_FIELDS)})", [getattr(info, f) for f in _VERSION_FIELDS])
            n += 1
        with db.cursor() as cur:
            cur.executemany(f"INSERT INTO {s}.audit ({', '.join(_AUDIT_FIELDS)}) VALUES "
                            f"({', '.join('%s' for _ in _AUDIT_FIELDS)})", [_audit_row(e) for e in audit])
        if n:
            db.execute("SELECT pg_notify(%s, %s)", (postgis.CHANNEL, f"{s}:{n}"))
    return n


def copy_store(src: StoreBackend, dst: StoreBackend) -> int:
    """Copy every version and audit entry of ``src`` into the empty ``dst``; the number of versions."""
    if not src.exists():
        raise StoreError(f"{src.location} holds no version to copy")
    if dst.exists():
        raise StoreError(f"{dst.location} already holds versions; copy only into an empty store")
    audit = _audit(src)
    if isinstance(dst, postgis.PostGISStore):
        return _into_postgis(dst, _versions(src), audit)
    if isinstance(dst, gpkg.GeoPackageStore):
        return _into_gpkg(dst, _versions(src), audit)
    raise StoreError(f"cannot copy into a {type(dst).__name__}")
