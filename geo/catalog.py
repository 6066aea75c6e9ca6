"""ZoneCatalog: the zones currently served, reloaded when the store gets a new version.

Readers take one ``Snapshot`` and use it for a whole request, so an import that lands
mid-request never mixes two data versions in one answer. Derived structures (the lookup
index, display geometry) are built once per version and cached on the snapshot.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np

from geo.index_files import default_index_dir
from geo.store import VersionInfo, ZoneStore

if TYPE_CHECKING:
    from geo.lookup import ZoneIndex


@dataclass
class Snapshot:
    zones: gpd.GeoDataFrame
    version: VersionInfo
    index_dir: Path | None = None  # saved lookup indexes (``geo.index_files``); None: build in memory
    _derived: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def data_version(self) -> str:
        return self.version.data_version

    def derived(self, key: str, build: Callable[[gpd.GeoDataFrame], Any]) -> Any:
        """``build(zones)`` computed once for this data version."""
        with self._lock:
            if key not in self._derived:
                self._derived[key] = build(self.zones)
            return self._derived[key]

    def lookup_index(self) -> ZoneIndex:
        """The lookup index of this version: loaded from ``index_dir`` if a process saved it
        there (milliseconds), else built and saved for the next process."""
        return self.derived("lookup_index", self._load_or_build_index)

    def _load_or_build_index(self, zones: gpd.GeoDataFrame) -> ZoneIndex:
        from geo import index_files
        from geo.lookup import DEFAULT_GRID_SIZE, ZoneIndex, build_arrays

        if self.index_dir is None:
            return ZoneIndex(zones)
        zones = zones.reset_index(drop=True)
        arrays = index_files.load_or_build(
            self.index_dir / self.data_version, zones["zone_id"].tolist(),
            lambda: build_arrays(np.asarray(zones.geometry.values, dtype=object), DEFAULT_GRID_SIZE),
            grid_size=DEFAULT_GRID_SIZE)
        return ZoneIndex(zones, arrays=arrays)


class ZoneCatalog:
    def __init__(self, store: ZoneStore, index_dir: Path | None = None):
        """``index_dir``: where lookup indexes are saved per data version (default
        ``geo.index_files.default_index_dir(store)``)."""
        self.store = store
        self.index_dir = index_dir if index_dir is not None else default_index_dir(store)
        self._snapshot: Snapshot | None = None
        self._mtime: float | None = None
        self._lock = threading.Lock()

    def snapshot(self) -> Snapshot:
        """The current snapshot; reloads if the store file changed since the last load."""
        mtime = self.store.path.stat().st_mtime_ns
        if self._snapshot is None or mtime != self._mtime:
            with self._lock:
                if self._snapshot is None or mtime != self._mtime:
                    self._snapshot = Snapshot(self.store.load(), self.store.current(), self.index_dir)
                    self._mtime = mtime
        return self._snapshot

    def reload(self) -> Snapshot:
        with self._lock:
            self._snapshot = None
        return self.snapshot()
