"""Monitoring sections (跨界断面): the shipped 密云 list and user-defined sections from CSV.

Columns (the issue's, in this order; the rest optional): ``section_id, name, district_code, river,
target_class (II..V), natural (true/false), upstream_unit, downstream_unit, boundary_units
(';'-separated, for sections on a boundary river), inbound_section_ids (';'-separated), lon, lat``
(WGS84, optional), then ``water_body`` (river | lake, default river: GB 3838 TP limits differ),
``assessment_class`` (附表3's 考核补偿类别, default the target), ``organic_both`` (the table lists both
CODMn and COD), ``additional_trigger`` (reaches_v | exceeds_v, 附表3), ``tn_threshold_pct``
(附表4), ``target_class_reading``, ``payer_basis``, ``zone_id``, ``notes``.

The paying side of a section is ``boundary_units`` when given (equal shares), else ``upstream_unit``;
a section with neither is an inbound reference only (district entry, reservoir outflow).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from geo.compensation.rules import COMPENSATION_DIR, CompensationInputError, RuleSet, parse_class

REQUIRED = ("section_id", "name", "district_code", "river", "target_class", "natural", "upstream_unit",
            "downstream_unit", "boundary_units", "inbound_section_ids")
OPTIONAL = ("lon", "lat", "water_body", "assessment_class", "organic_both", "additional_trigger",
            "tn_threshold_pct", "target_class_reading", "payer_basis", "zone_id", "notes")
# Beijing's extent with a margin: a lon/lat outside it is a swapped or projected coordinate.
LON_RANGE, LAT_RANGE = (115.2, 117.7), (39.3, 41.2)
TRUE, FALSE = {"true", "1", "yes", "y", "是", "t"}, {"false", "0", "no", "n", "否", "f", ""}


@dataclass(frozen=True)
class Section:
    section_id: str
    name: str
    district_code: str
    river: str
    target_class: int
    natural: bool
    upstream_unit: str = ""
    downstream_unit: str = ""
    boundary_units: tuple[str, ...] = ()
    inbound: tuple[str, ...] = ()
    lon: float | None = None
    lat: float | None = None
    water_body: str = "river"
    assessment_class: int | None = None
    organic_both: bool = False
    additional_trigger: str | None = None
    tn_threshold_pct: Decimal | None = None
    tn_row: int | None = None
    tn_merged_reading_pct: Decimal | None = None
    target_class_reading: str = ""
    payer_basis: str = ""
    zone_id: str = ""
    notes: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def payers(self) -> tuple[str, ...]:
        if self.boundary_units:
            return self.boundary_units
        return (self.upstream_unit,) if self.upstream_unit else ()

    def as_dict(self) -> dict:
        return {
            "section_id": self.section_id, "name": self.name, "district_code": self.district_code,
            "river": self.river, "target_class": self.target_class, "natural": self.natural,
            "upstream_unit": self.upstream_unit, "downstream_unit": self.downstream_unit,
            "boundary_units": list(self.boundary_units), "inbound_section_ids": list(self.inbound),
            "lon": self.lon, "lat": self.lat, "water_body": self.water_body,
            "assessment_class": self.assessment_class, "organic_both": self.organic_both,
            "additional_trigger": self.additional_trigger,
            "tn_threshold_pct": None if self.tn_threshold_pct is None else float(self.tn_threshold_pct),
            "tn_row": self.tn_row, "target_class_reading": self.target_class_reading,
            "payer_basis": self.payer_basis, "zone_id": self.zone_id, "notes": self.notes,
            "payers": list(self.payers),
        }


def decode_csv(data: bytes | str, what: str) -> list[dict]:
    """CSV bytes (UTF-8, UTF-8 with BOM, or GB18030 as Excel saves it in China) → rows of stripped cells."""
    if isinstance(data, bytes):
        if b"\x00" in data[:4096]:
            raise CompensationInputError(f"{what}: binary file, not CSV text / 不是CSV文本文件")
        for enc in ("utf-8-sig", "gb18030"):
            try:
                text = data.decode(enc)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise CompensationInputError(f"{what}: not UTF-8 or GB18030 text / 编码无法识别（请存为 UTF-8 CSV）")
    else:
        text = data.removeprefix("\ufeff")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [h.strip() for h in reader.fieldnames or []]
        rows = []
        for raw in reader:
            if None in raw:
                raise CompensationInputError(
                    f"{what} row {reader.line_num}: more cells than the header has columns / 单元格数多于表头")
            rows.append({k.strip(): (v or "").strip() for k, v in raw.items() if k is not None})
    except csv.Error as exc:
        raise CompensationInputError(f"{what}: not a readable CSV ({exc}) / CSV 格式错误") from exc
    if not header:
        raise CompensationInputError(f"{what}: empty file / 空文件")
    return [{"__header__": header}] + rows


def _bool(value: str, where: str, column: str) -> bool:
    v = value.strip().lower()
    if v in TRUE:
        return True
    if v in FALSE:
        return False
    raise CompensationInputError(f"{where}: {column} {value!r} is not true/false / 应为 true 或 false")


def _split(value: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in value.replace("；", ";").split(";") if x.strip())


def _decimal(value: str, where: str, column: str) -> Decimal | None:
    if not value:
        return None
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise CompensationInputError(f"{where}: {column} {value!r} is not a number / 不是数字") from None
    if not d.is_finite() or d < 0:
        raise CompensationInputError(f"{where}: {column} {value!r} must be a non-negative number / 不能为负")
    return d


def parse_sections(data: bytes | str, district_code: str, what: str = "sections") -> list[Section]:
    """Read and validate a sections CSV; every error names the row (the header is row 1)."""
    rows = decode_csv(data, what)
    header = rows[0]["__header__"]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise CompensationInputError(f"{what}: missing column(s) {', '.join(missing)} / 缺少列")
    sections: list[Section] = []
    seen: dict[str, int] = {}
    for n, row in enumerate(rows[1:], start=2):
        where = f"{what} row {n}"
        sid = row["section_id"]
        if not sid:
            raise CompensationInputError(f"{where}: section_id is empty / 断面编号为空")
        if sid in seen:
            raise CompensationInputError(f"{where}: section_id {sid} repeats row {seen[sid]} / 断面编号重复")
        seen[sid] = n
        if row["district_code"] != district_code:
            raise CompensationInputError(
                f"{where}: district_code {row['district_code']!r} is not the requested district {district_code}")
        target = parse_class(row["target_class"])
        if target is None or target < 2:
            raise CompensationInputError(
                f"{where}: target_class {row['target_class']!r} is out of range (II..V) / 目标类别应为Ⅱ–Ⅴ类")
        assessment = None
        if row.get("assessment_class"):
            assessment = parse_class(row["assessment_class"])
            if assessment is None or assessment < 2:
                raise CompensationInputError(
                    f"{where}: assessment_class {row['assessment_class']!r} is out of range (II..V)")
        natural = _bool(row["natural"], where, "natural")
        trigger = row.get("additional_trigger") or None
        if trigger not in (None, "reaches_v", "exceeds_v"):
            raise CompensationInputError(f"{where}: additional_trigger {trigger!r} is not reaches_v or exceeds_v")
        water_body = row.get("water_body") or "river"
        if water_body not in ("river", "lake"):
            raise CompensationInputError(f"{where}: water_body {water_body!r} is not river or lake")
        lon, lat = _decimal(row.get("lon", ""), where, "lon"), _decimal(row.get("lat", ""), where, "lat")
        if (lon is None) != (lat is None):
            raise CompensationInputError(f"{where}: give both lon and lat or neither / 经纬度须同时填写")
        if lon is not None and not (LON_RANGE[0] <= lon <= LON_RANGE[1] and LAT_RANGE[0] <= lat <= LAT_RANGE[1]):
            raise CompensationInputError(f"{where}: lon/lat {lon}, {lat} is not a WGS84 point in Beijing")
        sections.append(Section(
            section_id=sid, name=row["name"] or sid, district_code=district_code, river=row["river"],
            target_class=target, natural=natural, upstream_unit=row["upstream_unit"],
            downstream_unit=row["downstream_unit"], boundary_units=_split(row["boundary_units"]),
            inbound=_split(row["inbound_section_ids"]),
            lon=None if lon is None else float(lon), lat=None if lat is None else float(lat),
            water_body=water_body, assessment_class=assessment,
            organic_both=_bool(row.get("organic_both", ""), where, "organic_both"),
            additional_trigger=trigger,
            tn_threshold_pct=_decimal(row.get("tn_threshold_pct", ""), where, "tn_threshold_pct"),
            target_class_reading=row.get("target_class_reading", ""), payer_basis=row.get("payer_basis", ""),
            zone_id=row.get("zone_id", ""), notes=row.get("notes", ""),
        ))
    if not sections:
        raise CompensationInputError(f"{what}: no sections / 没有断面")
    ids = {s.section_id for s in sections}
    for s in sections:
        if s.section_id in s.inbound:
            raise CompensationInputError(f"{what} row {seen[s.section_id]}: {s.section_id} lists itself as inbound")
        unknown = [i for i in s.inbound if i not in ids]
        if unknown:
            raise CompensationInputError(
                f"{what} row {seen[s.section_id]}: inbound section(s) {', '.join(unknown)} not in the table")
    return sections


def shipped_sections(rule_set: RuleSet) -> list[Section]:
    """The rule set's own section list (密云 附表1–4), or [] when the document lists none (海淀)."""
    if not rule_set.raw.get("sections_file"):
        return []
    sections = parse_sections(rule_set.data_file("sections_file").read_bytes(), rule_set.district_code,
                              what=rule_set.raw["sections_file"])
    if rule_set.raw.get("tn_file"):
        sections = attach_tn(sections, rule_set.data_file("tn_file").read_bytes())
    return sections


def attach_tn(sections: list[Section], tn_csv: bytes) -> list[Section]:
    """Give each 附表4 section its row number, threshold (blank stays None) and merged-cell reading."""
    by_id = {s.section_id: s for s in sections}
    rows = decode_csv(tn_csv, "附表4 total-nitrogen table")[1:]
    out = dict(by_id)
    for row in rows:
        s = by_id[row["section_id"]]
        out[s.section_id] = Section(**{
            **s.__dict__,
            "tn_row": int(row["tn_row"]),
            "tn_threshold_pct": Decimal(row["threshold_pct"]) if row["threshold_pct"] else None,
            "tn_merged_reading_pct": (Decimal(row["merged_cell_reading_pct"])
                                      if row["merged_cell_reading_pct"] else None),
        })
    return [out[s.section_id] for s in sections]


def tn_table(rule_set: RuleSet) -> list[dict]:
    """附表4 as printed (14 rows), with the section each row is linked to."""
    if not rule_set.raw.get("tn_file"):
        return []
    return decode_csv(rule_set.data_file("tn_file").read_bytes(), "tn")[1:]


__all__ = ["Section", "parse_sections", "shipped_sections", "tn_table", "decode_csv", "COMPENSATION_DIR"]
