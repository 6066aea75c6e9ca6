"""北京市密云区水环境跨界断面考核补偿办法（2020年修订版）(密政发〔2021〕2号): one test per clause, the
expectation computed by hand next to the quoted clause, on the shipped 39 sections (附表1–4) unless a
clause needs a shape the table does not have. GB 3838-2002 river limits, class Ⅱ: CODMn 4, NH3N 0.5,
TP 0.1; class Ⅲ: CODMn 6, COD 20, NH3N 1.0, TP 0.2; class Ⅳ: CODMn 10, NH3N 1.5, TP 0.3."""

import pytest

from geo.compensation.allocate import allocate
from geo.compensation.rules import CompensationInputError, parse_month, rule_set_for
from geo.compensation.sections import shipped_sections
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

M = "2021-03"
CLEAN_II = {"CODMn": "2", "NH3N": "0.2", "TP": "0.05"}


def miyun(*samples, **options):
    return run("110118", M, samples_csv(*samples), **options)


def test_shipped_table_has_39_sections_and_14_tn_rows():
    secs = shipped_sections(rule_set_for("110118", parse_month(M)))
    assert len(secs) == 39 and [s.section_id for s in secs][:2] == ["S01", "S02"]
    assert sum(s.natural for s in secs) == 34  # 附表1 (14) + 附表2 (20); 附表3 has 5 non-natural sections
    tn = {s.section_id: s.tn_threshold_pct for s in secs if s.tn_row}
    assert len(tn) == 14 and {k for k, v in tn.items() if v is None} == {"S17", "S18", "S29"}
    s38 = next(s for s in secs if s.section_id == "S38")
    assert (s38.target_class, s38.assessment_class, s38.additional_trigger) == (3, 4, "exceeds_v")


def test_a1_5_1_natural_base_at_exactly_30_percent():
    # 附件1第五条（一）「当下游断面一项污染物监测结果高于上游断面监测结果30%（含30%），且监测结果未超过水质
    # 目标类别限值时，需缴纳单项基础补偿金5万元/月」: S01 → S02 (石城镇, Ⅱ). CODMn 2.0 → 2.6 = 1.30×, ≤ 4 → 50 000.
    a = miyun(twice("S01", M, **CLEAN_II), twice("S02", M, **{**CLEAN_II, "CODMn": "2.6"}))
    i = item(a, "S02", "CODMn")
    assert (i["case"], i["amount_yuan"], i["ratio"]) == ("natural_base", 50000, 1.3)
    assert unit_totals(a) == {"石城镇": 50000}
    # 2.59 = 1.295× → nothing.
    a = miyun(twice("S01", M, **CLEAN_II), twice("S02", M, **{**CLEAN_II, "CODMn": "2.59"}))
    assert a["total_yuan"] == 0


def test_a1_5_1_natural_additional_and_no_double_charging_section_wide():
    # 附表1「当下游断面一项污染物监测结果高于上游断面监测结果 50% (含 50%), 且监测结果超过水质目标类别限值时,
    # 需缴纳单项目追加补偿金 10 万元/月」; 第五条「对产生追加补偿金的断面，该断面的考核补偿金只收取追加补偿金，
    # 不重复收取基础补偿金」. S02: NH3N 0.4 → 0.6 (1.5×, > 0.5) → 100 000; CODMn 2 → 2.6 base 50 000 waived
    # (section scope, default) → 100 000. With scope=pollutant the CODMn base stays: 150 000.
    up = {**CLEAN_II, "NH3N": "0.4"}
    down = {**CLEAN_II, "CODMn": "2.6", "NH3N": "0.6"}
    a = miyun(twice("S01", M, **up), twice("S02", M, **down))
    assert item(a, "S02", "NH3N")["amount_yuan"] == 100000
    waived = item(a, "S02", "CODMn")
    assert (waived["kind"], waived["amount_yuan"], waived["waived_yuan"]) == ("base_waived", 0, 50000)
    assert "第五条（二）第二款" in waived["clause"]
    assert a["total_yuan"] == 100000
    a = miyun(twice("S01", M, **up), twice("S02", M, **down), no_double_charging_scope="pollutant")
    assert a["total_yuan"] == 150000


