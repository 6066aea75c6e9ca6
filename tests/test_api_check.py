"""The check API (/v1/check, /v1/check/batch, /v1/check/site, /v1/zones) and its CLI twins."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pyproj
import pytest
import shapely

from api.cli import main as cli_main
from geo import crs as geocrs
from tests.conftest import _client_for, wait_for_data_version

GEOD = pyproj.Geod(ellps="GRS80")
SQUARE_INSIDE = (116.05, 39.92)  # in t-square only (t-repealed starts at 39.95)


def check(client, **params):
    return client.get("/v1/check", params=params)


def inside_ids(answer) -> list[str]:
    return [z["zone_id"] for z in answer["inside"]]


# ---------------------------------------------------------------- GET /v1/check


def test_check_answers_zone_rules_source_and_point_echo(sample_client):
    answer = check(sample_client, lon=116.05, lat=39.92, as_of="2022-01-01").json()
    assert list(answer) == ["point", "as_of", "inside", "nearby", "not_digitised", "data_version", "disclaimer"]
    assert answer["point"] == {"input": [116.05, 39.92], "crs": "wgs84", "wgs84": [116.05, 39.92]}
    assert answer["as_of"] == "2022-01-01"
    assert answer["data_version"].startswith("v1-")
    [zone] = answer["inside"]
    assert set(zone) == {"zone_id", "layer", "kind", "name_zh", "name_en", "district_code", "rules", "source",
                         "accuracy", "stated_area_km2", "area_km2", "distance_to_boundary_m"}
    assert zone["zone_id"] == "t-square" and zone["layer"] == "livestock_ban"
    assert zone["rules"][0]["text_zh"] == "禁止规模化畜禽养殖"
    assert zone["source"] == {"doc_no": "测试〔2020〕1号", "title": "测试文件", "article": "四(一)",
                              "issuer": "测试机关", "issued_on": "2020-02-25", "effective_from": "2020-02-25",
                              "effective_to": None}
    assert zone["accuracy"] == "approximate" and zone["area_km2"] > 90
    # 0.02° of latitude to the south edge (~2.2 km) is nearer than 0.05° of longitude (~4.3 km)
    assert zone["distance_to_boundary_m"] == pytest.approx(GEOD.inv(116.05, 39.92, 116.05, 39.90)[2], rel=1e-3)


def test_boundary_points_are_inside_both_zones_and_holes_are_outside(sample_client):
    assert inside_ids(check(sample_client, lon=116.0, lat=39.95, as_of="2022-01-01").json()) == ["t-square"]
    assert inside_ids(check(sample_client, lon=116.24, lat=39.95).json()) == ["t-holed"]
    in_hole = check(sample_client, lon=116.25, lat=39.95, near=1000).json()
    assert in_hole["inside"] == [] and [z["zone_id"] for z in in_hole["nearby"]] == ["t-holed"]
    assert in_hole["nearby"][0]["distance_m"] == pytest.approx(GEOD.inv(116.25, 39.95, 116.24, 39.95)[2], rel=1e-3)


def test_as_of_defaults_to_today_and_selects_zones_in_force(sample_client):
    from api.dependencies import today

    assert check(sample_client, lon=116.07, lat=39.97).json()["as_of"] == today()
    assert inside_ids(check(sample_client, lon=116.07, lat=39.97).json()) == ["t-square"]
    assert inside_ids(check(sample_client, lon=116.07, lat=39.97, as_of="2020-12-31").json()) == ["t-square", "t-repealed"]
    assert inside_ids(check(sample_client, lon=116.07, lat=39.97, as_of="2020-01-01").json()) == []


def test_layers_filter_the_answer(sample_client):
    answer = check(sample_client, lon=116.21, lat=39.95, layers="livestock_ban", near=0).json()
    assert answer["inside"] == [] and answer["nearby"] == []
    assert inside_ids(check(sample_client, lon=116.21, lat=39.95, layers="water_source").json()) == ["t-holed"]


def test_nearby_lists_zones_within_near_metres_with_distance(sample_client):
    # 0.003° east of the square's east edge: ~256 m away
    answer = check(sample_client, lon=116.103, lat=39.92, near=300).json()
    assert answer["inside"] == []
    [zone] = answer["nearby"]
    assert zone["zone_id"] == "t-square"
    assert zone["distance_m"] == pytest.approx(GEOD.inv(116.103, 39.92, 116.10, 39.92)[2], rel=1e-3)
    assert check(sample_client, lon=116.103, lat=39.92, near=200).json()["nearby"] == []


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_gcj02_and_bd09_inputs_land_in_the_right_zone(sample_client, system):
    # 0.003° inside the east edge: the raw GCJ-02/BD-09 numbers, read as WGS84, lie outside it
    x, y = (float(v) for v in geocrs.from_wgs84(116.097, 39.92, system))
    assert inside_ids(check(sample_client, lon=x, lat=y, as_of="2022-01-01").json()) == []
    answer = check(sample_client, lon=x, lat=y, crs=system, as_of="2022-01-01").json()
    assert inside_ids(answer) == ["t-square"]
    assert answer["point"]["crs"] == system and answer["point"]["input"] == [x, y]
    assert answer["point"]["wgs84"] == pytest.approx([116.097, 39.92], abs=1e-7)


def test_gauss_kruger_input_is_converted(sample_client):
    x, y = (float(v) for v in geocrs.from_wgs84(*SQUARE_INSIDE, "EPSG:4548"))
    answer = check(sample_client, lon=x, lat=y, crs="EPSG:4548", as_of="2022-01-01").json()
    assert inside_ids(answer) == ["t-square"] and answer["point"]["crs"] == "EPSG:4548"


def test_disclaimer_names_non_official_zones_in_the_requested_language(sample_client):
    zh = check(sample_client, lon=116.05, lat=39.92, as_of="2022-01-01").json()["disclaimer"]
    assert "测试区t-square（t-square）为近似边界" in zh and "法定边界以主管部门发布的官方数据为准" in zh
    en = check(sample_client, lon=116.05, lat=39.92, as_of="2022-01-01", lang="en").json()["disclaimer"]
    assert "Test zone t-square (t-square): approximate" in en and "legal boundary is the official one" in en


def test_disclaimer_of_an_official_zone_says_it_is_official():
    from api.answers import disclaimer

    text = disclaimer([{"zone_id": "x", "name_zh": "甲", "name_en": "A", "accuracy": "official"}], "en")
    assert text.startswith("All zones returned have official boundaries.")


def test_an_empty_answer_does_not_claim_that_no_zone_applies(sample_client):
    far = check(sample_client, lon=117.5, lat=41.0, as_of="2022-01-01").json()
    assert far["inside"] == [] and "官方边界" not in far["disclaimer"].split("。")[0]
    assert "不在本服务已数字化的任何分区内" in far["disclaimer"]
    en = check(sample_client, lon=117.5, lat=41.0, as_of="2022-01-01", lang="en").json()["disclaimer"]
    assert "not inside any zone this service has digitised" in en and "may still apply" in en


def bundled_not_digitised(district_code: str) -> list[dict]:
    from geo.paths import BOUNDARIES_DIR

    entries = json.loads((BOUNDARIES_DIR / "not_digitised.json").read_text(encoding="utf-8"))
    return [e for e in entries if e["district_code"] == district_code]


def test_check_lists_zones_the_district_defines_but_could_not_draw(sample_client):
    expected = bundled_not_digitised("110109")  # 116.05, 39.92 lies in 门头沟区
    assert expected, "the bundled data lists no undigitised 门头沟 zones"
    answer = check(sample_client, lon=116.05, lat=39.92).json()
    assert answer["not_digitised"] == expected
    assert all(e["reason"] for e in answer["not_digitised"])
    assert f"另有{len(expected)}个文件规定的分区未能数字化" in answer["disclaimer"]
    bans = check(sample_client, lon=116.05, lat=39.92, layers="livestock_ban", lang="en").json()
    assert bans["not_digitised"] == [e for e in expected if e["layer"] == "livestock_ban"]
    assert "could not be digitised" in bans["disclaimer"]


def test_check_outside_the_four_districts_lists_nothing_undigitised(sample_client):
    answer = check(sample_client, lon=116.45, lat=39.92).json()  # 朝阳区
    assert answer["not_digitised"] == [] and "未能数字化" not in answer["disclaimer"]


def test_official_zones_of_a_layer_retire_its_undigitised_entries(sample_client, tmp_path, sample_zones):
    from geo.store import ZoneStore

    official = sample_zones.copy()
    official["accuracy"] = "official"  # as after importing the district's official ban-zone file
    ZoneStore(tmp_path / "store" / "zones.gpkg").save(official, action="import")
    wait_for_data_version(sample_client, "v2-")
    layers = {e["layer"] for e in check(sample_client, lon=116.05, lat=39.92).json()["not_digitised"]}
    assert "livestock_ban" not in layers and "water_source" not in layers
    assert layers == {e["layer"] for e in bundled_not_digitised("110109")} - {"livestock_ban", "water_source"}


@pytest.mark.parametrize(("params", "field", "message"), [
    ({"lon": "nan", "lat": 39.9}, "lon", "finite"),
    ({"lon": 116.0, "lat": "inf"}, "lat", "finite"),
    ({"lon": 200, "lat": 39.9}, "lon", "out of range"),
    ({"lon": 39.9, "lat": 116.0}, "lat", "did you swap lon and lat"),
    ({"lon": "abc", "lat": 39.9}, "lon", "valid number"),
    ({"lat": 39.9}, "lon", "Field required"),
    ({"lon": 116, "lat": 39.9, "crs": "EPSG:999999"}, "crs", "PROJ has no EPSG:999999"),
    ({"lon": 116, "lat": 39.9, "crs": "mars2"}, "crs", "unknown CRS"),
    ({"lon": 116, "lat": 39.9, "as_of": "2021-02-30"}, "as_of", "not a YYYY-MM-DD date"),
    ({"lon": 116, "lat": 39.9, "as_of": "yesterday"}, "as_of", "not a YYYY-MM-DD date"),
    ({"lon": 116, "lat": 39.9, "layers": "livestock_ban,farms"}, "layers", "unknown layer(s) farms"),
    ({"lon": 116, "lat": 39.9, "layers": ","}, "layers", "empty"),
    ({"lon": 116, "lat": 39.9, "near": -5}, "near", "0 to 50000"),
    ({"lon": 116, "lat": 39.9, "near": "nan"}, "near", "0 to 50000"),
    ({"lon": 116, "lat": 39.9, "lang": "fr"}, "lang", "use zh or en"),
    ({"lon": 10_000_000, "lat": 39.9, "crs": "EPSG:4548"}, "lon", "EPSG:4548"),
])
def test_bad_check_parameters_are_422_naming_the_field(sample_client, params, field, message):
    answer = check(sample_client, **params)
    assert answer.status_code == 422
    errors = answer.json()["detail"]
    assert any(e["loc"] == ["query", field] and message in e["msg"] for e in errors), errors


def test_every_bad_parameter_is_listed_in_one_422(sample_client):
    answer = check(sample_client, lon=116, lat=39.9, crs="mars2", as_of="tomorrow", lang="fr", near=-1)
    assert answer.status_code == 422
    assert [e["loc"][1] for e in answer.json()["detail"]] == ["crs", "as_of", "lang", "near"]


def test_service_answers_from_a_new_data_version_without_restart(sample_client, tmp_path, sample_zones):
    from geo.store import ZoneStore

    before = check(sample_client, lon=116.05, lat=39.92).json()
    moved = sample_zones.copy()
    moved.loc[moved["zone_id"] == "t-square", "geometry"] = shapely.box(116.5, 39.9, 116.6, 40.0)
    ZoneStore(tmp_path / "store" / "zones.gpkg").save(moved, action="edit")
    wait_for_data_version(sample_client, "v2-")
    after = check(sample_client, lon=116.05, lat=39.92).json()
    assert inside_ids(before) == ["t-square"] and inside_ids(after) == []
    assert after["data_version"].startswith("v2-")


# ---------------------------------------------------------------- POST /v1/check/batch


def random_points(n, seed=5):
    rng = np.random.default_rng(seed)
    lon, lat = rng.uniform(115.98, 116.32, n), rng.uniform(39.88, 40.07, n)
    lon[:4], lat[:4] = [116.0, 116.10, 116.24, 116.25], [39.95, 39.91, 39.95, 39.95]  # edges, hole ring, hole
    return lon, lat


def csv_body(lon, lat, ids=None) -> str:
    rows = ["id,lon,lat"] + [f"{ids[i] if ids else f'p{i}'},{float(x)!r},{float(y)!r}"
                             for i, (x, y) in enumerate(zip(lon, lat, strict=True))]
    return "\n".join(rows) + "\n"


def post_batch(client, body, content_type="text/csv", **params):
    return client.post("/v1/check/batch", params=params, content=body.encode() if isinstance(body, str) else body,
                       headers={"content-type": content_type})


def test_batch_equals_single_answers_point_for_point(sample_client):
    lon, lat = random_points(60)
    params = {"as_of": "2020-06-01", "near": 2000}
    batch = post_batch(sample_client, csv_body(lon, lat), detail="true", **params)
    assert batch.status_code == 200
    body = batch.json()
    assert body["count"] == 60 and body["as_of"] == "2020-06-01" and body["crs"] == "wgs84"
    # the points lie in 门头沟 and 海淀: the batch lists those districts' undigitised zones once
    assert body["not_digitised"] == bundled_not_digitised("110108") + bundled_not_digitised("110109")
    assert sum(bool(r["zone_ids"]) for r in body["results"]) > 10  # the sample covers many inside points
    for i, result in enumerate(body["results"]):
        single = check(sample_client, lon=lon[i], lat=lat[i], **params).json()
        assert result["id"] == f"p{i}"
        assert result["zone_ids"] == inside_ids(single)
        assert (result["point"], result["inside"], result["nearby"]) == (single["point"], single["inside"],
                                                                          single["nearby"])


def test_batch_geojson_gives_the_same_zone_ids_as_csv(sample_client):
    lon, lat = random_points(40, seed=9)
    features = [{"type": "Feature", "id": f"f{i}", "properties": {},
                 "geometry": {"type": "Point", "coordinates": [x, y]}}
                for i, (x, y) in enumerate(zip(lon.tolist(), lat.tolist(), strict=True))]
    as_geojson = post_batch(sample_client, json.dumps({"type": "FeatureCollection", "features": features}),
                            "application/geo+json").json()
    as_csv = post_batch(sample_client, csv_body(lon, lat)).json()
    assert [r["id"] for r in as_geojson["results"]] == [f"f{i}" for i in range(40)]
    assert [r["zone_ids"] for r in as_geojson["results"]] == [r["zone_ids"] for r in as_csv["results"]]
    assert set(as_csv["results"][0]) == {"id", "zone_ids"}  # no details unless asked


def test_batch_in_gcj02_with_layers_and_without_id_column(sample_client):
    x, y = geocrs.from_wgs84([116.097, 116.25], [39.92, 39.92], "gcj02")
    body = "lat,lon,name\n" + "".join(f"{float(b)!r},{float(a)!r},n\n" for a, b in zip(x, y, strict=True))
    answer = post_batch(sample_client, body, crs="gcj02", layers="livestock_ban", as_of="2022-01-01").json()
    assert [(r["id"], r["zone_ids"]) for r in answer["results"]] == [(2, ["t-square"]), (3, [])]


def test_batch_disclaimer_names_the_zones_found(sample_client):
    answer = post_batch(sample_client, csv_body([116.05], [39.92]), lang="en", as_of="2022-01-01").json()
    assert "(t-square): approximate" in answer["disclaimer"]


def test_batch_over_the_point_limit_is_413_naming_the_limit(sample_client):
    body = "lon,lat\n" + "116.05,39.92\n" * 100_001
    answer = post_batch(sample_client, body)
    assert answer.status_code == 413
    assert "100000" in answer.json()["detail"]


def test_batch_at_the_point_limit_is_answered(sample_client):
    answer = post_batch(sample_client, "lon,lat\n" + "116.05,39.92\n" * 100_000, as_of="2022-01-01")
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert len(results) == 100_000 and results[-1] == {"id": 100_001, "zone_ids": ["t-square"]}


def test_batch_body_over_the_byte_limit_is_413(tmp_path, sample_zones):
    seed = tmp_path / "sample.geojson"
    from geo.schema import zones_to_geojson

    seed.write_text(json.dumps(zones_to_geojson(sample_zones)), encoding="utf-8")
    with _client_for(tmp_path, seed, max_upload_bytes=1000) as client:
        answer = post_batch(client, "lon,lat\n" + "116.05,39.92\n" * 200)
    assert answer.status_code == 413 and "1000 bytes" in answer.json()["detail"]


@pytest.mark.parametrize(("body", "content_type", "params", "loc", "message"), [
    ("id,lon,lat\na,116.0,39.9\nb,116.1,north\n", "text/csv", {}, ["body", "row", 3], "row 3: lat 'north' is not a number"),
    ("id,lon,lat\na,116.0,39.9\n\nc,nan,39.9\n", "text/csv", {}, ["body", "row", 4], "row 4: lon must be a finite"),
    ("id,lon,lat\na,116.0\n", "text/csv", {}, ["body", "row", 2], "row 2: has 2 column(s)"),
    ("id,lon,lat\na,116.0,39.9\nb,39.9,116.0\n", "text/csv", {}, ["body", "row", 3], "did you swap lon and lat"),
    ("id,lon,lat\na,500000,4400000\n", "text/csv", {"crs": "EPSG:4326"}, ["body", "row", 2], "row 2:"),
    ("x_coord,y_coord\n1,2\n", "text/csv", {}, ["body", "header"], "header row naming lon and lat"),
    ("", "text/csv", {}, ["body", "header"], "header row"),
    ("lon,lat\n", "text/csv", {}, ["body"], "no points"),
    ('{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": '
     '{"type": "LineString", "coordinates": [[116, 39.9], [116.1, 39.9]]}}]}',
     "application/geo+json", {}, ["body", "features", 0], "features[0]: geometry must be a Point, got LineString"),
    ('{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": '
     '{"type": "Point", "coordinates": [116, "39.9"]}}]}',
     "application/geo+json", {}, ["body", "features", 0], "y '39.9' is not a number"),
    ('{"type": "Point", "coordinates": [116, 39.9]}', "application/json", {}, ["body"], "FeatureCollection"),
    ('{"type": "FeatureCollection", ', "application/json", {}, ["body"], "not valid JSON"),
    (b"lon,lat\n\xff\xfe,1\n", "text/csv", {}, ["body"], "not UTF-8"),
])
def test_bad_batch_bodies_are_422_naming_the_row(sample_client, body, content_type, params, loc, message):
    answer = post_batch(sample_client, body, content_type, **params)
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["detail"]
    assert error["loc"] == loc and message in error["msg"], error


def test_batch_query_parameters_are_checked_like_check(sample_client):
    answer = post_batch(sample_client, csv_body([116.0], [39.9]), crs="nowhere")
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", "crs"]


# ---------------------------------------------------------------- POST /v1/check/site


def post_site(client, geometry, **params):
    return client.post("/v1/check/site", params=params, json=geometry)


def test_site_half_inside_the_square_reports_geodesic_overlap_and_shares(sample_client):
    site = shapely.box(116.05, 39.91, 116.15, 39.92)  # the east half lies outside every zone
    answer = post_site(sample_client, shapely.geometry.mapping(site), as_of="2022-01-01").json()
    site_m2 = abs(GEOD.geometry_area_perimeter(site)[0])
    half_m2 = abs(GEOD.geometry_area_perimeter(shapely.box(116.05, 39.91, 116.10, 39.92))[0])
    square_m2 = abs(GEOD.geometry_area_perimeter(shapely.box(116.0, 39.9, 116.1, 40.0))[0])
    assert answer["site"]["area_m2"] == pytest.approx(site_m2, abs=0.1)
    assert answer["site"]["crs"] == "wgs84"
    [zone] = answer["zones"]
    assert zone["zone_id"] == "t-square" and zone["source"]["doc_no"] == "测试〔2020〕1号"
    assert zone["overlap_area_m2"] == pytest.approx(half_m2, abs=0.1)
    assert zone["share_of_site"] == pytest.approx(half_m2 / site_m2, abs=1e-6)
    assert zone["share_of_zone"] == pytest.approx(half_m2 / square_m2, abs=1e-6)
    assert "t-square" in answer["disclaimer"] and answer["data_version"].startswith("v1-")
    assert answer["not_digitised"] == bundled_not_digitised("110109")


def test_site_as_a_feature_in_gcj02_is_converted_before_overlaying(sample_client):
    wgs84 = shapely.box(116.06, 39.91, 116.08, 39.93)
    gcj = shapely.transform(wgs84, lambda c: np.column_stack(geocrs.from_wgs84(c[:, 0], c[:, 1], "gcj02")))
    feature = {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(gcj)}
    answer = post_site(sample_client, feature, crs="gcj02", as_of="2022-01-01").json()
    [zone] = answer["zones"]
    assert zone["share_of_site"] == pytest.approx(1.0, abs=1e-6)
    assert answer["site"]["area_m2"] == pytest.approx(abs(GEOD.geometry_area_perimeter(wgs84)[0]), rel=1e-5)


def test_site_lists_overlapping_zones_largest_overlap_first(sample_client):
    site = shapely.box(116.08, 39.94, 116.12, 39.99)  # mostly in the repealed zone, partly in the square
    answer = post_site(sample_client, shapely.geometry.mapping(site), as_of="2020-06-01").json()
    overlaps = [z["overlap_area_m2"] for z in answer["zones"]]
    assert [z["zone_id"] for z in answer["zones"]] == ["t-repealed", "t-square"] and overlaps == sorted(overlaps)[::-1]


@pytest.mark.parametrize(("geometry", "message"), [
    ({"type": "Polygon", "coordinates": [[[116.0, 39.9], [116.1, 40.0], [116.1, 39.9], [116.0, 40.0], [116.0, 39.9]]]},
     "Self-intersection[116.05 39.95]"),
    ({"type": "Polygon", "coordinates": [[[116.0, 39.9], [116.1, 39.9]]]}, "malformed"),
    ({"type": "Point", "coordinates": [116.0, 39.9]}, "got Point"),
    ({"type": "Feature", "geometry": None}, "got NoneType"),
    ({"type": "Polygon", "coordinates": []}, "empty"),
    ({"type": "Polygon", "coordinates": [[[116.0, 39.9], [216.1, 39.9], [116.1, 40.0], [116.0, 39.9]]]}, "outside"),
])
def test_invalid_sites_are_422_with_the_reason_and_never_repaired(sample_client, geometry, message):
    answer = post_site(sample_client, geometry)
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["detail"][0]["msg"]


def test_site_body_that_is_not_json_is_422(sample_client):
    answer = sample_client.post("/v1/check/site", content=b"POLYGON((116 39.9, 116.1 39.9, 116.1 40, 116 39.9))")
    assert answer.status_code == 422 and "not GeoJSON" in answer.json()["detail"][0]["msg"]


# ---------------------------------------------------------------- /v1/zones


def zone_ids_of(client, **params) -> list[str]:
    answer = client.get("/v1/zones", params=params)
    assert answer.status_code == 200, answer.text
    return [z["zone_id"] for z in answer.json()["zones"]]


def test_zone_catalogue_filters_by_layer_district_text_and_date(sample_client):
    assert zone_ids_of(sample_client) == ["t-square", "t-holed", "t-repealed"]
    assert zone_ids_of(sample_client, layer="water_source") == ["t-holed"]
    assert zone_ids_of(sample_client, district="门头沟") == ["t-square", "t-holed", "t-repealed"]
    assert zone_ids_of(sample_client, district="110109", layer="livestock_ban") == ["t-square", "t-repealed"]
    assert zone_ids_of(sample_client, q="测试区t-holed") == ["t-holed"]
    assert zone_ids_of(sample_client, q="TEST ZONE T-REP") == ["t-repealed"]
    assert zone_ids_of(sample_client, q="no such words") == []
    assert zone_ids_of(sample_client, as_of="2021-01-01") == ["t-square", "t-holed"]


@pytest.mark.parametrize(("params", "field"), [
    ({"layer": "farms"}, "layer"), ({"district": "朝阳区"}, "district"), ({"as_of": "2021-1-1x"}, "as_of"),
    ({"lang": "de"}, "lang"),
])
def test_bad_zone_catalogue_filters_are_422(sample_client, params, field):
    answer = sample_client.get("/v1/zones", params=params)
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", field]


def test_zone_detail_is_a_feature_with_geometry_and_provenance(sample_client):
    feature = sample_client.get("/v1/zones/t-holed").json()
    assert feature["type"] == "Feature" and feature["id"] == "t-holed"
    assert feature["properties"]["source"]["doc_no"] == "测试〔2020〕1号"
    assert feature["properties"]["method"] == "test fixture" and feature["properties"]["parent_id"] == "t-square"
    geometry = shapely.geometry.shape(feature["geometry"])
    assert len(geometry.interiors) == 1 and geometry.area == pytest.approx(0.01 - 0.0004)
    assert "近似边界" in feature["disclaimer"]


def test_unknown_zone_is_404(sample_client):
    answer = sample_client.get("/v1/zones/no-such-zone")
    assert answer.status_code == 404 and "no-such-zone" in answer.json()["detail"]


# ---------------------------------------------------------------- bundled data


def test_a_point_in_the_yongding_source_zone_names_its_document(client, bundled_zones):
    zones = bundled_zones[bundled_zones["zone_id"].str.startswith("mtg-")
                         & bundled_zones["name_zh"].str.contains("永定河")
                         & (bundled_zones["source_doc_no"] == "门政发〔2020〕9号")]
    assert len(zones), "no 永定河 zone of 门政发〔2020〕9号 in the bundled data"
    zone = zones.iloc[0]
    point = shapely.point_on_surface(zone.geometry)
    answer = check(client, lon=point.x, lat=point.y).json()
    found = {z["zone_id"]: z for z in answer["inside"]}
    assert zone["zone_id"] in found
    assert found[zone["zone_id"]]["source"]["doc_no"] == "门政发〔2020〕9号"
    assert found[zone["zone_id"]]["distance_to_boundary_m"] > 0


def test_bundled_batch_and_single_answers_agree(client, bundled_zones):
    rng = np.random.default_rng(11)
    minx, miny, maxx, maxy = bundled_zones.total_bounds
    lon, lat = rng.uniform(minx, maxx, 25), rng.uniform(miny, maxy, 25)
    batch = post_batch(client, csv_body(lon, lat), detail="true").json()
    assert any(r["zone_ids"] for r in batch["results"])
    for i, result in enumerate(batch["results"]):
        single = check(client, lon=lon[i], lat=lat[i]).json()
        assert (result["inside"], result["nearby"]) == (single["inside"], single["nearby"])


# ---------------------------------------------------------------- CLI twins


def run_cli(monkeypatch, capsys, *args):
    monkeypatch.setattr("sys.argv", ["zoning", *args])
    code = 0
    try:
        cli_main()
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def sample_store(tmp_path, sample_zones):
    from geo.store import ZoneStore

    path = tmp_path / "cli" / "zones.gpkg"
    ZoneStore(path).save(sample_zones, action="init")
    return path


def test_cli_check_json_is_the_api_answer(monkeypatch, capsys, sample_store, sample_client, tmp_path):
    code, out, _ = run_cli(monkeypatch, capsys, "check", "116.05", "39.92", "--as-of", "2022-01-01", "--near", "500",
                           "--json", "--store", str(sample_store))
    assert code == 0
    api = check(sample_client, lon=116.05, lat=39.92, as_of="2022-01-01", near=500).json()
    cli = json.loads(out)
    assert {k: v for k, v in cli.items() if k != "data_version"} == {k: v for k, v in api.items() if k != "data_version"}


def test_cli_check_prints_a_table_with_the_document_and_disclaimer(monkeypatch, capsys, sample_store):
    from api import cli

    monkeypatch.setattr(cli.console, "width", 200)
    code, out, _ = run_cli(monkeypatch, capsys, "check", "116.05", "39.92", "--as-of", "2022-01-01",
                           "--store", str(sample_store))
    assert code == 0
    assert "t-square" in out and "测试〔2020〕1号" in out and "禁止规模化畜禽养殖" in out and "法定边界" in out


@pytest.mark.parametrize(("args", "message"), [
    (["check", "116", "nan"], "lat must be a finite number"),
    (["check", "116", "39.9", "--crs", "mars2"], "unknown CRS"),
    (["check", "116", "39.9", "--as-of", "2021-02-30"], "--as-of='2021-02-30' is not a YYYY-MM-DD date"),
    (["check", "116", "39.9", "--layers", "farms"], "unknown layer(s) farms"),
    (["check", "116", "39.9", "--near", "-1"], "--near must be a distance"),
])
def test_cli_check_errors_are_one_line_exit_2(monkeypatch, capsys, sample_store, args, message):
    code, _, err = run_cli(monkeypatch, capsys, *args, "--store", str(sample_store))
    assert code == 2 and message in err and "Traceback" not in err


def test_cli_check_file_writes_one_row_per_point_like_the_batch_api(monkeypatch, capsys, sample_store, sample_client,
                                                                     tmp_path):
    lon, lat = random_points(30)
    source = tmp_path / "points.csv"
    source.write_text(csv_body(lon, lat), encoding="utf-8")
    out = tmp_path / "out.csv"
    code, stdout, _ = run_cli(monkeypatch, capsys, "check-file", str(source), "--out", str(out), "--as-of",
                              "2020-06-01", "--store", str(sample_store))
    assert code == 0 and "30 points" in stdout
    assert "not digitised in these districts" in stdout and bundled_not_digitised("110109")[0]["zone_id"] in stdout
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    batch = post_batch(sample_client, csv_body(lon, lat), as_of="2020-06-01").json()["results"]
    assert [r["id"] for r in rows] == [b["id"] for b in batch]
    assert [r["zone_ids"].split(";") if r["zone_ids"] else [] for r in rows] == [b["zone_ids"] for b in batch]
    assert all(r["as_of"] == "2020-06-01" and r["crs"] == "wgs84" for r in rows)


def test_cli_check_file_reads_geojson_in_bd09(monkeypatch, capsys, sample_store, tmp_path):
    x, y = geocrs.from_wgs84([116.097], [39.92], "bd09")
    source = tmp_path / "points.geojson"
    source.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "farm", "properties": {}, "geometry": {"type": "Point", "coordinates": [x[0], y[0]]}}]}))
    out = tmp_path / "out.csv"
    code, _, _ = run_cli(monkeypatch, capsys, "check-file", str(source), "--out", str(out), "--crs", "bd09",
                         "--as-of", "2022-01-01", "--store", str(sample_store))
    assert code == 0
    [row] = csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")))
    assert row["id"] == "farm" and row["zone_ids"] == "t-square"
    assert float(row["lon_wgs84"]) == pytest.approx(116.097, abs=1e-7)


def test_cli_check_file_bad_row_exits_2_and_writes_nothing(monkeypatch, capsys, sample_store, tmp_path):
    source = tmp_path / "points.csv"
    source.write_text("id,lon,lat\na,116.0,39.9\nb,116.0,95\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    out.write_text("previous result\n")
    code, _, err = run_cli(monkeypatch, capsys, "check-file", str(source), "--out", str(out), "--store",
                           str(sample_store))
    assert code == 2 and "row 3:" in err
    assert out.read_text() == "previous result\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.csv")] == []
