"""ZoneCatalog: the zones currently served, swapped for a new version without stalling requests.

Readers take one ``Snapshot`` and use it for a whole request, so a version that lands
mid-request never mixes two data versions in one answer. Derived structures (the lookup
index, display geometry) are built once per version and cached on the snapshot.

A snapshot loads what it is asked for. A point answer needs the lookup index, the zones'
properties and their geometries: when a process saved the index of this version (with the
properties, ``geo.index_files``), those are read without building the zone table — no
pandas or geopandas import, which is most of the first answer's cost after a start
(``benchmarks/bench_coldstart.py``). The zone table (a GeoDataFrame) is loaded when first
used, and the service loads it in the background right after its first answer.

A new version is noticed by ``store.head()`` (an indexed ``max(version)``, tens of
microseconds), checked on every :meth:`ZoneCatalog.snapshot`. The new version is then
loaded — its table, and ``prepare`` (the lookup index) — in a background thread; requests
keep being answered from the old snapshot until the new one is ready and swapped in (one
assignment). Only the very first snapshot is made in the caller's thread, and it reads
nothing but the version row.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geo.index_files import default_index_dir
from geo.store import StoreBackend, VersionInfo

if TYPE_CHECKING:
    import geopandas as gpd

    from geo.lookup import ZoneIndex

log = logging.getLogger("zoning.catalog")
BUILD_SWITCH_INTERVAL_S = 0.0005
# The zones' properties, saved with the lookup index as one array of UTF-8 JSON bytes.
RECORDS_ARRAY = "zone_records"


def zone_records(zones: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    """The zone table without geometry, one ``geo.schema.zone_properties`` dict per row."""
    from geo.schema import zone_properties

    return [zone_properties(row) for row in zones.drop(columns=zones.geometry.name).to_dict("records")]


class Snapshot:
    """One data version: its zone table and what is derived from it, each loaded when first used."""

    def __init__(self, zones: gpd.GeoDataFrame | None, version: VersionInfo, index_dir: Path | None = None, *,
                 load_zones: Callable[[], gpd.GeoDataFrame] | None = None,
                 load_geometries: Callable[[], tuple[list[str], np.ndarray]] | None = None):
        """``zones``: the table, or None with ``load_zones`` (and, to read a saved index without
        the table, ``load_geometries``: the zone ids and geometries in table order).
        ``index_dir``: where lookup indexes are saved per data version; None builds in memory."""
        if zones is None and load_zones is None:
            raise ValueError("a snapshot needs its zones or a way to load them")
        self._zones = zones
        self._load_zones = load_zones
        self._load_geometries = load_geometries
        self.version = version
        self.index_dir = index_dir
        self._derived: dict[str, Any] = {}
        self._lock = threading.RLock()

    @property
    def data_version(self) -> str:
        return self.version.data_version

    @property
    def zone_count(self) -> int:
        return self.version.zone_count if self._zones is None else len(self._zones)

    @property
    def zones(self) -> gpd.GeoDataFrame:
        """The zone table (loaded on first use)."""
        if self._zones is None:
            with self._lock:
                if self._zones is None:
                    self._zones = self._load_zones()
        return self._zones

    def cached(self, key: str, build: Callable[[], Any]) -> Any:
        """``build()`` computed once for this data version."""
        value = self._derived.get(key)
        if value is not None:  # built already: no lock, so readers never wait behind another build
            return value
        with self._lock:
            if key not in self._derived:
                self._derived[key] = build()
            return self._derived[key]

    def derived(self, key: str, build: Callable[[gpd.GeoDataFrame], Any]) -> Any:
        """``build(zones)`` computed once for this data version."""
        return self.cached(key, lambda: build(self.zones))

    def records(self) -> list[dict[str, Any]]:
        """The zones' properties in table order (``zone_records``), made or read with the lookup
        index: from the saved index when there is one, so a point answer needs no zone table."""
        return self._lookup_table()[1]

    def lookup_index(self) -> ZoneIndex:
        """The lookup index of this version: loaded from ``index_dir`` if a process saved it
        there (milliseconds), else built and saved for the next process."""
        return self.cached("lookup_index", lambda: self._lookup_table()[0])

    def _lookup_table(self) -> tuple[ZoneIndex, list[dict[str, Any]]]:
        return self.cached("lookup_table", self._load_or_build_index)

    def _load_or_build_index(self) -> tuple[ZoneIndex, list[dict[str, Any]]]:
        from geo import index_files
        from geo.lookup import DEFAULT_GRID_SIZE, ZoneColumns, ZoneIndex, build_arrays

        if self.index_dir is None:
            return ZoneIndex(self.zones), zone_records(self.zones)
        directory = self.index_dir / self.data_version
        if self._zones is None and self._load_geometries is not None and directory.exists():
            ids, geoms = self._load_geometries()
            try:
                arrays = index_files.load(directory, zone_ids=ids)
                records = json.loads(arrays[RECORDS_ARRAY].tobytes())
                return ZoneIndex.saved(ZoneColumns.of_records(records, geoms), arrays, lambda: self.zones), records
            except (index_files.IndexFileError, KeyError, ValueError) as exc:
                log.warning("saved lookup index not usable without the zone table (%s); loading it", exc)
        zones = self.zones
        records = zone_records(zones)

        def build() -> dict[str, np.ndarray]:
            arrays = build_arrays(np.asarray(zones.geometry.values, dtype=object), DEFAULT_GRID_SIZE)
            text = json.dumps(records, ensure_ascii=False).encode()
            return {**arrays, RECORDS_ARRAY: np.frombuffer(text, dtype=np.uint8)}

        arrays = index_files.load_or_build(directory, zones["zone_id"].tolist(), build, grid_size=DEFAULT_GRID_SIZE)
        return ZoneIndex(zones, arrays=arrays), records


def save_lookup_index(store: StoreBackend, version: int | None = None,
                      index_dir: Path | None = None) -> Path | None:
    """Build and save the lookup index of ``version`` (default: current) where this machine's
    servers of ``store`` look for it (``default_index_dir``), unless it is saved already: done
    when a version is published, so the next start loads it instead of building it. The
    directory, or None for a store without one."""
    from geo.index_files import MANIFEST

    index_dir = index_dir if index_dir is not None else default_index_dir(store)
    if index_dir is None:
        return None
    info = store.current() if version is None else store.version(version)
    directory = index_dir / info.data_version
    if not (directory / MANIFEST).exists():  # (a server checks a saved one when it loads it)
        zones, _ = store.snapshot(info.version)
        Snapshot(zones, info, index_dir).lookup_index()
    return directory


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
        """The store's current version, nothing of it read yet but its version row."""
        info = self.store.current()

        def load_zones() -> gpd.GeoDataFrame:
            return self.store.snapshot(info.version)[0]

        def load_geometries() -> tuple[list[str], np.ndarray]:
            return self.store.zone_geometries(info.version)[:2]

        return Snapshot(None, info, self.index_dir, load_zones=load_zones, load_geometries=load_geometries)

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
                snap.zones  # noqa: B018 - loaded here, off the request path
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
            log.info("now serving %d zones, data version %s", snap.zone_count, snap.data_version)

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
