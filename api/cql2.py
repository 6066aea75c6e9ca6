"""CQL2 filters over a layer's table: parsing (text and JSON) and evaluation, via pygeofilter.

Imported when a request first carries ``filter``, not at start-up: pygeofilter builds its
CQL2-text grammar (lark LALR tables) on import, ~0.3 s of CPU that the first ``/v1/check``
after ``zoning serve`` starts should not wait for. Errors are ``api.ogc_query.QueryError``
naming the ``filter`` parameter.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from pygeofilter import ast as fast
from pygeofilter.backends.evaluator import handle
from pygeofilter.backends.geopandas.evaluate import GeoPandasEvaluator
from pygeofilter.parsers.cql2_json import parse as parse_cql2_json
from pygeofilter.parsers.cql2_text import parse as parse_cql2_text
from pygeofilter.util import like_pattern_to_re_pattern

from api.dependencies import BEIJING
from api.ogc_query import QueryError, beijing_day

# BBOX(minx, miny, maxx, maxy) reaches the evaluator as a function call.
FILTER_FUNCTIONS = {"bbox": lambda *bounds: shapely.box(*bounds[:4])}


def parse(text: str, language: str) -> Any:
    """``text`` in ``language`` ("cql2-text" or "cql2-json") as a pygeofilter AST."""
    try:
        return parse_cql2_json(json.loads(text)) if language == "cql2-json" else parse_cql2_text(text)
    except Exception as exc:  # noqa: BLE001 - lark and the JSON parser raise many types; all mean bad input
        raise QueryError("filter", f"filter is not valid {language}: {str(exc).splitlines()[0][:200]}") from None


def attributes(node: Any) -> Iterable[str]:
    """The property names a filter refers to."""
    if isinstance(node, fast.Attribute):
        yield node.name
    for child in getattr(node, "get_sub_nodes", lambda: [])() or []:
        if isinstance(child, list):
            for item in child:
                yield from attributes(item)
        else:
            yield from attributes(child)


def evaluate(table: gpd.GeoDataFrame, node: Any) -> Any:
    """The filter over ``table``: a boolean Series (or one bool for a constant filter)."""
    try:
        return ZoneFilterEvaluator(table, {c: c for c in table.columns}, FILTER_FUNCTIONS).evaluate(node)
    except QueryError:
        raise
    except Exception as exc:  # noqa: BLE001 - pandas/shapely raise many types for mismatched operands
        raise QueryError("filter", f"filter cannot be evaluated: {type(exc).__name__}: {str(exc)[:200]}") from None


def _as_timestamp(value: Any) -> Any:
    """A literal compared with a date column, as the Beijing day it names."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(BEIJING)
        return pd.Timestamp(value.date())
    if isinstance(value, dt.date):
        return pd.Timestamp(value)
    if isinstance(value, str):
        return pd.Timestamp(beijing_day(value, "filter"))
    return value


class ZoneFilterEvaluator(GeoPandasEvaluator):
    """pygeofilter's GeoPandas evaluator, comparing date columns with date literals as dates
    (GDAL sends ``'2021-01-01T'``, CQL2 clients ``DATE('2021-01-01')``)."""

    @staticmethod
    def _coerce(lhs: Any, *values: Any) -> list[Any]:
        if isinstance(lhs, pd.Series) and pd.api.types.is_datetime64_any_dtype(lhs):
            return [_as_timestamp(v) for v in values]
        return list(values)

    @handle(fast.Comparison, subclasses=True)
    def comparison(self, node, lhs, rhs):
        (rhs,) = self._coerce(lhs, rhs)
        if isinstance(lhs, pd.Series) and lhs.dtype == object and node.op.value in ("<", "<=", ">", ">="):
            # Text ordering: null never matches (and cannot be compared with a string).
            present = lhs.notna()
            result = pd.Series(False, index=lhs.index)
            result[present] = super().comparison(node, lhs[present], rhs).to_numpy(dtype=bool)
            return result
        return super().comparison(node, lhs, rhs)

    @handle(fast.Between)
    def between(self, node, lhs, low, high):
        low, high = self._coerce(lhs, low, high)
        return super().between(node, lhs, low, high)

    @handle(fast.Like)
    def like(self, node, lhs):
        # pygeofilter's own LIKE does not let % cross a line break (rules_zh has several lines)
        # and leaves nulls as NaN; here % matches any text and null never matches.
        pattern = like_pattern_to_re_pattern(node.pattern, node.wildcard, node.singlechar, node.escapechar or "\\")
        regex = re.compile(pattern, re.DOTALL | (re.IGNORECASE if node.nocase else 0))
        result = pd.Series([isinstance(v, str) and regex.fullmatch(v) is not None for v in lhs], index=lhs.index)
        return ~result if node.not_ else result

    @handle(fast.In)
    def in_(self, node, lhs, *options):
        return super().in_(node, lhs, *self._coerce(lhs, *options))

