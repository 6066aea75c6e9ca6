"""Load on ``zoning serve --workers N`` over one PostGIS store, and a version published mid-run.

Prints, in one run (a throwaway PostGIS server, the bundled zones):

* ``/v1/check`` on random points over the four districts, wrk with 32 connections, for 1, 2
  and 4 uvicorn workers: requests/s, p50, p99, and the ratio to 1 worker;
* the same load with a new version published (written to the store by another process)
  two seconds into the run: errors (must be 0), p99 of that run, and how long after the
  commit every worker served the new version.

The same figures for the GeoPackage store with 1 worker are the baseline. Needs Debian's
``wrk`` and ``postgresql-15-postgis-3``.

    python benchmarks/bench_replicas.py      (or python -m benchmarks.run replicas)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_lookup import WRK_SCRIPT, _wrk_number, four_district_bounds  # noqa: E402
from geo.paths import BUNDLED_ZONES  # noqa: E402
from geo.store import open_store, store_at  # noqa: E402
from tests.browser import free_port  # noqa: E402
from tests.postgis_server import postgis_server  # noqa: E402

CONNECTIONS = 32
SECONDS = 8
WORKERS = (1, 2, 4)


def serve(store: str, workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "ZONING_LOG_LEVEL": "warning"}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--store", store,
                             "--workers", str(workers)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    ready = 0
    while ready < 10 * workers:  # enough answers that every worker has loaded its index
        try:
            with urllib.request.urlopen(f"{base}/v1/check?lon=116.1&lat=40.0", timeout=30):
                ready += 1
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("zoning serve did not start") from None
            time.sleep(0.1)
    return proc, base


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, 15)
    proc.wait(timeout=60)


def wrk(url: str, script: Path) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True, timeout=SECONDS + 60).stdout
    figures = {"errors": 0.0}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            figures["rate"] = float(parts[1])
        elif len(parts) == 2 and parts[0] in ("50%", "99%"):
            unit = "us" if parts[1].endswith("us") else "ms" if parts[1].endswith("ms") else "s"
            figures[parts[0]] = _wrk_number(parts[1][:-len(unit)], unit)
        elif "Non-2xx" in line:
            figures["errors"] += float(parts[-1])
        elif "Socket errors" in line:
            figures["errors"] += sum(float(p.rstrip(",")) for p in parts[3::2])
    return figures


def publish_after(store: str, delay: float, base: str, workers: int, result: dict) -> None:
    """Write a new version ``delay`` s from now (another process's write), then time until
    ``workers`` x 4 consecutive /healthz answers all name it."""
    time.sleep(delay)
    s = store_at(store)
    zones = s.load()
    zones.loc[0, "notes"] = f"bench publish {time.time()}"
    info = s.save(zones, action="edit", author="bench")
    committed = time.monotonic()
    in_a_row = 0
    while in_a_row < 4 * workers and time.monotonic() - committed < 60:
        with urllib.request.urlopen(f"{base}/healthz", timeout=30) as answer:
            in_a_row = in_a_row + 1 if json.load(answer)["data_version"] == info.data_version else 0
    result["switch_s"] = time.monotonic() - committed


def row(label: str, f: dict[str, float], base_rate: float) -> str:
    return (f"  {label:44s} {f['rate']:8.0f} req/s ({f['rate'] / base_rate:4.2f}x)  p50 {f['50%'] * 1e3:6.1f} ms"
            f"  p99 {f['99%'] * 1e3:7.1f} ms  errors {f['errors']:.0f}")


def main() -> None:
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    minx, miny, maxx, maxy = four_district_bounds()
    with tempfile.TemporaryDirectory(prefix="zoning-replicas-") as tmp, postgis_server() as server:
        script = Path(tmp) / "check.lua"
        script.write_text(WRK_SCRIPT.format(minx=minx, miny=miny, dx=maxx - minx, dy=maxy - miny))
        gpkg = str(Path(tmp) / "zones.gpkg")
        pg = f"postgresql://postgres@{server.host}:{server.port}/postgres"
        for location in (gpkg, pg):
            open_store(location, BUNDLED_ZONES)
        print(f"GET /v1/check, random points, wrk {CONNECTIONS} connections x {SECONDS} s "
              f"(machine shared: load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        proc, base = serve(gpkg, 1)
        try:
            baseline = wrk(f"{base}/v1/check", script)
        finally:
            stop(proc)
        print(row("GeoPackage store, 1 worker (baseline)", baseline, baseline["rate"]))
        for workers in WORKERS:
            proc, base = serve(pg, workers)
            try:
                steady = wrk(f"{base}/v1/check", script)
                switch: dict = {}
                publisher = threading.Thread(target=publish_after, args=(pg, 2.0, base, workers, switch))
                publisher.start()
                during = wrk(f"{base}/v1/check", script)
                publisher.join()
            finally:
                stop(proc)
            print(row(f"PostGIS store, {workers} worker(s)", steady, baseline["rate"]))
            print(row(f"PostGIS store, {workers} worker(s), publish at 2 s", during, baseline["rate"])
                  + f"  all workers on the new version {switch.get('switch_s', float('nan')):.2f} s after commit")


if __name__ == "__main__":
    main()
