"""Copy a zone store into another backend, every version, the audit log and the work tables:
``zoning store copy``.

A GeoPackage store migrates into PostGIS (and back) with its history intact: each version
keeps its number, ``data_version``, time, author, action, source and summary, and the audit
entries keep their time, actor and version. The workbench's tables (users with their
password and token hashes, sessions, sheets with their bytes and page renders, drafts with
their numbers, reviewers and versions: ``work.TABLES``) are copied row for row. The whole
copy is one transaction in the destination, which must hold no version yet: a copy that
fails half-way leaves it empty. Each version's zones are checked against its
``data_version`` hash on the way, so a copy that would not reproduce the source exactly is
refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import geopandas as gpd

from geo.store.base import AuditEntry, AuditEvent, StoreBackend, StoreError, VersionInfo
from geo.store.changes import content_hash
from geo.store.gpkg import encode_rows
from geo.store.sql import SQLStore
from geo.store.work import NUMBERED, TABLES


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


def _work_rows(src: SQLStore) -> dict[str, list[dict[str, Any]]]:
    """Every row of every work table of ``src``, in key order (empty when it has none)."""
    with src.work().reading() as tx:
        if tx is None:
            return {}
        return {table: tx.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall() for table in TABLES}


def copy_store(src: StoreBackend, dst: StoreBackend) -> int:
    """Copy every version, audit entry and work-table row of ``src`` into the empty ``dst``;
    the number of versions."""
    if not isinstance(src, SQLStore) or not isinstance(dst, SQLStore):
        raise StoreError(f"cannot copy from a {type(src).__name__} into a {type(dst).__name__}")
    if not src.exists():
        raise StoreError(f"{src.location} holds no version to copy")
    if dst.exists():
        raise StoreError(f"{dst.location} already holds versions; copy only into an empty store")
    audit, work = _audit(src), _work_rows(src)
    dst.upgrade()
    n, last = 0, None
    with dst._writing() as db:
        if dst._head_in(db):
            raise StoreError(f"{dst.location} already holds versions; copy only into an empty store")
        for zones, info in _versions(src):
            dst._write_rows(db, info.version, encode_rows(zones))
            dst._insert_version(db, info)
            dst._after_save(db, info, zones)
            n, last = n + 1, info
        for e in audit:
            dst._insert_audit(db, AuditEvent(actor=e.actor, action=e.action, target=e.target, role=e.role,
                                              detail=e.detail, client=e.client), e.version, at=e.at)
        tables = dst.work()
        tx = tables.transaction(db)
        for table, rows in work.items():
            for row in rows:
                tx.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                           [bytes(v) if isinstance(v, memoryview) else v for v in row.values()])
            if table in NUMBERED:
                tables.renumber(tx, table)
    if last is not None:
        dst._saved(last)
    return n
