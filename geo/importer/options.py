"""What an import is asked to do and what it reports: options, the report, the refusal errors,
and the parsing of ``--map`` / ``--set``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from geo import schema

# Square kilometres per unit, for --map stated_area_km2=COLUMN:UNIT.
AREA_UNITS = {"km2": 1.0, "ha": 0.01, "m2": 1e-6, "mu": 1 / 1500}

# Column names official files commonly use, mapped automatically (and shown as "auto")
# unless the user maps the field. Our own exports carry the schema's names.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "name_zh": ("名称", "区域名称", "保护区名称", "禁养区名称", "名字", "MC", "NAME", "Name", "name"),
    "source_doc_no": ("文号", "发文文号", "批准文号", "WH"),
    "source_title": ("文件名称", "文件标题"),
    "issuer": ("发文机关", "发布机关", "批准机关"),
    "issued_on": ("发文日期", "印发日期", "发布日期", "批准日期"),
    "effective_from": ("生效日期", "实施日期"),
    "effective_to": ("失效日期", "废止日期"),
    "notes": ("备注", "BZ"),
}
MAPPABLE = tuple(c for c in schema.ZONE_COLUMNS if c not in ("area_km2", "layer"))
_DEFAULT_ACCURACY = "approximate"


class SourceError(ValueError):
    """The file cannot be read as zones (format, layer, encoding, CRS); names the fix."""


class UnsupportedFormatError(SourceError):
    """Not a Shapefile, GeoPackage, GeoJSON, KML or a zip of one."""


@dataclass
class ImportOptions:
    layer: str
    district: str | None = None  # adcode; sets district_code/district_name and narrows the scope
    mapping: Mapping[str, str] = field(default_factory=dict)  # schema column -> source column
    values: Mapping[str, str] = field(default_factory=dict)  # schema column -> constant
    crs: str | None = None
    accuracy: str | None = None  # None: 'approximate', said so in the preview
    repair: bool = False
    layer_name: str | None = None  # which layer of a GeoPackage/KML, or which file of a zip
    encoding: str | None = None
    rules_from: str | None = None  # an existing zone whose rule texts the imported zones take


@dataclass
class ImportReport:
    source: str
    source_sha256: str
    format: str = ""
    dataset_layer: str | None = None
    features: int = 0
    encoding: str = ""
    encoding_note: str = ""
    crs: str = ""
    crs_note: str = ""
    layer: str = ""
    district: dict[str, str] | None = None
    accuracy: str = ""
    fields: dict[str, str] = field(default_factory=dict)  # schema column -> where its values come from
    unmapped_columns: list[str] = field(default_factory=list)
    zones: int = 0
    area_km2: float = 0.0
    stated_area_km2: float | None = None
    extent: list[float] | None = None
    sample: list[dict[str, Any]] = field(default_factory=list)
    repairs: list[dict[str, Any]] = field(default_factory=list)
    district_check: list[dict[str, Any]] = field(default_factory=list)
    replaces: dict[str, int] = field(default_factory=dict)  # district code -> zones removed
    changes: dict[str, Any] = field(default_factory=dict)  # store.diff_details of the whole table
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    dry_run: bool = False
    version: dict[str, Any] | None = None  # the new store version when written

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


# ---------------------------------------------------------------- option parsing


def parse_mapping(items: Iterable[str]) -> dict[str, str]:
    """``["name_zh=MC,source_doc_no=WH", ...]`` -> {schema column: source column}."""
    mapping: dict[str, str] = {}
    for item in items:
        for pair in filter(None, (p.strip() for p in item.split(","))):
            key, sep, column = pair.partition("=")
            key, column = key.strip(), column.strip()
            if not sep or not key or not column:
                raise SourceError(f"--map {pair!r} must look like FIELD=COLUMN, e.g. name_zh=名称")
            _check_mappable(key, "--map")
            mapping[key] = column
    return mapping


def parse_values(items: Iterable[str]) -> dict[str, str]:
    """``["issuer=北京市门头沟区人民政府", ...]`` -> {schema column: constant} (one pair per item)."""
    values: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise SourceError(f"--set {item!r} must look like FIELD=VALUE, e.g. issuer=北京市门头沟区人民政府")
        _check_mappable(key, "--set")
        values[key] = value.strip()
    return values


def _check_mappable(key: str, option: str) -> None:
    if key not in MAPPABLE:
        raise SourceError(f"{option}: {key!r} is not a zone field; fields: {', '.join(MAPPABLE)} "
                          "(layer comes from --layer; area_km2 is computed)")


