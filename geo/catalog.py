"""ZoneCatalog: the zones currently served, reloaded when the store gets a new version.

Readers take one ``Snapshot`` and use it for a whole request, so an import that lands
mid-request never mixes two data versions in one answer. Derived structures (the lookup
index, display geometry) are built once per version and cached on the snapshot.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd

from geo.store import VersionInfo, ZoneStore


@dataclass
class Snapshot:
    zones: gpd.GeoDataFrame
    version: VersionInfo
    _derived: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def data_version(self) -> str:
        return self.version.data_version

    def derived(self, key: str, build: Callable[[gpd.GeoDataFrame], Any]) -> Any:
        """``build(zones)`` computed once for this data version."""
        value = self._derived.get(key)
        if value is not None:  # built already: no lock, so readers never wait behind another build
            return value
        with self._lock:
            if key not in self._derived:
                self._derived[key] = build(self.zones)
            return self._derived[key]


class ZoneCatalog:
    def __init__(self, store: ZoneStore):
        self.store = store
        self._snapshot: Snapshot | None = None
        self._mtime: float | None = None
        self._lock = threading.Lock()

    def snapshot(self) -> Snapshot:
        """The current snapshot; reloads if the store file changed since the last load."""
        mtime = self.store.path.stat().st_mtime_ns
        if self._snapshot is None or mtime != self._mtime:
            with self._lock:
                if self._snapshot is None or mtime != self._mtime:
                    self._snapshot = Snapshot(self.store.load(), self.store.current())
                    self._mtime = mtime
        return self._snapshot

    def reload(self) -> Snapshot:
        with self._lock:
            self._snapshot = None
        return self.snapshot()
