"""The zone store: what a version costs on disk and in time, and what a version switch
costs the requests being served.

Prints, in one run, on the bundled zones:

* bytes per version over 200 versions that each change one zone (renamed, or moved by
  10 m), file checkpointed; next to the earlier snapshot-per-version layout (one full
  GDAL-written copy of the table per version, 10 versions written the way it wrote them);
* write latency per version (``save``: validation, geodesic areas, hash, one transaction),
  median and p99;
* ``/v1/check`` at random points on one uvicorn worker, loaded by ``wrk`` (8 connections):
  p50/p99 and req/s with no writes, and while a new version is written and switched to
  every second (the catalog loads it and builds its index in the background); baseline:
  the same switches on a server whose catalog reloads in the request that notices (as the
  earlier catalog did). The rounds alternate so load elsewhere on the machine hits all.

    python benchmarks/bench_store.py      (or python -m benchmarks.run store)
"""

from __future__ import annotations

import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import shapely  # noqa: E402
import shapely.affinity  # noqa: E402

from benchmarks.bench_lookup import HTTP_CONNECTIONS, WRK_SCRIPT, four_district_bounds, run_wrk, start_server  # noqa: E402
from geo import schema  # noqa: E402
from geo.paths import BUNDLED_ZONES  # noqa: E402
from geo.store import ZoneStore  # noqa: E402
from tests.test_store_layout import write_old_layout  # noqa: E402

VERSIONS = 200
OLD_LAYOUT_VERSIONS = 10
SWITCH_EVERY_S = 1.0
HTTP_SECONDS = 10
HTTP_ROUNDS = 2


def checkpointed_size(path: Path) -> int:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def edited(zones, i: int):
    """The zones with zone ``i mod n`` renamed (even i) or moved by ~10 m (odd i)."""
    out = zones.copy()
    row = i % len(out)
    if i % 2:
        out.loc[row, "geometry"] = shapely.affinity.translate(out.geometry[row], xoff=1e-4)
    else:
        out.loc[row, "name_en"] = f"{out.loc[row, 'name_en']} (revision {i})"
    return out


def store_figures(zones, workdir: Path) -> list[tuple[str, str]]:
    store = ZoneStore(workdir / "zones.gpkg")
    store.save(zones, action="init")
    first = checkpointed_size(store.path)
    latencies = []
    current = zones
    for i in range(VERSIONS):
        current = edited(current, i)
        start = time.perf_counter()
        store.save(current, action="edit")
        latencies.append(time.perf_counter() - start)
    per_version = (checkpointed_size(store.path) - first) / VERSIONS

    old = workdir / "old.gpkg"
    versions = [zones] + [edited(zones, i) for i in range(OLD_LAYOUT_VERSIONS - 1)]
    write_old_layout(old, versions[:1])
    old_first = old.stat().st_size
    old.unlink()
    write_old_layout(old, versions)
    old_per_version = (old.stat().st_size - old_first) / (OLD_LAYOUT_VERSIONS - 1)
    ordered = sorted(latencies)
    return [
        ("store with version 1", f"{first / 1024:,.0f} KiB"),
        (f"bytes per version, {VERSIONS} versions changing one zone each",
         f"{per_version / 1024:,.1f} KiB per version"),
        (f"earlier snapshot layout, same edits ({OLD_LAYOUT_VERSIONS} versions)",
         f"{old_per_version / 1024:,.0f} KiB per version — temporal table {old_per_version / per_version:,.0f}x smaller"),
        ("write latency per version (save: validate, areas, hash, one transaction)",
         f"median {statistics.median(ordered) * 1e3:.0f} ms, p99 {ordered[int(0.99 * (len(ordered) - 1))] * 1e3:.0f} ms"),
    ]


