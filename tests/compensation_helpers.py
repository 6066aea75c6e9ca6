"""Small builders for the compensation tests: sections and samples CSV text, and one calculation."""

from __future__ import annotations

from geo.compensation.calculate import calculate
from geo.compensation.rules import parse_month, rule_set_for
from geo.compensation.samples import parse_samples
from geo.compensation.sections import parse_sections, shipped_sections

SECTION_COLUMNS = ("section_id,name,district_code,river,target_class,natural,upstream_unit,downstream_unit,"
                   "boundary_units,inbound_section_ids,lon,lat,water_body,assessment_class,organic_both,"
                   "additional_trigger,tn_threshold_pct")
SAMPLE_COLUMNS = "section_id,date,CODMn,COD,NH3N,TP,TN,dry"


def section_row(sid, target, up="", down="", boundary="", inbound="", *, district="110108", natural="true",
                water_body="river", assessment="", organic_both="false", trigger="", tn="", lonlat=("", "")):
    return (f"{sid},{sid} 断面,{district},测试河,{target},{natural},{up},{down},{boundary},{inbound},"
            f"{lonlat[0]},{lonlat[1]},{water_body},{assessment},{organic_both},{trigger},{tn}")


def sections_csv(*rows: str) -> str:
    return "\n".join([SECTION_COLUMNS, *rows]) + "\n"


def sample(sid, day, CODMn="", COD="", NH3N="", TP="", TN="", dry="false"):  # noqa: N803 - the CSV's names
    return f"{sid},{day},{CODMn},{COD},{NH3N},{TP},{TN},{dry}"


def twice(sid, month, **values):
    """The texts' twice-monthly sampling with the same values: the monthly mean is the value itself."""
    return [sample(sid, f"{month}-05", **values), sample(sid, f"{month}-20", **values)]


def samples_csv(*rows) -> str:
    flat = []
    for r in rows:
        flat.extend(r if isinstance(r, list) else [r])
    return "\n".join([SAMPLE_COLUMNS, *flat]) + "\n"


def run(district: str, month: str, samples: str, sections: str | None = None, **options) -> dict:
    m = parse_month(month)
    rs = rule_set_for(district, m)
    secs = parse_sections(sections, district) if sections else shipped_sections(rs)
    return calculate(rs, secs, parse_samples(samples, {s.section_id for s in secs}), m, options)


def section(answer: dict, sid: str) -> dict:
    return next(s for s in answer["sections"] if s["section_id"] == sid)


def item(answer: dict, sid: str, pollutant: str, kind: str | None = None) -> dict:
    items = [i for i in section(answer, sid)["items"] if i["pollutant"] == pollutant]
    if kind:
        items = [i for i in items if i["kind"] == kind]
    assert len(items) == 1, items
    return items[0]


def unit_totals(answer: dict) -> dict:
    """What each paying unit pays (units that only receive money are left out)."""
    return {u["unit"]: u["amount_yuan"] for u in answer["units"] if u["sections"]}
