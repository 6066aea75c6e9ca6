"""What an OGC API items request selects and in which order: queryables, property
filters, ``datetime``, ``in_force``, CQL2 ``filter`` (via pygeofilter), ``sortby`` and
``properties``.

Every queryable is a published column (``geo.published``): one type per column in every
collection. Semantics a client can rely on (also in the OpenAPI and queryables):

* ``datetime`` refers to each collection's temporal property, ``issued_on`` (the day
  the gazette was issued; declared as ``x-ogc-role: primary-instant`` in the queryables
  and as ``temporalProperty`` in the collection). An instant keeps zones issued that day,
  an interval ``start/end`` (``..`` or empty = open) those issued in it, ends included.
  RFC 3339 instants are Beijing dates (UTC+8); GDAL's ``2021-01-01T`` and QGIS's
  ``0000-01-01T00:00:00Z`` / ``9999-12-31T00:00:00Z`` open-end stand-ins are accepted.
  Zones without an issue date never match a ``datetime``. This is what GDAL and QGIS
  send for a comparison on a date field, so ``"issued_on" >= '2021-01-01'`` gives the
  zones issued since 2021.
* ``in_force`` (an instant or interval like ``datetime``) keeps zones in force on at
  least one of those days: from ``effective_from`` (inclusive) to ``effective_to``
  (exclusive, open when null).
* ``name=value`` for any queryable is an equality filter; ``district_code``, ``kind``,
  ``accuracy`` and ``layer`` also take comma-separated alternatives.
* ``filter`` is CQL2 (``filter-lang=cql2-text``, the default, or ``cql2-json``; GDAL's
  older name ``cql-text`` is read as cql2-text): comparisons, ``AND``/``OR``/``NOT``,
  ``IS NULL``, ``LIKE``, ``BETWEEN``, ``IN`` and ``S_INTERSECTS`` with a WKT geometry in
  CRS84. A date property compared with a string or date literal compares dates.
* ``sortby=-issued_on,name_zh`` sorts (``-`` descending; nulls last); ties keep the
  collection order. ``properties=a,b`` keeps only those properties; ``skipGeometry=true``
  drops the geometry.

Filtering (``api.cql2``) uses pygeofilter's GeoPandas evaluator over a per-version table of the
layer: on the bundled zones a CQL2 filter costs ~1 ms per request (measured in
``benchmarks/bench_ogc.py``'s filtered row).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from api.dependencies import BEIJING
from geo.published import FLAT_COLUMNS, column_type, with_rule_columns
from geo.schema import ACCURACY, ADCODE_RE
from geo.selection import in_force_mask

TEMPORAL_PROPERTY = "issued_on"
QUERYABLES: tuple[str, ...] = FLAT_COLUMNS
LIST_FILTERS = ("district_code", "kind", "accuracy", "layer")
FILTER_LANGS = {"cql2-text": "cql2-text", "cql-text": "cql2-text", "cql2-json": "cql2-json"}
MAX_FILTER_CHARS = 10_000


class QueryError(ValueError):
    """A bad query parameter; ``param`` names it."""

    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param


# ------------------------------------------------------------------ the filter table


def filter_table(zones: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One layer's zones as typed columns for filtering and sorting: dates as datetime64
    (NaT for none), areas as floats, text as objects, and the WGS84 geometry."""
    data: dict[str, Any] = {}
    flat = with_rule_columns(zones)
    for column in QUERYABLES:
        kind = column_type(column)
        if kind == "date":
            data[column] = pd.to_datetime(flat[column], format="%Y-%m-%d", errors="coerce")
        elif kind == "number":
            data[column] = flat[column].astype(float)
        else:
            data[column] = flat[column].astype(object)
    geoms = np.array(zones.geometry.values, dtype=object)
    shapely.prepare(geoms)  # bbox and S_INTERSECTS test each zone against one shape: prepared zones are faster
    return gpd.GeoDataFrame(data, geometry=geoms, crs=zones.crs, index=range(len(zones)))


# ------------------------------------------------------------------ dates


def _open_end(text: str) -> bool:
    # QGIS writes open ends as 0000-01-01T00:00:00Z and 9999-12-31T00:00:00Z.
    return text in ("", "..") or text.startswith(("0000-01-01", "9999-12-31"))


def beijing_day(text: str, param: str) -> str:
    """An RFC 3339 date or date-time (also GDAL's ``2021-01-01T``) as a Beijing date."""
    text = text.strip()
    if text.upper().endswith("T"):
        text = text[:-1]
    try:
        if "T" not in text.upper():
            return dt.date.fromisoformat(text).isoformat()
        moment = dt.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(param, f"{param}={text!r} is not an RFC 3339 date or date-time") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(BEIJING)
    return moment.date().isoformat()


def parse_interval(param: str, value: str | None) -> tuple[str | None, str | None] | None:
    """Inclusive (first, last) Beijing dates of an instant or interval (None = open end);
    None when the parameter is absent."""
    if value is None:
        return None
    parts = value.split("/")
    if len(parts) > 2 or not value.strip():
        raise QueryError(param, f"{param}={value!r} must be an instant or an interval 'start/end' ('..' = open)")
    if len(parts) == 1:
        if _open_end(parts[0].strip()):
            raise QueryError(param, f"{param}={value!r}: an open end is only allowed in an interval")
        day = beijing_day(parts[0], param)
        return day, day
    start, end = (None if _open_end(p.strip()) else beijing_day(p, param) for p in parts)
    if start and end and start > end:
        raise QueryError(param, f"{param}={value!r}: the interval starts after it ends")
    return start, end