def test_natural_gap_between_130_and_150_percent_above_limit():
    # Gap (notes F-09 1): TP 0.08 → 0.11 = 1.375× and > 0.1 → neither rule: 0 by default; natural_gap=base → 50 000.
    samples = (twice("S01", M, **{**CLEAN_II, "TP": "0.08"}), twice("S02", M, **{**CLEAN_II, "TP": "0.11"}))
    a = miyun(*samples)
    assert item(a, "S02", "TP")["case"] == "natural_gap_1.30_1.50_above_limit" and a["total_yuan"] == 0
    assert miyun(*samples, natural_gap="base")["total_yuan"] == 50000


def test_a1_5_2_non_natural_base_and_reaches_v_additional():
    # 附件1第五条（二）「每项污染物监测结果超过考核补偿水质目标类别限值，需缴纳单项基础补偿金5万元/月」;
    # 附表3（白河下段）「监测结果达到V类时,每项污染物需追加补偿金 10 万元/月」. S35 (assessment Ⅲ, 密云镇;鼓楼街道):
    # CODMn 8 (Ⅳ) → base 50 000 only: shared 25 000 each.
    a = miyun(twice("S35", M, CODMn="8", NH3N="0.5", TP="0.1"))
    assert section(a, "S35")["amount_yuan"] == 50000
    assert unit_totals(a) == {"密云镇": 25000, "鼓楼街道": 25000}
    # NH3N 1.8 (Ⅴ) as well: base 50 000 (CODMn) + base 50 000 (NH3N) + additional 100 000 (NH3N reaches Ⅴ);
    # no double charging (section) drops both bases → 100 000.
    a = miyun(twice("S35", M, CODMn="8", NH3N="1.8", TP="0.1"))
    assert item(a, "S35", "NH3N", "additional")["case"] == "non_natural_additional_reaches_v"
    assert section(a, "S35")["amount_yuan"] == 100000


def test_a1_5_2_chaobai_exceeds_v_and_assessment_class_iv():
    # 附表3（潮白河, 考核补偿类别 Ⅳ）「监测结果超过V类时,每项污染物需追加补偿金 10 万元/月」. S38:
    # NH3N 1.8 (Ⅴ > Ⅳ) → base 50 000, Ⅴ does not exceed Ⅴ → no additional. NH3N 2.5 (劣Ⅴ) → additional 100 000.
    a = miyun(twice("S38", M, CODMn="8", NH3N="1.8", TP="0.2"))
    assert section(a, "S38")["amount_yuan"] == 50000
    a = miyun(twice("S38", M, CODMn="8", NH3N="2.5", TP="0.2"))
    assert section(a, "S38")["amount_yuan"] == 100000
    assert unit_totals(a) == {"经济开发区": 50000, "十里堡镇": 50000}


def test_a1_5_3_total_nitrogen_threshold_inclusive():
    # 附表4 row 6「下游出境断面总氮监测结果高于上游入境断面监测结果 3% (含 3%) 时, 需缴纳补偿金 5 万元/月」:
    # S11 → S12 (大城子镇). TN 2.0 → 2.06 (exactly +3 %) → 50 000; 2.05 → 0.
    a = miyun(twice("S11", M, **CLEAN_II, TN="2.0"), twice("S12", M, **CLEAN_II, TN="2.06"))
    assert item(a, "S12", "TN")["amount_yuan"] == 50000 and unit_totals(a) == {"大城子镇": 50000}
    a = miyun(twice("S11", M, **CLEAN_II, TN="2.0"), twice("S12", M, **CLEAN_II, TN="2.05"))
    assert a["total_yuan"] == 0


