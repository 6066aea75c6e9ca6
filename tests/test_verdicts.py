"""Activities and verdicts, coverage and not-digitised zones in plain words, on the bundled data.

The issue's examples are the acceptance tests: a pig farm at 斋堂 is *unknown* and names the
斋堂水库 and 百花山 zones that are not drawn; in the Yongding corridor it is *prohibited*
under 门政发〔2020〕9号; anywhere in 海淀 it is *prohibited* under the 海淀 rule; 东城区 and
Shanghai have no coverage.
"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
import yaml

from geo.activities import catalogue, parse_activities, verdict
from geo.paths import RECIPES_DIR
from geo.recipes import RecipeError, load_recipe, load_recipes
from tests.conftest import _client_for
from tests.test_api_check import run_cli

PIG = "livestock_scale_farm_new"
ZHAITANG = (115.69, 39.97)
YONGDING = (116.04, 39.97)  # inside the drawn gorge corridor and river range (about 280 m from their edges)
TIANANMEN = (116.397, 39.909)  # 东城区
SHANGHAI = (121.47, 31.23)
HAIDIAN = [(116.30, 40.00), (116.15, 40.08), (116.25, 39.93), (116.32, 39.96)]


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("bundled")


@pytest.fixture(scope="module")
def client(store_dir):
    """One API client on a store seeded from the bundled zones, shared by this module (read-only tests)."""
    from geo.paths import BUNDLED_ZONES

    with _client_for(store_dir, BUNDLED_ZONES) as test_client:
        yield test_client


def check(client, **params):
    response = client.get("/v1/check", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def one(answer):
    [v] = answer["verdicts"]
    return v


# ---------------------------------------------------------------- the examples


def test_zhaitang_pig_farm_is_unknown_and_names_the_undrawn_ban_zones(client):
    answer = check(client, lon=ZHAITANG[0], lat=ZHAITANG[1], activity=PIG, as_of="2024-06-01")
    assert list(answer)[0] == "verdicts"  # the verdict comes first
    v = one(answer)
    assert v["verdict"] == "unknown" and v["deciding"] == []
    named = " ".join([u["name"] + " " + " ".join(u["parts"]) for u in v["undrawn"]])
    for place in ("斋堂水库一级保护区", "斋堂水库二级保护区", "百花山自然保护区核心区", "百花山自然保护区缓冲区",
                  "龙泉镇、永定镇"):
        assert place in named, place
    assert all(u["reason"] and u["what_to_do"] and "北京市门头沟区人民政府" in u["what_to_do"] for u in v["undrawn"])
    # the list of undrawn zones is about the question: zones that could govern pig farms, not towns or sections
    ids = [z["zone_id"] for z in answer["not_digitised"]]
    assert "mtg-jyq-ztsk-1" in ids and "mtg-jyq-bhs-hx" in ids
    assert not any(i.startswith(("mtg-town-", "mtg-dm-")) for i in ids)
    assert answer["coverage"] == "partial" and answer["district"]["adcode"] == "110109"


def test_yongding_corridor_pig_farm_is_prohibited_under_the_ban_zone_plan(client):
    v = one(check(client, lon=YONGDING[0], lat=YONGDING[1], activity=PIG, near=0))
    assert v["verdict"] == "prohibited"
    decisive = {d["zone_id"]: d for d in v["deciding"]}
    assert "mtg-jyq-ydh" in decisive
    d = decisive["mtg-jyq-ydh"]
    assert d["source"]["doc_no"] == "门政发〔2020〕9号" and d["rule_code"] == "mtg-jyq-ban-scale-farms"
    assert d["quote_zh"] in d["rule_text"] and "门政发〔2020〕9号" in v["summary"]
    assert v["near_approximate_boundary"] is False


def test_a_prohibition_near_an_approximate_boundary_says_so(client):
    v = one(check(client, lon=YONGDING[0], lat=YONGDING[1], activity=PIG, near=1000))
    assert v["verdict"] == "prohibited" and v["near_approximate_boundary"] is True
    assert "近似边界" in v["summary"]


@pytest.mark.parametrize("point", HAIDIAN)
def test_anywhere_in_haidian_a_new_pig_farm_is_prohibited_by_the_haidian_rule(client, point):
    v = one(check(client, lon=point[0], lat=point[1], activity=PIG, lang="en"))
    assert v["verdict"] == "prohibited"
    rule = next(d for d in v["deciding"] if d["rule_code"] == "hd-water-t18")
    assert rule["source"]["doc_no"] == "海政办发〔2017〕33号" and rule["zone_id"] == "hd-livestock-no-new-scale-farms"
    assert rule["rule_text"].startswith("New or expanded scale livestock") and "prohibited" in v["summary"]


@pytest.mark.parametrize(("point", "words"), [(TIANANMEN, "东城区"), (SHANGHAI, "不在本服务范围内")])
def test_places_without_data_say_coverage_none_in_plain_words(client, point, words):
    answer = check(client, lon=point[0], lat=point[1], activity=PIG)
    assert answer["coverage"] == "none" and words in answer["coverage_note"]
    assert one(answer)["verdict"] == "unknown" and words in one(answer)["summary"]
    assert answer["not_digitised"] == [] and "不在本服务已数字化的任何分区内" not in answer["disclaimer"]
    assert "本服务没有该处所在区的分区数据" in answer["disclaimer"]
    assert answer["in_service_area"] is (point == TIANANMEN)


# ---------------------------------------------------------------- verdict semantics


def test_verdicts_honour_as_of(client):
    point = HAIDIAN[0]
    before = one(check(client, lon=point[0], lat=point[1], activity=PIG, as_of="2017-01-01"))
    assert before["verdict"] == "no_rule_found"  # the 海淀 documents date from August 2017
    assert one(check(client, lon=point[0], lat=point[1], activity=PIG, as_of="2018-01-01"))["verdict"] == "prohibited"


def test_no_rule_found_only_where_every_governing_zone_is_drawn_and_never_permitted(client):
    v = one(check(client, lon=HAIDIAN[0][0], lat=HAIDIAN[0][1], activity="parking"))
    assert v["verdict"] == "no_rule_found" and "不等于允许" in v["summary"]
    # in 门头沟 outside the corridor the river range is drawn, but other zones that could govern parking? none:
    assert one(check(client, lon=ZHAITANG[0], lat=ZHAITANG[1], activity="parking"))["verdict"] == "no_rule_found"
    # building: the 百花山 reserve (not drawn) restricts it, so 斋堂 cannot be answered
    assert one(check(client, lon=ZHAITANG[0], lat=ZHAITANG[1], activity="building_new"))["verdict"] == "unknown"


def test_restricted_names_its_condition_and_unknown_keeps_a_known_restriction(client):
    existing = one(check(client, lon=HAIDIAN[0][0], lat=HAIDIAN[0][1], activity="livestock_scale_farm_existing"))
    assert existing["verdict"] == "restricted"
    assert any(d["effect"] == "required" and "退出" in d["condition"] for d in existing["deciding"])
    fish = one(check(client, lon=HAIDIAN[0][0], lat=HAIDIAN[0][1], activity="aquaculture_new"))
    # restricted on the district-wide rule, prohibited in water-source zones that are not drawn
    assert fish["verdict"] == "unknown" and fish["at_least"] == "restricted"
    assert {u["zone_id"] for u in fish["undrawn"]} >= {"hd-jingmi-canal-grade1", "hd-wells-bishui-haiquan"}


def test_several_activities_answer_in_the_order_asked(client):
    answer = check(client, lon=YONGDING[0], lat=YONGDING[1], activity=["building_new", "fish_pond,parking"])
    assert [v["activity"] for v in answer["verdicts"]] == ["building_new", "fish_pond", "parking"]
    assert all(v["verdict"] == "prohibited" for v in answer["verdicts"])
    assert any(d["source"]["doc_no"] == "门政办发〔2020〕8号" for d in answer["verdicts"][0]["deciding"])


def test_verdicts_weigh_every_layer_whatever_the_answer_shows(client):
    answer = check(client, lon=YONGDING[0], lat=YONGDING[1], activity=PIG, layers="admin")
    assert {z["layer"] for z in answer["inside"]} == {"admin"}
    assert one(answer)["verdict"] == "prohibited"


def test_an_unknown_activity_is_a_422_naming_it(client):
    response = client.get("/v1/check", params={"lon": 116.0, "lat": 40.0, "activity": "pig_farming_xyz"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "activity"] and "pig_farming_xyz" in error["msg"] and PIG in error["msg"]


def test_aliases_find_activities():
    assert parse_activities("养猪场,fish pond") == [PIG, "fish_pond"]


def test_pure_verdict_never_permits_by_absence():
    assert verdict(PIG, [], [])["verdict"] == "no_rule_found"
    allowed = [{"zone_id": "z", "name_zh": "甲", "layer": "x", "accuracy": "official", "source": {},
                "rules": [{"code": "r", "text_zh": "可以", "activities": [
                    {"activity": PIG, "effect": "permitted", "quote_zh": "可以"}]}]}]
    v = verdict(PIG, allowed, [])
    assert v["verdict"] == "no_rule_found" and v["permitted_by"][0]["zone_id"] == "z"


# ---------------------------------------------------------------- site, batch, CLI


def test_site_overlapping_a_prohibiting_zone_is_prohibited_with_the_overlap_share(client):
    x, y = YONGDING
    site = {"type": "Polygon", "coordinates": [[[x - 0.01, y - 0.01], [x + 0.01, y - 0.01], [x + 0.01, y + 0.01],
                                                [x - 0.01, y + 0.01], [x - 0.01, y - 0.01]]]}
    response = client.post("/v1/check/site", params={"activity": PIG}, content=json.dumps(site),
                           headers={"content-type": "application/geo+json"})
    assert response.status_code == 200, response.text
    v = one(response.json())
    assert v["verdict"] == "prohibited"
    share = next(d["share_of_site"] for d in v["deciding"] if d["zone_id"] == "mtg-jyq-ydh")
    assert 0 < share < 1


def test_batch_adds_a_verdict_column_per_activity(client):
    body = "id,lon,lat\n" + "\n".join(f"p{i},{x},{y}" for i, (x, y) in
                                       enumerate([ZHAITANG, YONGDING, TIANANMEN, *HAIDIAN]))
    response = client.post("/v1/check/batch", params={"activity": f"{PIG},parking"}, content=body,
                           headers={"content-type": "text/csv"})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["verdicts"][PIG] for r in results] == ["unknown", "prohibited", "unknown"] + ["prohibited"] * 4
    assert [r["verdicts"]["parking"] for r in results][:3] == ["no_rule_found", "prohibited", "unknown"]
    for r, (x, y) in zip(results, [ZHAITANG, YONGDING, TIANANMEN, *HAIDIAN], strict=True):  # same as single checks
        single = check(client, lon=x, lat=y, activity=f"{PIG},parking")
        assert r["verdicts"] == {v["activity"]: v["verdict"] for v in single["verdicts"]}


def test_cli_check_and_check_file_decide_like_the_api(monkeypatch, capsys, client, store_dir, tmp_path):
    store = store_dir / "store" / "zones.gpkg"  # the client fixture's store, seeded from the bundled zones
    code, out, _ = run_cli(monkeypatch, capsys, "check", str(YONGDING[0]), str(YONGDING[1]), "--activity", PIG,
                           "--store", str(store))
    assert code == 0 and "prohibited" in out and "门政发〔2020〕9号" in out
    source = tmp_path / "points.csv"
    source.write_text(f"id,lon,lat\na,{ZHAITANG[0]},{ZHAITANG[1]}\nb,{YONGDING[0]},{YONGDING[1]}\n", encoding="utf-8")
    out_file = tmp_path / "out.csv"
    code, _, _ = run_cli(monkeypatch, capsys, "check-file", str(source), "--out", str(out_file), "--activity", PIG,
                         "--store", str(store))
    rows = list(csv.DictReader(io.StringIO(out_file.read_text(encoding="utf-8"))))
    assert code == 0 and [r[f"verdict_{PIG}"] for r in rows] == ["unknown", "prohibited"]
    code, _, err = run_cli(monkeypatch, capsys, "check", "116", "40", "--activity", "nope", "--store", str(store))
    assert code == 2 and "nope" in err


# ---------------------------------------------------------------- language and honesty of the words


FILE_CITATION = re.compile(r"facts/|\.csv|\.json|\.yaml|not_digitised|method_note")


def _user_texts(answer) -> list[str]:
    texts = [answer["disclaimer"], answer["coverage_note"]]
    for v in answer.get("verdicts", []):
        texts += [v["summary"]] + [u["reason"] + u["what_to_do"] for u in v["undrawn"]]
    texts += [z["reason"] + z["what_to_do"] for z in answer["not_digitised"]]
    return texts


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("point", [ZHAITANG, YONGDING, TIANANMEN, HAIDIAN[0], (117.1, 40.15), (116.85, 40.45)])
def test_answers_cite_no_file_or_json_key_in_user_text(client, point, lang):
    answer = check(client, lon=point[0], lat=point[1], activity=[PIG, "building_new"], lang=lang)
    for text in _user_texts(answer):
        assert not FILE_CITATION.search(text), text
    assert "method_note" not in json.dumps(answer, ensure_ascii=False)


def test_lang_switches_names_rules_reasons_and_verdicts(client):
    en = check(client, lon=ZHAITANG[0], lat=ZHAITANG[1], activity=PIG, lang="en")
    zh = check(client, lon=ZHAITANG[0], lat=ZHAITANG[1], activity=PIG, lang="zh")
    assert one(en)["name"] == catalogue()[PIG]["name_en"] and one(zh)["name"] == catalogue()[PIG]["name_zh"]
    assert all(z["name"] == z["name_en"] for z in en["inside"])
    assert all(r["text"] == r["text_en"] for z in en["inside"] for r in z["rules"])
    assert all(not re.search(r"[\u4e00-\u9fff]", u["reason"]) for u in one(en)["undrawn"])
    assert one(zh)["undrawn"][0]["reason"] != one(en)["undrawn"][0]["reason"]


# ---------------------------------------------------------------- catalogue and coverage endpoints


def test_activities_endpoint_lists_the_catalogue_with_rule_counts(client):
    body = client.get("/v1/activities", params={"lang": "en"}).json()
    codes = [a["code"] for a in body["activities"]]
    for code in (PIG, "livestock_scale_farm_existing", "aquaculture_new", "building_new", "sand_soil_extraction",
                 "fish_pond", "tree_planting_rush", "poles_towers_signs", "landscaping", "parking", "stockpiling",
                 "land_lease_transfer", "waste_dumping", "swimming_fishing"):
        assert code in codes
    pig = body["activities"][codes.index(PIG)]
    assert pig["name"] == pig["name_en"] and pig["rules"]["prohibited"] >= 2 and pig["aliases"]


def test_coverage_endpoint_counts_zones_per_district_and_layer(client):
    body = client.get("/v1/coverage").json()
    rows = {r["adcode"]: r for r in body["districts"]}
    assert len(rows) == 16 and set(body["covered"]) == {"110108", "110109", "110117", "110118"}
    assert rows["110101"]["status"] == "none" and rows["110101"]["layers"] == {}
    mtg = rows["110109"]
    assert mtg["status"] == "partial" and mtg["drawn"] < mtg["defined"] and mtg["official"] == 0
    ban = mtg["layers"]["livestock_ban"]
    assert ban["drawn"] >= 1 and ban["defined"] > ban["drawn"]


# ---------------------------------------------------------------- the recipes map every rule


def test_every_recipe_rule_is_mapped_or_marked_as_governing_nothing():
    recipes = load_recipes(RECIPES_DIR)
    mapped = none = 0
    for recipe in recipes:
        for rule in recipe.rules.values():
            mapped += bool(rule["governs"])
            none += not rule["governs"]
            for g in rule["governs"]:
                assert g["activity"] in catalogue()
    assert mapped >= 20 and none >= 30


def _recipe_with_rule(tmp_path, rule):
    data = {"district": {"code": "990001", "name_zh": "测试区"},
            "documents": {"d": {"doc_no": "测试〔2020〕1号", "title": "t", "issuer": "测试机关",
                                "issued_on": "2020-01-01", "effective_from": "2020-01-01"}},
            "rules": {"r": {"text_zh": "严禁挖筑鱼塘", "text_en": "No fish ponds", **rule}},
            "zones": [{"id": "z", "layer": "livestock_ban", "kind": "k", "name_zh": "甲", "name_en": "A",
                       "document": "d", "rules": ["r"], "accuracy": "approximate",
                       "geometry": {"op": "not_digitised", "reason": "x"}}]}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(("rule", "message"), [
    ({}, "governs is required"),
    ({"governs": [{"activity": "fishing_xyz", "effect": "prohibited", "quote": "严禁挖筑鱼塘"}]}, "not in the activity"),
    ({"governs": [{"activity": "fish_pond", "effect": "forbidden", "quote": "严禁挖筑鱼塘"}]}, "effect 'forbidden'"),
    ({"governs": [{"activity": "fish_pond", "effect": "prohibited", "quote": "严禁游泳"}]}, "not in the rule's text_zh"),
    ({"governs": [{"activity": "fish_pond", "effect": "restricted", "quote": "挖筑鱼塘"}]}, "condition_zh is required"),
])
def test_the_build_refuses_an_unmapped_or_badly_mapped_rule(tmp_path, rule, message):
    with pytest.raises(RecipeError, match=re.escape(message)):
        load_recipe(_recipe_with_rule(tmp_path, rule))


def test_a_mapped_rule_reaches_the_zone_row(tmp_path):
    recipe = load_recipe(_recipe_with_rule(tmp_path, {"governs": [
        {"activity": "fish_pond", "effect": "prohibited", "quote": "严禁挖筑鱼塘"}]}))
    [rule] = recipe.zones[0].data["rules"]
    assert rule["activities"] == [{"activity": "fish_pond", "effect": "prohibited", "quote_zh": "严禁挖筑鱼塘",
                                   "condition_zh": None, "condition_en": None}]


def test_activity_mappings_survive_the_store_and_the_geojson_and_geopackage_exports(client, tmp_path):
    import geopandas as gpd

    zone = client.get("/v1/zones/mtg-jyq-ydh").json()["properties"]
    assert zone["rules"][0]["activities"][0]["activity"] == PIG  # read back from the GeoPackage store
    geojson = client.get("/v1/export", params={"format": "geojson"}).json()
    [feature] = [f for f in geojson["features"] if f["id"] == "mtg-jyq-ydh"]
    rules = feature["properties"]["rules"]
    rules = json.loads(rules) if isinstance(rules, str) else rules
    assert {m["activity"] for r in rules for m in r["activities"]} >= {PIG, "livestock_scale_farm_existing"}
    path = tmp_path / "zones.gpkg"
    path.write_bytes(client.get("/v1/export", params={"format": "gpkg"}).content)
    frame = gpd.read_file(path, layer="water_source")  # one GeoPackage layer per zone layer
    rules = json.loads(frame.set_index("zone_id").loc["mtg-jyq-ydh", "rules"])
    assert {m["activity"] for r in rules for m in r["activities"]} >= {PIG, "livestock_scale_farm_existing"}


def test_batch_verdicts_agree_whether_grouped_by_bitmask_or_per_point(client, monkeypatch):
    import numpy as np

    from api import answers

    snap = client.app.state.catalog.snapshot()
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(115.5, 117.4, 3000), rng.uniform(39.8, 40.6, 3000)
    found = answers.look_up(snap, lon, lat, crs="wgs84", as_of="2024-06-01", layers=None, near_m=0, distances=False)
    acts = [PIG, "building_new", "parking"]
    grouped = answers.batch_verdicts(snap, found, acts, "2024-06-01")
    monkeypatch.setattr(answers, "BITMASK_MAX_ZONES", 0)  # as for a table of more zones than bits
    assert answers.batch_verdicts(snap, found, acts, "2024-06-01") == grouped
    assert {v[PIG] for v in grouped} == {"prohibited", "unknown", "no_rule_found"}


def test_the_zones_limiting_an_activity_are_listed_with_their_strongest_effect(client):
    answer = client.get(f"/v1/activities/{PIG}/zones").json()
    zones = answer["zones"]
    assert zones["mtg-jyq-ydh"] == "prohibited"  # 门政发〔2020〕9号
    assert zones["hd-livestock-no-new-scale-farms"] == "prohibited"  # all of 海淀
    assert "mtg-yl-1" not in zones  # elder-care zones say nothing about farms
    assert set(zones.values()) <= {"prohibited", "restricted"} and answer["count"] == len(zones)
    # the same zones a check at a point inside one of them calls prohibiting
    check = client.get("/v1/check", params={"lon": YONGDING[0], "lat": YONGDING[1], "activity": PIG}).json()
    deciding = {d["zone_id"] for v in check["verdicts"] for d in v["deciding"] if d["effect"] == "prohibited"}
    assert deciding and deciding <= {z for z, e in zones.items() if e == "prohibited"}
    parking = client.get("/v1/activities/parking/zones").json()["zones"]
    assert parking.get("mtg-ydh-hdgl") == "prohibited" and "hd-livestock-no-new-scale-farms" not in parking
    refused = client.get("/v1/activities/no_such_activity/zones")
    assert refused.status_code == 404 and "GET /v1/activities" in refused.json()["detail"]