def issued_mask(table: gpd.GeoDataFrame, interval: tuple[str | None, str | None]) -> np.ndarray:
    days = table[TEMPORAL_PROPERTY]
    mask = days.notna().to_numpy().copy()
    first, last = interval
    if first is not None:
        mask &= (days >= pd.Timestamp(first)).to_numpy()
    if last is not None:
        mask &= (days <= pd.Timestamp(last)).to_numpy()
    return mask


# ------------------------------------------------------------------ property filters


def property_mask(table: gpd.GeoDataFrame, name: str, value: str) -> np.ndarray:
    """``name=value``: equality; comma-separated alternatives for LIST_FILTERS."""
    kind = column_type(name)
    column = table[name]
    if name in LIST_FILTERS:
        values = [v.strip() for v in value.split(",") if v.strip()]
        if not values:
            raise QueryError(name, f"{name} is empty")
        if name == "district_code":
            for code in values:
                if not ADCODE_RE.match(code):
                    raise QueryError(name, f"district_code={code!r} is not a 6-digit adcode")
        if name == "accuracy":
            for level in values:
                if level not in ACCURACY:
                    raise QueryError(name, f"accuracy={level!r} is not one of {', '.join(ACCURACY)}")
        return column.isin(values).to_numpy()
    if kind == "date":
        return (column == pd.Timestamp(beijing_day(value, name))).to_numpy()
    if kind == "number":
        try:
            number = float(value)
        except ValueError:
            raise QueryError(name, f"{name}={value!r} is not a number") from None
        return np.isclose(column.to_numpy(dtype=float), number, rtol=0, atol=1e-9)
    return (column == value).to_numpy()


# ------------------------------------------------------------------ CQL2


def parse_filter(text: str, lang: str | None) -> Any:
    """The CQL2 filter as a pygeofilter AST; QueryError naming ``filter`` when it is not valid."""
    language = FILTER_LANGS.get((lang or "cql2-text").strip().lower())
    if language is None:
        raise QueryError("filter-lang", f"filter-lang={lang!r} is not supported; use cql2-text or cql2-json")
    if len(text) > MAX_FILTER_CHARS:
        raise QueryError("filter", f"filter is longer than {MAX_FILTER_CHARS} characters")
    from api import cql2  # pygeofilter builds its CQL2 grammar on import (~0.3 s): not on the start-up path

    node = cql2.parse(text, language)
    unknown = sorted(set(cql2.attributes(node)) - set(QUERYABLES) - {"geometry"})
    if unknown:
        raise QueryError("filter", f"filter names unknown propert{'y' if len(unknown) == 1 else 'ies'} "
                                   f"{', '.join(unknown)}; see the collection's queryables")
    return node


def filter_mask(table: gpd.GeoDataFrame, node: Any) -> np.ndarray:
    from api import cql2

    result = cql2.evaluate(table, node)
    if isinstance(result, bool | np.bool_):
        return np.full(len(table), bool(result))
    if not isinstance(result, pd.Series) or result.dtype not in (bool, object):
        raise QueryError("filter", "filter is not a condition (true or false for each zone)")
    return result.fillna(False).to_numpy(dtype=bool)


# ------------------------------------------------------------------ sortby, properties, skipGeometry


@dataclass(frozen=True)
class SortKey:
    column: str
    descending: bool


def parse_sortby(value: str | None) -> list[SortKey]:
    if value is None:
        return []
    keys = []
    for part in value.split(","):
        name = part.strip()
        descending = name.startswith("-")
        name = name.lstrip("+-").strip()
        if name not in QUERYABLES:
            raise QueryError("sortby", f"sortby={value!r}: {name!r} is not a sortable property; "
                                       f"properties are {', '.join(QUERYABLES)}")
        keys.append(SortKey(name, descending))
    return keys


def sorted_positions(table: gpd.GeoDataFrame, positions: np.ndarray, keys: list[SortKey]) -> np.ndarray:
    """``positions`` ordered by ``keys`` (stable; nulls last whatever the direction)."""
    for key in reversed(keys):
        column = table[key.column].iloc[positions]
        order = column.reset_index(drop=True).sort_values(ascending=not key.descending, na_position="last",
                                                          kind="stable").index.to_numpy()
        positions = positions[order]
    return positions


def parse_properties(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in QUERYABLES and n != "rules"]
    if unknown:
        raise QueryError("properties", f"properties={value!r}: unknown {', '.join(unknown)}")
    return names


def parse_bool(param: str, value: str | None) -> bool:
    if value is None:
        return False
    key = value.strip().lower()
    if key in ("true", "1", "yes"):
        return True
    if key in ("false", "0", "no"):
        return False
    raise QueryError(param, f"{param}={value!r} must be true or false")


def in_force(table: gpd.GeoDataFrame, interval: tuple[str | None, str | None]) -> np.ndarray:
    frame = pd.DataFrame({
        "effective_from": table["effective_from"].dt.strftime("%Y-%m-%d"),
        "effective_to": table["effective_to"].dt.strftime("%Y-%m-%d").where(table["effective_to"].notna(), None),
    })
    return in_force_mask(frame, *interval)

