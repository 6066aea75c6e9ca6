"""海淀区水环境区域补偿办法（试行）(海行规发〔2017〕7号): one test per clause, the expectation computed by
hand next to the quoted clause. Limits are GB 3838-2002 Table 1 (data/standards/gb3838-2002.yaml).
海淀's text lists no sections (第五条), so every test uploads its own sections table."""

import pytest

from geo.compensation.calculate import split_equally
from geo.compensation.rules import CompensationInputError
from tests.compensation_helpers import (
    item,
    run,
    sample,
    samples_csv,
    section,
    section_row,
    sections_csv,
    twice,
    unit_totals,
)

M = "2018-03"


def one_section(target, *, inbound_values=None, boundary="", down="海淀镇", water_body="river", **values):
    """A section H2 paid by 四季青镇 (or the boundary units), optionally with an inbound section H1."""
    rows = [section_row("H2", target, up="四季青镇", down=down, boundary=boundary,
                        inbound="H1" if inbound_values is not None else "", water_body=water_body)]
    samples = [twice("H2", M, **values)]
    if inbound_values is not None:
        rows.insert(0, section_row("H1", target, down="四季青镇"))
        samples.append(twice("H1", M, **inbound_values))
    return sections_csv(*rows), samples_csv(*samples)


def test_art4_indicators_codmn_for_class_ii_iii_cod_for_iv_v():
    # 第四条「化学需氧量（地表水水域功能分类为Ⅱ、Ⅲ类的断面采用高锰酸盐指数）、氨氮、总磷等3项」
    # Target Ⅲ: COD 100 is ignored, CODMn 5 ≤ 6 meets Ⅲ → 0. Target Ⅳ: the same COD 100 counts.
    sections, samples = one_section("III", CODMn="5", COD="100", NH3N="0.5", TP="0.1")
    a = run("110108", M, samples, sections)
    assert [i["pollutant"] for i in section(a, "H2")["items"]] == ["CODMn", "NH3N", "TP"]
    assert a["total_yuan"] == 0
    sections, samples = one_section("IV", CODMn="5", COD="100", NH3N="0.5", TP="0.1")
    a = run("110108", M, samples, sections)
    assert [i["pollutant"] for i in section(a, "H2")["items"] if i["kind"] != "surcharge"] == ["COD", "NH3N", "TP"]
    assert a["total_yuan"] > 0


def test_art8_1_no_inflow_per_class_and_cod_surcharge_worked_example():
    # 第八条（一）「当无入境水流，跨界断面出境污染物浓度超出该断面水质考核标准…每变差1个功能类别，补偿金标准为3万元/月」
    # 「当化学需氧量浓度大于40毫克/升时，每增加10毫克/升以内（含10毫克/升）追加补偿金3万元/月」
    # Target Ⅳ, COD 57 → 劣Ⅴ: Ⅳ→Ⅴ→劣Ⅴ = 2 steps × 3万 = 60 000; ceil((57−40)/10) = 2 × 3万 = 60 000.
    sections, samples = one_section("IV", COD="57", NH3N="1.0", TP="0.2")
    a = run("110108", M, samples, sections)
    per_class = item(a, "H2", "COD", "per_class")
    assert (per_class["case"], per_class["class"], per_class["amount_yuan"]) == ("case_1_no_inflow", "劣Ⅴ", 60000)
    assert "第八条（一）" in per_class["clause"] and "海行规发〔2017〕7号" in per_class["clause"]
    assert item(a, "H2", "COD", "surcharge")["amount_yuan"] == 60000
    assert section(a, "H2")["amount_yuan"] == 120000