def test_tn_blank_thresholds_option():
    # 附表4 row 11 (红门川河, S29) prints no threshold. Default missing → not assessed, said so; merged_cell_above
    # → row 10's 4 %: TN 1.00 → 1.04 → 50 000; tn_blank_thresholds=5 → 1.04 < 1.05 → 0.
    samples = (twice("S28", M, CODMn="3", NH3N="0.5", TP="0.1", TN="1.00"),
               twice("S29", M, CODMn="3", NH3N="0.5", TP="0.1", TN="1.04"))
    a = miyun(*samples)
    assert item(a, "S29", "TN")["case"] == "tn_threshold_missing" and a["total_yuan"] == 0
    assert miyun(*samples, tn_blank_thresholds="merged_cell_above")["total_yuan"] == 50000
    assert miyun(*samples, tn_blank_thresholds="5")["total_yuan"] == 0


def test_a1_7_1_dry_all_month_and_mean_of_wet_days():
    # 第七条（一）「当跨界断面全月断流时,当月不核算该断面补偿金;当非全月断流时,以当月有水日监测到的数据的算数平均值核算」
    a = miyun(twice("S01", M, **CLEAN_II), [sample("S02", f"{M}-05", dry="true"), sample("S02", f"{M}-20", dry="true")])
    assert section(a, "S02")["status"] == "dry_all_month" and a["total_yuan"] == 0
    # S02 dry on the 5th (its CODMn 9 ignored), 2.6 on the 12th and 20th → mean 2.6 = 1.30 × 2 → 50 000.
    a = miyun(twice("S01", M, **CLEAN_II), [sample("S02", f"{M}-05", CODMn="9", dry="true"),
                                            sample("S02", f"{M}-12", **{**CLEAN_II, "CODMn": "2.6"}),
                                            sample("S02", f"{M}-20", **{**CLEAN_II, "CODMn": "2.6"})])
    assert section(a, "S02")["monthly_mean_mg_l"]["CODMn"] == 2.6 and a["total_yuan"] == 50000


def test_a1_7_2_boundary_river_shared_equally():
    # 第七条（二）「当跨界断面位于镇街(地区)、园区界河时,由相关镇街(地区)、园区均摊补偿金」: S05 (附表4: 西岸 高岭镇,
    # 东岸 古北口镇), inflow S04. NH3N 0.3 → 0.6 (2×, > 0.5) → 100 000 → 50 000 each.
    a = miyun(twice("S04", M, **{**CLEAN_II, "NH3N": "0.3"}), twice("S05", M, **{**CLEAN_II, "NH3N": "0.6"}))
    assert section(a, "S05")["payers"] == [{"unit": "高岭镇", "amount_yuan": 50000},
                                          {"unit": "古北口镇", "amount_yuan": 50000}]
    assert "第七条（二）" in section(a, "S05")["clause"]


def test_a1_7_3_no_inbound_section_judged_against_target_class():
    # 第七条（三）「当跨界断面无入境断面…当跨界断面监测结果超过水质目标类别的限值时,需缴纳基础补偿金;当跨界断面
    # 水质恶化1个水质类别时,需缴纳追加补偿金」: S07 (冯家峪镇, Ⅱ, no inbound). CODMn 4.5 (Ⅲ): base 50 000 and
    # additional 100 000 → no double charging → 100 000. Option two_classes_worse: base only, 50 000.
    samples = (twice("S07", M, **{**CLEAN_II, "CODMn": "4.5"}),)
    a = miyun(*samples)
    assert section(a, "S07")["amount_yuan"] == 100000 and unit_totals(a) == {"冯家峪镇": 100000}
    assert miyun(*samples, no_inbound_additional="two_classes_worse")["total_yuan"] == 50000
    # CODMn 7 (Ⅳ, two classes worse): additional under both readings.
    assert miyun(twice("S07", M, **{**CLEAN_II, "CODMn": "7"}),
                 no_inbound_additional="two_classes_worse")["total_yuan"] == 100000


