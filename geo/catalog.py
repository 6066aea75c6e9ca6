"""ZoneCatalog: the zones currently served, swapped for a new version without stalling requests.

Readers take one ``Snapshot`` and use it for a whole request, so a version that lands
mid-request never mixes two data versions in one answer. Derived structures (the lookup
index, display geometry) are built once per version and cached on the snapshot.

A new version is noticed by ``store.head()`` (an indexed ``max(version)``, tens of
microseconds), checked on every :meth:`ZoneCatalog.snapshot`. The new version is then
loaded, and ``prepare`` (the lookup index) run on it, in a background thread; requests keep
being answered from the old snapshot until the new one is ready and swapped in (one
assignment). Only the very first snapshot is loaded in the caller's thread.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np

from geo.index_files import default_index_dir
from geo.store import StoreBackend, VersionInfo

if TYPE_CHECKING:
    from geo.lookup import ZoneIndex

log = logging.getLogger("zoning.catalog")
BUILD_SWITCH_INTERVAL_S = 0.0005


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
        value = self._derived.get(key)
        if value is not None:  # built already: no lock, so readers never wait behind another build
            return value
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
    """The snapshot being served. ``prepare(snapshot)`` runs on every new version before it
    is served (e.g. building the lookup index), off the request path."""

    def __init__(self, store: StoreBackend, prepare: Callable[[Snapshot], Any] | None = None,
                 index_dir: Path | None = None):
        """``index_dir``: where lookup indexes are saved per data version (default
        ``geo.index_files.default_index_dir(store)``)."""
        self.store = store
        self.index_dir = index_dir if index_dir is not None else default_index_dir(store)
        self.prepare = prepare
        self._snapshot: Snapshot | None = None
        self._first_load = threading.Lock()
        self._loader: threading.Thread | None = None
        self._loader_lock = threading.Lock()
        self._swapped = threading.Condition()

    def _load(self) -> Snapshot:
        zones, info = self.store.snapshot()
        return Snapshot(zones, info, self.index_dir)

    def snapshot(self) -> Snapshot:
        """The snapshot being served; starts loading a newer version in the background."""
        snap = self._snapshot
        if snap is None:
            with self._first_load:
                if self._snapshot is None:
                    self._snapshot = self._load()
                return self._snapshot
        if self.store.head() != snap.version.version:
            self._start_loader()
        return snap

    def _start_loader(self) -> None:
        with self._loader_lock:
            if self._loader is None or not self._loader.is_alive():
                self._loader = threading.Thread(target=self._load_newer, name="catalog-reload", daemon=True)
                self._loader.start()

    def _load_newer(self) -> None:
        """Load and prepare versions until the one served is the store's head."""
        while (served := self._snapshot) is not None and self.store.head() != served.version.version:
            # While this CPU-bound thread runs, hand the GIL back to request threads every
            # BUILD_SWITCH_INTERVAL_S instead of Python's 5 ms, so they are not queued behind it.
            interval = sys.getswitchinterval()
            sys.setswitchinterval(min(interval, BUILD_SWITCH_INTERVAL_S))
            try:
                snap = self._load()
                if self.prepare is not None:
                    self.prepare(snap)
            except Exception:  # keep serving the old version; the next request retries
                log.exception("loading data version %d failed; still serving %s",
                              self.store.head(), served.data_version)
                return
            finally:
                sys.setswitchinterval(interval)
            with self._swapped:
                self._snapshot = snap
                self._swapped.notify_all()
            log.info("now serving %d zones, data version %s", len(snap.zones), snap.data_version)

    def refresh(self, timeout: float = 60.0) -> Snapshot:
        """The snapshot of the store's current version, waiting (up to ``timeout`` s) while it
        is loaded and prepared: for a caller that has just written a version itself. If the
        load fails, the snapshot still served."""
        head = self.store.head()
        self.snapshot()  # starts the loader if the served version is behind
        loader, deadline = self._loader, time.monotonic() + timeout
        with self._swapped:
            while (self._snapshot.version.version < head and loader is not None and loader.is_alive()
                   and time.monotonic() < deadline):
                self._swapped.wait(0.1)
        return self._snapshot
