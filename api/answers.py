"""Zones as public JSON answers, and the lookup answers built from them.

One shape for a zone everywhere (check, batch, site, zone catalogue, map popups, OGC
pages): its identity and layer, its rules, the document it comes from (``source``),
how accurate its boundary is, its areas. Every answer carries a disclaimer, in the
requested language, naming the returned zones that are not official boundaries.
The HTTP routers (``api.check``) and the CLI (``zoning check``) both answer through
the functions here, so the two never drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from api import place
from api.place import not_digitised, relevant_undrawn
from geo import activities as acts
from geo.catalog import Snapshot
from geo.crs import to_wgs84
from geo.lookup import Hits, Nearby, ZoneIndex
from geo.schema import ACCURACY_TEXT, zone_properties

__all__ = ["not_digitised", "relevant_undrawn"]  # re-exported: the batch router and the CLI list them

LANGS = ("zh", "en")
# The keys of a zone answer, in order, and where each comes from in the zone table.
ZONE_KEYS = ("zone_id", "layer", "kind", "name_zh", "name_en", "district_code", "rules")
SOURCE_KEYS = {
    "doc_no": "source_doc_no", "title": "source_title", "article": "source_article", "issuer": "issuer",
    "issued_on": "issued_on", "effective_from": "effective_from", "effective_to": "effective_to",
}
AREA_KEYS = ("accuracy", "stated_area_km2", "area_km2")
# Distances to the centimetre would suggest an accuracy the zones do not have.
DISTANCE_DECIMALS = 1
COORD_DECIMALS = 7  # ~1 cm in lon/lat


def zone_answer(row: Mapping[str, Any]) -> dict[str, Any]:
    """A zone table row -> the public zone object (without distances)."""
    props = zone_properties(row)
    answer = {key: props[key] for key in ZONE_KEYS}
    answer["source"] = {key: props[column] for key, column in SOURCE_KEYS.items()}
    answer.update({key: props[key] for key in AREA_KEYS})
    return answer


class LazySequence(Sequence):
    """``build(i)`` for i in ``range(n)``, each built when first asked for and then kept: an
    answer names a few zones of a table that may hold 300 000 (building every zone's answer
    up front took 0.8 s of a first answer at 33 000 zones, ``benchmarks/bench_national.py``)."""

    def __init__(self, n: int, build: Callable[[int], Any]):
        self._items: list[Any] = [None] * n
        self._build = build

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        item = self._items[i]
        if item is None:  # two threads may both build it: the same value, either is kept
            item = self._items[i] = self._build(i)
        return item


def zone_answers(snap: Snapshot) -> Sequence[dict[str, Any]]:
    """``zone_answer`` of every zone, in table order, once per data version, each built from
    the zone's properties (no zone table needed) when first used; copy before adding keys."""
    def build() -> LazySequence:
        records = snap.records()
        return LazySequence(len(records), lambda i: zone_answer(records[i]))

    return snap.cached("zone_answers", build)


