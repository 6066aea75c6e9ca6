"""Compensation rule sets and the GB 3838-2002 class limits, read from data.

One YAML file per document in ``data/compensation/`` (issuer, document number, effective dates, the
verbatim clauses, the parameters the engine reads, the named options with their defaults, and the
fixed readings); the surface-water class limits in ``data/standards/gb3838-2002.yaml``. A month is
calculated with the rule set in force on the month's first day (``effective_from <= day <
effective_to``); a month outside every rule set of the district is an error, never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from geo.paths import REPO_DIR
from geo.yamlfile import read_yaml

COMPENSATION_DIR = REPO_DIR / "data" / "compensation"
STANDARD_PATH = REPO_DIR / "data" / "standards" / "gb3838-2002.yaml"

WORSE_THAN_V = 6  # 劣Ⅴ类, reported as class 6
CLASS_NAMES = {1: "Ⅰ", 2: "Ⅱ", 3: "Ⅲ", 4: "Ⅳ", 5: "Ⅴ", 6: "劣Ⅴ"}
_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "Ⅰ": 1, "Ⅱ": 2, "Ⅲ": 3, "Ⅳ": 4, "Ⅴ": 5}


class CompensationInputError(ValueError):
    """Bad input for a compensation calculation (API 422, CLI exit 2); the message names the row."""


def parse_class(text: str) -> int | None:
    """'II', 'Ⅱ', 'II类', '2' → 2; anything else → None."""
    t = str(text).strip().removesuffix("类").strip().upper()
    if t.isdigit():
        return int(t) if 1 <= int(t) <= 5 else None
    return _ROMAN.get(t)


def parse_month(text: str) -> date:
    """'YYYY-MM' → the month's first day."""
    m = re.fullmatch(r"\s*(\d{4})-(\d{1,2})\s*", str(text or ""))
    if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1900:
        raise CompensationInputError(f"month {text!r} is not YYYY-MM / 月份应为 YYYY-MM")
    return date(int(m.group(1)), int(m.group(2)), 1)


@dataclass(frozen=True)
class OptionSpec:
    """A named choice where the text is ambiguous; ``default`` is what the calculation uses unless told."""

    name: str
    default: object
    choices: tuple
    clause: str
    zh: str
    en: str


@dataclass(frozen=True)
class RuleSet:
    """One document's compensation rules (see the module docstring)."""

    id: str
    engine: str | None
    district_code: str
    raw: dict
    path: Path
    clauses: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    @property
    def effective_from(self) -> date | None:
        return self.raw.get("effective_from")

    @property
    def effective_to(self) -> date | None:
        return self.raw.get("effective_to")

    @property
    def parameters(self) -> dict:
        return self.raw.get("parameters") or {}

    def in_force(self, day: date) -> bool:
        start, end = self.effective_from, self.effective_to
        return start is not None and start <= day and (end is None or day < end)

    def cite(self, key: str) -> str:
        """'密政发〔2021〕2号 附件1第五条（一）…' for a clause key."""
        return f"{self.raw.get('doc_no') or self.raw.get('title_zh')} {self.clauses[key]['ref']}"

    def data_file(self, key: str) -> Path:
        return COMPENSATION_DIR / self.raw[key]

    def summary(self) -> dict:
        """The rule set as the API shows it: metadata, clauses, options with defaults, readings."""
        r = self.raw
        return {
            "id": self.id,
            "district_code": self.district_code,
            "district_zh": r.get("district_zh"),
            "district_en": r.get("district_en"),
            "title_zh": r.get("title_zh"),
            "title_en": r.get("title_en"),
            "doc_no": r.get("doc_no"),
            "issuer_zh": r.get("issuer_zh"),
            "issuer_en": r.get("issuer_en"),
            "issued": _iso(r.get("issued")),
            "effective_from": _iso(self.effective_from),
            "effective_to": _iso(self.effective_to),
            "gazette": r.get("gazette") or r.get("cited_in"),
            "calculable": self.engine is not None,
            "note_zh": r.get("repeals_zh") or r.get("unavailable_zh") or r.get("sections_source_zh"),
            "note_en": r.get("repeals_en") or r.get("unavailable_en") or r.get("sections_source_en"),
            "parameters": self.parameters,
            "clauses": [{"key": k, "ref": v["ref"], "text_zh": v["text"]} for k, v in self.clauses.items()],
            "options": [
                {"name": o.name, "default": o.default, "choices": list(o.choices), "clause": self.cite(o.clause),
                 "zh": o.zh, "en": o.en}
                for o in self.options.values()
            ],
            "readings": [
                {"key": x["key"], "clause": self.cite(x["clause"]), "zh": x["zh"], "en": x["en"]}
                for x in r.get("readings") or []
            ],
        }