def test_a1_7_3_dry_inbound_section_uses_target_class():
    # 「或上游入境断面存在断流…」: S01 dry all month → S02 judged against Ⅱ: CODMn 4.5 → 100 000.
    a = miyun([sample("S01", f"{M}-05", dry="true"), sample("S01", f"{M}-20", dry="true")],
              twice("S02", M, **{**CLEAN_II, "CODMn": "4.5"}))
    assert item(a, "S02", "CODMn", "additional")["case"] == "no_inbound_additional"
    assert a["total_yuan"] == 100000


def test_a1_7_4_several_inbound_sections_are_averaged():
    # 第七条（四）「按多个出、入境断面污染物浓度算术平均值核算」: X3 with inbound X1 (CODMn 2) and X2 (4):
    # mean 3; X3 3.9 = 1.30 × 3 and ≤ 4 → base 50 000.
    sections = sections_csv(section_row("X1", "II", down="甲镇", district="110118"),
                            section_row("X2", "II", down="甲镇", district="110118"),
                            section_row("X3", "II", up="甲镇", down="乙镇", inbound="X1;X2", district="110118"))
    samples = samples_csv(twice("X1", M, CODMn="2"), twice("X2", M, CODMn="4"), twice("X3", M, CODMn="3.9"))
    a = run("110118", M, samples, sections)
    assert item(a, "X3", "CODMn")["inflow_mg_l"] == 3.0 and a["total_yuan"] == 50000


def test_a1_7_5_illegal_discharge_uses_the_month_maximum():
    # 第七条（五）「由于违法排污导致跨界断面污染物浓度超标的,以当月监测的最大浓度值核算补偿金」: S02 CODMn 2.0 and 5.0:
    # mean 3.5 (1.75×, ≤ 4) → base 50 000; with max_sections=S02 the max 5.0 (2.5×, > 4) → additional 100 000.
    samples = (twice("S01", M, **CLEAN_II), [sample("S02", f"{M}-05", **{**CLEAN_II, "CODMn": "2.0"}),
                                             sample("S02", f"{M}-20", **{**CLEAN_II, "CODMn": "5.0"})])
    assert miyun(*samples)["total_yuan"] == 50000
    a = miyun(*samples, max_sections="S02")
    assert a["total_yuan"] == 100000 and a["options"]["max_sections"]["value"] == ["S02"]


def test_a1_7_6_co_payers_share_equally():
    # 第七条（六）「属地以外镇街…需与被考核河段所在属地共同承担被考核断面产生的补偿金」: S09 (新城子镇) 50 000 with
    # co-payer 不老屯镇 → 25 000 each.
    samples = (twice("S08", M, **CLEAN_II), twice("S09", M, **{**CLEAN_II, "CODMn": "2.6"}))
    a = miyun(*samples, co_payers="S09=不老屯镇")
    assert unit_totals(a) == {"新城子镇": 25000, "不老屯镇": 25000}
    with pytest.raises(CompensationInputError, match="co_payers"):
        miyun(*samples, co_payers="S99=不老屯镇")


def test_a1_2_unstable_waters_use_the_worse_of_codmn_and_cod():
    # 附件1第二条「…水质不稳定的水体，补偿指标参考加测的化学需氧量结果，以高锰酸盐指数或化学需氧量监测结果确定的
    # 最高类别核算」: S23 (附表2 lists both). CODMn 5 (Ⅲ) but COD 25 (Ⅳ) → COD counts: inflow S22 COD 15,
    # 25 ≥ 1.5 × 15 and > 20 → additional 100 000. With codmn_only: CODMn 4 → 5 = 1.25× → 0.
    samples = (twice("S22", M, CODMn="4", COD="15", NH3N="0.5", TP="0.1"),
               twice("S23", M, CODMn="5", COD="25", NH3N="0.5", TP="0.1"))
    a = miyun(*samples)
    assert item(a, "S23", "COD")["amount_yuan"] == 100000 and unit_totals(a) == {"西田各庄镇": 100000}
    assert miyun(*samples, unstable_organic="codmn_only")["total_yuan"] == 0


