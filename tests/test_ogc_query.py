"""OGC API queries on the server: datetime on the issue date, in_force, property filters, CQL2,
sortby, properties/skipGeometry, queryables, the OpenAPI 3.0 document, ETag, gzip and CORS.

Fixture zones (livestock_ban unless said): z2017 issued 2017-03-01, z2020 issued 2020-02-25
(repealed 2021-01-01), z2021 issued 2021-05-10 with two rules, and a water-source zone.
"""

from __future__ import annotations

import json

import pytest
import shapely

from geo import schema
from geo.published import PUBLISHED_COLUMNS
from tests.conftest import _client_for, make_zone, wait_for_data_version

TWO_RULES = [{"code": "a", "text_zh": "禁止甲", "text_en": "No A"}, {"code": "b", "text_zh": "禁止乙", "text_en": "No B"}]


@pytest.fixture
def dated_client(tmp_path):
    zones = schema.zones_from_records([
        make_zone("z2017", shapely.box(116.0, 39.9, 116.1, 40.0), issued_on="2017-03-01",
                  effective_from="2017-03-01", stated_area_km2=5.0, district_code="110108", district_name="海淀区"),
        make_zone("z2020", shapely.box(116.2, 39.9, 116.3, 40.0), issued_on="2020-02-25",
                  effective_from="2020-02-25", effective_to="2021-01-01", stated_area_km2=None),
        make_zone("z2021", shapely.box(116.4, 39.9, 116.5, 40.0), issued_on="2021-05-10",
                  effective_from="2021-06-01", stated_area_km2=2.0, rules=TWO_RULES, name_zh="平谷禁养区"),
        make_zone("w1", shapely.box(116.0, 40.1, 116.1, 40.2), layer="water_source", issued_on="2019-01-01",
                  effective_from="2019-01-01"),
    ])
    seed = tmp_path / "seed.geojson"
    seed.write_text(json.dumps(schema.zones_to_geojson(zones), ensure_ascii=False), encoding="utf-8")
    with _client_for(tmp_path, seed) as client:
        yield client


def ids(client, layer="livestock_ban", **params) -> list[str]:
    answer = client.get(f"/collections/{layer}/items", params=params)
    assert answer.status_code == 200, answer.text
    return [f["id"] for f in answer.json()["features"]]


def bad(client, named: str, **params) -> None:
    answer = client.get("/collections/livestock_ban/items", params=params)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["code"] == "InvalidParameterValue" and named in body["description"], body


# ------------------------------------------------------------------ datetime and in_force


@pytest.mark.parametrize(("when", "expected"), [
    ("2021-01-01T/..", ["z2021"]),  # what GDAL sends for issued_on >= '2021-01-01'
    ("2021-01-01T00:00:00Z/9999-12-31T00:00:00Z", ["z2021"]),  # QGIS, open end written as 9999-12-31
    ("0000-01-01T00:00:00Z/2020-02-25T00:00:00Z", ["z2017", "z2020"]),  # QGIS, open start
    ("../2017-12-31", ["z2017"]),
    ("2020-02-25", ["z2020"]),
    ("2020-02-24T16:00:00Z", ["z2020"]),  # midnight in Beijing
    ("2018-01-01/2020-12-31", ["z2020"]),
])
def test_datetime_selects_by_the_issue_date_in_the_forms_gdal_and_qgis_send(dated_client, when, expected):
    assert ids(dated_client, datetime=when) == expected


def test_collection_declares_issued_on_as_its_temporal_property(dated_client):
    info = dated_client.get("/collections/livestock_ban").json()
    assert info["temporalProperty"] == "issued_on"
    assert info["extent"]["temporal"]["interval"] == [["2017-03-01T00:00:00+08:00", "2021-05-10T00:00:00+08:00"]]
    queryables = dated_client.get("/collections/livestock_ban/queryables").json()
    assert queryables["properties"]["issued_on"]["x-ogc-role"] == "primary-instant"


def test_in_force_keeps_the_validity_semantics(dated_client):
    assert ids(dated_client, in_force="2020-06-01") == ["z2017", "z2020"]
    assert ids(dated_client, in_force="2021-01-01") == ["z2017"]
    assert ids(dated_client, in_force="2021-07-01/..") == ["z2017", "z2021"]


# ------------------------------------------------------------------ property filters, CQL2


def test_any_queryable_is_an_equality_filter(dated_client):
    assert ids(dated_client, issued_on="2021-05-10") == ["z2021"]
    assert ids(dated_client, stated_area_km2="5") == ["z2017"]
    assert ids(dated_client, name_zh="平谷禁养区") == ["z2021"]
    assert ids(dated_client, district_code="110108,110109") == ["z2017", "z2020", "z2021"]
    assert ids(dated_client, district_code="110108") == ["z2017"]
    bad(dated_client, "stated_area_km2", stated_area_km2="big")