# The earlier catalog's behaviour, as a baseline in the same run: the request that notices a
# new version loads it and builds the lookup index itself, and every other request waits.
SYNCHRONOUS_RELOAD = """
import sys, uvicorn
from geo import catalog

def snapshot(self):
    snap = self._snapshot
    if snap is None or self.store.head() != snap.version.version:
        with self._first_load:
            snap = self._snapshot
            if snap is None or self.store.head() != snap.version.version:
                snap = self._load()
                self.prepare(snap)
                self._snapshot = snap
    return snap

catalog.ZoneCatalog.snapshot = snapshot
uvicorn.run("api.app:create_app", factory=True, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False)
"""


def http_figures(zones, workdir: Path) -> list[tuple[str, str]]:
    minx, miny, maxx, maxy = four_district_bounds()
    script = workdir / "check.lua"
    script.write_text(WRK_SCRIPT.format(minx=minx, miny=miny, dx=maxx - minx, dy=maxy - miny))
    servers = {}
    try:
        for name, launcher in (("background", None), ("synchronous", SYNCHRONOUS_RELOAD)):
            (workdir / name).mkdir()
            servers[name] = (*start_server(workdir / name, launcher), ZoneStore(workdir / name / "zones.gpkg"))

        def measure(name: str, switching: bool) -> tuple[float, float, float]:
            _, base, store = servers[name]
            stop = threading.Event()

            def writer():
                while not stop.wait(SWITCH_EVERY_S):
                    store.save(edited(zones, store.head()), action="edit", author="bench")

            thread = threading.Thread(target=writer)
            if switching:
                thread.start()
            try:
                return run_wrk(base + "/v1/check", script, seconds=HTTP_SECONDS, timeout_s=60)
            finally:
                stop.set()
                if switching:
                    thread.join()

        # Alternate, so that load elsewhere on the machine hits every kind of round.
        kinds = (("background", False), ("background", True), ("synchronous", True))
        runs = [[measure(*kind) for kind in kinds] for _ in range(HTTP_ROUNDS)]
        written = sum(store.head() - 1 for _, _, store in servers.values())
    finally:
        for server, _, _ in servers.values():
            server.terminate()
            server.wait(timeout=30)
    label = f"wrk, {HTTP_CONNECTIONS} connections, {HTTP_ROUNDS} x {HTTP_SECONDS} s, 1 uvicorn worker"
    names = ("no writes", f"a new version every {SWITCH_EVERY_S:.0f} s",
             f"a new version every {SWITCH_EVERY_S:.0f} s, baseline: reload in the request path")
    rows = []
    for k, name in enumerate(names):
        rate, p50, p99 = sorted((r[k] for r in runs), key=lambda r: r[2])[HTTP_ROUNDS // 2]
        rows.append((f"GET /v1/check, {name}", f"{rate:,.0f} req/s, p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms"))

    def ratio(a: int, b: int) -> str:
        values = sorted(r[a][2] / r[b][2] for r in runs)
        return f"{values[HTTP_ROUNDS // 2]:.2f} (rounds: {', '.join(f'{v:.2f}' for v in values)})"

    rows.append(("p99 during version switches / p99 without writes", ratio(1, 0)))
    rows.append(("p99 of the baseline during switches / p99 of ours during switches", ratio(2, 1)))
    rows.append(("versions written during the runs", f"{written} [{label}]"))
    return rows


def main() -> None:
    zones = schema.zones_from_geojson(BUNDLED_ZONES.read_text(encoding="utf-8"))
    print(f"{len(zones)} zones, {shapely.get_num_coordinates(zones.geometry.values).sum():,} vertices")
    rows = []
    with tempfile.TemporaryDirectory(prefix="zoning-bench-store-") as tmp:
        rows += store_figures(zones, Path(tmp))
    if shutil.which("wrk"):
        with tempfile.TemporaryDirectory(prefix="zoning-bench-store-") as tmp:
            rows += http_figures(zones, Path(tmp))
    else:
        rows.append(("GET /v1/check during version switches", "skipped: wrk is not installed"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
