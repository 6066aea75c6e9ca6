"""Zones as public JSON answers, and the lookup answers built from them.

One shape for a zone everywhere (check, batch, site, zone catalogue, map popups, OGC
pages): its identity and layer, its rules, the document it comes from (``source``),
how accurate its boundary is, its areas. Every answer carries a disclaimer, in the
requested language, naming the returned zones that are not official boundaries.
The HTTP routers (``api.check``) and the CLI (``zoning check``) both answer through
the functions here, so the two never drift apart.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from geo.base import DISTRICTS_PATH
from geo.catalog import Snapshot
from geo.crs import to_wgs84
from geo.lookup import Hits, Nearby, ZoneIndex
from geo.paths import BOUNDARIES_DIR
from geo.schema import ACCURACY_TEXT, zone_properties

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


def zone_answers(zones: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    """``zone_answer`` of every row, in table order (cache per data version:
    ``snapshot.derived("zone_answers", zone_answers)``; copy before adding keys)."""
    return [zone_answer(row) for row in zones.drop(columns=zones.geometry.name).to_dict("records")]


# The disclaimer's sentences per language; {names}, {accuracy} and {n} are filled in.
DISCLAIMER_TEXT = {
    "zh": {
        "label": "{name_zh}（{zone_id}）", "list_sep": "、", "sentence_sep": "",
        "accuracy": "{names}为{accuracy}。",
        "not_digitised": "所在区另有{n}个文件规定的分区未能数字化（见 not_digitised），本结果不能说明该处不在这些分区内。",
        # Nothing digitised here: that is not the same as "no zone applies".
        "nothing": "该处不在本服务已数字化的任何分区内；本服务未收录的分区或未数字化的分区仍可能适用。",
        "all_official": "返回的分区均为官方边界。",
        "tail": "法定边界以主管部门发布的官方数据为准，本结果不构成法律认定。",
    },
    "en": {
        "label": "{name_en} ({zone_id})", "list_sep": ", ", "sentence_sep": " ",
        "accuracy": "{names}: {accuracy}.",
        "not_digitised": "{n} more zone(s) the district's documents define could not be digitised "
                         "(see not_digitised): this answer cannot tell whether the place is inside them.",
        "nothing": "The place is not inside any zone this service has digitised; zones it does not hold "
                   "or could not digitise may still apply.",
        "all_official": "All zones returned have official boundaries.",
        "tail": "The legal boundary is the official one published by the issuing authority; "
                "this answer is not a legal determination.",
    },
}


def disclaimer(zones: Iterable[Mapping[str, Any]], lang: str = "zh", not_digitised: int = 0) -> str:
    """Which of ``zones`` are approximate/schematic/indicative, that ``not_digitised``
    zones of the district could not be drawn, and that the legal boundary is the official
    one — in ``lang`` (zh or en)."""
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
    if not zones:
        parts.append(text["nothing"])
    elif not by_accuracy and not not_digitised:
        parts.append(text["all_official"])
    return text["sentence_sep"].join([*parts, text["tail"]])


# ------------------------------------------------------------------ zones not digitised


@dataclass(frozen=True)
class NotDigitisedCatalogue:
    """``data/boundaries/not_digitised.json`` (zones the texts define but the build could
    not draw) and the outlines of the districts it names (base layer, for reference)."""

    entries: list[dict[str, Any]]
    district_codes: list[str]
    districts: np.ndarray  # prepared polygons, one per code


@functools.lru_cache(maxsize=1)
def not_digitised_catalogue() -> NotDigitisedCatalogue:
    entries_path, districts_path = BOUNDARIES_DIR / "not_digitised.json", DISTRICTS_PATH
    if not entries_path.exists() or not districts_path.exists():
        return NotDigitisedCatalogue([], [], np.zeros(0, dtype=object))
    entries = json.loads(entries_path.read_text(encoding="utf-8"))
    named = {e["district_code"] for e in entries}
    outlines = {f["properties"]["adcode"]: shapely.geometry.shape(f["geometry"])
                for f in json.loads(districts_path.read_text(encoding="utf-8"))["features"]
                if f["properties"]["adcode"] in named}
    codes = sorted(outlines)
    districts = np.array([outlines[c] for c in codes], dtype=object)
    shapely.prepare(districts)
    return NotDigitisedCatalogue(entries, codes, districts)


def _official_layers(zones: gpd.GeoDataFrame) -> set[tuple[str, str]]:
    official = zones[zones["accuracy"] == "official"]
    return set(zip(official["layer"], official["district_code"], strict=True))


def not_digitised(snap: Snapshot, *, lon=None, lat=None, site=None,
                  layers: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Zones not digitised in the districts containing any of the points (or touching
    ``site``), of ``layers``; an entry is dropped once the store holds its zone id, or
    official zones of its layer in its district (an import replaced the approximation)."""
    catalogue = not_digitised_catalogue()
    if not catalogue.entries:
        return []
    if site is not None:
        touched = shapely.intersects(catalogue.districts, site)
    else:
        lon, lat = np.asarray(lon, dtype=float).reshape(-1), np.asarray(lat, dtype=float).reshape(-1)
        if lon.size == 1:  # one call over the districts
            touched = shapely.intersects_xy(catalogue.districts, lon[0], lat[0])
        else:
            touched = np.array([shapely.intersects_xy(d, lon, lat).any() for d in catalogue.districts], dtype=bool)
    codes = tuple(c for c, hit in zip(catalogue.district_codes, touched, strict=True) if hit)
    if not codes:
        return []
    # The same few (districts, layers) come up again and again: filter once per data version.
    cache = snap.derived("not_digitised", lambda _: {})
    key = (codes, None if layers is None else tuple(layers))
    if key not in cache:
        known = set(snap.zones["zone_id"])
        official = snap.derived("official_layers", _official_layers)
        cache[key] = [e for e in catalogue.entries
                      if e["district_code"] in codes and (layers is None or e["layer"] in layers)
                      and e["zone_id"] not in known and (e["layer"], e["district_code"]) not in official]
    return cache[key]


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
                       stop: int | None = None) -> Iterator[dict[str, Any]]:
    """For points ``start:stop``: ``{"point", "inside", "nearby"}`` with full zone objects."""
    base = snap.derived("zone_answers", zone_answers)
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
    base = snap.derived("zone_answers", zone_answers)
    return [base[z] for z in np.union1d(found.hits.zone, found.nearby.zone)]


