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

    ZoneStore(tmp_path / "store" / "zones.gpkg").save(sample_zones.iloc[:2], action="edit")
    body = sample_client.get("/healthz").json()
    assert body["zones"] == 2 and body["data_version"].startswith("v2-")