def test_art8_1_inflow_and_outflow_higher_is_case_one():
    # 第八条（一）「…或有入境水流，跨界断面出境污染物浓度比入境断面该种污染物浓度增加时…每变差1个功能类别…3万元/月」
    # Target Ⅲ, inflow CODMn 5, outflow CODMn 7 (Ⅳ: 6 < 7 ≤ 10) → 1 step × 3万 = 30 000.
    sections, samples = one_section("III", inbound_values={"CODMn": "5", "NH3N": "0.5", "TP": "0.1"},
                                    CODMn="7", NH3N="0.5", TP="0.1")
    a = run("110108", M, samples, sections)
    i = item(a, "H2", "CODMn")
    assert (i["case"], i["class"], i["amount_yuan"], i["inflow_mg_l"]) == ("case_1_worse_than_inflow", "Ⅳ", 30000, 5.0)
    assert a["total_yuan"] == 30000


def test_art8_2_outflow_not_above_inflow_but_failing_is_case_two():
    # 第八条（二）「当跨界断面出境污染物浓度小于或等于入境断面该种污染物浓度，但未达到该断面水质考核标准时，
    # 其浓度相对于该断面水质考核标准每变差1个功能类别，补偿金标准为1.5万元/月」
    # Target Ⅲ, inflow CODMn 12, outflow 11 (Ⅴ: 10 < 11 ≤ 15) → 2 steps × 1.5万 = 30 000.
    sections, samples = one_section("III", inbound_values={"CODMn": "12"}, CODMn="11", NH3N="0.5", TP="0.1")
    a = run("110108", M, samples, sections)
    i = item(a, "H2", "CODMn")
    assert (i["case"], i["amount_yuan"]) == ("case_2", 30000) and "第八条（二）" in i["clause"]


def test_art8_2_ammonia_surcharge_at_half_rate():
    # 第八条（二）「当氨氮浓度大于2毫克/升时，每增加1毫克/升以内（含1毫克/升）追加补偿金0.5万元/月」
    # Target Ⅲ, inflow NH3N 5, outflow 4.2 (劣Ⅴ): steps 6−3 = 3 × 1.5万 = 45 000;
    # surcharge ceil((4.2−2)/1) = 3 × 0.5万 = 15 000 → 60 000.
    sections, samples = one_section("III", inbound_values={"NH3N": "5"}, CODMn="5", NH3N="4.2", TP="0.1")
    a = run("110108", M, samples, sections)
    assert item(a, "H2", "NH3N", "per_class")["amount_yuan"] == 45000
    assert item(a, "H2", "NH3N", "surcharge")["amount_yuan"] == 15000
    assert a["total_yuan"] == 60000


@pytest.mark.parametrize(("cod", "expected"), [("50", 60000), ("50.1", 90000)])
def test_art8_surcharge_step_includes_its_upper_end(cod, expected):
    # 「每增加10毫克/升以内（含10毫克/升）」: target Ⅴ, no inflow, 劣Ⅴ = 1 step × 3万 = 30 000;
    # COD 50 → (50−40)/10 = 1 step (含10) → +30 000 = 60 000; COD 50.1 → 2 steps → +60 000 = 90 000.
    sections, samples = one_section("V", COD=cod, NH3N="1", TP="0.1")
    assert run("110108", M, samples, sections)["total_yuan"] == expected


def test_art8_tp_surcharge_threshold_as_printed_and_option():
    # 「当总磷浓度大于0.5毫克/升时，每增加0.5毫克/升以内（含0.5毫克/升）追加补偿金2万元/月」
    # Target Ⅳ river, TP 0.45: 劣Ⅴ (> 0.4) → 2 steps × 3万 = 60 000; 0.45 ≤ 0.5 → no surcharge as printed.
    # Option tp_surcharge_threshold=class_v_limit: ceil((0.45−0.4)/0.5) = 1 × 2万 → 80 000.
    sections, samples = one_section("IV", COD="20", NH3N="1", TP="0.45")
    assert run("110108", M, samples, sections)["total_yuan"] == 60000
    a = run("110108", M, samples, sections, tp_surcharge_threshold="class_v_limit")
    assert a["total_yuan"] == 80000
    assert a["options"]["tp_surcharge_threshold"] == {**a["options"]["tp_surcharge_threshold"],
                                                      "value": "class_v_limit", "is_default": False}
    # TP 1.2: 2 steps = 60 000; ceil((1.2−0.5)/0.5) = 2 × 2万 = 40 000 → 100 000.
    sections, samples = one_section("IV", COD="20", NH3N="1", TP="1.2")
    assert run("110108", M, samples, sections)["total_yuan"] == 100000