def _iso(d) -> str | None:
    return d.isoformat() if isinstance(d, date) else d


def _load(path: Path) -> RuleSet:
    raw = read_yaml(path)
    options = {
        name: OptionSpec(name, spec["default"], tuple(spec["choices"]), spec["clause"], spec["zh"], spec["en"])
        for name, spec in (raw.get("options") or {}).items()
    }
    rs = RuleSet(raw["id"], raw.get("engine"), str(raw["district_code"]), raw, path, raw.get("clauses") or {},
                 options)
    for o in options.values():
        if o.clause not in rs.clauses:
            raise RuntimeError(f"{path.name}: option {o.name} cites unknown clause {o.clause}")
    return rs


@lru_cache(maxsize=1)
def load_rule_sets() -> tuple[RuleSet, ...]:
    """Every rule set in ``data/compensation/*.yaml``, by district and start date."""
    sets = [_load(p) for p in sorted(COMPENSATION_DIR.glob("*.yaml"))]
    return tuple(sorted(sets, key=lambda s: (s.district_code, s.effective_from or date.min)))


def rule_set_for(district_code: str, month: date) -> RuleSet:
    """The rule set of the district in force on the month's first day, or a clear error."""
    code = str(district_code or "").strip()
    of_district = [s for s in load_rule_sets() if s.district_code == code]
    if not of_district:
        known = ", ".join(sorted({f"{s.district_code} {s.raw.get('district_zh')}" for s in load_rule_sets()}))
        raise CompensationInputError(f"district {code!r}: no compensation rules known / 无该区补偿办法 (known: {known})")
    for s in of_district:
        if s.in_force(month):
            if s.engine is None:
                raise CompensationInputError(f"{s.raw.get('title_zh')}: {s.raw.get('unavailable_zh')} / "
                                             f"{s.raw.get('unavailable_en')}")
            return s
    described = "; ".join(
        f"{s.raw.get('doc_no') or s.raw.get('title_zh')} "
        f"{_iso(s.effective_from) or '?'}–{_iso(s.effective_to) or ''}"
        + (f" ({s.raw['unavailable_en']})" if s.engine is None else "")
        + (f" ({s.raw['repeals_en']})" if s.raw.get("repeals_en") else "")
        for s in of_district
    )
    raise CompensationInputError(
        f"no rule set in force for district {code} in {month:%Y-%m} / 该月无有效的补偿办法: {described}")


@dataclass(frozen=True)
class Standard:
    """GB 3838-2002 Table 1 limits; ``classify`` gives 1–5, or 6 for 劣Ⅴ."""

    limits: dict

    def limit(self, pollutant: str, cls: int, water_body: str = "river") -> Decimal:
        return self._column(pollutant, water_body)[cls - 1]

    def classify(self, pollutant: str, value: Decimal, water_body: str = "river") -> int:
        for i, lim in enumerate(self._column(pollutant, water_body), start=1):
            if value <= lim:
                return i
        return WORSE_THAN_V

    def has(self, pollutant: str, water_body: str) -> bool:
        return water_body in self.limits.get(pollutant, {})

    def _column(self, pollutant: str, water_body: str) -> list[Decimal]:
        cols = self.limits[pollutant]
        if water_body not in cols:
            raise CompensationInputError(f"GB 3838-2002 gives no {pollutant} limits for {water_body}")
        return cols[water_body]


@lru_cache(maxsize=1)
def load_standard() -> Standard:
    raw = read_yaml(STANDARD_PATH)
    return Standard({p: {wb: [Decimal(str(v)) for v in vals] for wb, vals in cols.items()}
                     for p, cols in raw["limits"].items()})


def standard_summary() -> dict:
    raw = read_yaml(STANDARD_PATH)
    return {k: raw[k] for k in ("standard", "title_zh", "title_en", "table", "unit", "classes", "limits")}
