"""Shared fixtures. Synthetic zones here are test fixtures only, never shipped as data."""

from __future__ import annotations

from pathlib import Path

import pytest
import shapely

from geo import schema
from tests.store_backends import postgis_url  # noqa: F401  (fixture: a throwaway PostGIS server, per session)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def make_zone(zone_id: str, geometry, **overrides) -> dict:
    """One schema-complete zone record (synthetic test values unless overridden)."""
    record = {
        "zone_id": zone_id,
        "parent_id": None,
        "layer": "livestock_ban",
        "kind": "test",
        "name_zh": f"测试区{zone_id}",
        "name_en": f"Test zone {zone_id}",
        "district_code": "110109",
        "district_name": "门头沟区",
        "source_doc_no": "测试〔2020〕1号",
        "source_title": "测试文件",
        "source_article": "四(一)",
        "issuer": "测试机关",
        "issued_on": "2020-02-25",
        "effective_from": "2020-02-25",
        "effective_to": None,
        "stated_area_km2": 1.0,
        "area_km2": None,
        "rules": [{"code": "ban_scale_livestock", "text_zh": "禁止规模化畜禽养殖", "text_en": "No scale livestock farms"}],
        "accuracy": "approximate",
        "method": "test fixture",
        "notes": None,
        "geometry": geometry,
    }
    record.update(overrides)
    return record


@pytest.fixture
def sample_zones():
    """Three synthetic zones near 门头沟: a square, a square with a hole, and a repealed zone."""
    outer = shapely.box(116.00, 39.90, 116.10, 40.00)
    holed = shapely.Polygon(
        [(116.20, 39.90), (116.30, 39.90), (116.30, 40.00), (116.20, 40.00)],
        holes=[[(116.24, 39.94), (116.26, 39.94), (116.26, 39.96), (116.24, 39.96)]],
    )
    return schema.zones_from_records([
        make_zone("t-square", outer),
        make_zone("t-holed", holed, layer="water_source", parent_id="t-square"),
        make_zone("t-repealed", shapely.box(116.05, 39.95, 116.15, 40.05), effective_to="2021-01-01"),
    ])


# Store backends the shared store tests (tests/test_store.py) run against; a backend adds
# its name here and a branch to ``new_store``.
STORE_BACKENDS = ["gpkg", "postgis"]


@pytest.fixture(params=STORE_BACKENDS)
def new_store(request, tmp_path):
    """An empty zone store of each backend (PostGIS: a new schema in a throwaway server,
    ``tests.store_backends``)."""
    from geo.store import GeoPackageStore, store_at
    from tests.store_backends import new_location

    if request.param == "gpkg":
        return GeoPackageStore(tmp_path / "zones.gpkg")
    if request.param == "postgis":
        request.applymarker(pytest.mark.postgis)
        return store_at(new_location("postgis", tmp_path, request))
    raise AssertionError(f"unknown store backend {request.param}")


def required_tool(name: str, package: str) -> str:
    """The path of a command-line tool the test needs: skipped when it is missing, except in
    CI (CI=true), where a missing tool is a failure."""
    import os
    import shutil

    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian package {package})"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must provide it (.ci/run installs it)")
        pytest.skip(message)
    return path


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.exists():
        pytest.skip(f"shared material not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def bundled_zones():
    """The committed zone table (data/boundaries/zones.geojson) — the product's real data."""
    from geo.paths import BUNDLED_ZONES

    assert BUNDLED_ZONES.exists(), "data/boundaries/zones.geojson is missing: run `zoning build`"
    return schema.zones_from_geojson(BUNDLED_ZONES.read_text(encoding="utf-8"))


def _client_for(tmp_path, seed_path, **settings_overrides):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings

    settings = Settings(**{"store": tmp_path / "store" / "zones.gpkg", "seed": seed_path, **settings_overrides})
    return TestClient(create_app(settings))


@pytest.fixture
def client(tmp_path):
    """API client on a fresh store initialised from the bundled zones."""
    from geo.paths import BUNDLED_ZONES

    with _client_for(tmp_path, BUNDLED_ZONES) as test_client:
        yield test_client


@pytest.fixture
def sample_client(tmp_path, sample_zones):
    """API client on a fresh store holding the three synthetic sample zones."""
    import json

    seed = tmp_path / "sample.geojson"
    seed.write_text(json.dumps(schema.zones_to_geojson(sample_zones), ensure_ascii=False), encoding="utf-8")
    with _client_for(tmp_path, seed) as test_client:
        yield test_client


def wait_for_data_version(client, prefix: str, timeout: float = 30.0) -> dict:
    """Poll ``/healthz`` until the service serves a data version starting with ``prefix``
    (a new version is loaded in the background; until then the old one is served)."""
    import time

    deadline = time.monotonic() + timeout
    while not (body := client.get("/healthz").json())["data_version"].startswith(prefix):
        assert time.monotonic() < deadline, f"still serving {body['data_version']} after {timeout} s"
        time.sleep(0.02)
    return body


def kill_writer_mid_write(args: list[str], hook_dir: Path) -> None:
    """Run ``args`` (a Python command that writes the zone store) with the store's write
    transaction stalled just before COMMIT (every row written, nothing committed), and SIGKILL
    it there: the crash an atomic write must survive."""
    import os
    import signal
    import subprocess

    hook_dir.mkdir(exist_ok=True)
    (hook_dir / "sitecustomize.py").write_text(
        "import time, geo.store.gpkg\n"
        "def _stall():\n    print('writing', flush=True)\n    time.sleep(60)\n"
        "geo.store.gpkg._before_commit = _stall\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hook_dir), str(REPO)])}
    child = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