def test_worse_than_v_steps_option():
    # 「每变差1个功能类别」: with worse_than_v_steps=none 劣Ⅴ counts like Ⅴ: target Ⅳ, COD 57 →
    # 1 step × 3万 + surcharge 2 × 3万 = 90 000 (the default one_class gives 120 000, test above).
    sections, samples = one_section("IV", COD="57", NH3N="1", TP="0.2")
    a = run("110108", M, samples, sections, worse_than_v_steps="none")
    assert a["total_yuan"] == 90000 and a["options"]["worse_than_v_steps"]["default"] == "one_class"


def test_lakes_use_the_lake_tp_column():
    # GB 3838-2002 表1 总磷: 河流 Ⅲ 0.2 / 湖、库 Ⅲ 0.05, Ⅳ 0.1. TP 0.08, target Ⅲ:
    # river → Ⅱ, nothing owed; lake → Ⅳ, 1 step × 3万 = 30 000 (no inflow).
    sections, samples = one_section("III", CODMn="5", NH3N="0.5", TP="0.08")
    assert run("110108", M, samples, sections)["total_yuan"] == 0
    sections, samples = one_section("III", water_body="lake", CODMn="5", NH3N="0.5", TP="0.08")
    assert run("110108", M, samples, sections)["total_yuan"] == 30000


def test_within_standard_owes_nothing_even_if_worse_than_inflow():
    # Reading within_standard_owes_nothing (第二条「因水体污染物超过断面水质考核标准」): target Ⅲ,
    # inflow CODMn 3, outflow 5.9 ≤ 6 → 0.
    sections, samples = one_section("III", inbound_values={"CODMn": "3"}, CODMn="5.9", NH3N="0.5", TP="0.1")
    a = run("110108", M, samples, sections)
    assert a["total_yuan"] == 0 and item(a, "H2", "CODMn")["case"] == "meets_standard"


def test_dry_inbound_counts_as_no_inflow():
    # Reading dry_inbound_is_no_inflow: inflow dry all month → 「无入境水流」 → case 一 at 3万 per step.
    # Target Ⅲ, CODMn 11 (Ⅴ) → 2 × 3万 = 60 000, although the (dry) inbound row had CODMn 20.
    sections = sections_csv(section_row("H1", "III", down="四季青镇"),
                            section_row("H2", "III", up="四季青镇", down="海淀镇", inbound="H1"))
    samples = samples_csv(sample("H1", f"{M}-05", CODMn="20", dry="true"), sample("H1", f"{M}-20", dry="true"),
                          twice("H2", M, CODMn="11", NH3N="0.5", TP="0.1"))
    a = run("110108", M, samples, sections)
    assert item(a, "H2", "CODMn")["case"] == "case_1_no_inflow" and a["total_yuan"] == 60000


def test_art9_1_dry_all_month_owes_nothing():
    # 第九条（一）「若跨界断面全月断流，则当月不计算该断面补偿金」
    sections = sections_csv(section_row("H2", "III", up="四季青镇", down="海淀镇"))
    samples = samples_csv(sample("H2", f"{M}-05", dry="true"), sample("H2", f"{M}-20", dry="true"))
    a = run("110108", M, samples, sections)
    assert section(a, "H2")["status"] == "dry_all_month" and a["total_yuan"] == 0
    assert "第九条（一）" in section(a, "H2")["clause"]


def test_art9_2_boundary_river_shared_equally():
    # 第九条（二）「若跨界断面处于街镇界河，交界街镇平均分摊补偿金」: target Ⅲ, CODMn 7 (Ⅳ), no inflow →
    # 30 000, 四季青镇 and 香山街道 15 000 each.
    sections, samples = one_section("III", boundary="四季青镇;香山街道", CODMn="7", NH3N="0.5", TP="0.1")
    a = run("110108", M, samples, sections)
    assert section(a, "H2")["payers"] == [{"unit": "四季青镇", "amount_yuan": 15000},
                                          {"unit": "香山街道", "amount_yuan": 15000}]
    assert "第九条（二）" in section(a, "H2")["clause"]


