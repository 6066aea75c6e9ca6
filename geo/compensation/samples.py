"""Water samples and the month's values per section.

CSV columns ``section_id, date, CODMn, COD, NH3N, TP, TN, dry`` (mg/L; a blank cell = not measured;
``dry`` true for a day with no flow, whose concentrations are ignored). The month's value of a
pollutant is the arithmetic mean of the samples on days with water (密云 附件1第七条（一）, 办法第四条;
海淀 by the ``monthly_value`` option), or the month's maximum where a rule says so (密云 第七条（五）).
A section whose every sample in the month is dry is dry all month. Rows of other months are ignored and
counted. Concentrations are exact decimals, so thresholds like 「含30%」 compare exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from geo.compensation.rules import CompensationInputError
from geo.compensation.sections import FALSE, TRUE, decode_csv

POLLUTANTS = ("CODMn", "COD", "NH3N", "TP", "TN")
_ALIASES = {"codmn": "CODMn", "cod": "COD", "nh3n": "NH3N", "nh3-n": "NH3N", "nh3_n": "NH3N", "tp": "TP",
            "tn": "TN", "section_id": "section_id", "date": "date", "dry": "dry"}
MAX_PLAUSIBLE_MG_L = Decimal(100000)  # beyond any surface water: a unit or decimal-point error


@dataclass(frozen=True)
class Sample:
    row: int
    section_id: str
    day: date
    values: dict
    dry: bool


@dataclass
class MonthValues:
    """One section's month: sample counts, dry-all-month, and mean / max per pollutant (wet days only)."""

    section_id: str
    samples: int = 0
    wet_samples: int = 0
    mean: dict = field(default_factory=dict)
    maximum: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)

    @property
    def dry_all_month(self) -> bool:
        return self.samples > 0 and self.wet_samples == 0

    def value(self, pollutant: str, use_max: bool = False) -> Decimal | None:
        return (self.maximum if use_max else self.mean).get(pollutant)


def parse_samples(data: bytes | str, known_sections: set[str], what: str = "samples") -> list[Sample]:
    """Read and validate a samples CSV; every error names the row (header = row 1)."""
    rows = decode_csv(data, what)
    header = {_ALIASES.get(h.lower(), h) for h in rows[0]["__header__"]}
    missing = [c for c in ("section_id", "date", "dry") if c not in header]
    if missing or not header & set(POLLUTANTS):
        raise CompensationInputError(
            f"{what}: needs columns section_id, date, dry and at least one of {', '.join(POLLUTANTS)}"
            + (f" (missing {', '.join(missing)})" if missing else "") + " / 缺少列")
    out = []
    for n, raw in enumerate(rows[1:], start=2):
        row = {_ALIASES.get(k.lower(), k): v for k, v in raw.items()}
        where = f"{what} row {n}"
        sid = row.get("section_id", "")
        if sid not in known_sections:
            raise CompensationInputError(f"{where}: unknown section {sid!r} / 断面不在断面表中")
        try:
            day = date.fromisoformat(row.get("date", ""))
        except ValueError:
            raise CompensationInputError(f"{where}: date {row.get('date')!r} is not YYYY-MM-DD / 日期格式错误") from None
        dry_text = row.get("dry", "").lower()
        if dry_text not in TRUE | FALSE:
            raise CompensationInputError(f"{where}: dry {row.get('dry')!r} is not true/false / 断流应为 true 或 false")
        values = {}
        for p in POLLUTANTS:
            text = row.get(p, "")
            if not text:
                continue
            try:
                v = Decimal(text)
            except InvalidOperation:
                raise CompensationInputError(f"{where}: {p} {text!r} is not a number / 不是数字") from None
            if not v.is_finite():
                raise CompensationInputError(f"{where}: {p} {text!r} is not a finite number")
            if v < 0:
                raise CompensationInputError(f"{where}: {p} {text} is negative / 浓度不能为负")
            if v > MAX_PLAUSIBLE_MG_L:
                raise CompensationInputError(f"{where}: {p} {text} mg/L is not a plausible concentration")
            values[p] = v
        out.append(Sample(n, sid, day, values, dry_text in TRUE))
    return out


def month_values(samples: list[Sample], month: date) -> tuple[dict[str, MonthValues], int]:
    """Per section the month's values; also how many rows fell outside the month (ignored)."""
    by_section: dict[str, MonthValues] = {}
    wet: dict[str, list[Sample]] = {}
    outside = 0
    for s in samples:
        if (s.day.year, s.day.month) != (month.year, month.month):
            outside += 1
            continue
        mv = by_section.setdefault(s.section_id, MonthValues(s.section_id))
        mv.samples += 1
        if not s.dry:
            mv.wet_samples += 1
            wet.setdefault(s.section_id, []).append(s)
    for sid, mv in by_section.items():
        rows = wet.get(sid, [])
        for p in POLLUTANTS:
            vals = [r.values[p] for r in rows if p in r.values]
            if vals:
                mv.mean[p] = sum(vals, Decimal(0)) / len(vals)
                mv.maximum[p] = max(vals)
        if rows and not mv.dry_all_month:
            halves = {r.day.day <= 15 for r in rows}
            if len(rows) < 2 or len(halves) < 2:
                mv.warnings.append(
                    "fewer than one sample in each half of the month (the texts ask for two a month, one per "
                    "half) / 未做到上下半月各监测一次")
    return by_section, outside
