"""The zone table as GIS clients receive it: the schema's columns plus the rules as flat text.

``rules`` is a list of objects. GeoJSON carries it, but QGIS's OGC API provider turns
an array of objects into NULL and DBF/CSV cells cannot hold it, so the main payload —
the legal rules — was invisible there. Every published form (OGC items, the schema,
the queryables, every export) therefore also has three plain-text columns, right
after ``rules``:

* ``rules_zh`` / ``rules_en``: the rule texts numbered one per line (``1. …``), null
  when the zone states no rule;
* ``rules_json``: the whole ``rules`` list as JSON text (``[]`` when empty), so a client
  that keeps only strings can still recover codes and both languages.

Every zone has every published column whatever its layer, with one type per column
(nulls included), so a client that types fields from the first features it reads
(QGIS does) gets the same field types for every collection.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np

from geo.schema import DATE_COLUMNS, FLOAT_COLUMNS, ZONE_COLUMNS, zone_properties

RULE_TEXT_COLUMNS = ("rules_zh", "rules_en", "rules_json")
_AFTER_RULES = ZONE_COLUMNS.index("rules") + 1
PUBLISHED_COLUMNS: tuple[str, ...] = ZONE_COLUMNS[:_AFTER_RULES] + RULE_TEXT_COLUMNS + ZONE_COLUMNS[_AFTER_RULES:]
# Columns with one scalar per zone, i.e. everything but the ``rules`` list.
FLAT_COLUMNS: tuple[str, ...] = tuple(c for c in PUBLISHED_COLUMNS if c != "rules")


def rules_text(rules: list[Mapping[str, Any]], lang: str) -> str | None:
    """``1. 禁止…\\n2. 禁止…``: the rule texts in one language, numbered; None when there are none."""
    key = f"text_{lang}"
    lines = [f"{i}. {rule[key]}" for i, rule in enumerate(rules, start=1)]
    return "\n".join(lines) or None


def rule_columns(rules: list[Mapping[str, Any]]) -> dict[str, str | None]:
    return {
        "rules_zh": rules_text(rules, "zh"),
        "rules_en": rules_text(rules, "en"),
        "rules_json": json.dumps(list(rules), ensure_ascii=False),
    }


def published_properties(row: Mapping[str, Any]) -> dict[str, Any]:
    """One zone's properties in PUBLISHED_COLUMNS order (NaN -> None)."""
    props = zone_properties(row)
    flat = rule_columns(props["rules"] or [])
    return {column: flat[column] if column in flat else props[column] for column in PUBLISHED_COLUMNS}


def with_rule_columns(zones: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``zones`` with the three rule text columns, columns in PUBLISHED_COLUMNS order."""
    out = zones.copy()
    flat = [rule_columns(r or []) for r in out["rules"]]
    for column in RULE_TEXT_COLUMNS:
        out[column] = [f[column] for f in flat]
    return out[list(PUBLISHED_COLUMNS) + [out.geometry.name]]


def column_type(column: str) -> str:
    """The one type of a published column: ``date``, ``number``, ``array`` or ``string``."""
    if column in DATE_COLUMNS:
        return "date"
    if column in FLOAT_COLUMNS:
        return "number"
    if column == "rules":
        return "array"
    return "string"


def date_array(values) -> np.ndarray:
    """ISO date strings (None = missing) as numpy days, which GDAL writes as Date fields."""
    return np.array([v if isinstance(v, str) and v else "NaT" for v in values], dtype="datetime64[D]")
