"""The monthly compensation report: bilingual HTML (Chinese first) and PDF from the calculation answer.

One table per paying unit and one row per section item with its clause; the options and fixed
readings the month was calculated with close the report. The PDF is the same HTML laid out by
WeasyPrint with Debian's Noto Sans CJK (fonts-noto-cjk); without that font the Chinese would not
render, so the PDF path checks for it and says so.
"""

from __future__ import annotations

import subprocess

import jinja2

from maps import TEMPLATES_DIR

TITLE = ("水环境跨界断面考核补偿金月报", "Water-environment cross-boundary compensation: monthly report")

CASES = {
    "meets_standard": "达到考核标准 / meets the standard",
    "case_1_no_inflow": "第八条（一）无入境水流且超标 / no inflow, above the standard",
    "case_1_worse_than_inflow": "第八条（一）出境浓度高于入境 / outflow above inflow",
    "case_2": "第八条（二）出境不高于入境但未达标 / outflow ≤ inflow, still failing",
    "case_1_no_inflow_surcharge": "劣Ⅴ类追加 / surcharge beyond class V",
    "case_1_worse_than_inflow_surcharge": "劣Ⅴ类追加 / surcharge beyond class V",
    "case_2_surcharge": "劣Ⅴ类追加（减半）/ surcharge beyond class V (half rate)",
    "natural_base": "基础补偿金：比上游高30%以上且未超目标限值 / base: ≥30 % above upstream, within the limit",
    "natural_additional": "追加补偿金：比上游高50%以上且超目标限值 / additional: ≥50 % above upstream, above the limit",
    "natural_gap_1.30_1.50_above_limit": "高30%–50%且超限值：原文无对应规则 / 30–50 % above upstream and above the limit: no rule",
    "natural_no_charge": "未达到收费条件 / no charge",
    "no_inbound_base": "无入境断面：超目标限值，基础补偿金 / no inbound section: above the limit, base",
    "no_inbound_additional": "无入境断面：恶化1个类别，追加补偿金 / no inbound section: one class worse, additional",
    "no_inbound_within_target": "无入境断面：达到目标类别 / no inbound section: within the target class",
    "non_natural_base": "非自然水体：超过考核类别，基础补偿金 / non-natural: above the assessment class, base",
    "non_natural_additional_reaches_v": "非自然水体：达到Ⅴ类，追加补偿金 / non-natural: reaches class V, additional",
    "non_natural_additional_exceeds_v": "非自然水体：超过Ⅴ类，追加补偿金 / non-natural: beyond class V, additional",
    "non_natural_within_class": "达到考核类别 / within the assessment class",
    "tn_above_threshold": "总氮超过附表4要求 / total nitrogen above the 附表4 threshold",
    "tn_below_threshold": "总氮未超过要求 / total nitrogen within the threshold",
    "tn_threshold_missing": "附表4阈值为空，未核算 / 附表4 threshold blank: not assessed",
    "tn_no_inbound": "无入境总氮数据，未核算 / no inbound total nitrogen: not assessed",
    "no_data": "当月无数据 / no data this month",
}
STATUS = {
    "assessed": "已核算 / assessed",
    "dry_all_month": "全月断流，不计 / dry all month: nothing owed",
    "reference": "入境参照断面 / inbound reference",
    "not_assessed": "未核算 / not assessed",
}


def _case(code: str) -> str:
    if code.endswith("_waived_no_double_charging"):
        return "基础补偿金不重复收取 / base waived (no double charging): " + CASES.get(
            code.removesuffix("_waived_no_double_charging"), code)
    return CASES.get(code, code)


def _money(value) -> str:
    return f"{value:,.2f}".removesuffix(".00") if value is not None else ""


def _plain(value) -> str:
    if isinstance(value, list):
        return "、".join(map(str, value)) or "无 / none"
    if isinstance(value, dict):
        return "；".join(f"{k}={'、'.join(v)}" for k, v in value.items()) or "无 / none"
    return str(value)


def report_html(answer: dict) -> str:
    """The report page for one calculation answer (``geo.compensation.calculate``)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True)
    return env.get_template("compensation_report.html").render(
        a=answer, rs=answer["rule_set"], title_zh=TITLE[0], title_en=TITLE[1],
        show_receives=any(u["receives_yuan"] for u in answer["units"]) or answer["district_code"] == "110108",
        money=_money, case=_case, status=lambda s: STATUS.get(s, s), plain=_plain)


def cjk_font_available() -> bool:
    """Whether fontconfig knows a Noto CJK font (WeasyPrint finds fonts through fontconfig)."""
    try:
        out = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "Noto Sans CJK" in out or "Noto Serif CJK" in out


def report_pdf(answer: dict) -> bytes:
    """The same report as PDF (WeasyPrint). Raises RuntimeError when no CJK font is installed."""
    if not cjk_font_available():
        raise RuntimeError("no CJK font (install Debian's fonts-noto-cjk) — the PDF would show empty boxes")
    import weasyprint

    return weasyprint.HTML(string=report_html(answer)).write_pdf()
