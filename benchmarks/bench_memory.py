"""Server memory after a burst of maximal requests: is it given back?

Starts ``zoning serve`` on a throwaway store, warms it up (one point, one small site, one
small batch), reads its resident set size (RSS, /proc/PID/status), then sends a burst of
the largest requests an unauthenticated client may send, ``CONCURRENCY`` at a time:

* ``/v1/check/site`` with a valid polygon of just under the vertex limit (100 000 vertices);
* ``/v1/check/batch`` with 100 000 GeoJSON points (the batch limit);
* ``/v1/check/site`` with a body of ``ZONING_MAX_BODY_BYTES`` + 1 (refused with 413 before
  any parsing).

It prints the peak RSS during the burst and the RSS a few seconds after, as a ratio of the
warmed-up baseline measured in the same run. The service's target: back within 20 %.

    python -m benchmarks.run memory
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
CONCURRENCY = 8
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
SITE_VERTICES = 99_000
BATCH_POINTS = 100_000
SETTLE_S = 3.0
EXTRA_ENV = dict(e.split("=", 1) for e in os.environ.get("BENCH_SERVER_ENV", "").split() if "=" in e)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def site_body(vertices: int) -> bytes:
    """A valid circle around 门头沟 with ``vertices`` vertices (about 3 km radius)."""
    ring = [[116.10 + 0.035 * math.cos(2 * math.pi * i / vertices), 39.95 + 0.027 * math.sin(2 * math.pi * i / vertices)]
            for i in range(vertices)]
    ring.append(ring[0])
    return json.dumps({"type": "Polygon", "coordinates": [ring]}).encode()


def batch_body(points: int) -> bytes:
    features = [{"type": "Feature", "id": i, "properties": {},
                 "geometry": {"type": "Point", "coordinates": [115.5 + (i % 997) * 0.0015, 39.5 + (i % 991) * 0.0012]}}
                for i in range(points)]
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="zoning-bench-memory-") as tmp:
        env = {**os.environ, "ZONING_STORE": str(Path(tmp) / "zones.gpkg"), "ZONING_LOG_LEVEL": "warning", **EXTRA_ENV}
        server = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port)], cwd=REPO, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            run(server, base)
        finally:
            server.terminate()
            server.wait(timeout=30)


def run(server: subprocess.Popen, base: str) -> None:
    client = httpx.Client(timeout=300)
    deadline = time.monotonic() + 120
    while True:
        try:
            client.get(f"{base}/healthz")
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("zoning serve did not start") from None
            time.sleep(0.5)
    geojson = {"content-type": "application/geo+json"}
    client.get(f"{base}/v1/check", params={"lon": 116.1, "lat": 39.95})
    client.post(f"{base}/v1/check/site", content=site_body(100), headers=geojson)
    client.post(f"{base}/v1/check/batch", content=batch_body(100), headers=geojson)
    time.sleep(1.0)
    start = rss_mb(server.pid)

    site, batch = site_body(SITE_VERTICES), batch_body(BATCH_POINTS)
    limit = 32 * 1024 * 1024
    oversized = b"[" * (limit + 1)
    print(f"bodies: site {len(site) / 1e6:.1f} MB ({SITE_VERTICES} vertices), batch {len(batch) / 1e6:.1f} MB "
          f"({BATCH_POINTS} points), oversized {len(oversized) / 1e6:.1f} MB; {CONCURRENCY} at a time, "
          f"{ROUNDS} rounds")
    peak = [start]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mb(server.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    statuses: dict[str, set[int]] = {"site": set(), "batch": set(), "oversized": set()}

    def send(kind: str, body: bytes) -> None:
        with httpx.Client(timeout=300) as c:
            try:
                statuses[kind].add(c.post(f"{base}/v1/check/{'batch' if kind == 'batch' else 'site'}",
                                          content=body, headers=geojson).status_code)
            except httpx.RemoteProtocolError:  # the 413 came while the body was still being sent
                statuses[kind].add(0)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        jobs = [(kind, body) for _ in range(ROUNDS) for kind, body in
                (("site", site), ("batch", batch), ("oversized", oversized))] * (CONCURRENCY // 2)
        list(pool.map(lambda job: send(*job), jobs))
    burst_s = time.perf_counter() - t0
    time.sleep(SETTLE_S)
    stop.set()
    sampler.join()
    after = rss_mb(server.pid)
    print("status 0 = the server answered 413 and closed the connection before the upload ended")
    print(f"answers: {', '.join(f'{k} {sorted(v)}' for k, v in statuses.items())}; burst took {burst_s:.1f} s")
    print(f"RSS warmed up (baseline) {start:8.1f} MB")
    print(f"RSS peak during burst    {peak[0]:8.1f} MB  ({peak[0] / start:.2f}x baseline)")
    print(f"RSS {SETTLE_S:.0f} s after the burst  {after:8.1f} MB  ({after / start:.2f}x baseline; target <= 1.20x)")


if __name__ == "__main__":
    main()
