"""The compensation calculator through its interfaces: HTTP, the CLI (same answer), the report (HTML and a
PDF whose Chinese text pdftotext reads back), the map file, and bad input as 422 / exit 2 naming the row."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.compensation_helpers import run, sample, samples_csv, section_row, sections_csv, twice
from tests.conftest import REPO

M = "2021-03"
MIYUN_SAMPLES = samples_csv(twice("S11", M, CODMn="2", NH3N="0.2", TP="0.05", TN="2.0"),
                            twice("S12", M, CODMn="2.6", NH3N="0.2", TP="0.05", TN="2.1"),
                            twice("S39", M, CODMn="8", NH3N="2.5", TP="0.2"))
HAIDIAN_SECTIONS = sections_csv(section_row("H1", "IV", up="四季青镇", down="海淀镇"))
HAIDIAN_SAMPLES = samples_csv(twice("H1", "2018-03", COD="57", NH3N="1.0", TP="0.2"))


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """One app for the module: the compensation endpoints do not touch the zone store."""
    from geo.paths import BUNDLED_ZONES
    from tests.conftest import _client_for

    with _client_for(tmp_path_factory.mktemp("compensation"), BUNDLED_ZONES) as test_client:
        yield test_client


def post(client, path="/v1/compensation/calculate", *, district="110118", month=M, samples=MIYUN_SAMPLES,
         sections=None, **form):
    files = {"samples": ("samples.csv", samples.encode("utf-8") if isinstance(samples, str) else samples,
                         "text/csv")}
    if sections is not None:
        files["sections"] = ("sections.csv", sections.encode("utf-8") if isinstance(sections, str) else sections,
                             "text/csv")
    return client.post(path, data={"district": district, "month": month, **form}, files=files)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=180)


def test_calculate_miyun_with_the_shipped_sections(client):
    r = post(client)
    assert r.status_code == 200, r.text
    a = r.json()
    # S12: base 50 000 (CODMn 1.3×) + TN 50 000 (+5 % ≥ 3 %); S39: NH3N 劣Ⅴ additional 100 000 (bases waived),
    # shared by 经济开发区 and 十里堡镇.
    assert a["total_yuan"] == 200000
    assert {u["unit"]: u["amount_yuan"] for u in a["units"]} == {"大城子镇": 100000, "经济开发区": 50000,
                                                                 "十里堡镇": 50000}
    s12 = next(s for s in a["sections"] if s["section_id"] == "S12")
    assert set(s12) >= {"section_id", "month", "amount_yuan", "items"}
    assert set(s12["items"][0]) >= {"pollutant", "class", "case", "clause", "amount_yuan"}
    assert a["rule_set"]["doc_no"] == "密政发〔2021〕2号"
    assert a["options"]["no_double_charging_scope"]["value"] == "section"
    assert a["options"]["no_double_charging_scope"]["is_default"] is True


def test_calculate_haidian_needs_sections_and_uses_them(client):
    r = post(client, district="110108", month="2018-03", samples=HAIDIAN_SAMPLES)
    assert r.status_code == 422 and "第五条" in r.json()["detail"]
    r = post(client, district="110108", month="2018-03", samples=HAIDIAN_SAMPLES, sections=HAIDIAN_SECTIONS,
             options=json.dumps({"worse_than_v_steps": "none"}))
    assert r.status_code == 200, r.text
    assert r.json()["total_yuan"] == 90000  # 1 step × 3万 + surcharge 2 × 3万 (see the 海淀 tests)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"samples": samples_csv(twice("S99", M, CODMn="2"))}, "samples row 2: unknown section 'S99'"),
    ({"samples": samples_csv(sample("S11", f"{M}-05", CODMn="-1"))}, "samples row 2: CODMn -1 is negative"),
    ({"samples": samples_csv(sample("S11", "2021-02-30", CODMn="1"))}, "samples row 2: date"),
    ({"samples": samples_csv(sample("S11", f"{M}-05", CODMn="abc"))}, "samples row 2: CODMn 'abc' is not a number"),
    ({"samples": samples_csv(sample("S11", f"{M}-05", CODMn="1", dry="maybe"))}, "samples row 2: dry"),
    ({"month": "2020-12"}, "no rule set in force for district 110118 in 2020-12"),
    ({"month": "2021-13"}, "month '2021-13' is not YYYY-MM"),
    ({"district": "110101"}, "no compensation rules known"),
    ({"district": "110109"}, "not in the project's sources"),
    ({"sections": sections_csv(section_row("Z1", "VI", up="甲镇", district="110118"))},
     "sections row 2: target_class 'VI' is out of range"),
    ({"sections": sections_csv(section_row("Z1", "I", up="甲镇", district="110118"))},
     "sections row 2: target_class 'I' is out of range"),
    ({"sections": sections_csv(section_row("Z1", "II", up="甲镇", district="110108"))},
     "sections row 2: district_code '110108' is not the requested district 110118"),
    ({"sections": sections_csv(section_row("Z1", "II", up="甲镇", inbound="Z9", district="110118"))},
     "sections row 2: inbound section(s) Z9 not in the table"),
    ({"sections": sections_csv(section_row("Z1", "II", up="甲镇", district="110118", lonlat=("40.3", "116.7")))},
     "not a WGS84 point in Beijing"),
    ({"samples": "section_id,date,CODMn,dry\n".encode("utf-16")}, "not CSV text"),
    ({"samples": b"\x00\x01\x02binary"}, "binary file"),
    ({"samples": "section_id,when,CODMn\nS11,2021-03-01,1\n"}, "needs columns"),
    ({"options": '{"natural_gap": "sometimes"}'}, "option natural_gap: 'sometimes' is not one of none, base"),
    ({"options": '{"no_such": 1}'}, "unknown option(s) no_such"),
    ({"options": "[1]"}, "options: must be a JSON object"),
    ({"options": '{"max_sections": "S77"}'}, "option max_sections: unknown section(s) S77"),
])
def test_bad_input_is_a_422_naming_the_problem(client, kwargs, message):
    r = post(client, **kwargs)
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]


def test_gb18030_samples_from_excel_are_read(client):
    r = post(client, samples=MIYUN_SAMPLES.encode("gb18030"))  # the same content, as Excel saves it in China
    assert r.status_code == 200 and r.json()["total_yuan"] == 200000


def test_upload_over_the_limit_is_a_413(tmp_path):
    from geo.paths import BUNDLED_ZONES
    from tests.conftest import _client_for

    with _client_for(tmp_path, BUNDLED_ZONES, max_upload_bytes=200) as small:
        r = post(small)
    assert r.status_code == 413


def test_rules_and_sections_endpoints(client):
    rules = client.get("/v1/compensation/rules").json()
    by_doc = {rs["doc_no"]: rs for rs in rules["rule_sets"]}
    assert by_doc["密政发〔2021〕2号"]["effective_from"] == "2021-01-01"
    assert by_doc["海行规发〔2017〕7号"]["effective_from"] == "2018-01-01"
    assert any(not rs["calculable"] for rs in rules["rule_sets"])  # 门头沟, cited only
    assert {o["name"] for o in by_doc["密政发〔2021〕2号"]["options"]} >= {
        "no_double_charging_scope", "natural_gap", "tn_blank_thresholds", "above_class_iii"}
    assert rules["standard"]["limits"]["TP"]["lake"][2] == 0.05
    secs = client.get("/v1/compensation/sections", params={"district": "110118"}).json()["district_sections"][0]
    assert len(secs["sections"]) == 39 and len(secs["tn_table"]) == 14
    haidian = client.get("/v1/compensation/sections", params={"district": "110108"}).json()["district_sections"][0]
    assert haidian["sections"] == [] and "第五条" in haidian["note_zh"]
    assert client.get("/v1/compensation/sections", params={"district": "999999"}).status_code == 422


def test_allocate_endpoint(client):
    r = client.post("/v1/compensation/allocate", json={
        "year": 2022, "previous_year_total_yuan": 1000000, "rewarded_units": ["甲镇", "乙镇"],
        "commended_units": ["丙镇"], "projects": [{"unit": "甲镇", "investment_yuan": 2000000}]})
    assert r.status_code == 200, r.text
    a = r.json()
    # subsidy pool 500 000; the project's cap 30 % × 2 000 000 = 600 000 → 500 000 granted, nothing left over.
    assert a["subsidies"][0]["granted_yuan"] == 500000
    assert [x["amount_yuan"] for x in a["rewards"]] == [150000, 150000]
    assert a["commendations"] == [{"unit": "丙镇", "amount_yuan": 200000}]
    assert client.post("/v1/compensation/allocate", json={"year": 2020, "previous_year_total_yuan": 1}
                       ).status_code == 422  # before the 密云 rules were in force
    assert client.post("/v1/compensation/allocate", json={"year": 2022, "district": "110108",
                                                          "previous_year_total_yuan": 1}).status_code == 422


def test_report_html_and_pdf(client):
    r = post(client, "/v1/compensation/report", format="html")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "按缴纳单位" in r.text and "By paying unit" in r.text and "附件1第五条（三）" in r.text
    if not shutil.which("pdftotext"):
        if os.environ.get("CI"):
            pytest.fail("pdftotext (poppler-utils) is missing in CI")
        pytest.skip("pdftotext (poppler-utils) not installed")
    r = post(client, "/v1/compensation/report", format="pdf")
    assert r.status_code == 200, r.text[:300]
    assert r.content.startswith(b"%PDF")
    text = subprocess.run(["pdftotext", "-", "-"], input=r.content, capture_output=True, timeout=60).stdout.decode()
    assert "大城子镇" in text and "密政发〔2021〕2号" in text and "200,000" in text
    assert post(client, "/v1/compensation/report", format="docx").status_code == 422


def test_cli_json_is_the_api_answer(client, tmp_path):
    samples = tmp_path / "samples.csv"
    samples.write_text(MIYUN_SAMPLES, encoding="utf-8")
    out, report, map_file = tmp_path / "result.csv", tmp_path / "report.html", tmp_path / "map.html"
    r = run_cli("compensation", "--district", "110118", "--month", M, "--samples", str(samples), "--json",
                "--out", str(out), "--report", str(report), "--map", str(map_file))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == post(client).json()
    rows = out.read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("month,section_id,section_name,status,pollutant,class")
    assert any(",S12," in line and "附表4" in line and ",50000," in line for line in rows)
    assert "大城子镇" in report.read_text(encoding="utf-8")
    html = map_file.read_text(encoding="utf-8")
    # Only S39 has (schematic) coordinates; the other two sampled sections are said to be missing.
    assert "S39 潮白河密云出境断面" in html and "2 sampled section(s) have no published coordinates" in html
    assert "unpkg.com" not in html and "cdn.jsdelivr" not in html


def test_cli_bad_input_exits_2_naming_the_row(tmp_path):
    samples = tmp_path / "samples.csv"
    samples.write_text(samples_csv(twice("S11", M, CODMn="2"), sample("S12", f"{M}-05", TP="-0.1")),
                       encoding="utf-8")
    r = run_cli("compensation", "--district", "110118", "--month", M, "--samples", str(samples))
    assert r.returncode == 2 and "samples row 4: TP -0.1 is negative" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("compensation", "--district", "110118", "--month", M, "--samples", str(samples),
                "--option", "natural_gap")
    assert r.returncode == 2 and "NAME=VALUE" in r.stderr
    out = tmp_path / "never.csv"
    r = run_cli("compensation", "--district", "110118", "--month", "2020-06", "--samples", str(samples),
                "--out", str(out))
    assert r.returncode == 2 and "no rule set in force" in r.stderr and not out.exists()


def test_cli_options_change_the_answer(tmp_path):
    samples = tmp_path / "samples.csv"
    samples.write_text(samples_csv(twice("S28", M, CODMn="3", NH3N="0.5", TP="0.1", TN="1.00"),
                                   twice("S29", M, CODMn="3", NH3N="0.5", TP="0.1", TN="1.04")), encoding="utf-8")
    base = ["compensation", "--district", "110118", "--month", M, "--samples", str(samples), "--json"]
    assert json.loads(run_cli(*base).stdout)["total_yuan"] == 0
    changed = json.loads(run_cli(*base, "--option", "tn_blank_thresholds=merged_cell_above").stdout)
    assert changed["total_yuan"] == 50000 and changed["options"]["tn_blank_thresholds"]["is_default"] is False


def test_same_answer_from_geo_and_http(client):
    assert post(client).json() == json.loads(json.dumps(run("110118", M, MIYUN_SAMPLES), ensure_ascii=False))


def test_cli_allocate_prints_the_api_answer(client, tmp_path):
    body = {"year": 2022, "previous_year_total_yuan": 200000, "rewarded_units": ["甲镇"],
            "projects": [{"unit": "乙镇", "investment_yuan": 100000}]}
    request = tmp_path / "allocate.json"
    request.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    r = run_cli("compensation-allocate", str(request))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == client.post("/v1/compensation/allocate", json=body).json()
    request.write_text('{"year": "soon"}', encoding="utf-8")
    r = run_cli("compensation-allocate", str(request))
    assert r.returncode == 2 and "year" in r.stderr
