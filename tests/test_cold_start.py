"""Start-up: the first /v1/check needs only the lookup; every other endpoint still answers,
whatever is asked first (api/routers.py mounts the other routers on first need)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api import routers
from api.app import create_app
from api.settings import Settings
from geo.paths import BUNDLED_ZONES
from tests.store_backends import new_location

REPO = Path(__file__).resolve().parents[1]

# What the first answer must not wait for: the OGC stack and CQL2 grammar, folium, the
# workbench, the report and compensation renderers, GDAL's Python binding.
NOT_ON_THE_FIRST_ANSWER = ["api.ogc", "api.workbench", "api.reports", "api.compensation", "api.map",
                           "pygeofilter.parsers.cql2_text", "folium", "jinja2", "maps.report", "pyogrio"]

PROBE = """
import json, sys
from fastapi.testclient import TestClient
from api import routers
routers.DeferredRouters.start_background = lambda self: None  # only requests mount, for this probe
from api.app import create_app
from api.settings import Settings
app = create_app(Settings(store=sys.argv[1], seed=sys.argv[2]))
with TestClient(app) as client:
    first = client.get("/v1/check", params={"lon": 116.0, "lat": 39.97})
    before = sorted(m for m in json.loads(sys.argv[3]) if m in sys.modules)
    mounted_before = app.state.routers.mounted.is_set()
    landing = client.get("/collections")
    after = sorted(m for m in json.loads(sys.argv[3]) if m in sys.modules)
print(json.dumps({"first": first.status_code, "inside": len(first.json()["inside"]), "before": before,
                  "mounted_before": mounted_before, "landing": landing.status_code, "after": after}))
"""


def test_first_check_imports_only_the_lookup_and_the_rest_mounts_on_first_need(tmp_path):
    # As on any start but the first on a machine: the district layer's binary copy is cached.
    env = {**os.environ, "ZONING_CACHE_DIR": str(tmp_path / "cache")}
    subprocess.run([sys.executable, "-c", "from geo.base import district_layer; district_layer()"],
                   cwd=REPO, env=env, check=True, timeout=120)
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "zones.gpkg"), str(BUNDLED_ZONES),
                          json.dumps(NOT_ON_THE_FIRST_ANSWER)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["first"] == 200 and result["inside"] >= 1  # the Yongding corridor
    assert result["before"] == [] and result["mounted_before"] is False
    # /collections was not mounted when asked: the request waited for the mount and was answered.
    assert result["landing"] == 200
    assert {"api.ogc", "api.workbench", "api.map"} <= set(result["after"])


def _app(tmp_path):
    return create_app(Settings(store=tmp_path / "zones.gpkg", seed=BUNDLED_ZONES))


def test_openapi_document_covers_every_router_even_when_asked_first(tmp_path, monkeypatch):
    monkeypatch.setattr(routers.DeferredRouters, "start_background", lambda self: None)
    app = _app(tmp_path)
    with TestClient(app) as client:
        paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/check", "/collections", "/v1/export", "/workbench", "/map", "/v1/compensation/report"):
        assert path in paths, path


def test_the_other_routers_mount_by_themselves_after_the_first_answer(tmp_path):
    app = _app(tmp_path)
    with TestClient(app) as client:
        assert client.get("/v1/check", params={"lon": 116.0, "lat": 39.97}).status_code == 200
        assert app.state.routers.mounted.wait(60)  # the background mount, no request needed
        assert client.get("/map").status_code == 200


def test_concurrent_first_requests_mount_once_and_all_succeed(tmp_path, monkeypatch):
    monkeypatch.setattr(routers.DeferredRouters, "start_background", lambda self: None)
    calls = []
    original = routers.mount_remaining
    monkeypatch.setattr(routers, "mount_remaining", lambda app: (calls.append(1), original(app)))
    app = _app(tmp_path)
    statuses: list[int] = []
    with TestClient(app) as client:
        def ask(path: str) -> None:
            statuses.append(client.get(path).status_code)

        threads = [threading.Thread(target=ask, args=(p,)) for p in ("/collections", "/map", "/v1/activities") * 3]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert statuses == [200] * 9
    assert calls == [1]


RESTART_PROBE = """
import json, sys
from fastapi.testclient import TestClient
from api import routers
routers.DeferredRouters.start_background = lambda self: None  # only requests mount, for this probe
from api.app import create_app
from api.settings import Settings
app = create_app(Settings(store=sys.argv[1], seed=sys.argv[2]))
with TestClient(app) as client:
    answers = [client.get("/v1/check", params=p).json() for p in json.loads(sys.argv[3])]
    site = {"type": "Polygon", "coordinates": [[[116.03, 39.96], [116.05, 39.96], [116.05, 39.98], [116.03, 39.98],
                                                [116.03, 39.96]]]}
    answers.append(client.post("/v1/check/site", json=site, params={"activity": "livestock_scale_farm_new"}).json())
    heavy = sorted(m for m in ("pandas", "geopandas", "pyarrow") if m in sys.modules)
    zones = client.get("/v1/zones", params={"district": "110109"})
