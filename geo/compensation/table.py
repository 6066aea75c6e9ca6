"""The calculation answer as one flat CSV table (``zoning compensation --out``): a row per section item,
plus one row per section without items, each with the section total, payers and destination."""

from __future__ import annotations

import csv
import io

COLUMNS = ("month", "section_id", "section_name", "status", "pollutant", "class", "value_mg_l", "case",
           "amount_yuan", "clause", "section_amount_yuan", "payers", "destination")


def result_csv(answer: dict) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    w.writeheader()
    for s in answer["sections"]:
        common = {"month": s["month"], "section_id": s["section_id"], "section_name": s["name"],
                  "status": s["status"], "section_amount_yuan": s["amount_yuan"],
                  "payers": ";".join(f"{p['unit']}={p['amount_yuan']}" for p in s["payers"]),
                  "destination": s["destination"] or ""}
        for i in s["items"] or [None]:
            row = dict(common)
            if i is not None:
                row.update(pollutant=i["pollutant"], value_mg_l=i.get("value_mg_l", ""), case=i["case"],
                           amount_yuan=i["amount_yuan"], clause=i["clause"], **{"class": i["class"] or ""})
            else:
                row.update(clause=s["clause"] or "", amount_yuan=0)
            w.writerow(row)
    return out.getvalue()
