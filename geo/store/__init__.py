"""The zone store: a versioned zone table with history, rollback and an audit log.

``base.StoreBackend`` is the interface; ``gpkg.GeoPackageStore`` the default backend (one
GeoPackage file, every write one SQLite transaction) and ``postgis.PostGISStore`` the
database one, both built on ``sql.SQLStore``. The workbench's tables live in the same
database behind ``work.WorkTables`` (``store.work()``). Callers open a store with
:func:`open_store` and use only the interface.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from geo import schema
from geo.store.base import AuditEntry, AuditEvent, StoreBackend, StoreError, VersionInfo
from geo.store.changes import content_hash, diff_details, diff_zones, with_computed_area
from geo.store.gpkg import GeoPackageStore

# The name callers and tests have always used for the GeoPackage store.
ZoneStore = GeoPackageStore

__all__ = [
    "AuditEntry", "AuditEvent", "GeoPackageStore", "StoreBackend", "StoreError", "VersionInfo", "ZoneStore",
    "content_hash", "diff_details", "diff_zones", "open_store", "store_at", "with_computed_area",
]


def store_at(location: str | os.PathLike[str]) -> StoreBackend:
    """The backend for ``location``: a ``postgresql://`` URL is a PostGIS database
    (``postgis.PostGISStore``), anything else a GeoPackage path."""
    from geo.store.postgis import PostGISStore, is_postgis_location

    if is_postgis_location(location):
        return PostGISStore(str(location))
    return GeoPackageStore(location)


def open_store(location: str | os.PathLike[str], seed: str | os.PathLike[str]) -> StoreBackend:
    """The store at ``location``, migrated from the earlier layout if need be, and created
    from the bundled GeoJSON ``seed`` on first use (once, also when two processes start
    together: the second finds version 1 written and keeps it)."""
    store = store_at(location)
    store.upgrade()
    if store.exists():
        return store
    seed = Path(seed)
    if not seed.exists():
        raise StoreError(f"no zone store at {location} and no bundled zones at {seed} to create it from; "
                         "run `zoning build` first")
    zones = schema.zones_from_geojson(seed.read_text(encoding="utf-8"))
    try:
        store.save(zones, action="init", source=seed.name, base_version=0,
                   source_sha256=hashlib.sha256(seed.read_bytes()).hexdigest())
    except StoreError:
        if not store.exists():
            raise
    return store
