"""The store's writes are transactions: no lost history under races or SIGKILL, a version
costs only the rows it changes, and the service swaps versions without stalling."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from contextlib import contextmanager

import pytest
import shapely
import shapely.affinity

from geo import schema
from geo.catalog import ZoneCatalog
from geo.store import ZoneStore, content_hash, open_store
from tests.conftest import REPO, _client_for, make_zone, wait_for_data_version

ADMIN_TOKEN = "store-tests-admin-token-0123456789"


def _round_zones(n: int, vertices: int = 200):
    """``n`` disjoint round zones of ``vertices`` vertices each near 门头沟."""
    quad_segs = vertices // 4
    return schema.zones_from_records([
        make_zone(f"t-{i:03d}", shapely.Point(116 + (i % 10) * 0.02, 39.9 + (i // 10) * 0.02).buffer(0.008, quad_segs=quad_segs))
        for i in range(n)])


def _assert_intact(store: ZoneStore) -> None:
    """The file passes SQLite's integrity check; versions run 1..N; every version's zones
    hash to its data_version; the ``zones`` layer is exactly the current version."""
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        layer = sorted(db.execute("SELECT zone_id, name_en FROM zones").fetchall())
    versions = store.versions()
    assert [v.version for v in versions] == list(range(1, len(versions) + 1))
    for v in versions:
        zones = store.load(v.version)
        assert content_hash(zones)[:8] == v.data_version.split("-")[1], v
        assert len(zones) == v.zone_count
    assert layer == sorted(zip(zones.zone_id, zones.name_en, strict=True))


# ----------------------------------------------------------------------------- size
def test_two_hundred_versions_cost_only_the_rows_they_change(tmp_path):
    store = ZoneStore(tmp_path / "zones.gpkg")
    zones = _round_zones(50)
    store.save(zones, action="init")

    def size() -> int:
        with sqlite3.connect(store.path) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return store.path.stat().st_size

    first = size()
    for i in range(200):
        row = i % len(zones)
        zones.loc[row, "name_en"] = f"revision {i}"
        if i % 2:  # every other version also moves the zone a little
            zones.loc[row, "geometry"] = shapely.affinity.translate(zones.geometry[row], xoff=1e-4)
        store.save(zones, action="edit")
    per_version = (size() - first) / 200
    print(f"\nstore: {first} bytes with version 1 (50 zones x 200 vertices), "
          f"{per_version:.0f} bytes per later version changing one zone")
    # A whole-table copy per version would cost about ``first`` bytes each.
    assert per_version < 50_000 and per_version < first / 10, per_version
    assert store.head() == 201
    assert json.loads(store.version(201).summary) == {"added": [], "removed": [], "changed": ["t-049"]}
    assert content_hash(store.load(100))[:8] == store.version(100).data_version.split("-")[1]


# ----------------------------------------------------------------------------- SIGKILL
_WRITE_FOREVER = textwrap.dedent("""
    import random, sys
    from geo.store import ZoneStore
    store = ZoneStore(sys.argv[1])
    rng = random.Random(int(sys.argv[2]))
    zones = store.load()
    print("ready", flush=True)
    while True:
        row = rng.randrange(len(zones))
        zones.loc[row, "name_en"] = f"edit {rng.random()}"
        store.save(zones, action="edit", author="killed-writer")