def test_equal_shares_add_up_to_the_fen():
    from decimal import Decimal

    shares = split_equally(Decimal(50000), ("甲", "乙", "丙"))
    assert [str(a) for _, a in shares] == ["16666.67", "16666.67", "16666.66"]
    assert sum(a for _, a in shares) == 50000


def test_art12_money_goes_downstream_or_to_the_district_pool():
    # 第十二条「上游街镇缴纳的跨界断面补偿金全部分配给下游街镇」/「断面下游为其他区的…统筹安排」
    sections, samples = one_section("III", down="海淀镇", CODMn="7", NH3N="0.5", TP="0.1")
    a = run("110108", M, samples, sections)
    assert a["transfers"] == [{"section_id": "H2", "from": "四季青镇", "to": "海淀镇", "amount_yuan": 30000}]
    sections, samples = one_section("III", down="朝阳区", CODMn="7", NH3N="0.5", TP="0.1")
    a = run("110108", M, samples, sections)
    assert a["transfers"][0]["to"].startswith("区统筹资金")


def test_before_2018_no_rule_set_in_force():
    # 第十五条「自 2018 年 1 月 1 日起施行」
    sections, samples = one_section("III", CODMn="7")
    with pytest.raises(CompensationInputError, match="no rule set in force.*2017-12"):
        run("110108", "2017-12", samples.replace(M, "2017-12"), sections)
    assert run("110108", "2018-01", samples.replace(M, "2018-01"), sections)["rule_set"]["doc_no"] == "海行规发〔2017〕7号"


def test_full_month_several_sections_and_units_by_hand():
    """Five sections on one river chain and a boundary reach, 2018-06, totals computed by hand:

    A0 entry (reference, no payer) → A1 苏家坨镇→上庄镇 (target Ⅳ) → A2 上庄镇→西北旺镇 (Ⅳ)
    → A3 界河 西北旺镇;温泉镇 → 四季青镇 (Ⅲ); B1 温泉镇 → 朝阳区 (Ⅲ, dry all month).
    A1: no inflow data? A0 sampled: COD 25, NH3N 1.0, TP 0.2. A1 COD 45 (劣Ⅴ, 2 steps, case 一) = 60 000
        + surcharge ceil(5/10) = 1 × 3万 = 30 000; NH3N 1.2 (Ⅳ ok); TP 0.25 (Ⅳ ok) → 90 000, 苏家坨镇 → 上庄镇.
    A2: inflow A1. COD 35 ≤ 45 but Ⅴ → case 二 1 step = 15 000; NH3N 1.8 > 1.2, Ⅴ → case 一 1 step = 30 000;
        TP 0.25 = inflow, Ⅳ ok → 45 000, 上庄镇 → 西北旺镇.
    A3: inflow A2, target Ⅲ (CODMn). CODMn 8 (Ⅳ, no CODMn at A2 → no inflow → case 一) = 30 000;
        NH3N 1.8 = inflow, Ⅴ → case 二 2 steps = 30 000; TP 0.15 Ⅲ ok → 60 000, 30 000 each to 西北旺镇 and 温泉镇,
        destination 四季青镇.
    B1: dry all month → 0.
    Units: 苏家坨镇 90 000; 上庄镇 45 000; 西北旺镇 30 000; 温泉镇 30 000. Total 195 000.
    Received: 上庄镇 90 000, 西北旺镇 45 000, 四季青镇 60 000.
    """
    m = "2018-06"
    sections = sections_csv(
        section_row("A0", "IV", down="苏家坨镇"),
        section_row("A1", "IV", up="苏家坨镇", down="上庄镇", inbound="A0"),
        section_row("A2", "IV", up="上庄镇", down="西北旺镇", inbound="A1"),
        section_row("A3", "III", boundary="西北旺镇;温泉镇", down="四季青镇", inbound="A2"),
        section_row("B1", "III", up="温泉镇", down="朝阳区"),
    )
    samples = samples_csv(
        twice("A0", m, COD="25", NH3N="1.0", TP="0.2"),
        [sample("A1", f"{m}-03", COD="40", NH3N="1.2", TP="0.2"), sample("A1", f"{m}-18", COD="50", NH3N="1.2",
                                                                          TP="0.3")],
        twice("A2", m, COD="35", NH3N="1.8", TP="0.25"),
        twice("A3", m, CODMn="8", NH3N="1.8", TP="0.15"),
        [sample("B1", f"{m}-04", dry="true"), sample("B1", f"{m}-19", dry="true")],
    )
    a = run("110108", m, samples, sections)
    assert {s["section_id"]: s["amount_yuan"] for s in a["sections"]} == {
        "A0": 0, "A1": 90000, "A2": 45000, "A3": 60000, "B1": 0}
    assert section(a, "A0")["status"] == "reference"
    assert unit_totals(a) == {"苏家坨镇": 90000, "上庄镇": 45000, "西北旺镇": 30000, "温泉镇": 30000}
    assert {d["to"]: d["amount_yuan"] for d in a["destinations"]} == {"上庄镇": 90000, "西北旺镇": 45000,
                                                                     "四季青镇": 60000}
    assert a["total_yuan"] == 195000
    assert {u["unit"]: u["receives_yuan"] for u in a["units"]} == {
        "苏家坨镇": 0, "上庄镇": 90000, "西北旺镇": 45000, "温泉镇": 0, "四季青镇": 60000}
    assert item(a, "A2", "COD")["case"] == "case_2" and item(a, "A2", "NH3N")["case"] == "case_1_worse_than_inflow"


