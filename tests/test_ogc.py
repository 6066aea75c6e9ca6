"""OGC API – Features: what QGIS, GDAL and a browser rely on.

Sample zones (tests/conftest.py): t-square and t-repealed (livestock_ban, the latter
repealed on 2021-01-01) and t-holed (water_source, a square with a hole).
"""

from __future__ import annotations

import pyproj
import pytest
import shapely
from shapely.geometry import shape

from tests.conftest import wait_for_data_version

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
HTML_ACCEPT = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def ids(body) -> set[str]:
    return {f["id"] for f in body["features"]}


def items(client, layer="livestock_ban", **params):
    answer = client.get(f"/collections/{layer}/items", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def rel(links, name, media=None):
    found = [link for link in links if link["rel"] == name and (media is None or link["type"] == media)]
    assert found, f"no {name} link in {links}"
    return found[0]["href"]


# ------------------------------------------------------------------ landing, conformance, collections


def test_landing_page_links_the_api_definition_conformance_and_collections(sample_client):
    body = sample_client.get("/").json()
    for name in ("self", "service-desc", "service-doc", "conformance", "data"):
        href = rel(body["links"], name)
        assert sample_client.get(href).status_code == 200, name
    assert body["dataVersion"] == sample_client.get("/healthz").json()["data_version"]
    downloads = {link["href"].rsplit("=", 1)[1] for link in body["links"] if link["rel"] == "enclosure"}
    assert downloads == {"geojson", "gpkg", "shp", "kml", "csv"}


def test_landing_page_in_a_browser_links_collections_map_docs_and_downloads(sample_client):
    answer = sample_client.get("/", headers=HTML_ACCEPT)
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.text
    assert page.index("北京区级规划分区") < page.index("Beijing district planning zones")  # Chinese first
    for target in ("/collections?f=html", 'href="/map"', "/openapi.json", "/docs", "/conformance",
                   "/v1/export?format=gpkg", "/v1/export?format=shp", "OAPIF:"):
        assert target in page, target
    assert "https://cdn" not in page and "//unpkg" not in page


def test_conformance_declares_core_geojson_html_oas30_and_crs():
    from api.ogc import CONFORMANCE

    tails = {uri.rsplit("/", 1)[1] for uri in CONFORMANCE}
    assert tails == {"core", "geojson", "html", "oas30", "crs"}
    assert any("ogcapi-features-2" in uri for uri in CONFORMANCE)


def test_conformance_endpoint_answers_json_and_html(sample_client):
    assert "conformsTo" in sample_client.get("/conformance").json()
    assert "ogcapi-features-2/1.0/conf/crs" in sample_client.get("/conformance?f=html").text


def test_collections_list_each_layer_with_bilingual_title_extent_and_crs(sample_client, sample_zones):
    body = sample_client.get("/collections").json()
    by_id = {c["id"]: c for c in body["collections"]}
    assert list(by_id) == ["livestock_ban", "water_source"]  # only layers with zones, registry order
    ban = by_id["livestock_ban"]
    assert ban["title"] == "畜禽养殖禁养区 / Livestock farming ban zones"
    assert "禁止规模化畜禽养殖" in ban["description"] and "prohibited" in ban["description"]
    expected = sample_zones[sample_zones["layer"] == "livestock_ban"].total_bounds
    assert ban["extent"]["spatial"]["bbox"][0] == pytest.approx(list(expected), abs=1e-7)
    assert ban["extent"]["spatial"]["crs"] == CRS84
    # t-square is still in force, so the interval is open-ended.
    assert ban["extent"]["temporal"]["interval"] == [["2020-02-25T00:00:00+08:00", None]]
    assert ban["storageCrs"] == CRS84
    assert ban["crs"][0] == CRS84
    assert {EPSG + "4490", EPSG + "4548", EPSG + "3857"} <= set(ban["crs"])
    assert ban["itemType"] == "feature"
    items_href = rel(ban["links"], "items", "application/geo+json")
    assert sample_client.get(items_href).status_code == 200


def test_collection_temporal_extent_closes_when_every_zone_has_ended(tmp_path, sample_zones):
    import json

    from geo import schema
    from tests.conftest import _client_for

    ended = sample_zones[sample_zones["zone_id"] == "t-repealed"]
    seed = tmp_path / "seed.geojson"
    seed.write_text(json.dumps(schema.zones_to_geojson(ended), ensure_ascii=False), encoding="utf-8")
    with _client_for(tmp_path, seed) as client:
        interval = client.get("/collections/livestock_ban").json()["extent"]["temporal"]["interval"]
    assert interval == [["2020-02-25T00:00:00+08:00", "2021-01-01T00:00:00+08:00"]]


def test_unknown_collection_is_404_naming_the_collections(sample_client):
    answer = sample_client.get("/collections/eco_redline/items")
    assert answer.status_code == 404
    assert "livestock_ban" in answer.json()["detail"]


def test_collection_schema_types_numbers_and_dates_for_gdal(sample_client):
    collection = sample_client.get("/collections/livestock_ban").json()
    href = rel(collection["links"], "describedBy", "application/schema+json")
    answer = sample_client.get(href)
    assert answer.headers["content-type"].startswith("application/schema+json")
    props = answer.json()["properties"]["properties"]["properties"]
    assert props["stated_area_km2"]["type"] == "number"
    assert props["effective_to"]["format"] == "date"
    assert props["rules"]["type"] == "array"


# ------------------------------------------------------------------ items: encoding


def test_items_are_rfc7946_geojson_with_counts_timestamp_and_content_crs(sample_client):
    answer = sample_client.get("/collections/livestock_ban/items")
    assert answer.headers["content-type"] == "application/geo+json"
    assert answer.headers["content-crs"] == f"<{CRS84}>"
    body = answer.json()
    assert body["type"] == "FeatureCollection"
    assert body["numberMatched"] == body["numberReturned"] == 2
    assert body["timeStamp"].endswith("Z")
    feature = next(f for f in body["features"] if f["id"] == "t-square")
    assert feature["properties"]["name_zh"] == "测试区t-square"
    assert feature["properties"]["rules"][0]["code"] == "ban_scale_livestock"
    geom = shape(feature["geometry"])
    assert geom.equals(shapely.box(116.00, 39.90, 116.10, 40.00))
    assert geom.exterior.is_ccw  # RFC 7946 right-hand rule


def test_holes_are_clockwise_in_rfc7946_output(sample_client):
    feature = items(sample_client, "water_source")["features"][0]
    geom = shape(feature["geometry"])
    assert geom.exterior.is_ccw and not geom.interiors[0].is_ccw


def test_single_item_has_links_and_404s_outside_its_collection(sample_client):
    answer = sample_client.get("/collections/water_source/items/t-holed")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/geo+json"
    feature = answer.json()
    assert feature["id"] == "t-holed" and feature["properties"]["parent_id"] == "t-square"
    assert rel(feature["links"], "collection").endswith("/collections/water_source")
    assert sample_client.get("/collections/livestock_ban/items/t-holed").status_code == 404
    assert sample_client.get("/collections/water_source/items/nope").status_code == 404


# ------------------------------------------------------------------ items: paging


def test_paging_with_next_and_prev_links_visits_every_zone_once(sample_client):
    first = items(sample_client, limit=1)
    assert first["numberReturned"] == 1 and first["numberMatched"] == 2
    assert not [link for link in first["links"] if link["rel"] == "prev"]
    second = sample_client.get(rel(first["links"], "next", "application/geo+json")).json()
    assert second["numberReturned"] == 1
    assert ids(first) | ids(second) == {"t-square", "t-repealed"}
    assert not [link for link in second["links"] if link["rel"] == "next"]
    back = sample_client.get(rel(second["links"], "prev")).json()
    assert ids(back) == ids(first)


def test_limit_defaults_to_100_and_is_clamped_to_10000(sample_client):
    page = items(sample_client, limit=50_000, offset=1)
    assert page["numberReturned"] == 1
    assert "limit=10000" in rel(page["links"], "prev")
    from api.ogc import DEFAULT_LIMIT, MAX_LIMIT

    assert (DEFAULT_LIMIT, MAX_LIMIT) == (100, 10_000)


def test_offset_past_the_end_returns_no_features_but_the_count(sample_client):
    page = items(sample_client, offset=10)
    assert page["features"] == [] and page["numberMatched"] == 2


# ------------------------------------------------------------------ items: filters


def test_bbox_tests_the_real_geometry_not_its_bounding_box(sample_client):
    # Inside the hole of t-holed: its bounding box covers the query box, its area does not.
    assert ids(items(sample_client, "water_source", bbox="116.245,39.945,116.255,39.955")) == set()
    assert ids(items(sample_client, "water_source", bbox="116.235,39.945,116.255,39.955")) == {"t-holed"}


def test_bbox_selects_zones_it_touches(sample_client):
    assert ids(items(sample_client, bbox="115.9,39.8,116.02,39.92")) == {"t-square"}
    assert ids(items(sample_client, bbox="116.12,40.02,116.2,40.1")) == {"t-repealed"}
    assert ids(items(sample_client, bbox="100,30,101,31")) == set()


def test_bbox_crs_accepts_gauss_kruger_in_northing_easting_order(sample_client):
    to_gk = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:4548", always_xy=True)
    e1, n1 = to_gk.transform(116.01, 39.91)
    e2, n2 = to_gk.transform(116.02, 39.92)
    body = items(sample_client, bbox=f"{n1},{e1},{n2},{e2}", **{"bbox-crs": EPSG + "4548"})
    assert ids(body) == {"t-square"}


def test_bbox_crs_epsg4326_is_latitude_first(sample_client):
    body = items(sample_client, bbox="39.91,116.01,39.92,116.02", **{"bbox-crs": EPSG + "4326"})
    assert ids(body) == {"t-square"}


@pytest.mark.parametrize(("when", "expected"), [
    ("2020-06-01", {"t-square", "t-repealed"}),
    ("2020-12-31", {"t-square", "t-repealed"}),
    ("2021-01-01", {"t-square"}),  # effective_to is the first day no longer in force
    ("2019-01-01", set()),
    ("2020-12-31T17:00:00Z", {"t-square"}),  # 2021-01-01 01:00 in Beijing
    ("2020-12-31T15:00:00Z", {"t-square", "t-repealed"}),  # 23:00 in Beijing
    ("../2020-01-01", set()),
    ("2021-06-01/..", {"t-square"}),
    ("2020-12-01/2022-01-01", {"t-square", "t-repealed"}),
    ("../..", {"t-square", "t-repealed"}),
])
def test_datetime_selects_zones_in_force_then(sample_client, when, expected):
    assert ids(items(sample_client, datetime=when)) == expected


def test_property_filters_on_district_kind_and_accuracy(sample_client):
    assert ids(items(sample_client, district_code="110109")) == {"t-square", "t-repealed"}
    assert ids(items(sample_client, district_code="110117,110118")) == set()
    assert ids(items(sample_client, accuracy="approximate", kind="test")) == {"t-square", "t-repealed"}
    assert ids(items(sample_client, accuracy="official")) == set()


@pytest.mark.parametrize(("params", "named"), [
    ({"limit": "abc"}, "limit"),
    ({"limit": "0"}, "limit"),
    ({"limit": "-5"}, "limit"),
    ({"limit": "2.5"}, "limit"),
    ({"offset": "-1"}, "offset"),
    ({"bbox": "1,2,3"}, "bbox"),
    ({"bbox": "a,b,c,d"}, "bbox"),
    ({"bbox": "116,40,117,39"}, "bbox"),
    ({"bbox": "116,nan,117,40"}, "bbox"),
    ({"bbox": "39,116,40,117"}, "bbox"),  # lat/lon swapped: latitude 116 is impossible
    ({"bbox-crs": "EPSG:4326", "bbox": "1,2,3,4"}, "bbox-crs"),
    ({"crs": EPSG + "2385"}, "crs"),
    ({"crs": "gcj02"}, "crs"),
    ({"datetime": "yesterday"}, "datetime"),
    ({"datetime": "2022-01-01/2021-01-01"}, "datetime"),
    ({"datetime": "2021-01-01/2021-02-01/2021-03-01"}, "datetime"),
    ({"accuracy": "exact"}, "accuracy"),
    ({"district_code": "门头沟"}, "district_code"),
    ({"f": "xml"}, "f"),
    ({"colour": "red"}, "colour"),
])
def test_invalid_item_parameters_are_400_naming_the_parameter(sample_client, params, named):
    answer = sample_client.get("/collections/livestock_ban/items", params=params)
    assert answer.status_code == 400, answer.text
    assert named in answer.json()["detail"]


def test_projected_bbox_outside_the_crs_area_is_a_400(sample_client):
    answer = sample_client.get("/collections/livestock_ban/items",
                               params={"bbox": "0,0,10,10", "bbox-crs": EPSG + "4548"})
    assert answer.status_code == 400 and "bbox" in answer.json()["detail"]


# ------------------------------------------------------------------ items: CRS


def test_crs_4548_answers_northing_easting_in_metres(sample_client):
    answer = sample_client.get("/collections/livestock_ban/items/t-square", params={"crs": EPSG + "4548"})
    assert answer.headers["content-crs"] == f"<{EPSG}4548>"
    ring = answer.json()["geometry"]["coordinates"][0]
    to_gk = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:4548", always_xy=True)
    expected = {tuple(round(v, 3) for v in to_gk.transform(x, y)[::-1])
                for x, y in shapely.box(116.00, 39.90, 116.10, 40.00).exterior.coords}
    assert {tuple(c) for c in ring} == expected


@pytest.mark.parametrize(("code", "first_axis"), [("4326", "lat"), ("4490", "lat"), ("3857", "x")])
def test_crs_output_follows_the_crs_axis_order(sample_client, code, first_axis):
    body = items(sample_client, crs=EPSG + code)
    ring = next(f for f in body["features"] if f["id"] == "t-square")["geometry"]["coordinates"][0]
    if first_axis == "lat":
        assert {tuple(c) for c in ring} == {(39.9, 116.0), (39.9, 116.1), (40.0, 116.1), (40.0, 116.0)}
    else:
        x, y = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(116.0, 39.9)
        assert [x, y] == pytest.approx(min(ring), abs=1e-3)


# ------------------------------------------------------------------ negotiation and HTML


def test_accept_header_and_f_parameter_choose_json_or_html(sample_client):
    url = "/collections/livestock_ban/items"
    assert sample_client.get(url).headers["content-type"] == "application/geo+json"
    assert sample_client.get(url, headers={"accept": "application/geo+json"}).headers[
        "content-type"] == "application/geo+json"
    assert sample_client.get(url, headers=HTML_ACCEPT).headers["content-type"].startswith("text/html")
    assert sample_client.get(url + "?f=json", headers=HTML_ACCEPT).headers["content-type"] == "application/geo+json"
    assert sample_client.get(url + "?f=html").headers["content-type"].startswith("text/html")
    assert sample_client.get("/collections", headers={"accept": "application/json"}).headers[
        "content-type"] == "application/json"


def test_items_page_lists_zones_with_links_to_item_pages_and_the_map(sample_client):
    page = sample_client.get("/collections/livestock_ban/items?f=html").text
    assert "测试区t-square" in page and "Test zone t-square" in page
    assert "/map?zone=t-square" in page
    assert "/collections/livestock_ban/items/t-square?f=html" in page
    assert page.index("畜禽养殖禁养区") < page.index("Livestock farming ban zones")


def test_items_page_pages_with_html_links(sample_client):
    page = sample_client.get("/collections/livestock_ban/items?f=html&limit=1").text
    assert "下一页 Next" in page and "offset=1" in page


def test_item_page_shows_citation_accuracy_warning_rules_and_map_link(sample_client):
    page = sample_client.get("/collections/livestock_ban/items/t-square", headers=HTML_ACCEPT).text
    for text in ("测试〔2020〕1号", "测试文件", "四(一)", "近似边界", "not the legal line",
                 "禁止规模化畜禽养殖", "No scale livestock farms", "/map?zone=t-square", "<svg"):
        assert text in page, text


def test_collection_and_collections_pages_render_in_html(sample_client):
    page = sample_client.get("/collections", headers=HTML_ACCEPT).text
    assert "畜禽养殖禁养区" in page and "饮用水水源保护区" in page
    page = sample_client.get("/collections/water_source?f=html").text
    assert "饮用水水源保护区" in page and "/v1/export?format=shp&amp;layers=water_source" in page


# ------------------------------------------------------------------ OpenAPI (oas30)


def test_openapi_documents_the_item_query_parameters(sample_client):
    api = sample_client.get("/openapi.json").json()
    assert api["openapi"].startswith("3.")
    params = {p["name"] for p in api["paths"]["/collections/{layer}/items"]["get"]["parameters"]}
    assert {"bbox", "bbox-crs", "crs", "datetime", "limit", "offset", "f", "district_code", "kind",
            "accuracy"} <= params


def test_a_new_data_version_shows_up_in_items_without_restart(sample_client, tmp_path, sample_zones):
    from geo.store import ZoneStore

    ZoneStore(tmp_path / "store" / "zones.gpkg").save(sample_zones.iloc[:2], action="edit")
    wait_for_data_version(sample_client, "v2-")
    body = items(sample_client)
    assert ids(body) == {"t-square"} and body["dataVersion"].startswith("v2-")


# ------------------------------------------------------------------ the bundled zones


def test_every_bundled_zone_is_reachable_by_paging_its_collection(client, bundled_zones):
    collections = client.get("/collections").json()["collections"]
    assert {c["id"] for c in collections} == set(bundled_zones["layer"])
    seen = []
    for collection in collections:
        url = rel(collection["links"], "items", "application/geo+json") + "&limit=2"
        while url:
            page = client.get(url).json()
            assert page["numberMatched"] == collection["zoneCount"]
            seen += [(collection["id"], f["id"]) for f in page["features"]]
            url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert sorted(seen) == sorted(zip(bundled_zones["layer"], bundled_zones["zone_id"], strict=True))


def test_bundled_collection_extents_contain_their_zones(client, bundled_zones):
    for collection in client.get("/collections").json()["collections"]:
        minx, miny, maxx, maxy = collection["extent"]["spatial"]["bbox"][0]
        zones = bundled_zones[bundled_zones["layer"] == collection["id"]]
        assert shapely.box(minx - 1e-7, miny - 1e-7, maxx + 1e-7, maxy + 1e-7).covers(zones.union_all())


def test_every_bundled_zone_page_shows_its_name_citation_and_accuracy(client, bundled_zones):
    from geo.schema import ACCURACY_TEXT

    for zone in bundled_zones.itertuples():
        answer = client.get(f"/collections/{zone.layer}/items/{zone.zone_id}?f=html")
        assert answer.status_code == 200, zone.zone_id
        assert zone.name_zh in answer.text and ACCURACY_TEXT[zone.accuracy][0] in answer.text
        if zone.layer != "admin":
            assert zone.source_doc_no in answer.text


def test_bbox_around_a_bundled_zone_finds_it(client, bundled_zones):
    for zone in bundled_zones.itertuples():
        x, y = shapely.get_coordinates(zone.geometry.representative_point())[0]
        body = items(client, zone.layer, bbox=f"{x - 1e-5},{y - 1e-5},{x + 1e-5},{y + 1e-5}", limit=10_000)
        assert zone.zone_id in ids(body)


# ------------------------------------------------------------------ no user input gives a 500


ITEM_PARAMS = ["bbox", "bbox-crs", "crs", "datetime", "limit", "offset", "district_code", "kind", "accuracy", "f"]


def test_no_item_parameter_value_gives_a_server_error(sample_client):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    values = st.one_of(st.text(max_size=40), st.from_regex(r"-?\d{1,25}(\.\d*)?(,-?\d{1,12}(\.\d*)?){0,6}"),
                       st.sampled_from(["..", "../..", "1e999,0,0,0", "2020-02-30", "/", ",,,", "nan"]))

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.dictionaries(st.sampled_from(ITEM_PARAMS), values, min_size=1, max_size=3))
    def check(params):
        answer = sample_client.get("/collections/livestock_ban/items", params=params)
        assert answer.status_code in (200, 400), (params, answer.text)

    check()


def test_no_export_parameter_value_gives_a_server_error(sample_client):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    values = st.one_of(st.text(max_size=30), st.sampled_from(["geojson", "kml", "EPSG:4548", "EPSG:2000",
                                                             "110109", "2020-01-01", "admin"]))

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.dictionaries(st.sampled_from(["format", "layers", "district", "crs", "as_of"]), values, max_size=4))
    def check(params):
        answer = sample_client.get("/v1/export", params=params)
        assert answer.status_code in (200, 400, 404), (params, answer.text)

    check()
