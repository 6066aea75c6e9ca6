"""The month's compensation: per section and pollutant the class, case, amount and clause; per section
the sum; per paying unit the total; where the money goes.

Two engines, chosen by the rule set's ``engine``:

* ``haidian_2017`` — 海行规发〔2017〕7号 第八条: per class step beyond the section's standard 3万元/月
  (case 一: no inflow, or outflow above inflow) or 1.5万元/月 (case 二: outflow ≤ inflow, still
  failing), plus the 劣Ⅴ surcharges; 第九条 sums and boundary-river sharing; 第十二条 destination
  (the downstream 街镇, or the district pool when the downstream side is not a Haidian 街镇).
* ``miyun_2021`` — 密政发〔2021〕2号 附件1: natural rivers by downstream/upstream ratio (base 5万 at
  ≥1.30× within the target limit, additional 10万 at ≥1.50× above it; 第七条（三） without an inbound
  section), non-natural rivers by class (附表3), the no-double-charging rule, total nitrogen
  (附表4), 第七条 special cases; the money goes to the district treasury.

Every ambiguity is an option (``options.py``) or a stated reading in the rule set's data; both are
part of the answer. Amounts are exact decimals in yuan; equal shares are split to the fen, any
leftover fen going to the first-listed units so that shares always add up to the section amount.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_CEILING, Decimal

from geo.compensation.options import resolve_options, shown_options
from geo.compensation.rules import (
    CLASS_NAMES,
    WORSE_THAN_V,
    CompensationInputError,
    RuleSet,
    load_standard,
)
from geo.compensation.samples import MonthValues, Sample, month_values
from geo.compensation.sections import COMPENSATION_DIR, Section, decode_csv

ZERO = Decimal(0)
ROMAN_ASCII = {2: "II", 3: "III", 4: "IV", 5: "V"}
FEN = Decimal("0.01")
DISTRICT_POOL_ZH = "区统筹资金（区环保局、区水务局、区财政局统筹安排）"
TREASURY_ZH = "区财政"


@dataclass
class Item:
    pollutant: str
    cls: int | None
    case: str
    clause: str
    amount: Decimal = ZERO
    kind: str = "none"
    detail: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"pollutant": self.pollutant, "class": CLASS_NAMES.get(self.cls) if self.cls else None,
                "class_number": self.cls, "case": self.case, "clause": self.clause,
                "amount_yuan": yuan(self.amount), "kind": self.kind,
                **{k: (float(v) if isinstance(v, Decimal) else v) for k, v in self.detail.items()}}


@dataclass
class SectionResult:
    section: Section
    status: str
    items: list[Item] = field(default_factory=list)
    payers: list[tuple[str, Decimal]] = field(default_factory=list)
    destination: str = ""
    clause: str = ""
    values: MonthValues | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def amount(self) -> Decimal:
        return sum((i.amount for i in self.items), ZERO)


def yuan(d: Decimal) -> int | float:
    q = d.quantize(FEN)
    return int(q) if q == q.to_integral_value() else float(q)


def split_equally(amount: Decimal, units: tuple[str, ...]) -> list[tuple[str, Decimal]]:
    """Equal shares to the fen; leftover fen to the first units, so the shares add up exactly."""
    if not units:
        return []
    fen = int((amount / FEN).to_integral_value())
    base, rest = divmod(fen, len(units))
    return [(u, Decimal(base + (1 if i < rest else 0)) * FEN) for i, u in enumerate(units)]


# ---------------------------------------------------------------------------------------------- helpers

def _inflow(section: Section, pollutant: str, months: dict[str, MonthValues], how: str = "mean",
            use_max: bool = False) -> Decimal | None:
    """The inbound value: the mean (or max) over the inbound sections with water and data of their monthly
    value (their mean, or their maximum when ``use_max``)."""
    vals = []
    for sid in section.inbound:
        mv = months.get(sid)
        if mv and not mv.dry_all_month and mv.value(pollutant, use_max) is not None:
            vals.append(mv.value(pollutant, use_max))
    if not vals:
        return None
    return max(vals) if how == "max" else sum(vals, ZERO) / len(vals)


def _values(mv: MonthValues, pollutants) -> dict:
    return {p: float(mv.mean[p]) for p in pollutants if p in mv.mean}


# ------------------------------------------------------------------------------------------------ 海淀

def _haidian_section(rs: RuleSet, s: Section, mv: MonthValues, months, opt, units: set[str]) -> SectionResult:
    std = load_standard()
    prm = rs.parameters
    res = SectionResult(s, "assessed", values=mv)
    organic = prm["organic_indicator"][ROMAN_ASCII[s.target_class]]
    use_max = opt["monthly_value"] == "max"
    for p in (organic, "NH3N", "TP"):
        c_out = mv.value(p, use_max)
        if c_out is None:
            res.items.append(Item(p, None, "no_data", rs.cite("art4")))
            res.notes.append(f"{p}: no value on days with water this month / 当月无{p}数据")
            continue
        cls = std.classify(p, c_out, s.water_body)
        counted = cls if opt["worse_than_v_steps"] == "one_class" else min(cls, 5)
        steps = max(0, counted - s.target_class)
        c_in = _inflow(s, p, months, opt["multiple_inbound"], use_max)
        detail = {"value_mg_l": c_out, "inflow_mg_l": c_in,
                  "standard_mg_l": std.limit(p, s.target_class, s.water_body), "class_steps": steps}
        if cls <= s.target_class:
            res.items.append(Item(p, cls, "meets_standard", rs.cite("art6"), detail=detail))
            continue
        case1 = c_in is None or c_out > c_in
        case = ("case_1_no_inflow" if c_in is None else "case_1_worse_than_inflow") if case1 else "case_2"
        key = "case1" if case1 else "case2"
        per_class = Decimal(prm["per_class_yuan"][key])
        res.items.append(Item(p, cls, case, rs.cite("art8_1" if case1 else "art8_2"), per_class * steps,
                              "per_class", detail))
        sur = prm["surcharge"][p]
        threshold = Decimal(sur["above"])
        if opt["tp_surcharge_threshold"] == "class_v_limit" and p == "TP":
            threshold = std.limit("TP", 5, s.water_body)
        if cls == WORSE_THAN_V and c_out > threshold:
            n = int(((c_out - threshold) / Decimal(sur["step"])).to_integral_value(rounding=ROUND_CEILING))
            res.items.append(Item(p, cls, case + "_surcharge",
                                  rs.cite("art8_1_surcharge" if case1 else "art8_2_surcharge"),
                                  Decimal(sur[f"{key}_yuan"]) * n, "surcharge",
                                  {"value_mg_l": c_out, "surcharge_above_mg_l": threshold, "surcharge_steps": n}))
    res.clause = rs.cite("art9_2") if s.boundary_units else rs.cite("art9")
    res.payers = split_equally(res.amount, s.payers)
    strangers = [u for u in s.payers if u not in units]
    if strangers:
        res.notes.append(f"{'、'.join(strangers)}: not among the 29 街镇 of 海政办发〔2017〕39号 (check the name) / "
                         "不在海淀区29个街镇名单中，请核对名称")
    if s.downstream_unit in units:
        res.destination = s.downstream_unit
        res.notes.append(f"destination {rs.cite('art12_1')}")
    else:
        res.destination = DISTRICT_POOL_ZH
        res.notes.append(f"destination {rs.cite('art12_2')}: downstream {s.downstream_unit or '(blank)'} is not a "
                         "Haidian 街镇 / 下游不是本区街镇")
    return res


# ------------------------------------------------------------------------------------------------ 密云

def _miyun_organic(s: Section, mv: MonthValues, target: int, opt, use_max: bool) -> tuple[str, str]:
    """附件1第二条: which organic indicator, and why."""
    std = load_standard()
    if target >= 4 or (target == 3 and opt["above_class_iii"] == "iii_and_worse"):
        return "COD", "a1_2"
    if s.organic_both and opt["unstable_organic"] == "worst_class_when_cod_sampled":
        cod, codmn = mv.value("COD", use_max), mv.value("CODMn", use_max)
        if cod is not None and (codmn is None or std.classify("COD", cod, s.water_body)
                                > std.classify("CODMn", codmn, s.water_body)):
            return "COD", "a1_2"
    return "CODMn", "a1_2"


def _miyun_section(rs: RuleSet, s: Section, mv: MonthValues, months, opt) -> SectionResult:
    std = load_standard()
    prm = rs.parameters
    res = SectionResult(s, "assessed", values=mv, destination=TREASURY_ZH)
    target = s.target_class
    if s.target_class_reading == "page_break" and opt["page_break_target_class"] == "missing":
        res.status = "not_assessed"
        res.notes.append("target class blank in 附表2 (option page_break_target_class=missing) / 目标类别缺失，未核算")
        return res
    if s.target_class_reading == "shifted_row":
        target = {"II": 2, "III": 3}[opt["xiaotanghe_outlet_target_class"]]
    use_max = s.section_id in opt["max_sections"]
    if use_max:
        res.notes.append(f"month's maximum used: {rs.cite('a1_7_5')}")
    organic, organic_clause = _miyun_organic(s, mv, target, opt, use_max)
    base_yuan, add_yuan = Decimal(prm["base_yuan"]), Decimal(prm["additional_yuan"])
    r_base, r_add = Decimal(prm["natural_base_ratio"]), Decimal(prm["natural_additional_ratio"])
    for p in (organic, "NH3N", "TP"):
        down = mv.value(p, use_max)
        if down is None:
            res.items.append(Item(p, None, "no_data", rs.cite(organic_clause)))
            res.notes.append(f"{p}: no value on days with water this month / 当月无{p}数据")
            continue
        cls = std.classify(p, down, s.water_body)
        if s.natural:
            limit = std.limit(p, target, s.water_body)
            up = _inflow(s, p, months)
            detail = {"value_mg_l": down, "inflow_mg_l": up, "limit_mg_l": limit}
            if up is None:  # 第七条（三）: no inbound section, or it cannot be monitored
                if s.inbound:
                    detail["inbound_unusable"] = "dry all month or not sampled / 入境断面断流或无监测数据"
                worse = cls - target
                need = 1 if opt["no_inbound_additional"] == "one_class_worse" else 2
                if worse >= 1:
                    res.items.append(Item(p, cls, "no_inbound_base", rs.cite("a1_7_3"), base_yuan, "base", detail))
                if worse >= need:
                    res.items.append(Item(p, cls, "no_inbound_additional", rs.cite("a1_7_3"), add_yuan,
                                          "additional", detail))
                if worse < 1:
                    res.items.append(Item(p, cls, "no_inbound_within_target", rs.cite("a1_7_3"), detail=detail))
                continue
            higher = down > up
            detail["ratio"] = round(float(down / up), 4) if up else None
            if higher and down <= limit and down >= up * r_base:
                res.items.append(Item(p, cls, "natural_base", rs.cite("a1_5_1_base"), base_yuan, "base", detail))
            elif higher and down > limit and down >= up * r_add:
                res.items.append(Item(p, cls, "natural_additional", rs.cite("a1_5_1_additional"), add_yuan,
                                      "additional", detail))
            elif higher and down > limit and down >= up * r_base:
                charged = opt["natural_gap"] == "base"
                res.items.append(Item(p, cls, "natural_gap_1.30_1.50_above_limit", rs.cite("a1_5_1_base"),
                                      base_yuan if charged else ZERO, "base" if charged else "none", detail))
            else:
                res.items.append(Item(p, cls, "natural_no_charge", rs.cite("a1_5_1_base"), detail=detail))
        else:
            assessed = s.assessment_class or target
            detail = {"value_mg_l": down, "limit_mg_l": std.limit(p, assessed, s.water_body)}
            if s.additional_trigger is None:
                raise CompensationInputError(
                    f"section {s.section_id}: natural=false needs additional_trigger reaches_v or exceeds_v (附表3)")
            if cls > assessed:
                res.items.append(Item(p, cls, "non_natural_base", rs.cite("a1_5_2_base"), base_yuan, "base", detail))
            needed = 5 if s.additional_trigger == "reaches_v" else WORSE_THAN_V
            if cls >= needed:
                key = "a1_5_2_additional_reaches_v" if needed == 5 else "a1_5_2_additional_exceeds_v"
                res.items.append(Item(p, cls, f"non_natural_additional_{s.additional_trigger}", rs.cite(key),
                                      add_yuan, "additional", detail))
            if cls <= assessed:
                res.items.append(Item(p, cls, "non_natural_within_class", rs.cite("a1_5_2_base"), detail=detail))
    _no_double_charging(rs, res, opt["no_double_charging_scope"])
    _miyun_tn(rs, s, mv, months, opt, res, use_max)
    res.clause = rs.cite("a1_7_2") if len(s.boundary_units) > 1 else rs.cite("a1_6")
    payers = s.payers + tuple(u for u in opt["co_payers"].get(s.section_id, ()) if u not in s.payers)
    if s.section_id in opt["co_payers"]:
        res.notes.append(f"co-payers shared equally: {rs.cite('a1_7_6')}")
    res.payers = split_equally(res.amount, payers)
    return res


def _no_double_charging(rs: RuleSet, res: SectionResult, scope: str) -> None:
    """附件1第五条: a section with an additional amount pays no base amount (section-wide or per pollutant)."""
    with_additional = {i.pollutant for i in res.items if i.kind == "additional"}
    if not with_additional:
        return
    for i in res.items:
        if i.kind == "base" and (scope == "section" or i.pollutant in with_additional):
            i.detail["waived_yuan"] = i.amount
            i.amount, i.kind = ZERO, "base_waived"
            i.case += "_waived_no_double_charging"
            i.clause = rs.cite("a1_5_no_double")


def _miyun_tn(rs: RuleSet, s: Section, mv, months, opt, res: SectionResult, use_max: bool) -> None:
    """附件1第五条（三）, 附表4: TN at least p % above the inbound value → 5万元/月."""
    if s.tn_row is None and s.tn_threshold_pct is None:
        return
    pct = s.tn_threshold_pct
    how = opt["tn_blank_thresholds"]
    if pct is None:
        if how == "merged_cell_above":
            pct = s.tn_merged_reading_pct
        elif isinstance(how, Decimal):
            pct = how
    down, up = mv.value("TN", use_max), _inflow(s, "TN", months)
    detail = {"value_mg_l": down, "inflow_mg_l": up, "threshold_pct": pct, "tn_row": s.tn_row}
    clause = rs.cite("a1_5_3_tn")
    if pct is None:
        res.items.append(Item("TN", None, "tn_threshold_missing", clause, detail=detail))
        res.notes.append("附表4 prints no TN threshold for this section (option tn_blank_thresholds) / 附表4阈值为空")
    elif down is None:
        res.items.append(Item("TN", None, "no_data", clause, detail=detail))
    elif up is None:
        res.items.append(Item("TN", None, "tn_no_inbound", clause, detail=detail))
    elif down > up and down * 100 >= up * (100 + pct):
        res.items.append(Item("TN", None, "tn_above_threshold", clause, Decimal(rs.parameters["tn_yuan"]), "tn",
                              detail))
    else:
        res.items.append(Item("TN", None, "tn_below_threshold", clause, detail=detail))


# ------------------------------------------------------------------------------------------------ driver

def haidian_units() -> set[str]:
    return {r["unit"] for r in decode_csv((COMPENSATION_DIR / "haidian-units.csv").read_bytes(), "units")[1:]}


def calculate(rs: RuleSet, sections: list[Section], samples: list[Sample], month: date,
              options: dict | None = None) -> dict:
    """The month's answer (see the module docstring and README 'Water-environment compensation')."""
    opt = resolve_options(rs, options)
    ids = {s.section_id for s in sections}
    for name in ("max_sections",):
        bad = [x for x in opt.get(name, ()) if x not in ids]
        if bad:
            raise CompensationInputError(f"option {name}: unknown section(s) {', '.join(bad)}")
    bad = [x for x in opt.get("co_payers", {}) if x not in ids]
    if bad:
        raise CompensationInputError(f"option co_payers: unknown section(s) {', '.join(bad)}")
    months, outside = month_values(samples, month)
    units = haidian_units() if rs.engine == "haidian_2017" else set()
    results: list[SectionResult] = []
    for s in sections:
        mv = months.get(s.section_id)
        if mv is None:
            continue
        if not s.payers:
            res = SectionResult(s, "reference", values=mv)
            res.notes.append("inbound reference only: no upstream unit in the district pays / 入境参照断面，不计补偿金")
        elif mv.dry_all_month:
            res = SectionResult(s, "dry_all_month", values=mv,
                                clause=rs.cite("art9_1" if rs.engine == "haidian_2017" else "a1_7_1"))
        elif rs.engine == "haidian_2017":
            res = _haidian_section(rs, s, mv, months, opt, units)
        elif rs.engine == "miyun_2021":
            res = _miyun_section(rs, s, mv, months, opt)
        else:
            raise CompensationInputError(f"{rs.id}: no calculation engine")
        results.append(res)
    return _answer(rs, month, results, months, outside, opt, [s.section_id for s in sections
                                                                 if s.section_id not in months])