def test_a1_2_above_class_iii_option():
    # 「所有功能类别为Ⅲ类以上的水体补偿指标为化学需氧量」: a user section with target Ⅲ (not in the tables'
    # double-indicator rows) uses CODMn by default; above_class_iii=iii_and_worse makes it COD.
    sections = sections_csv(section_row("Y1", "III", up="甲镇", down="乙镇", district="110118"))
    samples = samples_csv(twice("Y1", M, CODMn="5", COD="25", NH3N="0.5", TP="0.1"))
    a = run("110118", M, samples, sections)
    assert [i["pollutant"] for i in section(a, "Y1")["items"]][0] == "CODMn" and a["total_yuan"] == 0
    a = run("110118", M, samples, sections, above_class_iii="iii_and_worse")
    assert section(a, "Y1")["items"][0]["pollutant"] == "COD" and a["total_yuan"] == 100000


def test_reference_sections_owe_nothing():
    # Reading inbound_reference_sections: S01 (district entry) has no upstream unit in 密云.
    a = miyun(twice("S01", M, CODMn="30", NH3N="5", TP="1"))
    assert section(a, "S01")["status"] == "reference" and a["total_yuan"] == 0


def test_page_break_and_shifted_row_options():
    # S30 (target cell blank after the page break): III by default, missing → not assessed.
    samples = (twice("S29", M, CODMn="3", NH3N="0.5", TP="0.1"), twice("S30", M, CODMn="4.5", NH3N="0.5", TP="0.1"))
    assert miyun(*samples)["total_yuan"] == 50000  # 1.5× but ≤ 6 (Ⅲ) → base
    a = miyun(*samples, page_break_target_class="missing")
    assert section(a, "S30")["status"] == "not_assessed" and a["total_yuan"] == 0
    # S21 (小汤河入潮河处, printed III on a shifted row): Ⅱ by default: CODMn 3 → 4.5 (1.5×, > 4) → 100 000;
    # read as Ⅲ: 4.5 ≤ 6 → base 50 000.
    samples = (twice("S20", M, CODMn="3", NH3N="0.2", TP="0.05"), twice("S21", M, CODMn="4.5", NH3N="0.2", TP="0.05"))
    assert miyun(*samples)["total_yuan"] == 100000
    assert miyun(*samples, xiaotanghe_outlet_target_class="III")["total_yuan"] == 50000


def test_rule_set_switch_at_2021_01_01():
    # 第十二条「自2021年1月1日起施行，原办法废止」; the repealed measures are not in the seeds → a clear error.
    samples = samples_csv(twice("S07", "2020-12", CODMn="7"))
    with pytest.raises(CompensationInputError, match="no rule set in force for district 110118 in 2020-12"):
        run("110118", "2020-12", samples)
    a = run("110118", "2021-01", samples.replace("2020-12", "2021-01"))
    assert a["rule_set"]["doc_no"] == "密政发〔2021〕2号" and a["rule_set"]["effective_from"] == "2021-01-01"


def test_mentougou_is_cited_but_cannot_be_calculated():
    with pytest.raises(CompensationInputError, match="not in the project's sources"):
        run("110109", M, samples_csv(twice("S07", M, CODMn="7")))