""")


def test_writers_killed_at_random_points_never_lose_or_corrupt_a_committed_version(tmp_path):
    store = ZoneStore(tmp_path / "zones.gpkg")
    store.save(_round_zones(30), action="init")
    seed = int(os.environ.get("STORE_KILL_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"\nSTORE_KILL_SEED={seed}")
    for round_ in range(8):
        before = [v.data_version for v in store.versions()]
        child = subprocess.Popen([sys.executable, "-c", _WRITE_FOREVER, str(store.path), str(seed + round_)],
                                 cwd=REPO, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            assert child.stdout.readline().strip() == "ready"
            threading.Event().wait(rng.uniform(0.0, 0.4))  # anywhere in a write: computing, writing, committing
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL
        _assert_intact(store)
        assert [v.data_version for v in store.versions()][:len(before)] == before, f"round {round_}"
    assert store.head() > 1, "no write ever committed: the kills came too early to test anything"


# ----------------------------------------------------------------------------- races
@contextmanager
def stalled_writer(args: list[str], hook_dir):
    """Run a CLI write that stops inside its transaction (rows written, lock held, not
    committed) until the block ends, then lets it commit; yields the process."""
    hook_dir.mkdir(exist_ok=True)
    go = hook_dir / "go"
    (hook_dir / "sitecustomize.py").write_text(
        "import pathlib, time, geo.store.gpkg\n"
        "def _stall():\n    print('writing', flush=True)\n"
        f"    while not pathlib.Path({str(go)!r}).exists():\n        time.sleep(0.01)\n"
        "geo.store.gpkg._before_commit = _stall\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hook_dir), str(REPO)])}
    child = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
        yield child
    finally:
        go.touch()
        child.wait(timeout=60)


@pytest.fixture
def seed(tmp_path, sample_zones):
    path = tmp_path / "sample.geojson"
    path.write_text(json.dumps(schema.zones_to_geojson(sample_zones), ensure_ascii=False), encoding="utf-8")
    return path


def test_a_server_starting_during_a_cli_write_loses_no_history(tmp_path, sample_zones, seed):
    path = tmp_path / "store" / "zones.gpkg"
    store = open_store(path, seed)
    store.save(sample_zones.iloc[:1], action="edit")
    with stalled_writer([sys.executable, "-m", "api.cli", "rollback", "1", "--store", str(path)], tmp_path / "hook") as cli, \
            _client_for(tmp_path, seed) as client:
        assert client.get("/healthz").json()["data_version"].startswith("v2-")  # started, serving, not blocked
    assert cli.returncode == 0, cli.stderr.read()
    assert [v.action for v in store.versions()] == ["init", "edit", "rollback"]
    _assert_intact(store)
    with _client_for(tmp_path, seed) as client:
        wait_for_data_version(client, "v3-")
    rolled = subprocess.run([sys.executable, "-m", "api.cli", "rollback", "2", "--store", str(path)], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert rolled.returncode == 0 and "served again as version 4" in rolled.stdout, rolled.stderr


def test_two_servers_on_one_store_keep_every_version(tmp_path, sample_zones, seed):
    clients = [_client_for(tmp_path, seed, admin_token=ADMIN_TOKEN) for _ in range(2)]
    for c in clients:
        c.__enter__()
    try:
        store = clients[0].app.state.catalog.store
        assert [v.action for v in store.versions()] == ["init"]
        store.save(sample_zones.iloc[:1], action="edit")
        errors: list[str] = []

        def roll(client, targets):
            for target in targets:
                answer = client.post(f"/v1/admin/rollback/{target}", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
                if answer.status_code != 201:
                    errors.append(answer.text)

        writers = [threading.Thread(target=roll, args=(c, [1, 2] * 3)) for c in clients]
        for t in writers:
            t.start()
        for t in writers:
            t.join()
        assert errors == []
        assert store.head() == 2 + 12
        _assert_intact(store)
        for client in clients:
            assert wait_for_data_version(client, f"v{store.head()}-")["zones"] in (1, 3)
    finally:
        for c in clients:
            c.__exit__(None, None, None)


def test_two_servers_racing_to_create_a_store_write_one_first_version(tmp_path, seed):
    path = tmp_path / "new" / "zones.gpkg"
    script = f"from geo.store import open_store; open_store({str(path)!r}, {str(seed)!r})"
    procs = [subprocess.Popen([sys.executable, "-c", script], cwd=REPO) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert [v.action for v in ZoneStore(path).versions()] == ["init"]


# ----------------------------------------------------------------------------- serving
def test_requests_are_answered_from_the_old_version_until_the_new_one_is_ready(tmp_path, sample_zones):
    store = ZoneStore(tmp_path / "zones.gpkg")
    store.save(sample_zones, action="init")
    building, release = threading.Event(), threading.Event()

    def prepare(snapshot):  # stands in for a slow lookup-index build
        if snapshot.version.version == 2:
            building.set()
            assert release.wait(60)
        snapshot.derived("prepared", lambda zones: len(zones))

    catalog = ZoneCatalog(store, prepare=prepare)
    assert catalog.snapshot().version.version == 1
    store.save(sample_zones.iloc[:1], action="edit")
    assert catalog.snapshot().version.version == 1  # noticed, but not ready yet
    assert building.wait(60)
    assert all(catalog.snapshot().version.version == 1 for _ in range(100))
    release.set()
    new = catalog.refresh()
    assert new.version.version == 2 and len(new.zones) == 1 and new._derived["prepared"] == 1
    assert catalog.snapshot() is new


def test_the_service_builds_the_new_lookup_index_before_serving_a_version(tmp_path, sample_zones, seed):
    with _client_for(tmp_path, seed) as client:
        ZoneStore(tmp_path / "store" / "zones.gpkg").save(sample_zones.iloc[:2], action="edit")
        client.get("/healthz")
        wait_for_data_version(client, "v2-")
        assert "lookup_index" in client.app.state.catalog.snapshot()._derived
