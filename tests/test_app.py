def test_healthz_reports_zone_count_and_data_version(sample_client):
    answer = sample_client.get("/healthz")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok" and body["zones"] == 3
    assert body["data_version"].startswith("v1-")
    assert answer.headers["x-request-id"]


def test_openapi_docs_are_served(sample_client):
    assert sample_client.get("/docs").status_code == 200
    assert "/healthz" in sample_client.get("/openapi.json").json()["paths"]


def test_store_is_created_on_first_start(tmp_path, sample_client):
    assert (tmp_path / "store" / "zones.gpkg").exists()


def test_service_picks_up_a_new_data_version_without_restart(sample_client, tmp_path, sample_zones):
    from geo.store import ZoneStore
    from tests.conftest import wait_for_data_version

    ZoneStore(tmp_path / "store" / "zones.gpkg").save(sample_zones.iloc[:2], action="edit")
    body = wait_for_data_version(sample_client, "v2-")
    assert body["zones"] == 2


def test_warm_start_builds_the_lookup_index_before_the_first_check(tmp_path, sample_zones):
    import json
    import time

    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings
    from geo import schema

    seed = tmp_path / "seed.geojson"
    seed.write_text(json.dumps(schema.zones_to_geojson(sample_zones), ensure_ascii=False), encoding="utf-8")
    settings = Settings(store=tmp_path / "z.gpkg", seed=seed, warm_on_start=True)
    with TestClient(create_app(settings)) as client:
        snap = client.app.state.catalog.snapshot()
        deadline = time.monotonic() + 30
        while "lookup_index" not in snap._derived and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "lookup_index" in snap._derived
