"""``zoning compensation``: the month's water-environment compensation, as the API calculates it.

``--json`` prints exactly the answer of ``POST /v1/compensation/calculate``; ``--out`` writes one CSV
row per section item; ``--report`` writes the bilingual monthly report (``.html`` or ``.pdf``);
``--map`` a standalone map of the sections that have coordinates. Bad input exits 2 with one line
naming the row.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from api.cli.common import UserError, app, console
from geo.atomic import write_atomically


def _write_atomically(path: Path, data: bytes) -> None:
    if not path.resolve().parent.is_dir():
        raise UserError(f"{path.parent}: no such folder")
    write_atomically(path, data)


def _parse_options(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--option {pair!r} is not NAME=VALUE")
        if name.strip() == "co_payers" and name.strip() in out:
            out["co_payers"] += ";" + value.strip()
        else:
            out[name.strip()] = value.strip()
    return out


def _read(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"{what} {path}: {exc.strerror}") from None


@app.command()
def compensation(
    district: str = typer.Option(..., "--district", help="District adcode: 110108 海淀, 110118 密云."),
    month: str = typer.Option(..., "--month", help="Month YYYY-MM."),
    samples: Path = typer.Option(..., "--samples", help="Samples CSV: section_id,date,CODMn,COD,NH3N,TP,TN,dry."),
    sections: Path | None = typer.Option(None, "--sections", help="Sections CSV (required for 海淀)."),
    option: list[str] = typer.Option([], "--option", help="NAME=VALUE, repeatable (see README for the options)."),
    as_json: bool = typer.Option(False, "--json", help="Print the API's JSON answer."),
    out: Path | None = typer.Option(None, "--out", help="Write one CSV row per section item."),
    report: Path | None = typer.Option(None, "--report", help="Write the monthly report (.html or .pdf)."),
    map_out: Path | None = typer.Option(None, "--map", help="Write a map of the located sections (.html)."),
) -> None:
    """Calculate a month's cross-boundary water compensation (跨界断面考核补偿) per section and unit."""
    from geo.compensation.calculate import calculate_from_csv
    from geo.compensation.table import result_csv

    if report is not None and report.suffix.lower() not in (".html", ".pdf"):
        raise UserError(f"--report {report}: give a .html or .pdf file name")
    answer = calculate_from_csv(district, month, _read(samples, "--samples") or b"", _read(sections, "--sections"),
                                _parse_options(option))
    if out is not None:
        _write_atomically(out, result_csv(answer).encode("utf-8"))
    if report is not None:
        from maps.compensation_report import report_html, report_pdf

        if report.suffix.lower() == ".pdf":
            try:
                data = report_pdf(answer)
            except RuntimeError as exc:
                raise UserError(str(exc)) from None
        else:
            data = report_html(answer).encode("utf-8")
        _write_atomically(report, data)
    if map_out is not None:
        from maps.compensation_map import sections_map_html

        _write_atomically(map_out, sections_map_html(answer).encode("utf-8"))
    if as_json:
        print(json.dumps(answer, ensure_ascii=False, indent=2))
        return
    rs = answer["rule_set"]
    console.print(f"{rs['doc_no']} {rs['title_zh']} — {answer['month']}: total {answer['total_yuan']:,} 元")
    units = Table("unit / 单位", "pays / 缴纳（元）", "sections / 断面")
    for u in answer["units"]:
        units.add_row(u["unit"], f"{u['amount_yuan']:,}", "、".join(u["sections"]))
    console.print(units)
    table = Table("section / 断面", "status", "amount / 金额（元）", "charged items / 计费项")
    for s in answer["sections"]:
        charged = "; ".join(f"{i['pollutant']} {i['amount_yuan']:,} ({i['clause']})" for i in s["items"]
                            if i["amount_yuan"])
        table.add_row(f"{s['section_id']} {s['name']}", s["status"], f"{s['amount_yuan']:,}", charged)
    console.print(table)
    changed = [n for n, o in answer["options"].items() if not o["is_default"]]
    console.print(f"options: {'defaults' if not changed else 'changed: ' + ', '.join(changed)} (--json shows all)")


@app.command("compensation-allocate")
def compensation_allocate(
    request_file: Path = typer.Argument(..., help="JSON: year, previous_year_total_yuan, rewarded_units, "
                                                  "commended_units, projects (as POST /v1/compensation/allocate)."),
) -> None:
    """密云: allocate last year's compensation total (附件2: 30 % reward, 20 % commendation, 50 % subsidies)."""
    from pydantic import ValidationError

    from api.compensation import AllocationRequest, allocation

    try:
        body = AllocationRequest.model_validate_json(_read(request_file, "request") or b"")
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UserError(f"{request_file}: {'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']}") from None
    print(json.dumps(allocation(body), ensure_ascii=False, indent=2))