def localised(zone: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """A zone answer with its bilingual texts also in ``lang``: ``name``, each rule's
    ``text`` and each activity mapping's ``condition``, and ``accuracy_text``."""
    i = LANGS.index(lang)
    rules = [{**r, "text": r[f"text_{lang}"],
              "activities": [{**m, "condition": m.get(f"condition_{lang}")} for m in r.get("activities") or ()]}
             for r in zone["rules"]]
    return {**zone, "name": zone[f"name_{lang}"], "rules": rules,
            "accuracy_text": ACCURACY_TEXT.get(zone["accuracy"], ("", ""))[i]}


def zone_answers_in(snap: Snapshot, lang: str) -> Sequence[dict[str, Any]]:
    """``zone_answers`` localised to ``lang``, built once per data version and language."""
    base = zone_answers(snap)
    return snap.cached(f"zone_answers_{lang}", lambda: LazySequence(len(base), lambda i: localised(base[i], lang)))


# The disclaimer's sentences per language; {names}, {accuracy} and {n} are filled in.
DISCLAIMER_TEXT = {
    "zh": {
        "label": "{name_zh}（{zone_id}）", "list_sep": "、", "sentence_sep": "",
        "accuracy": "{names}为{accuracy}。",
        "not_digitised": "所在区另有{n}个文件规定的分区未能绘制（列于本结果中），本结果不能说明该处不在这些分区内。",
        "no_data": "本服务没有该处所在区的分区数据，本结果不能说明该处适用或不适用任何规定。",
        # Nothing digitised here: that is not the same as "no zone applies".
        "nothing": "该处不在本服务已数字化的任何分区内；本服务未收录的分区或未数字化的分区仍可能适用。",
        "all_official": "返回的分区均为官方边界。",
        "tail": "法定边界以主管部门发布的官方数据为准，本结果不构成法律认定。",
    },
    "en": {
        "label": "{name_en} ({zone_id})", "list_sep": ", ", "sentence_sep": " ",
        "accuracy": "{names}: {accuracy}.",
        "not_digitised": "{n} more zone(s) the district's documents define could not be drawn "
                         "(listed in this answer): it cannot tell whether the place is inside them.",
        "no_data": "This service holds no zones for this place's district: the answer cannot tell whether any "
                   "rule applies here or not.",
        "nothing": "The place is not inside any zone this service has digitised; zones it does not hold "
                   "or could not digitise may still apply.",
        "all_official": "All zones returned have official boundaries.",
        "tail": "The legal boundary is the official one published by the issuing authority; "
                "this answer is not a legal determination.",
    },
}


def disclaimer(zones: Iterable[Mapping[str, Any]], lang: str = "zh", not_digitised: int = 0,
               has_data: bool = True) -> str:
    """Which of ``zones`` are approximate/schematic/indicative, that ``not_digitised``
    zones of the district could not be drawn (or, without ``has_data``, that the service
    holds nothing for the district), and that the legal boundary is the official one —
    in ``lang`` (zh or en). Never names a JSON key."""
    text = DISCLAIMER_TEXT[lang]
    accuracy_text = {acc: ACCURACY_TEXT[acc][LANGS.index(lang)] for acc in ACCURACY_TEXT}
    zones = list(zones)
    by_accuracy: dict[str, list[str]] = {}
    for zone in zones:
        if zone["accuracy"] != "official":
            names = by_accuracy.setdefault(zone["accuracy"], [])
            label = text["label"].format(**zone)
            if label not in names:
                names.append(label)
    parts = [text["accuracy"].format(names=text["list_sep"].join(names), accuracy=accuracy_text[acc])
             for acc, names in by_accuracy.items()]
    if not_digitised:
        parts.append(text["not_digitised"].format(n=not_digitised))
    if not has_data:
        parts.append(text["no_data"])
    elif not zones:
        parts.append(text["nothing"])
    elif not by_accuracy and not not_digitised:
        parts.append(text["all_official"])
    return text["sentence_sep"].join([*parts, text["tail"]])


@dataclass(frozen=True)
class PointLookup:
    """The engine's results for an array of points, in WGS84."""

    x: np.ndarray
    y: np.ndarray
    crs: str
    lon: np.ndarray
    lat: np.ndarray
    hits: Hits
    distance_m: np.ndarray  # per hit: metres to that zone's boundary
    nearby: Nearby


def lookup_index(snap: Snapshot) -> ZoneIndex:
    """The snapshot's lookup index, built once per data version."""
    return snap.lookup_index()


def look_up(snap: Snapshot, x, y, *, crs: str, as_of: str | None, layers: Sequence[str] | None,
            near_m: float, distances: bool = True) -> PointLookup:
    """Convert points from ``crs`` to WGS84 and look them up (geo.crs errors propagate:
    CoordinateError carries the index of the first bad point)."""
    x, y = np.asarray(x, dtype=float).reshape(-1), np.asarray(y, dtype=float).reshape(-1)
    lon, lat = to_wgs84(x, y, crs)
    index = lookup_index(snap)
    hits = index.lookup_points(lon, lat, as_of=as_of, layers=layers)
    if distances:
        points_m = index.metric_points(lon, lat)
        dist = index.distance_to_boundary_m(points_m, hits)
        nearby = index.nearby(points_m, near_m, hits, as_of=as_of, layers=layers)
    else:
        dist, nearby = np.zeros(hits.zone.size), index.nearby(np.zeros(0, dtype=object), 0, hits)
    return PointLookup(x, y, crs, lon, lat, hits, dist, nearby)


def _distance(value: float) -> float:
    return round(float(value), DISTANCE_DECIMALS)


def point_echo(found: PointLookup, i: int) -> dict[str, Any]:
    return {"input": [float(found.x[i]), float(found.y[i])], "crs": found.crs,
            "wgs84": [round(float(found.lon[i]), COORD_DECIMALS), round(float(found.lat[i]), COORD_DECIMALS)]}


def iter_point_results(snap: Snapshot, found: PointLookup, start: int = 0,
                       stop: int | None = None, lang: str | None = None) -> Iterator[dict[str, Any]]:
    """For points ``start:stop``: ``{"point", "inside", "nearby"}`` with full zone objects
    (localised to ``lang`` when given)."""
    base = zone_answers(snap) if lang is None else zone_answers_in(snap, lang)
    n = found.hits.n_points
    stop = n if stop is None else stop
    inside_bounds = np.searchsorted(found.hits.point, np.arange(start, stop + 1))
    near_bounds = np.searchsorted(found.nearby.point, np.arange(start, stop + 1))
    for k, i in enumerate(range(start, stop)):
        a, b = inside_bounds[k], inside_bounds[k + 1]
        inside = [{**base[z], "distance_to_boundary_m": _distance(d)}
                  for z, d in zip(found.hits.zone[a:b], found.distance_m[a:b], strict=True)]
        a, b = near_bounds[k], near_bounds[k + 1]
        nearby = [{**base[z], "distance_to_boundary_m": _distance(d), "distance_m": _distance(d)}
                  for z, d in zip(found.nearby.zone[a:b], found.nearby.distance_m[a:b], strict=True)]
        yield {"point": point_echo(found, i), "inside": inside, "nearby": nearby}


def returned_zones(snap: Snapshot, found: PointLookup) -> list[dict[str, Any]]:
    """Every zone an answer for ``found`` mentions (for its disclaimer)."""
    base = zone_answers(snap)
    return [base[z] for z in np.union1d(found.hits.zone, found.nearby.zone)]


def check_answer(snap: Snapshot, x: float, y: float, *, crs: str, as_of: str, layers: Sequence[str] | None,
                 near_m: float, lang: str, activities: Sequence[str] | None = None) -> dict[str, Any]:
    """The answer of GET /v1/check and `zoning check` for one point.

    With ``activities``, the answer opens with a verdict per activity (``geo.activities``),
    decided from every covering zone whatever ``layers`` shows.
    """
    found = look_up(snap, [x], [y], crs=crs, as_of=as_of, layers=layers, near_m=near_m)
    result = next(iter_point_results(snap, found, lang=lang))
    coverage = place.point_coverage(snap, float(found.lon[0]), float(found.lat[0]), lang)
    district = not_digitised(snap, lon=found.lon, lat=found.lat)
    missing = place.relevant_undrawn_cached(snap, district, layers, lang, as_of, activities)
    answer: dict[str, Any] = {}
    if activities:
        every = result if layers is None else next(iter_point_results(
            snap, look_up(snap, [x], [y], crs=crs, as_of=as_of, layers=None, near_m=near_m), lang=lang))
        answer["verdicts"] = acts.verdicts(activities, every["inside"], place.in_force(district, as_of),
                                           nearby=every["nearby"], near_m=near_m,
                                           has_data=place.has_data(coverage), lang=lang,
                                           no_data_note=coverage["coverage_note"])
    answer.update({
        "point": result["point"],
        "as_of": as_of,
        **coverage,
        "inside": result["inside"],
        "nearby": result["nearby"],
        "not_digitised": missing,
        "data_version": snap.data_version,
        "disclaimer": disclaimer(result["inside"] + result["nearby"], lang, len(missing), place.has_data(coverage)),
    })
    return answer


def site_answer(snap: Snapshot, site, *, crs: str, as_of: str, layers: Sequence[str] | None,
                lang: str, activities: Sequence[str] | None = None) -> dict[str, Any]:
    """The answer of POST /v1/check/site: every zone the (valid, WGS84) ``site`` polygon
    intersects, largest overlap first, with geodesic overlap area and shares.

    With ``activities``, a verdict per activity for the site as a whole: any overlap
    (above 0 m²) with a prohibiting zone makes it ``prohibited``, with that overlap's share.
    """
    def overlapping(layer_filter):
        base = zone_answers_in(snap, lang)
        overlaps = lookup_index(snap).site_overlaps(site, as_of=as_of, layers=layer_filter)
        order = np.lexsort((overlaps.zone, -overlaps.overlap_m2))
        out = []
        for k in order:
            share_of_zone = overlaps.share_of_zone[k]
            out.append({**base[overlaps.zone[k]],
                        "overlap_area_m2": round(float(overlaps.overlap_m2[k]), 1),
                        "share_of_site": round(float(overlaps.share_of_site[k]), 6),
                        "share_of_zone": None if np.isnan(share_of_zone) else round(float(share_of_zone), 6)})
        return out, overlaps.site_area_m2

    zones, site_area = overlapping(layers)
    coverage = place.site_coverage(snap, site, lang)
    district = not_digitised(snap, site=site)
    shown = district if layers is None else [e for e in district if e["layer"] in layers]
    missing = place.relevant_undrawn(shown, lang, as_of, activities)
    answer: dict[str, Any] = {}
    if activities:
        every = zones if layers is None else overlapping(None)[0]
        answer["verdicts"] = acts.verdicts(activities, every, place.in_force(district, as_of),
                                           has_data=place.has_data(coverage), lang=lang,
                                           overlap_key="overlap_area_m2", no_data_note=coverage["coverage_note"])
    answer.update({
        "site": {"crs": crs, "area_m2": round(site_area, 1),
                 "bbox_wgs84": [round(float(v), COORD_DECIMALS) for v in site.bounds]},
        "as_of": as_of,
        **coverage,
        "zones": zones,
        "not_digitised": missing,
        "data_version": snap.data_version,
        "disclaimer": disclaimer(zones, lang, len(missing), place.has_data(coverage)),
    })
    return answer


BITMASK_MAX_ZONES = 58  # 58 zone bits + 5 district bits fit an int64


def batch_verdicts(snap: Snapshot, found: PointLookup, activities: Sequence[str],
                   as_of: str | None) -> list[dict[str, str]]:
    """Per point, ``{activity: verdict}`` (the verdict word only, ``geo.activities.verdict_code``).

    Points with the same district and covering zones share one decision, so a batch costs
    one decision per distinct (district, zones) pair, not per point: the pairs are found
    with array operations (a bitmask of covering zones per point while the table has at
    most 58 zones, else per point). ``found`` must have been looked up without a layer filter.
    """
    base = zone_answers(snap)
    rows = place.coverage_rows(snap)
    codes = place.cov.beijing_districts().codes
    districts = place.cov.district_index(found.lon, found.lat)
    n = found.hits.n_points

    def decide(k: int, zones: Sequence[int], sample: int) -> dict[str, str]:
        entries = [] if k < 0 else not_digitised(snap, lon=found.lon[sample:sample + 1],
                                                 lat=found.lat[sample:sample + 1])
        undrawn = place.in_force([e for e in entries if k >= 0 and e["district_code"] == codes[k]], as_of)
        has_data = k >= 0 and rows[k]["has_data"]
        rules = [base[z]["rules"] for z in zones]
        return {a: acts.verdict_code(a, rules, undrawn, has_data) for a in activities}

    if len(base) <= BITMASK_MAX_ZONES:
        mask = np.zeros(n, dtype=np.int64)
        np.bitwise_or.at(mask, found.hits.point, np.left_shift(np.int64(1), found.hits.zone.astype(np.int64)))
        keys = (mask << 5) | (districts + 1)
        unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        decided = [decide(int(key & 31) - 1, [z for z in range(len(base)) if (int(key) >> 5) >> z & 1], int(i))
                   for key, i in zip(unique, first, strict=True)]
        return [decided[j] for j in inverse.reshape(-1)]
    cache: dict[tuple, dict[str, str]] = {}
    out = []
    for i, zones in enumerate(found.hits.by_point()):
        key = (int(districts[i]), tuple(zones.tolist()))
        if key not in cache:
            cache[key] = decide(key[0], key[1], i)
        out.append(cache[key])
    return out
