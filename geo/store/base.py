"""The store interface: a versioned zone table with history, rollback and an audit log.

In the spirit of pygeoapi's providers: one interface, several backends (``gpkg.py``, the
GeoPackage file that is the default; a PostGIS backend implements the same methods), one
shared test suite. Callers (the catalog, the importer, the admin API and the CLI) use only
what is declared here.

Semantics every backend keeps:

* A **version** is an immutable numbered state of the whole zone table (1, 2, 3 …, no
  gaps). ``data_version`` is ``v{number}-{first 8 hex of content_hash}``.
* Every write (:meth:`StoreBackend.save`, :meth:`StoreBackend.rollback`,
  :meth:`StoreBackend.append_audit`) is **one transaction**: it happens entirely or not
  at all, also when the process is killed mid-write. Writers are serialised by the
  backend's own lock (the database's), never by files beside it.
* Reads see one committed state: :meth:`StoreBackend.snapshot` returns zones and their
  version info from the same read transaction.
* Rollback never deletes history: it writes a new version whose zones are those of the
  old one.
* The audit log is append-only: there is no method to change or delete an entry, and
  the backend refuses it at the database level too.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from geo.store.changes import diff_details

if TYPE_CHECKING:
    import geopandas as gpd
    import numpy as np


class StoreError(RuntimeError):
    """The store is missing, unreadable, has no such version, or changed under a writer."""


@dataclass(frozen=True)
class VersionInfo:
    version: int
    data_version: str  # "v3-1a2b3c4d": number plus content hash, echoed by the API
    created_at: str  # UTC, ISO 8601 to the second
    author: str
    action: str  # init | build | import | edit | rollback | publish
    source: str | None
    source_sha256: str | None
    zone_count: int
    summary: str  # JSON: {"added": [...], "changed": [...], "removed": [...]}
    note: str | None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["summary"] = json.loads(self.summary) if self.summary else {}
        return d


@dataclass(frozen=True)
class AuditEvent:
    """Something a person or script did, as it goes into the audit log.

    ``actor`` is the user name (or ``cli:<login>`` / ``admin-token``), ``role`` their role
    when the request was made, ``action`` a dotted verb (``import``, ``rollback``,
    ``publish``, ``user.add`` …), ``target`` what it acted on (a layer, a version, a user
    name), ``detail`` any JSON-serialisable facts, ``client`` the remote address.
    """

    actor: str
    action: str
    target: str | None = None
    role: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    client: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One row of the audit log: the event, when it was recorded (UTC) and, when the event
    wrote a data version in the same transaction, that version's number."""

    id: int
    at: str
    actor: str
    role: str | None
    action: str
    target: str | None
    detail: dict[str, Any]
    client: str | None
    version: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class StoreBackend(abc.ABC):
    """A versioned zone table. Subclasses implement the abstract methods; ``rollback`` and
    ``diff`` are defined here on top of them."""

    #: Where the store lives, for messages (a file path or a database URL without password).
    location: str

    # -- reading ---------------------------------------------------------------------------
    @abc.abstractmethod
    def exists(self) -> bool:
        """True when the store holds at least one version."""

    @abc.abstractmethod
    def head(self) -> int:
        """The current version number (0 for an empty store). Cheap (an indexed max, no zone
        data): the catalog calls it on every request to notice new versions."""

    @abc.abstractmethod
    def versions(self) -> list[VersionInfo]:
        """Every version, oldest first."""

    @abc.abstractmethod
    def version(self, number: int) -> VersionInfo:
        """One version's info; :class:`StoreError` naming the versions there are if absent."""

    @abc.abstractmethod
    def current(self) -> VersionInfo:
        """The current (latest) version's info; :class:`StoreError` for an empty store."""

    @abc.abstractmethod
    def snapshot(self, version: int | None = None) -> tuple[gpd.GeoDataFrame, VersionInfo]:
        """The zones of ``version`` (default: current) and its info, read in one transaction."""

    @abc.abstractmethod
    def zone_geometries(self, version: int | None = None) -> tuple[list[str], np.ndarray, VersionInfo]:
        """The zone ids and shapely geometries of ``version`` (default: current), in table order,
        and its info, read in one transaction without building the zone table: what the saved
        lookup index needs (``geo.catalog``)."""

    def load(self, version: int | None = None) -> gpd.GeoDataFrame:
        """The zone table of ``version`` (default: current), validated."""
        return self.snapshot(version)[0]

    def diff(self, v1: int, v2: int) -> dict[str, Any]:
        """Zones added, removed and changed from ``v1`` to ``v2`` (``changes.diff_details``)."""
        return diff_details(self.load(v1), self.load(v2))

    # -- writing ---------------------------------------------------------------------------
    @abc.abstractmethod
    def save(self, zones: gpd.GeoDataFrame, *, action: str, author: str = "zoning",
             source: str | None = None, source_sha256: str | None = None, note: str | None = None,
             base_version: int | None = None, audit: AuditEvent | None = None,
             work: Callable[[Any, VersionInfo], None] | None = None) -> VersionInfo:
        """Validate ``zones`` (areas recomputed geodesically) and write them as the next
        version, with ``audit`` (if given) in the same transaction, and ``work(tx, info)``
        (if given) writing the work tables there too (``work.WorkTx``): whatever it raises
        undoes the version.

        ``base_version``: the version ``zones`` were derived from (0: the store must be
        empty); if another writer got in first, raise :class:`StoreError` instead of
        silently undoing its change. Invalid zones raise ``schema.ZoneValidationError`` and
        write nothing.
        """

    def rollback(self, version: int, *, author: str = "zoning", audit: AuditEvent | None = None) -> VersionInfo:
        """Serve the zones of ``version`` again, as a new version (history kept)."""
        zones = self.load(version)
        return self.save(zones, action="rollback", author=author, note=f"rollback to version {version}",
                         audit=audit)

    @abc.abstractmethod
    def work(self) -> Any:
        """The workbench's tables (users, sessions, sheets, drafts, sites) in this store's
        database: a ``work.WorkTables``."""

    def upgrade(self) -> bool:
        """Bring a store of an earlier layout up to date (one transaction); True if it did."""
        return False

    # -- audit log -------------------------------------------------------------------------
    @abc.abstractmethod
    def append_audit(self, event: AuditEvent) -> AuditEntry:
        """Record an event that writes no data version (a user change, a refused login …)."""

    @abc.abstractmethod
    def audit(self, limit: int = 100, *, before: int | None = None, actor: str | None = None,
              action: str | None = None) -> list[AuditEntry]:
        """Audit entries, newest first: at most ``limit``, with ``id < before`` (paging), of
        one ``actor`` and/or one ``action`` when given."""