def test_unknown_payer_names_are_flagged_not_guessed():
    # The 29 街镇 of 海政办发〔2017〕39号 附件1: a payer outside the list is reported (a typo or a renamed unit).
    sections = sections_csv(section_row("H2", "III", up="四季清镇", down="海淀镇"))
    a = run("110108", M, samples_csv(twice("H2", M, CODMn="7", NH3N="0.5", TP="0.1")), sections)
    assert any("四季清镇: not among the 29 街镇" in n for n in section(a, "H2")["notes"])
    assert unit_totals(a) == {"四季清镇": 30000}


def test_multiple_inbound_and_monthly_value_options():
    # Two inflows H0 (CODMn 6.5) and H1 (9.0); outflow H2 CODMn 8 (Ⅳ, target Ⅲ: 1 step).
    # multiple_inbound=mean: inflow 7.75 < 8 → case 一 = 30 000; =max: inflow 9.0 ≥ 8 → case 二 = 15 000.
    sections = sections_csv(section_row("H0", "III", down="四季青镇"), section_row("H1", "III", down="四季青镇"),
                            section_row("H2", "III", up="四季青镇", down="海淀镇", inbound="H0;H1"))
    samples = samples_csv(twice("H0", M, CODMn="6.5"), twice("H1", M, CODMn="9.0"),
                          twice("H2", M, CODMn="8", NH3N="0.5", TP="0.1"))
    assert run("110108", M, samples, sections)["total_yuan"] == 30000
    assert run("110108", M, samples, sections, multiple_inbound="max")["total_yuan"] == 15000
    # monthly_value: H2 sampled 5 and 11 → mean 8 (Ⅳ, 1 step); max 11 (Ⅴ, 2 steps). No inflow listed here.
    sections = sections_csv(section_row("H2", "III", up="四季青镇", down="海淀镇"))
    samples = samples_csv(sample("H2", f"{M}-05", CODMn="5", NH3N="0.5", TP="0.1"),
                          sample("H2", f"{M}-20", CODMn="11", NH3N="0.5", TP="0.1"))
    assert run("110108", M, samples, sections)["total_yuan"] == 30000
    assert run("110108", M, samples, sections, monthly_value="max")["total_yuan"] == 60000