@pytest.mark.parametrize(("cql", "expected"), [
    ("issued_on >= '2021-01-01T'", ["z2021"]),  # GDAL's CQL text for a date comparison
    ("issued_on >= DATE('2021-01-01')", ["z2021"]),
    ("issued_on < TIMESTAMP('2020-02-24T16:00:00Z')", ["z2017"]),  # 2020-02-25 00:00 in Beijing
    ("district_code = '110109' AND issued_on >= '2020-01-01'", ["z2020", "z2021"]),
    ("district_code = '110108' OR stated_area_km2 < 3", ["z2017", "z2021"]),
    ("NOT (district_code = '110108')", ["z2020", "z2021"]),
    ("stated_area_km2 IS NULL", ["z2020"]),
    ("effective_to IS NOT NULL", ["z2020"]),
    ("stated_area_km2 BETWEEN 1 AND 3", ["z2021"]),
    ("zone_id IN ('z2017', 'z2021')", ["z2017", "z2021"]),
    ("name_zh LIKE '平谷%'", ["z2021"]),
    ("rules_zh LIKE '%禁止乙%'", ["z2021"]),
    ("S_INTERSECTS(geometry, POINT(116.25 39.95))", ["z2020"]),
    ("S_INTERSECTS(geometry, BBOX(116.05, 39.95, 116.45, 39.96))", ["z2017", "z2020", "z2021"]),
])
def test_cql2_text_filters(dated_client, cql, expected):
    assert ids(dated_client, filter=cql) == expected
    assert ids(dated_client, filter=cql, **{"filter-lang": "cql-text"}) == expected  # GDAL 3.6's name


def test_cql2_json_filter(dated_client):
    expression = {"op": "and", "args": [{"op": ">=", "args": [{"property": "issued_on"}, {"date": "2020-01-01"}]},
                                        {"op": "=", "args": [{"property": "district_code"}, "110109"]}]}
    assert ids(dated_client, filter=json.dumps(expression), **{"filter-lang": "cql2-json"}) == ["z2020", "z2021"]


@pytest.mark.parametrize(("params", "named"), [
    ({"filter": "issued_on >>= 3"}, "filter"),
    ({"filter": "colour = 'red'"}, "colour"),
    ({"filter": "issued_on > 'not a date'"}, "filter"),
    ({"filter": "{", "filter-lang": "cql2-json"}, "filter"),
    ({"filter": "zone_id = 'x'", "filter-lang": "sql"}, "filter-lang"),
    ({"sortby": "colour"}, "sortby"),
    ({"properties": "colour"}, "properties"),
    ({"skipGeometry": "perhaps"}, "skipGeometry"),
    ({"datetime": "2021-01-01T/..", "in_force": "tomorrow"}, "in_force"),
])
def test_bad_query_parameters_are_ogc_400s_naming_them(dated_client, params, named):
    bad(dated_client, named, **params)


# ------------------------------------------------------------------ sortby, properties, skipGeometry


def test_sortby_orders_with_nulls_last(dated_client):
    assert ids(dated_client, sortby="-issued_on") == ["z2021", "z2020", "z2017"]
    assert ids(dated_client, sortby="stated_area_km2") == ["z2021", "z2017", "z2020"]
    assert ids(dated_client, sortby="-stated_area_km2") == ["z2017", "z2021", "z2020"]
    assert ids(dated_client, sortby="district_code,-issued_on") == ["z2017", "z2021", "z2020"]


def test_properties_and_skip_geometry_shape_each_feature(dated_client):
    body = dated_client.get("/collections/livestock_ban/items",
                            params={"properties": "zone_id,rules_zh", "skipGeometry": "true"}).json()
    feature = next(f for f in body["features"] if f["id"] == "z2021")
    assert feature["properties"] == {"zone_id": "z2021", "rules_zh": "1. 禁止甲\n2. 禁止乙"}
    assert feature["geometry"] is None


# ------------------------------------------------------------------ one property set, one type per property


def test_every_collection_has_every_published_property_with_one_type(client):
    schemas = {}
    for collection in client.get("/collections").json()["collections"]:
        layer = collection["id"]
        feature = client.get(f"/collections/{layer}/items", params={"limit": 1}).json()["features"][0]
        assert list(feature["properties"]) == list(PUBLISHED_COLUMNS), layer
        assert feature["properties"]["rules_json"] is not None
        props = client.get(f"/collections/{layer}/schema").json()["properties"]["properties"]["properties"]
        schemas[layer] = {k: (v.get("type"), v.get("format")) for k, v in props.items()}
    first = next(iter(schemas.values()))
    assert all(s == first for s in schemas.values())
    assert first["effective_to"] == ("string", "date") and first["rules_zh"] == ("string", None)