def _answer(rs, month, results, months, outside, opt, not_sampled) -> dict:
    m = f"{month:%Y-%m}"
    unit_paid: dict[str, Decimal] = {}
    unit_received: dict[str, Decimal] = {}
    unit_sections: dict[str, list[str]] = {}
    transfers = []
    for r in results:
        for unit, share in r.payers:
            unit_paid[unit] = unit_paid.get(unit, ZERO) + share
            unit_sections.setdefault(unit, []).append(r.section.section_id)
            if share:
                transfers.append({"section_id": r.section.section_id, "from": unit, "to": r.destination,
                                  "amount_yuan": yuan(share)})
                unit_received[r.destination] = unit_received.get(r.destination, ZERO) + share
    sections_out = []
    for r in results:
        mv = r.values
        sections_out.append({
            "section_id": r.section.section_id, "name": r.section.name, "month": m, "status": r.status,
            "amount_yuan": yuan(r.amount), "items": [i.as_dict() for i in r.items],
            "payers": [{"unit": u, "amount_yuan": yuan(a)} for u, a in r.payers],
            "destination": r.destination or None, "clause": r.clause or None,
            "samples": mv.samples, "wet_samples": mv.wet_samples,
            "monthly_mean_mg_l": _values(mv, ("CODMn", "COD", "NH3N", "TP", "TN")),
            "warnings": mv.warnings, "notes": r.notes,
            "lon": r.section.lon, "lat": r.section.lat,
        })
    total = sum((r.amount for r in results), ZERO)
    return {
        "rule_set": {k: v for k, v in rs.summary().items() if k not in ("clauses", "options", "readings")},
        "district_code": rs.district_code,
        "month": m,
        "sections": sections_out,
        # Paying units, then units that only receive (海淀 第十二条); the pool and treasury are destinations.
        "units": [{"unit": u, "month": m, "amount_yuan": yuan(unit_paid.get(u, ZERO)),
                   "sections": unit_sections.get(u, []), "receives_yuan": yuan(unit_received.get(u, ZERO))}
                  for u in sorted(set(unit_paid) | (set(unit_received) - {DISTRICT_POOL_ZH, TREASURY_ZH}),
                                  key=lambda u: (-unit_paid.get(u, ZERO), -unit_received.get(u, ZERO), u))],
        "destinations": [{"to": d, "amount_yuan": yuan(a)} for d, a in sorted(unit_received.items())],
        "transfers": transfers,
        "total_yuan": yuan(total),
        "options": shown_options(rs, opt),
        "readings": rs.summary()["readings"],
        "not_sampled": not_sampled,
        "sample_rows_outside_month": outside,
    }





def calculate_from_csv(district: str, month: str, samples: bytes | str, sections: bytes | str | None = None,
                       options: dict | None = None) -> dict:
    """The one entry point of the API and the CLI: parse, validate, pick the rule set, calculate."""
    from geo.compensation.rules import parse_month, rule_set_for
    from geo.compensation.samples import parse_samples
    from geo.compensation.sections import parse_sections, shipped_sections

    m = parse_month(month)
    rs = rule_set_for(district, m)
    if sections:
        secs = parse_sections(sections, rs.district_code)
    else:
        secs = shipped_sections(rs)
        if not secs:
            raise CompensationInputError(
                f"{rs.raw.get('doc_no')}: {rs.raw.get('sections_source_en')} / {rs.raw.get('sections_source_zh')}")
    return calculate(rs, secs, parse_samples(samples, {s.section_id for s in secs}), m, options)
__all__ = ["calculate", "calculate_from_csv", "split_equally", "yuan"]
