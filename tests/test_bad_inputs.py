"""Every bad input is a 4xx naming the problem: the corpus of requests that once answered 500,
body and nesting bounds, HEAD, empty parameters, the admin token's length and rate limit."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import MIN_ADMIN_TOKEN_CHARS, Settings, SettingsError
from geo.paths import BUNDLED_ZONES
from tests.conftest import _client_for

BIG_INT = "1" * 400
DEEP = "[" * 200_000 + "]" * 200_000
GEOJSON = {"content-type": "application/geo+json"}


def _points_body(coordinates: str) -> str:
    return ('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, '
            f'"geometry": {{"type": "Point", "coordinates": {coordinates}}}}}]}}')


def _far_points() -> dict:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "far", "properties": {}, "geometry": {"type": "Point", "coordinates": [21, 0]}},
        {"type": "Feature", "id": "mtg", "properties": {},
         "geometry": {"type": "Point", "coordinates": [116.10, 39.95]}}]}


# (what, request kwargs, expected status, text the answer must contain). Each of these answered
# 500 before (issue 11, part 3), except where noted.
CORPUS = [
    ("zones filter matching nothing", dict(method="GET", url="/v1/zones", params={"as_of": "1900-01-01", "q": "a"}),
     200, '"count":0'),
    ("point far outside Beijing", dict(method="GET", url="/v1/check", params={"lon": 21, "lat": 0}),
     200, '"inside":[]'),
    ("400-digit integer in a GeoJSON batch", dict(method="POST", url="/v1/check/batch",
                                                  content=_points_body(f"[{BIG_INT}, 0]"), headers=GEOJSON),
     422, "too large for a coordinate"),
    ("400-digit integer in a CSV batch (was a 422 already)",
     dict(method="POST", url="/v1/check/batch", content=f"lon,lat\n{BIG_INT},0\n", headers={"content-type": "text/csv"}),
     422, "finite number"),
    ("400-digit integer in a site", dict(method="POST", url="/v1/check/site", headers=GEOJSON,
                                         content=f'{{"type": "Polygon", "coordinates": [[[{BIG_INT}, 0], [1, 0], '
                                                 f'[1, 1], [{BIG_INT}, 0]]]}}'),
     422, "too large"),
    ("JSON nested 200 000 deep in a batch", dict(method="POST", url="/v1/check/batch", content=DEEP, headers=GEOJSON),
     422, "nested deeper than 200 levels"),
    ("JSON with more arrays than a maximal batch has points",
     dict(method="POST", url="/v1/check/batch", content="[" * 300_000, headers=GEOJSON), 413, "too many points"),
    ("JSON nested 200 000 deep in a site", dict(method="POST", url="/v1/check/site", content=DEEP, headers=GEOJSON),
     422, "vertices"),
    ("JSON nested 300 deep, few arrays, in a site",
     dict(method="POST", url="/v1/check/site", content='{"a":' * 300 + "1" + "}" * 300, headers=GEOJSON),
     422, "nested deeper than"),
    ("JSON nested 300 deep in a batch",
     dict(method="POST", url="/v1/check/batch", content='{"a":' * 300 + "1" + "}" * 300, headers=GEOJSON),
     422, "nested deeper than"),
    ("site with more vertices than allowed, refused before parsing",
     dict(method="POST", url="/v1/check/site", headers=GEOJSON,
          content='{"type": "Polygon", "coordinates": [[' + ",".join(["[116.1, 39.9]"] * 120_000) + "]]}"),
     422, "over 100000 vertices"),
    ("empty optional parameter is absent", dict(method="GET", url="/v1/check",
                                                params={"lon": 116.1, "lat": 39.95, "as_of": "", "layers": ""}),
     200, '"inside":'),
    ("empty required parameter is reported missing", dict(method="GET", url="/v1/check",
                                                          params={"lon": "", "lat": 39.95}),
     422, "lon"),
]


@pytest.mark.parametrize(("what", "request_kwargs", "status", "text"), CORPUS, ids=[c[0] for c in CORPUS])
def test_bad_input_corpus_is_answered_never_500(client, what, request_kwargs, status, text):
    answer = client.request(**request_kwargs)
    assert answer.status_code == status, (what, answer.text[:300])
    assert text in answer.text.replace(" ", "") if text.startswith('"') else text in answer.text


def test_far_point_in_a_detailed_batch_does_not_fail_the_others(client):
    answer = client.post("/v1/check/batch", params={"detail": "true"}, json=_far_points())
    assert answer.status_code == 200
    results = {r["id"]: r for r in answer.json()["results"]}
    assert results["far"]["inside"] == [] and results["far"]["nearby"] == []
    assert results["mtg"]["inside"], "the point in 门头沟 still finds its zones"
    assert all(z["distance_to_boundary_m"] > 0 for z in results["mtg"]["inside"])


def test_far_site_is_a_normal_answer(client):
    site = {"type": "Polygon", "coordinates": [[[21, 0], [21.1, 0], [21.1, 0.1], [21, 0.1], [21, 0]]]}
    answer = client.post("/v1/check/site", json=site)
    assert answer.status_code == 200 and answer.json()["site"]["area_m2"] > 1e8


def test_body_over_the_limit_is_413_before_parsing(tmp_path):
    with _client_for(tmp_path, BUNDLED_ZONES, max_body_bytes=10_000) as small:
        declared = small.post("/v1/check/site", content=b"{" * 20_000, headers=GEOJSON)
        assert declared.status_code == 413 and "ZONING_MAX_BODY_BYTES" in declared.json()["detail"]

        def chunks():  # no Content-Length: counted as it streams in
            for _ in range(20):
                yield b"[" * 1000

        streamed = small.post("/v1/check/batch", content=chunks(), headers=GEOJSON)
        assert streamed.status_code == 413
        fine = small.post("/v1/check/batch", content="lon,lat\n116.1,39.95\n", headers={"content-type": "text/csv"})
        assert fine.status_code == 200


def test_head_answers_where_get_does(client):
    for path in ("/healthz", "/map", "/v1/zones", "/collections", "/v1/check?lon=116.1&lat=39.95",
                 "/static/vendor/leaflet-1.9.4/leaflet.js"):
        get, head = client.get(path), client.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"], path
    assert client.head("/v1/check/site").status_code == 405  # POST only: HEAD is no more allowed than GET
    assert client.head("/v1/zones/no-such-zone").status_code == 404


def test_an_unexpected_error_is_a_json_500_logged_with_the_request_id(tmp_path, caplog):
    app = create_app(Settings(store=tmp_path / "z.gpkg", seed=BUNDLED_ZONES))

    @app.get("/boom")
    def boom():
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as c, caplog.at_level(logging.INFO, "zoning.api"):
        answer = c.get("/boom", headers={"x-request-id": "req-42"})
    assert answer.status_code == 500 and answer.json()["request_id"] == "req-42"
    assert answer.headers["x-request-id"] == "req-42"
    failed = [r for r in caplog.records if "id=req-42" in r.getMessage() and r.exc_info]
    assert failed and "a bug" in str(failed[0].exc_info[1])
    assert any(r.getMessage().startswith("GET /boom 500") for r in caplog.records)


def test_short_admin_token_is_refused_at_start_up(tmp_path):
    with pytest.raises(SettingsError, match="at least 24"):
        create_app(Settings(store=tmp_path / "z.gpkg", seed=BUNDLED_ZONES, admin_token="x" * (MIN_ADMIN_TOKEN_CHARS - 1)))
    create_app(Settings(store=tmp_path / "z.gpkg", seed=BUNDLED_ZONES, admin_token="x" * MIN_ADMIN_TOKEN_CHARS))


def test_short_admin_token_stops_zoning_serve_with_exit_2(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "ZONING_ADMIN_TOKEN": "short", "ZONING_STORE": str(tmp_path / "z.gpkg")}
    done = subprocess.run([sys.executable, "-m", "api.cli", "serve", "--port", "1"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "ZONING_ADMIN_TOKEN" in done.stderr and "24" in done.stderr


def test_failed_admin_attempts_are_rate_limited_per_address(tmp_path):
    token = "t" * 32
    with _client_for(tmp_path, BUNDLED_ZONES, admin_token=token, admin_max_failures=3) as c:
        for _ in range(3):
            assert c.get("/v1/admin/versions", headers={"Authorization": "Bearer wrong"}).status_code == 401
        limited = c.get("/v1/admin/versions", headers={"Authorization": f"Bearer {token}"})
        assert limited.status_code == 429, "even the right token waits once the address is limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 300
        # another address is not affected
        other = TestClient(c.app, client=("192.0.2.7", 5000))
        assert other.get("/v1/admin/versions", headers={"Authorization": f"Bearer {token}"}).status_code == 200
