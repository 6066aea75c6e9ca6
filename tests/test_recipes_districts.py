"""The 海淀, 平谷 and 密云 recipes: required zones, legal metadata, verbatim wording, geometry.

The three recipe files are built on their own (they refer to no other district's zones)
against the committed base layers, so these tests check the recipes, not the whole build.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import shapely
import yaml
from pyproj import Geod

from geo import crs as geocrs
from geo.build import build_zones
from geo.paths import BASE_DIR, RECIPES_DIR
from geo.recipes import BaseLayers, BuildContext, RecipeError, load_recipe

from .conftest import SHARED

DISTRICT_FILES = {"haidian": "110108", "pinggu": "110117", "miyun": "110118"}
SEEDS = {"haidian": "002_97b7caefab17e37c.txt", "pinggu": "001_b765dfead6adb477.txt",
         "miyun": "004_c7e3a888fcaa84a8.txt"}
REQUIRED = {
    "haidian": ["hd-jingmi-canal-grade1", "hd-wells-daoxianghu-hongwei", "hd-wells-bishui-haiquan",
                "hd-livestock-ban", "hd-livestock-no-new-scale-farms", "hd-zgc-science-city",
                "hd-zgc-north", "hd-zgc-south", "hd-eco-redline"],
    "pinggu": ["pg-built-up-area", "pg-urban-rural-fringe", "pg-section-haizi", "pg-pingjisan",
               "pg-capital-east-eco-zone", "pg-livestock-ban", "pg-eco-redline"],
    "miyun": ["my-miyun-reservoir", "my-reservoir-grade1", "my-reservoir-grade2", "my-water-source-protection",
              "my-eco-civilisation-demo", "my-two-cities-three-districts"]
             + [f"my-xsec-s{i:02d}" for i in range(1, 40)],
}
DISTRICT_WIDE = {"hd-zgc-science-city": "110108", "hd-livestock-no-new-scale-farms": "110108",
                 "pg-capital-east-eco-zone": "110117", "pg-eco-conservation-area": "110117",
                 "my-eco-civilisation-demo": "110118"}
PINGJISAN = ("110117", "120119", "131082", "131028", "131024")  # 平谷, 蓟州, 三河, 大厂, 香河
GEOD = Geod(ellps="GRS80")


def _recipe(name: str):
    return load_recipe(RECIPES_DIR / f"{name}.yaml")


def _raw(name: str) -> dict:
    return yaml.safe_load((RECIPES_DIR / f"{name}.yaml").read_text(encoding="utf-8"))


def _geodesic_km2(geom) -> float:
    return abs(GEOD.geometry_area_perimeter(geom)[0]) / 1e6


@pytest.fixture(scope="module")
def base_layers() -> Path:
    if not (BASE_DIR / "districts.geojson").exists():
        pytest.skip(f"base layers not built yet: {BASE_DIR / 'districts.geojson'} is missing")
    return BASE_DIR


@pytest.fixture(scope="module")
def built(base_layers, tmp_path_factory):
    """(zone frame, report) of the three recipes built together."""
    recipes = tmp_path_factory.mktemp("recipes")
    for name in DISTRICT_FILES:
        shutil.copy(RECIPES_DIR / f"{name}.yaml", recipes / f"{name}.yaml")
    return build_zones(recipes, base_layers)


@pytest.fixture(scope="module")
def districts(base_layers):
    return BaseLayers(base_layers).frame("districts")


def _district(districts, adcode: str):
    rows = districts[districts["adcode"].astype(str) == adcode]
    assert len(rows) == 1, f"base layer lacks adcode {adcode}"
    return rows.geometry.iloc[0]


# ---------------------------------------------------------------- metadata (no geometry needed)


@pytest.mark.parametrize("name", DISTRICT_FILES)
def test_required_zones_cite_document_dates_rules_and_honest_accuracy(name):
    recipe = _recipe(name)
    entries = {e.id: e for e in recipe.zones}
    missing = [z for z in REQUIRED[name] if z not in entries]
    assert not missing, f"{name}.yaml lacks required zones {missing}"
    for entry in recipe.zones:
        data = entry.data
        doc = recipe.documents[data["document"]]
        assert doc["doc_no"] and doc["title"] and doc["issuer"], entry.id
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", doc["issued_on"]), entry.id
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", data.get("effective_from") or doc["effective_from"]), entry.id
        assert data.get("article"), f"{entry.id} cites no article"
        assert data["rules"], f"{entry.id} has no rule"
        for rule in data["rules"]:
            assert rule["code"] and rule["text_zh"].strip() and rule["text_en"].strip(), entry.id
        # Every zone here is drawn from a gazette's words or a coarse base layer: never official.
        assert data["accuracy"] in ("approximate", "schematic", "indicative"), entry.id
        assert entry.id.startswith({"haidian": "hd-", "pinggu": "pg-", "miyun": "my-"}[name])


@pytest.mark.parametrize("name", DISTRICT_FILES)
def test_not_digitised_zones_give_a_reason(name):
    for entry in _recipe(name).zones:
        spec = entry.geometry_spec
        if spec["op"] == "not_digitised":
            assert len(spec["reason"].strip()) > 20, f"{entry.id}: reason too thin to explain anything"


def test_livestock_ban_zones_without_a_delineation_are_not_drawn():
    """The texts order or cite a ban zone but never delineate it: it must not get a geometry."""
    for name, zid in (("haidian", "hd-livestock-ban"), ("pinggu", "pg-livestock-ban")):
        entry = next(e for e in _recipe(name).zones if e.id == zid)
        assert entry.geometry_spec["op"] == "not_digitised"


def _seed_text(name: str) -> str:
    path = SHARED / "seeds" / SEEDS[name]
    if not path.exists():
        pytest.skip(f"seed {path} not available")
    text = path.read_text(encoding="utf-8")
    return re.sub(r"\s+", "", re.sub(r"<sup>\d+</sup>", "", text))


@pytest.mark.parametrize("name", DISTRICT_FILES)
def test_rule_wording_is_quoted_verbatim_from_the_seed(name):
    """Every Chinese rule text (fragments joined by ……) occurs in the gazette, whitespace aside."""
    seed = _seed_text(name)
    raw = _raw(name)
    rules = list(raw["rules"].values())
    rules += [r for z in raw["zones"] for r in z.get("rules", []) if isinstance(r, dict)]
    for rule in rules:
        code = rule.get("code", "")
        if re.fullmatch(r"my-xsec-s\d\d-row", code):
            # a table row: each printed cell value must be in the seed
            cells = [c.split("：", 1)[1] for c in rule["text_zh"].split("：", 1)[1].split("；")]
            fragments = [c for cell in cells for c in cell.split()]
        else:
            fragments = rule["text_zh"].split("……")
        for fragment in fragments:
            assert re.sub(r"\s+", "", fragment) in seed, f"{name} rule {code}: not in the seed: {fragment[:40]}"


def test_miyun_sections_follow_the_tables_with_total_nitrogen_thresholds():
    """附表1-3 list 39 sections; 附表4 attaches thresholds to 14 sections (three blank)."""
    entries = [e for e in _recipe("miyun").zones if e.id.startswith("my-xsec-s")]
    assert len(entries) == 39
    assert {e.data["layer"] for e in entries} == {"monitoring_section"}
    tn = [e for e in entries if "附表4" in e.data["article"]]
    assert len(tn) == 13  # 附表4 row 龙潭沟2 (入清水河处) matches no 附表1/2 section name
    with_threshold = [e for e in tn if any(r["code"].startswith("my-xsec-tn-") for r in e.data["rules"])]
    assert len(with_threshold) == 11  # 红门川河 and 龙潭沟1 rows have blank thresholds


# ---------------------------------------------------------------- built geometry


def test_pingjisan_area_is_the_union_of_the_five_member_units(built, districts):
    zones, _ = built
    row = zones[zones["zone_id"] == "pg-pingjisan"].iloc[0]
    members = [_district(districts, code) for code in PINGJISAN]
    expected = _geodesic_km2(shapely.union_all(members))
    assert row["area_km2"] == pytest.approx(expected, rel=0.005)
    for member in members:  # every member unit lies inside the area
        assert _geodesic_km2(shapely.difference(member, row.geometry)) < 0.005 * _geodesic_km2(member)
    assert row["accuracy"] == "approximate"


@pytest.mark.parametrize("zid", DISTRICT_WIDE)
def test_district_wide_designations_cover_the_district(built, districts, zid):
    zones, _ = built
    geom = zones[zones["zone_id"] == zid].geometry.iloc[0]
    district = _district(districts, DISTRICT_WIDE[zid])
    gap = _geodesic_km2(shapely.symmetric_difference(geom, district))
    assert gap < 0.001 * _geodesic_km2(district), f"{zid} differs from its district by {gap:.3f} km²"


def _distance_m(point, polygon) -> float:
    return geocrs.to_metric(point).distance(geocrs.to_metric(polygon))


def test_monitoring_points_lie_in_their_district_or_on_its_boundary(built, districts):
    zones, _ = built
    points = zones[zones["layer"] == "monitoring_section"]
    assert {"my-xsec-s39", "pg-section-haizi"} <= set(points["zone_id"])
    for row in points.itertuples():
        assert row.geometry.geom_type == "Point"
        district = _district(districts, row.district_code)
        assert _distance_m(row.geometry, district) <= 1000.0, f"{row.zone_id} is outside its district"
    exit_point = points[points["zone_id"] == "my-xsec-s39"].geometry.iloc[0]
    miyun = _district(districts, "110118")
    # an exit section sits on the district boundary, downstream (south) of the reservoir
    assert geocrs.to_metric(exit_point).distance(geocrs.to_metric(miyun.boundary)) <= 1000.0
    reservoir = zones[zones["zone_id"] == "my-miyun-reservoir"].geometry.iloc[0]
    assert exit_point.y < reservoir.bounds[1]


def test_not_digitised_zones_are_reported_with_reasons_and_left_out(built):
    zones, report = built
    text = report.markdown()
    section = text.split("## 未数字化 Not digitised", 1)[1]
    missing = [zid for zid, b in report.built.items() if not b.digitised]
    assert "hd-jingmi-canal-grade1" in missing and "pg-built-up-area" in missing
    for zid in missing:
        reason = report.built[zid].reason
        assert reason, zid
        line = next(row for row in section.splitlines() if f"`{zid}`" in row)
        assert reason.replace("\n", " ")[:40] in line
        assert zid not in set(zones["zone_id"])


def test_haidian_north_area_is_an_indicative_part_of_the_science_city(built):
    zones, report = built
    north = zones[zones["zone_id"] == "hd-zgc-north"].iloc[0]
    city = zones[zones["zone_id"] == "hd-zgc-science-city"].iloc[0]
    assert north["accuracy"] == "indicative"
    assert north["parent_id"] == "hd-zgc-science-city"
    assert 0 < north["area_km2"] < city["area_km2"]
    assert "大上地" in north["method"]  # the undefined part is named as left out
    flagged = [c.name for c in report.flagged if "haidian" in c.name or "hd-" in c.name]
    assert not flagged, flagged


def test_reservoir_polygon_is_schematic_and_not_the_grade1_zone(built):
    zones, _ = built
    reservoir = zones[zones["zone_id"] == "my-miyun-reservoir"].iloc[0]
    assert reservoir["accuracy"] == "schematic"
    assert reservoir["layer"] == "water_source" and reservoir["kind"] == "reservoir_water_body"
    assert "my-reservoir-grade1" not in set(zones["zone_id"])


# ---------------------------------------------------------------- the river_exit operation


def _write_base(base: Path, river_coords: list[tuple[float, float]]) -> None:
    area = shapely.box(116.0, 40.0, 116.2, 40.2)
    gpd = pytest.importorskip("geopandas")
    gpd.GeoDataFrame({"adcode": ["990001"], "name_zh": ["测试区"]}, geometry=[area], crs="EPSG:4326") \
        .to_file(base / "districts.geojson", driver="GeoJSON")
    gpd.GeoDataFrame({"note": ["test river"]}, geometry=[shapely.LineString(river_coords)], crs="EPSG:4326") \
        .to_file(base / "test_rivers.geojson", driver="GeoJSON")


def _exit_recipe(path: Path, upstream: list[list[float]]) -> Path:
    recipe = {
        "district": {"code": "990001", "name_zh": "测试区"},
        "documents": {"d": {"doc_no": "测试〔2021〕1号", "title": "测试", "issuer": "测试机关",
                            "issued_on": "2021-01-01", "effective_from": "2021-01-01"}},
        "zones": [
            {"id": "t-lake", "layer": "water_source", "kind": "test", "name_zh": "测试湖", "name_en": "lake",
             "document": "d", "accuracy": "schematic",
             "geometry": {"op": "polygon", "coords": upstream, "crs": "wgs84", "source": "test fixture"}},
            {"id": "t-exit", "layer": "monitoring_section", "kind": "test", "name_zh": "出境断面",
             "name_en": "exit", "document": "d", "accuracy": "schematic",
             "geometry": {"op": "river_exit", "river": "test river", "upstream": "t-lake",
                          "area": {"op": "admin", "adcode": "990001"}}},
        ],
    }
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True), encoding="utf-8")
    return path


LAKE_NORTH = [[116.08, 40.15], [116.12, 40.15], [116.12, 40.18], [116.08, 40.18]]


@pytest.mark.parametrize("reverse", [False, True])
def test_river_exit_is_the_last_crossing_walking_away_from_upstream(tmp_path, reverse):
    # leaves the box southwards at y=40.0, comes back in, and leaves again at x=116.2
    coords = [(116.10, 40.15), (116.10, 39.95), (116.15, 39.95), (116.15, 40.05), (116.30, 40.05)]
    _write_base(tmp_path, coords[::-1] if reverse else coords)
    recipe = load_recipe(_exit_recipe(tmp_path / "t.yaml", LAKE_NORTH))
    built = BuildContext([recipe], BaseLayers(tmp_path)).build_all()
    point = built["t-exit"].geometry
    assert point.geom_type == "Point"
    # lines are straight in EPSG:4548, not in degrees: a few metres of bend are expected
    assert GEOD.inv(point.x, point.y, 116.2, 40.05)[2] < 5.0
    assert "3 boundary crossing(s)" in built["t-exit"].method


def test_river_exit_refuses_a_river_that_ends_inside_the_area(tmp_path):
    # enters from outside and stops inside: walking away from the upstream lake it never leaves
    _write_base(tmp_path, [(116.10, 40.30), (116.10, 40.10)])
    lake = [[116.08, 40.28], [116.12, 40.28], [116.12, 40.32], [116.08, 40.32]]
    recipe = load_recipe(_exit_recipe(tmp_path / "t.yaml", lake))
    with pytest.raises(RecipeError, match="ends inside the area"):
        BuildContext([recipe], BaseLayers(tmp_path)).build_all()