def test_full_month_several_sections_and_units_by_hand():
    """2021-07 on the 清水河 chain, the 潮河上段 boundary reach and 附表3, by hand:

    S11 (entry, reference): CODMn 2, NH3N 0.2, TP 0.05, TN 2.0.
    S12 大城子镇: CODMn 2.6 (1.3×, ≤ 4) base 50 000; TN 2.1 (+5 % ≥ 3 %) 50 000 → 100 000.
    S13 北庄镇: inflow S12; NH3N 0.2 → 0.6 (3×, > 0.5) additional 100 000; CODMn 2.6 → 2.6 nothing;
        TN 2.1 → 2.1 nothing → 100 000.
    S14 太师屯镇: dry all month → 0.
    S06 高岭镇;太师屯镇 (no samples for S05 → no inbound → 第七条（三）): TP 0.15 (Ⅲ, one class worse) → base +
        additional → 100 000; TN: no inbound → not assessed → 50 000 each.
    S36 果园街道;鼓楼街道: CODMn 7 (Ⅳ > Ⅲ) base 50 000 → 25 000 each.
    Units: 大城子镇 100 000; 北庄镇 100 000; 高岭镇 50 000; 太师屯镇 50 000; 果园街道 25 000; 鼓楼街道 25 000.
    Total 350 000.
    """
    m = "2021-07"
    a = run("110118", m, samples_csv(
        twice("S11", m, CODMn="2", NH3N="0.2", TP="0.05", TN="2.0"),
        twice("S12", m, CODMn="2.6", NH3N="0.2", TP="0.05", TN="2.1"),
        twice("S13", m, CODMn="2.6", NH3N="0.6", TP="0.05", TN="2.1"),
        [sample("S14", f"{m}-06", dry="true"), sample("S14", f"{m}-21", dry="true")],
        twice("S06", m, CODMn="3", NH3N="0.3", TP="0.15", TN="2.0"),
        twice("S36", m, CODMn="7", NH3N="0.5", TP="0.1"),
    ))
    assert {s["section_id"]: s["amount_yuan"] for s in a["sections"]} == {
        "S06": 100000, "S11": 0, "S12": 100000, "S13": 100000, "S14": 0, "S36": 50000}
    assert unit_totals(a) == {"大城子镇": 100000, "北庄镇": 100000, "高岭镇": 50000, "太师屯镇": 50000,
                              "果园街道": 25000, "鼓楼街道": 25000}
    assert a["total_yuan"] == 350000
    assert item(a, "S06", "TN")["case"] == "tn_no_inbound"
    assert all(d["to"] == "区财政" for d in a["destinations"])
    assert len(a["not_sampled"]) == 33


def test_annex2_annual_allocation_30_20_50_with_the_30_percent_cap():
    # 附件2第三–五条: previous year 1 000 000 → reward 300 000, commendation 200 000, subsidy 500 000.
    # Project A investment 1 000 000 asks 400 000 → capped at 30 % = 300 000; B 500 000 asks 100 000 → 100 000.
    # 400 000 granted, 100 000 unused joins the reward: 400 000 / 3 units = 133 333.34, .33, .33.
    # Commendation 200 000 / 2 = 100 000 each.
    rs = rule_set_for("110118", parse_month(M))
    a = allocate(rs, 1_000_000, ["甲镇", "乙镇", "丙镇"], ["丁镇", "戊镇"],
                 [{"unit": "甲镇", "investment_yuan": 1_000_000, "requested_yuan": 400_000},
                  {"unit": "乙镇", "investment_yuan": 500_000, "requested_yuan": 100_000}])
    assert [s["granted_yuan"] for s in a["subsidies"]] == [300000, 100000]
    assert a["pools"]["reward"]["plus_unused_subsidy_yuan"] == 100000
    assert [r["amount_yuan"] for r in a["rewards"]] == [133333.34, 133333.33, 133333.33]
    assert [r["amount_yuan"] for r in a["commendations"]] == [100000, 100000]
    assert a["unallocated_yuan"] == 0
    # Oversubscribed: eligible 300 000 + 300 000 = 600 000 > 500 000 → scaled by 5/6: 250 000 each.
    a = allocate(rs, 1_000_000, ["甲镇"], [], [{"unit": "甲镇", "investment_yuan": 1_000_000},
                                              {"unit": "乙镇", "investment_yuan": 1_000_000}])
    assert [s["granted_yuan"] for s in a["subsidies"]] == [250000, 250000]
    assert a["pools"]["subsidy"]["scaled_pro_rata"] is True
    assert a["unallocated_yuan"] == 200000  # no commended units: the 20 % stays unallocated, said so