def check_answer(snap: Snapshot, x: float, y: float, *, crs: str, as_of: str, layers: Sequence[str] | None,
                 near_m: float, lang: str) -> dict[str, Any]:
    """The answer of GET /v1/check and `zoning check` for one point."""
    found = look_up(snap, [x], [y], crs=crs, as_of=as_of, layers=layers, near_m=near_m)
    result = next(iter_point_results(snap, found))
    missing = not_digitised(snap, lon=found.lon, lat=found.lat, layers=layers)
    return {
        "point": result["point"],
        "as_of": as_of,
        "inside": result["inside"],
        "nearby": result["nearby"],
        "not_digitised": missing,
        "data_version": snap.data_version,
        "disclaimer": disclaimer(result["inside"] + result["nearby"], lang, len(missing)),
    }


def site_answer(snap: Snapshot, site, *, crs: str, as_of: str, layers: Sequence[str] | None,
                lang: str) -> dict[str, Any]:
    """The answer of POST /v1/check/site: every zone the (valid, WGS84) ``site`` polygon
    intersects, largest overlap first, with geodesic overlap area and shares."""
    base = snap.derived("zone_answers", zone_answers)
    overlaps = lookup_index(snap).site_overlaps(site, as_of=as_of, layers=layers)
    order = np.lexsort((overlaps.zone, -overlaps.overlap_m2))
    zones = []
    for k in order:
        share_of_zone = overlaps.share_of_zone[k]
        zones.append({**base[overlaps.zone[k]],
                      "overlap_area_m2": round(float(overlaps.overlap_m2[k]), 1),
                      "share_of_site": round(float(overlaps.share_of_site[k]), 6),
                      "share_of_zone": None if np.isnan(share_of_zone) else round(float(share_of_zone), 6)})
    missing = not_digitised(snap, site=site, layers=layers)
    return {
        "site": {"crs": crs, "area_m2": round(overlaps.site_area_m2, 1),
                 "bbox_wgs84": [round(float(v), COORD_DECIMALS) for v in site.bounds]},
        "as_of": as_of,
        "zones": zones,
        "not_digitised": missing,
        "data_version": snap.data_version,
        "disclaimer": disclaimer(zones, lang, len(missing)),
    }
