"""The build of the real recipes: reproducible output, legal metadata, the texts' checks.

``zoning build`` must regenerate the committed ``data/boundaries`` files byte for byte, so
a reviewer can trust that the data is what the recipes say. The Mentougou assertions pin
the zones issue 4 requires and the arithmetic of 门政发〔2020〕9号.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import shapely
import yaml

from api import cli
from geo.build import build_outputs, build_zones, write_build
from geo.paths import BASE_DIR, BOUNDARIES_DIR, RECIPES_DIR
from geo.recipes import RecipeError
from geo.schema import ACCURACY, validate_zones, zones_from_geojson

from .conftest import SHARED


@pytest.fixture(scope="module")
def built():
    if not (BASE_DIR / "districts.geojson").exists():
        pytest.skip(f"base layers missing: {BASE_DIR / 'districts.geojson'}")
    return build_zones(RECIPES_DIR, BASE_DIR)


def _check(report, name: str):
    matches = [c for c in report.checks if c.name == name]
    assert matches, f"no check named {name!r}"
    return matches[0]


# ---------------------------------------------------------------- reproducible output


def test_rebuilding_gives_byte_identical_files(built, tmp_path):
    zones, report = built
    first, second = tmp_path / "one", tmp_path / "two"
    write_build(zones, report, first)
    again_zones, again_report = build_zones(RECIPES_DIR, BASE_DIR)
    write_build(again_zones, again_report, second)
    names = sorted(p.relative_to(first).as_posix() for p in first.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(second).as_posix() for p in second.rglob("*") if p.is_file())
    assert "zones.geojson" in names and "REPORT.md" in names
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_committed_zone_files_equal_a_fresh_build(built):
    zones, report = built
    for rel, text in build_outputs(zones, report).items():
        path = BOUNDARIES_DIR / rel
        assert path.exists(), f"{rel} is not committed: run `zoning build`"
        assert path.read_text(encoding="utf-8") == text, f"{rel} is stale: run `zoning build` and commit"


def test_zones_file_has_one_feature_per_line_sorted_by_id(built):
    zones, report = built
    text = build_outputs(zones, report)["zones.geojson"]
    lines = text.splitlines()
    assert lines[0] == '{"type":"FeatureCollection","features":['
    ids = [re.match(r'\{"type":"Feature","id":"([^"]+)"', line).group(1) for line in lines[1:-1]]
    assert ids == sorted(ids) == sorted(zones["zone_id"])
    coords = re.findall(r"-?\d+\.\d+", text.split('"geometry"', 1)[1])
    assert max(len(c.split(".")[1]) for c in coords) <= 7


def test_zones_file_reloads_as_a_valid_zone_table(built):
    zones, report = built
    again = zones_from_geojson(build_outputs(zones, report)["zones.geojson"])
    validate_zones(again)  # rounding to 1e-7 degrees keeps every geometry valid
    assert list(again["zone_id"]) == sorted(zones["zone_id"])


# ---------------------------------------------------------------- legal metadata


def test_every_zone_cites_its_document_dates_rules_and_accuracy(built):
    zones, _ = built
    for row in zones.to_dict("records"):
        assert row["accuracy"] in ACCURACY and row["method"], row["zone_id"]
        assert row["effective_from"], row["zone_id"]
        assert row["accuracy"] != "official", f"{row['zone_id']}: no zone here has an official boundary"
        if row["layer"] == "admin":
            continue
        for field in ("source_doc_no", "source_title", "issuer", "issued_on"):
            assert row[field], f"{row['zone_id']}: {field}"
        assert row["rules"], f"{row['zone_id']}: no rule"


def test_mentougou_rule_texts_are_verbatim_from_the_seeds():
    seeds = [SHARED / "seeds" / "000_632d7d076616fb67.txt", SHARED / "seeds" / "003_c2346699c2343724.txt"]
    if not all(p.exists() for p in seeds):
        pytest.skip(f"seed texts not found under {SHARED / 'seeds'}")
    text = "".join(p.read_text(encoding="utf-8") for p in seeds)
    flat = re.sub(r"\s+", "", text)
    recipe = yaml.safe_load((RECIPES_DIR / "mentougou.yaml").read_text(encoding="utf-8"))
    rules = list(recipe["rules"].values())
    rules += [r for z in recipe["zones"] for r in z.get("rules", []) if isinstance(r, dict)]
    headings = ("（一）禁养畜禽种类", "（二）畜禽规模")  # section headings kept inline in the rule
    for rule in rules:
        quoted = rule["text_zh"]
        for heading in headings:
            quoted = quoted.replace(heading, "……")
        for piece in filter(None, re.sub(r"\s+", "", quoted).split("……")):
            assert piece in flat, f"not verbatim in the seeds: {piece}"


# ---------------------------------------------------------------- Mentougou zones and checks


REQUIRED_MENTOUGOU = ["mtg", "mtg-jyq", "mtg-jyq-ws", "mtg-jyq-ydh", "mtg-ydh-hdgl", "mtg-ydh-sxgc", "mtg-sthx",
                      "mtg-xzq-stbh", "mtg-yl-1", "mtg-yl-2", "mtg-yl-3", "mtg-yl-4"]
NAMED_MENTOUGOU = {"mtg-jyq-ztsk-1": 2.53, "mtg-jyq-ztsk-2": 10.75, "mtg-jyq-bhs-hx": 68.36,
                   "mtg-jyq-bhs-hc": 48.81, "mtg-jyq-cz": 86.95, "mtg-jyq": 256.67, "mtg-jyq-ydh": 39.27,
                   "mtg-sthx": 460.84, "mtg-bhs-nnr": 217.43}


def test_required_mentougou_zones_are_built(built):
    zones, _ = built
    assert set(REQUIRED_MENTOUGOU) <= set(zones["zone_id"])
    ban = zones.set_index("zone_id").loc["mtg-jyq"]
    assert ban["source_doc_no"] == "门政发〔2020〕9号" and ban["effective_from"] == "2020-02-25"
    assert "猪、牛、鸡、鸭、羊" in ban["rules"][0]["text_zh"]
    river_rules = zones.set_index("zone_id").loc["mtg-ydh-hdgl", "rules"]
    assert len(river_rules) == 9 and all(r["text_en"] for r in river_rules)


def test_every_zone_the_ban_text_names_is_reported_with_its_stated_area(built):
    _, report = built
    for zid, stated in NAMED_MENTOUGOU.items():
        entry = report.built[zid].entry
        assert entry.data["stated_area_km2"] == stated
        if not report.built[zid].digitised:
            assert report.built[zid].reason, zid
    markdown = report.markdown()
    not_digitised = markdown.split("## 未数字化 Not digitised", 1)[1].split("## 引用坐标", 1)[0]
    for zid, b in report.built.items():
        assert (f"`{zid}`" in not_digitised) == (not b.digitised), zid


def test_the_ban_texts_own_arithmetic_checks_pass(built):
    _, report = built
    for name in ("52.55 + 117.17 + 86.95 = 256.67", "39.27 + 13.28 = 52.55", "2.53 + 10.75 = 13.28",
                 "68.36 + 48.81 = 117.17"):
        check = _check(report, name)
        assert check.group == "arithmetic" and check.passed, check.detail


def test_yongding_source_zone_is_calibrated_to_its_stated_area(built):
    zones, _ = built
    row = zones.set_index("zone_id").loc["mtg-jyq-ydh"]
    assert row["area_km2"] == pytest.approx(39.27, rel=0.05)
    assert row["accuracy"] == "approximate"
    assert re.search(r"half-width calibrated by bisection to \d+\.\d m", row["method"])


def test_sub_zones_lie_inside_their_parents_and_partitions_tile_their_area(built):
    _, report = built
    geometric = [c for c in report.checks if c.group == "geometry"
                 and (" inside its parent " in c.name or "partition" in c.name)]
    assert len(geometric) >= 10
    failed = [f"{c.name}: {c.detail}" for c in geometric if not c.passed]
    assert not failed


def test_elder_care_zones_partition_the_district(built):
    zones, _ = built
    by_id = zones.set_index("zone_id").geometry
    cells = [by_id[f"mtg-yl-{i}"] for i in range(1, 5)]
    district = by_id["mtg"]
    assert shapely.union_all(cells).symmetric_difference(district).area < 1e-6 * district.area
    for a in range(4):
        for b in range(a + 1, 4):
            assert cells[a].intersection(cells[b]).area < 1e-9


def test_flagged_checks_carry_a_reason(built):
    _, report = built
    for check in report.flagged:
        assert check.detail and "no explanation in the recipe" not in check.detail, check.name
    red_line = _check(report, "mtg-sthx: stated vs computed within ±5 %")
    assert not red_line.passed and "460.84" in red_line.detail


# ---------------------------------------------------------------- failures change nothing


def _tiny_recipes(folder: Path, parent_digitised: bool) -> Path:
    folder.mkdir()
    parent_geom = {"op": "admin", "adcode": "110109"} if parent_digitised else \
        {"op": "not_digitised", "reason": "test"}
    recipe = {
        "district": {"code": "110109", "name_zh": "门头沟区"},
        "documents": {"d": {"doc_no": "测试〔2020〕1号", "title": "测试", "issuer": "测试机关",
                            "issued_on": "2020-01-01", "effective_from": "2020-01-01"}},
        "rules": {"r": {"text_zh": "测试规则", "text_en": "test rule", "governs": "none"}},
        "zones": [
            {"id": "t-parent", "layer": "livestock_ban", "kind": "test", "name_zh": "父", "name_en": "parent",
             "document": "d", "rules": ["r"], "accuracy": "approximate", "geometry": parent_geom},
            {"id": "t-child", "parent": "t-parent", "layer": "livestock_ban", "kind": "test", "name_zh": "子",
             "name_en": "child", "document": "d", "rules": ["r"], "accuracy": "approximate",
             "geometry": {"op": "buffer", "of": {"op": "admin", "adcode": "110109"}, "distance_m": -1000}},
        ],
    }
    (folder / "t.yaml").write_text(yaml.safe_dump(recipe, allow_unicode=True), encoding="utf-8")
    return folder


def _run_cli(monkeypatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["zoning", *args])
    with pytest.raises(SystemExit) as exc:
        cli.main()
        raise SystemExit(0)
    return exc.value.code


def test_cli_build_writes_the_outputs(tmp_path, monkeypatch, capsys):
    recipes = _tiny_recipes(tmp_path / "recipes", parent_digitised=True)
    out = tmp_path / "out"
    assert _run_cli(monkeypatch, "build", "--recipes", str(recipes), "--base", str(BASE_DIR), "--out", str(out)) == 0
    assert {p.name for p in out.rglob("*.geojson")} == {"zones.geojson", "livestock_ban.geojson"}
    assert "2 zones built, 0 not digitised" in capsys.readouterr().out


def test_a_recipe_error_exits_2_and_writes_nothing(tmp_path, monkeypatch, capsys):
    recipes = _tiny_recipes(tmp_path / "recipes", parent_digitised=False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "zones.geojson").write_text("previous build", encoding="utf-8")
    code = _run_cli(monkeypatch, "build", "--recipes", str(recipes), "--base", str(BASE_DIR), "--out", str(out))
    assert code == 2
    assert "zone t-child: parent 't-parent' is not digitised" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["zones.geojson"]
    assert (out / "zones.geojson").read_text(encoding="utf-8") == "previous build"


def test_a_failed_write_leaves_the_previous_files_and_no_temporaries(built, tmp_path):
    zones, report = built
    out = tmp_path / "out"
    out.mkdir()
    (out / "zones.geojson").write_text("previous build", encoding="utf-8")
    (out / "layers").write_text("a file where the layer folder should be", encoding="utf-8")
    with pytest.raises(OSError):
        write_build(zones, report, out)
    assert (out / "zones.geojson").read_text(encoding="utf-8") == "previous build"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_report_command_prints_the_report(tmp_path, monkeypatch, capsys):
    recipes = _tiny_recipes(tmp_path / "recipes", parent_digitised=True)
    assert _run_cli(monkeypatch, "report", "--recipes", str(recipes), "--base", str(BASE_DIR)) == 0
    out = capsys.readouterr().out
    assert out.startswith("# 区划数字化报告 Zone digitisation report")
    assert "t-child inside its parent t-parent" in out


def test_missing_recipe_folder_is_a_clear_error():
    with pytest.raises(RecipeError, match="recipe folder .* does not exist"):
        build_zones(Path("/nonexistent-recipes"), BASE_DIR)


def test_a_declared_partition_of_an_undigitised_area_is_flagged_not_fatal(tmp_path):
    folder = _tiny_recipes(tmp_path / "recipes", parent_digitised=True)
    data = yaml.safe_load((folder / "t.yaml").read_text(encoding="utf-8"))
    data["zones"].append({"id": "t-gone", "layer": "livestock_ban", "kind": "test", "name_zh": "无", "name_en": "gone",
                          "document": "d", "rules": ["r"], "accuracy": "approximate",
                          "geometry": {"op": "not_digitised", "reason": "no location"}})
    data["checks"] = [{"parts": ["t-child"], "cover": "t-gone"}]
    (folder / "t.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    _, report = build_zones(folder, BASE_DIR)
    check = _check(report, "t-child partition t-gone")
    assert not check.passed and "not digitised" in check.detail
