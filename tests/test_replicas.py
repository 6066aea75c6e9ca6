"""Replicas on one PostGIS store stay in step: two ``zoning serve`` processes on loopback
ports, an import through A, and B serves the new data_version — noticed at once through
LISTEN/NOTIFY — while no answer from either mixes two versions."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from geo.paths import BUNDLED_ZONES
from geo.store import open_store
from tests.browser import free_port
from tests.conftest import REPO
from tests.store_backends import new_location
from tests.test_admin_api import AUTH, FORM, TOKEN, official, official_zip, replaced  # noqa: F401  (fixtures)
from tests.test_import import IMPORT_LAYER


@contextlib.contextmanager
def serving(store: str, *args: str):
    """``zoning serve`` on a free loopback port until the block ends; yields its base URL and process."""
    port = free_port()
    env = {**os.environ, "ZONING_ADMIN_TOKEN": TOKEN, "ZONING_LOG_LEVEL": "warning"}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--store", store, *args],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read()
            try:
                if httpx.get(f"{base}/v1/check?lon=116.0&lat=39.97", timeout=30).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.postgis
def test_an_import_through_one_replica_is_served_by_the_other(tmp_path, request, official_zip, official,  # noqa: F811
                                                              replaced):  # noqa: F811
    location = new_location("postgis", tmp_path, request)
    open_store(location, BUNDLED_ZONES)
    point = official.geometry.iloc[1].representative_point()
    old_ids = set(replaced.zone_id)
    seen: list[tuple[float, str, frozenset[str]]] = []
    stop = threading.Event()

    def read(base: str) -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            while not stop.is_set():
                body = client.get("/v1/check", params={"lon": point.x, "lat": point.y, "layers": IMPORT_LAYER}).json()
                seen.append((time.monotonic(), body["data_version"], frozenset(z["zone_id"] for z in body["inside"])))

    with serving(location) as (a, _), serving(location) as (b, _):
        before = httpx.get(f"{b}/healthz").json()["data_version"]
        reader = threading.Thread(target=read, args=(b,))
        reader.start()
        try:
            answer = httpx.post(f"{a}/v1/admin/import", headers=AUTH, timeout=120,
                                data={**FORM, "accuracy": "official"},
                                files={"file": (official_zip.name, official_zip.read_bytes(), "application/zip")})
            committed = time.monotonic()  # A answers once it serves the version; it was committed before
            assert answer.status_code == 201, answer.text
            new = answer.json()["data_version"]
            # B's store notices the version through NOTIFY (its head, without loading anything) …
            health = httpx.get(f"{b}/healthz").json()
            assert health["store_head"] == int(new[1:].split("-")[0])
            # … and serves it as soon as it has loaded it and its lookup index.
            deadline = committed + 60
            while (served := httpx.get(f"{b}/healthz").json()["data_version"]) != new:
                assert time.monotonic() < deadline, f"B still serves {served}"
                time.sleep(0.01)
            lag = time.monotonic() - committed
            time.sleep(0.2)
        finally:
            stop.set()
            reader.join()
    print(f"B served {new} {lag:.2f} s after A answered the import (load {os.getloadavg()[0]:.1f})")
    # One second is the promise on a machine that is not saturated; on a loaded shared one
    # the figure is printed and only a gross delay fails.
    assert lag < (1.0 if os.getloadavg()[0] < (os.cpu_count() or 1) else 10.0)
    versions = {v for _, v, _ in seen}
    assert versions == {before, new}, versions
    for _, version, ids in seen:  # every answer is wholly one version: its zones are that version's
        if version == before:
            assert ids and ids <= old_ids
        else:
            assert ids and not ids & old_ids
    switch = [v for _, v, _ in seen]
    assert switch == sorted(switch, key=lambda v: v == new)  # once new, never old again


def test_serve_with_workers_serves_a_new_version_from_every_worker(tmp_path, sample_zones):
    """``--workers 2`` on a GeoPackage store: both processes answer, and a version written by
    another process is what every answer names soon after."""
    location = str(tmp_path / "zones.gpkg")
    store = open_store(location, BUNDLED_ZONES)
    with serving(location, "--workers", "2") as (base, proc):
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        workers = [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
        assert len(workers) == 2, children  # uvicorn's two worker processes (besides a resource tracker)
        with httpx.Client(base_url=base, timeout=30) as client:
            before = client.get("/healthz").json()["data_version"]
            info = store.save(store.load().iloc[:-1], action="edit", author="test")
            deadline = time.monotonic() + 60
            in_a_row = 0
            while in_a_row < 20:  # twenty answers in a row from the new version: both workers have it
                assert time.monotonic() < deadline, "the workers did not all switch"
                answer = client.get("/healthz", headers={"Connection": "close"})  # a new connection each time
                in_a_row = in_a_row + 1 if answer.json()["data_version"] == info.data_version else 0
        assert before != info.data_version