def test_items_carry_the_rules_as_numbered_text(dated_client):
    body = dated_client.get("/collections/livestock_ban/items/z2021").json()
    assert body["properties"]["rules_zh"] == "1. 禁止甲\n2. 禁止乙"
    assert body["properties"]["rules_en"] == "1. No A\n2. No B"
    assert json.loads(body["properties"]["rules_json"]) == TWO_RULES


# ------------------------------------------------------------------ queryables and OpenAPI 3.0


def test_queryables_are_a_json_schema_of_typed_properties(dated_client):
    collection = dated_client.get("/collections/livestock_ban").json()
    href = next(link["href"] for link in collection["links"] if link["rel"].endswith("/queryables"))
    answer = dated_client.get(href)
    assert answer.headers["content-type"].startswith("application/schema+json")
    props = answer.json()["properties"]
    assert props["issued_on"]["format"] == "date" and props["stated_area_km2"]["type"] == "number"
    assert props["geometry"]["x-ogc-role"] == "primary-geometry"
    assert dated_client.get("/collections/nope/queryables").status_code == 404


def test_api_is_openapi_30_with_a_typed_items_path_per_collection(dated_client):
    landing = dated_client.get("/").json()
    desc = next(link for link in landing["links"] if link["rel"] == "service-desc")
    answer = dated_client.get(desc["href"])
    assert answer.headers["content-type"] == desc["type"] == "application/vnd.oai.openapi+json;version=3.0"
    api = answer.json()
    assert api["openapi"].startswith("3.0.")
    assert "/collections/{layer}/items" not in api["paths"]
    for layer in ("livestock_ban", "water_source"):
        params = api["paths"][f"/collections/{layer}/items"]["get"]["parameters"]
        names = {p.get("name") or p["$ref"].rsplit("/", 1)[1] for p in params}
        assert {"bbox", "limit", "datetime", "filter", "filter-lang", "issued_on", "district_code"} <= names
        assert "422" not in api["paths"][f"/collections/{layer}/items"]["get"]["responses"]
    components = api["components"]["parameters"]
    assert components["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 10_000, "default": 100}
    assert components["bbox"]["schema"]["items"] == {"type": "number"}
    assert "cql-text" in components["filter-lang"]["schema"]["enum"]


# ------------------------------------------------------------------ ETag, gzip, CORS


@pytest.mark.parametrize("url", ["/collections", "/collections/livestock_ban", "/collections/livestock_ban/items",
                                 "/collections/livestock_ban/items/z2021"])
def test_etag_and_if_none_match_give_304(dated_client, url):
    first = dated_client.get(url)
    etag = first.headers["etag"]
    again = dated_client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert dated_client.get(url, headers={"If-None-Match": 'W/"other"'}).status_code == 200


def test_etag_changes_with_the_data_version(dated_client, tmp_path):
    from geo.store import ZoneStore

    etag = dated_client.get("/collections/livestock_ban/items").headers["etag"]
    store = ZoneStore(tmp_path / "store" / "zones.gpkg")
    info = store.save(store.load().iloc[:2], action="edit")
    wait_for_data_version(dated_client, info.data_version)
    answer = dated_client.get("/collections/livestock_ban/items", headers={"If-None-Match": etag})
    assert answer.status_code == 200 and answer.headers["etag"] != etag


def test_large_answers_are_gzipped_for_clients_that_accept_it(dated_client):
    answer = dated_client.get("/collections/livestock_ban/items", headers={"Accept-Encoding": "gzip"})
    assert answer.headers["content-encoding"] == "gzip"
    assert answer.json()["numberReturned"] == 3  # httpx decodes it
    plain = dated_client.get("/collections/livestock_ban/items", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    # The second answer comes from the OGC answer cache: same content, not gzipped for this client.
    assert plain.json()["features"] == answer.json()["features"]
    again = dated_client.get("/collections/livestock_ban/items", headers={"Accept-Encoding": "gzip"})
    assert again.headers["content-encoding"] == "gzip" and again.json()["features"] == answer.json()["features"]
    # Export files are never re-encoded: their byte ranges are ranges of the file.
    export = dated_client.get("/v1/export/latest/zones.geojson", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in export.headers


def test_cors_is_off_by_default_and_follows_zoning_cors_origins(tmp_path):
    from geo.paths import BUNDLED_ZONES

    with _client_for(tmp_path, BUNDLED_ZONES) as client:
        answer = client.get("/collections", headers={"Origin": "http://gis.example"})
        assert "access-control-allow-origin" not in answer.headers
    with _client_for(tmp_path, BUNDLED_ZONES, cors_origins="http://gis.example") as client:
        answer = client.get("/collections", headers={"Origin": "http://gis.example"})
        assert answer.headers["access-control-allow-origin"] == "http://gis.example"
        assert "ETag" in answer.headers["access-control-expose-headers"]
        other = client.get("/collections", headers={"Origin": "http://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers
