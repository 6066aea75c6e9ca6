"""Point-in-zone lookup speed on the bundled zones.

Prints, in one run:

* engine batch throughput (points/s) on 1M random points over the four districts'
  extent, next to geopandas ``sjoin(predicate="within")`` on the same points and zones,
  and next to a plain STRtree of whole zones (what the grid split buys);
* single-point latency (µs, median and p99): ``lookup_points`` alone, and the whole
  /v1/check answer (lookup, boundary distances, nearby zones, JSON-ready objects);
* HTTP: requests/s and p50/p99 latency of ``/v1/check`` (random points) and of
  ``/healthz`` on the same uvicorn server (one worker, 127.0.0.1, request log off),
  loaded by ``wrk`` (Debian) or, without it, an async httpx client;
* PostGIS ``ST_Covers`` on the same 1M points, if a server can be started (optional).

    python benchmarks/bench_lookup.py      (or python -m benchmarks.run lookup)
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.postgis_server and tests.browser

import geopandas as gpd  # noqa: E402
import numpy as np  # noqa: E402
import shapely  # noqa: E402

from api import answers  # noqa: E402
from benchmarks.timing import best_seconds  # noqa: E402
from geo import schema  # noqa: E402
from geo.catalog import Snapshot  # noqa: E402
from geo.lookup import ZoneIndex  # noqa: E402
from geo.paths import BASE_DIR, BUNDLED_ZONES  # noqa: E402
from geo.store import VersionInfo  # noqa: E402
from tests.browser import free_port  # noqa: E402

N = 1_000_000
SINGLE = 3000
HTTP_SECONDS = 5
HTTP_ROUNDS = 3
HTTP_CONNECTIONS = 8
FOUR_DISTRICTS = ("110108", "110109", "110117", "110118")  # 海淀, 门头沟, 平谷, 密云


def four_district_bounds() -> tuple[float, float, float, float]:
    districts = gpd.read_file(BASE_DIR / "districts.geojson")
    return tuple(districts[districts["adcode"].isin(FOUR_DISTRICTS)].total_bounds)



def whole_zone_strtree(geoms):
    """The unsplit baseline: an STRtree of whole zones, exact test on every bbox candidate."""
    tree = shapely.STRtree(geoms)

    def lookup(lon, lat):
        pi, zi = tree.query(shapely.points(lon, lat))
        keep = shapely.intersects_xy(geoms[zi], lon[pi], lat[pi])
        return pi[keep], zi[keep]
    return lookup


def percentiles_us(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e6, ordered[int(0.99 * (len(ordered) - 1))] * 1e6


def engine_figures(zones, lon, lat) -> list[tuple[str, str]]:
    rows = []
    start = time.perf_counter()
    index = ZoneIndex.from_frame(zones)
    rows.append(("index build (grid 1024², once per data version)", f"{time.perf_counter() - start:.2f} s"))
    hits = index.lookup_points(lon, lat)
    ours = N / best_seconds(lambda: index.lookup_points(lon, lat))
    rows.append((f"engine lookup_points, {N:,} points", f"{ours:,.0f} points/s"))

    geoms = np.asarray(zones.geometry.values, dtype=object).copy()
    shapely.prepare(geoms)
    plain = whole_zone_strtree(geoms)
    pi, _ = plain(lon, lat)
    strtree = N / best_seconds(lambda: plain(lon, lat))
    rows.append(("STRtree of whole zones (no split)", f"{strtree:,.0f} points/s  (engine {ours / strtree:.1f}x)"))

    frame = zones[["zone_id", "geometry"]]
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=zones.crs)
    joined = gpd.sjoin(points, frame, predicate="within")
    sjoin = N / best_seconds(lambda: gpd.sjoin(points, frame, predicate="within"))
    with_points = N / best_seconds(lambda: gpd.sjoin(
        gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=zones.crs), frame, predicate="within"))
    rows.append(("geopandas sjoin(predicate='within')", f"{sjoin:,.0f} points/s  (engine {ours / sjoin:.1f}x; "
                 f"{with_points:,.0f} p/s counting point creation, {ours / with_points:.1f}x)"))
    rows.append(("pairs found: engine / STRtree / sjoin", f"{hits.zone.size:,} / {pi.size:,} / {len(joined):,}"))

    rng = np.random.default_rng(7)
    i = rng.integers(0, N, SINGLE)
    one = []
    for k in i:
        x, y = lon[k:k + 1], lat[k:k + 1]
        start = time.perf_counter()
        index.lookup_points(x, y)
        one.append(time.perf_counter() - start)
    p50, p99 = percentiles_us(one)
    rows.append(("single point, lookup_points", f"median {p50:,.0f} µs, p99 {p99:,.0f} µs"))

    snap = Snapshot(zones, VersionInfo(1, "bench", "", "", "", None, None, len(zones), "{}", None))
    snap.derived("lookup_index", lambda _: index)
    full = []
    for k in i:
        start = time.perf_counter()
        answers.check_answer(snap, lon[k], lat[k], crs="wgs84", as_of="2024-01-01", layers=None, near_m=1000,
                             lang="zh")
        full.append(time.perf_counter() - start)
    p50, p99 = percentiles_us(full)
    rows.append(("single point, whole /v1/check answer (near=1000)", f"median {p50:,.0f} µs, p99 {p99:,.0f} µs"))
    return rows


# ------------------------------------------------------------------ HTTP


WRK_SCRIPT = """
math.randomseed(42)
request = function()
  local lon = {minx} + math.random() * {dx}
  local lat = {miny} + math.random() * {dy}
  return wrk.format("GET", string.format("/v1/check?lon=%.6f&lat=%.6f", lon, lat))
end
"""


def start_server(workdir: Path, launcher: str | None = None) -> tuple[subprocess.Popen, str]:
    """A uvicorn server on the bundled zones (store in ``workdir``), its index built;
    ``launcher``: Python code run instead of ``uvicorn`` (gets the port as argv[1])."""
    port = free_port()
    env = {**os.environ, "ZONING_STORE": str(workdir / "zones.gpkg"), "ZONING_SEED": str(BUNDLED_ZONES),
           "ZONING_LOG_LEVEL": "warning"}
    command = ["-c", launcher, str(port)] if launcher else [
        "-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", "--no-access-log"]
    server = subprocess.Popen([sys.executable, *command], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError(f"uvicorn did not start: {server.stderr.read().decode(errors='replace')[-2000:]}") \
                    from None
            time.sleep(0.2)
    with urllib.request.urlopen(base + "/v1/check?lon=116.1&lat=40.0", timeout=30):  # builds the index
        pass
    return server, base


def _wrk_number(text: str, unit: str) -> float:
    value = float(text.rstrip("usmk"))
    return value * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]


def run_wrk(url: str, script: Path | None, connections: int = HTTP_CONNECTIONS,
            seconds: int = HTTP_SECONDS, timeout: int = 2) -> tuple[float, float, float]:
    """requests/s, p50 and p99 latency (s) from wrk --latency; a request slower than
    ``timeout`` seconds counts as failed."""
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", f"{timeout}s"]
    if script:
        args += ["-s", str(script)]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    rate = p50 = p99 = float("nan")
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            rate = float(parts[1])
        elif len(parts) == 2 and parts[0] in ("50%", "99%"):
            unit = "us" if parts[1].endswith("us") else "ms" if parts[1].endswith("ms") else "s"
            value = _wrk_number(parts[1][:-len(unit)], unit)
            p50, p99 = (value, p99) if parts[0] == "50%" else (p50, value)
        elif "Non-2xx" in line or "Socket errors" in line:
            raise RuntimeError(f"wrk saw failed requests: {line.strip()}")
    return rate, p50, p99


def run_httpx(urls) -> tuple[float, float, float]:
    """The same measurement with an async httpx client (when wrk is not installed)."""
    import httpx

    latencies: list[float] = []

    async def worker(client, deadline):
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            answer = await client.get(next(urls))
            answer.raise_for_status()
            latencies.append(time.perf_counter() - start)

    async def load():
        async with httpx.AsyncClient() as client:
            deadline = time.perf_counter() + HTTP_SECONDS
            await asyncio.gather(*(worker(client, deadline) for _ in range(HTTP_CONNECTIONS)))

    start = time.perf_counter()
    asyncio.run(load())
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    return len(ordered) / elapsed, statistics.median(ordered), ordered[int(0.99 * (len(ordered) - 1))]


def http_figures(bounds) -> list[tuple[str, str]]:
    minx, miny, maxx, maxy = bounds
    rows = []
    with tempfile.TemporaryDirectory(prefix="zoning-bench-") as tmp:
        workdir = Path(tmp)
        server, base = start_server(workdir)
        try:
            if shutil.which("wrk"):
                tool = "wrk"
                script = workdir / "check.lua"
                script.write_text(WRK_SCRIPT.format(minx=minx, miny=miny, dx=maxx - minx, dy=maxy - miny))

                def health():
                    return run_wrk(base + "/healthz", None)

                def check():
                    return run_wrk(base + "/v1/check", script)
            else:
                tool = "httpx (wrk not installed)"
                rng = np.random.default_rng(42)

                def check_urls():
                    while True:
                        yield f"{base}/v1/check?lon={rng.uniform(minx, maxx):.6f}&lat={rng.uniform(miny, maxy):.6f}"

                def health():
                    return run_httpx(iter(lambda: base + "/healthz", None))

                def check():
                    return run_httpx(check_urls())
            # Alternate the two, so that a burst of load elsewhere on the machine hits both.
            runs = [(health(), check()) for _ in range(HTTP_ROUNDS)]
        finally:
            server.terminate()
            server.wait(timeout=30)
    label = f"{tool}, {HTTP_CONNECTIONS} connections, {HTTP_ROUNDS} x {HTTP_SECONDS} s each, 1 uvicorn worker"
    for k, name in enumerate(("GET /healthz", "GET /v1/check (random points)")):
        rate, p50, p99 = sorted((r[k] for r in runs), key=lambda r: r[0])[HTTP_ROUNDS // 2]  # median round
        rows.append((f"{name} [{label}]", f"{rate:,.0f} req/s, p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms"))
    ratios = sorted(c[0] / h[0] for h, c in runs)
    rows.append(("/v1/check rate / /healthz rate (target ≥ 70 %)",
                 f"{100 * ratios[HTTP_ROUNDS // 2]:.0f} % (rounds: {', '.join(f'{100 * r:.0f} %' for r in ratios)})"))
    return rows


def postgis_figures(zones, lon, lat) -> list[tuple[str, str]]:
    from tests.postgis_server import COVERS_SQL, PostGISUnavailable, load_points, load_zones, postgis_server

    try:
        import psycopg

        with postgis_server() as server, psycopg.connect(server.conninfo, autocommit=True) as conn:
            load_zones(conn, zones.geometry.values, zones["zone_id"].tolist())
            start = time.perf_counter()
            load_points(conn, lon, lat)
            loaded = time.perf_counter() - start
            start = time.perf_counter()
            pairs = len(conn.execute(COVERS_SQL).fetchall())
            query = time.perf_counter() - start
    except PostGISUnavailable as exc:
        return [("PostGIS ST_Covers", f"skipped: {exc}")]
    return [(f"PostGIS ST_Covers join, {N:,} points (GiST, 1 backend)",
             f"{N / query:,.0f} points/s ({pairs:,} pairs; loading + indexing took {loaded:.0f} s)")]


def main() -> None:
    zones = schema.zones_from_geojson(BUNDLED_ZONES.read_text(encoding="utf-8"))
    bounds = four_district_bounds()
    rng = np.random.default_rng(0)
    lon, lat = rng.uniform(bounds[0], bounds[2], N), rng.uniform(bounds[1], bounds[3], N)
    print(f"{len(zones)} zones, {shapely.get_num_coordinates(zones.geometry.values).sum():,} vertices; points uniform "
          f"over the four districts' extent {tuple(round(float(b), 3) for b in bounds)}")
    rows = engine_figures(zones, lon, lat) + http_figures(bounds) + postgis_figures(zones, lon, lat)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