print(json.dumps({"answers": answers, "heavy": heavy, "zones": zones.status_code, "count": zones.json()["count"]}))
"""

# Inside and near zones, on several layers, dates, languages, input CRSs and activities;
# in a district without data; outside Beijing.
RESTART_QUESTIONS = [
    {"lon": 116.04, "lat": 39.97},
    {"lon": 116.04, "lat": 39.97, "activity": "livestock_scale_farm_new", "near": 1000, "lang": "en"},
    {"lon": 115.69, "lat": 39.97, "activity": "livestock_scale_farm_new", "as_of": "2024-06-01"},
    {"lon": 116.30, "lat": 40.00, "layers": "livestock_ban", "as_of": "2016-01-01"},
    {"lon": 116.15, "lat": 40.08, "crs": "gcj02", "near": 5000},
    {"lon": 115.9, "lat": 40.0, "near": 3000},
    {"lon": 117.10, "lat": 40.14},
    {"lon": 116.40, "lat": 39.91},
    {"lon": 121.47, "lat": 31.23},
]


@pytest.mark.parametrize("backend", ["gpkg", "postgis"])
def test_a_restart_answers_points_without_the_zone_table_and_the_same_as_with_it(backend, tmp_path, request):
    """The first start creates the store and saves the lookup index with the zones'
    properties; a restart answers /v1/check from those and the store's geometries, without
    importing pandas, geopandas or pyarrow (most of a start's cost), and gives the same
    answers as the first process, which had loaded the zone table. Routes that need the
    table still get it."""
    env = {**os.environ, "ZONING_CACHE_DIR": str(tmp_path / "cache")}
    location = new_location(backend, tmp_path, request)
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", RESTART_PROBE, location, str(BUNDLED_ZONES),
                              json.dumps(RESTART_QUESTIONS)],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    first, restart = runs
    assert {"pandas", "geopandas"} <= set(first["heavy"])  # created the store from the bundled GeoJSON
    assert restart["heavy"] == []
    assert restart["answers"] == first["answers"]
    answers = restart["answers"]
    assert "mtg-jyq-ydh" in [z["zone_id"] for z in answers[0]["inside"]] and answers[0]["not_digitised"]
    assert [v["verdict"] for v in answers[1]["verdicts"]] == ["prohibited"]
    assert [v["verdict"] for v in answers[2]["verdicts"]] == ["unknown"]  # 斋堂: a zone that could decide is not drawn
    assert ("mtg-jyq", 292.6) in [(z["zone_id"], z["distance_m"]) for z in answers[5]["nearby"]]
    assert answers[-3]["coverage"] == "none" and answers[-2]["in_service_area"] is False
    assert answers[-1]["zones"] and answers[-1]["zones"][0]["overlap_area_m2"] > 0  # the site answer, too
    assert restart["zones"] == first["zones"] == 200 and restart["count"] == first["count"] > 0


def test_a_saved_index_of_an_older_format_is_rebuilt_not_trusted(tmp_path):
    """An index directory without the zones' properties (format /2) is rebuilt from the zone
    table on the first answer, and the answer is still right."""
    from geo import index_files

    env = {**os.environ, "ZONING_CACHE_DIR": str(tmp_path / "cache")}
    args = [sys.executable, "-c", RESTART_PROBE, str(tmp_path / "zones.gpkg"), str(BUNDLED_ZONES),
            json.dumps(RESTART_QUESTIONS[:2])]
    first = json.loads(subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
                                      check=True).stdout.strip().splitlines()[-1])
    (manifest,) = (tmp_path / "index").rglob(index_files.MANIFEST)
    data = json.loads(manifest.read_text())
    data["format"] = "zoning-lookup-index/2"
    manifest.write_text(json.dumps(data))
    again = json.loads(subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
                                      check=True).stdout.strip().splitlines()[-1])
    assert again["answers"] == first["answers"]
    assert json.loads(manifest.read_text())["format"] == index_files.FORMAT


def test_a_version_written_from_the_command_line_has_its_index_saved_for_the_next_start(tmp_path):
    """`zoning rollback` (as `build`, `import`, `review --approve` and `store copy`) saves the
    new version's lookup index: the next `zoning serve` answers from it, without the zone
    table, and never builds an index of its own."""
    from geo import schema
    from geo.index_files import MANIFEST
    from geo.store import ZoneStore

    store = ZoneStore(tmp_path / "zones.gpkg")
    zones = schema.zones_from_geojson(BUNDLED_ZONES.read_text(encoding="utf-8"))
    store.save(zones, action="init")
    store.save(zones.iloc[1:], action="edit", note="one zone fewer")
    env = {**os.environ, "ZONING_CACHE_DIR": str(tmp_path / "cache")}
    subprocess.run([sys.executable, "-c", "from geo.base import district_layer; district_layer()"],
                   cwd=REPO, env=env, check=True, timeout=120)  # as on any start but a machine's first
    done = subprocess.run([sys.executable, "-m", "api.cli", "rollback", "1", "--store", str(store.path)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    current = store.current()
    assert current.version == 3 and f"lookup index saved for {current.data_version}" in done.stderr
    saved = tmp_path / "index" / "zones" / current.data_version
    assert (saved / MANIFEST).exists()
    out = subprocess.run([sys.executable, "-c", RESTART_PROBE, str(store.path), str(BUNDLED_ZONES),
                          json.dumps(RESTART_QUESTIONS[:1])],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    # No pandas: the saved index was used as it is (building one needs the zone table).
    assert result["heavy"] == [] and result["answers"][0]["data_version"] == current.data_version
