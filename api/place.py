"""What the service knows about a place: its district's coverage, the zones the documents
define there that are not drawn, and the verdict on each activity asked about.

* **Not-digitised zones** come from ``data/boundaries/not_digitised.json`` (a build output).
  Answers show them in the reader's language — name, a short reason and what to do — and
  never the research note (``method_note``), which cites working files. Without an
  activity, an answer lists the point's district's zones grouped by layer, leaving out
  administrative units (context, not restrictions); with ``activity=``, the zones that
  could govern one of the activities asked about.
* **Coverage** (``geo.coverage``) says whether the district has data at all; a place
  outside Beijing or in a district without data answers ``coverage: "none"`` in plain words.
* **Verdicts** (``geo.activities``) are decided from every covering zone, whatever
  ``layers`` the request shows, and from the district's not-digitised zones in force.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from geo import activities as acts
from geo import coverage as cov
from geo.base import district_outlines
from geo.catalog import Snapshot
from geo.paths import BOUNDARIES_DIR
from geo.schema import LAYERS

LAYER_ORDER = {layer: i for i, layer in enumerate(LAYERS)}


@dataclass(frozen=True)
class NotDigitisedCatalogue:
    """``data/boundaries/not_digitised.json`` (zones the texts define but the build could
    not draw) and the outlines of the districts it names (base layer, for reference)."""

    entries: list[dict[str, Any]]
    district_codes: list[str]
    districts: np.ndarray  # prepared polygons, one per code


@functools.lru_cache(maxsize=1)
def not_digitised_catalogue() -> NotDigitisedCatalogue:
    entries_path, layer = BOUNDARIES_DIR / "not_digitised.json", district_outlines()
    if not entries_path.exists() or layer is None:
        return NotDigitisedCatalogue([], [], np.zeros(0, dtype=object))
    entries = json.loads(entries_path.read_text(encoding="utf-8"))
    named = {e["district_code"] for e in entries}
    outlines = {code: geom for code, geom in zip(layer.columns["adcode"], layer.geoms, strict=True) if code in named}
    codes = sorted(outlines)
    districts = np.array([outlines[c] for c in codes], dtype=object)
    return NotDigitisedCatalogue(entries, codes, districts)


def _official_layers(zones: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """(layer, district) pairs with an official zone, of zone properties (``Snapshot.records``)."""
    return {(z["layer"], z["district_code"]) for z in zones if z["accuracy"] == "official"}


def _outstanding(entry: Mapping[str, Any], known: set[str], official: set[tuple[str, str]]) -> bool:
    """An entry is dropped once the store holds its zone id, or official zones of its
    layer in its district (an import replaced the approximation)."""
    return entry["zone_id"] not in known and (entry["layer"], entry["district_code"]) not in official


def _any_inside(district, lon: np.ndarray, lat: np.ndarray, step: int = 4096) -> bool:
    """Whether any point lies in the (prepared) district: points outside its box are
    dropped by arithmetic, the rest tested a slice at a time until one is inside — a
    million-point batch costs milliseconds here instead of a full polygon test each."""
    minx, miny, maxx, maxy = district.bounds
    candidates = np.flatnonzero((lon >= minx) & (lon <= maxx) & (lat >= miny) & (lat <= maxy))
    start = 0
    while start < candidates.size:
        part = candidates[start:start + step]
        if shapely.intersects_xy(district, lon[part], lat[part]).any():
            return True
        start, step = start + step, step * 2
    return False


def not_digitised(snap: Snapshot, *, lon=None, lat=None, site=None,
                  layers: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Not-digitised entries (as built, all fields) of the districts containing any of
    the points (or touching ``site``), of ``layers``, still outstanding."""
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
            touched = np.array([_any_inside(d, lon, lat) for d in catalogue.districts], dtype=bool)
    codes = tuple(c for c, hit in zip(catalogue.district_codes, touched, strict=True) if hit)
    if not codes:
        return []
    # The same few (districts, layers) come up again and again: filter once per data version.
    cache = snap.cached("not_digitised", dict)
    key = (codes, None if layers is None else tuple(layers))
    if key not in cache:
        known = {z["zone_id"] for z in snap.records()}
        official = snap.cached("official_layers", lambda: _official_layers(snap.records()))
        cache[key] = [e for e in catalogue.entries
                      if e["district_code"] in codes and (layers is None or e["layer"] in layers)
                      and _outstanding(e, known, official)]
    return cache[key]


def in_force(entries: Iterable[Mapping[str, Any]], as_of: str | None) -> list[Mapping[str, Any]]:
    """Entries in force on ``as_of`` (from inclusive, to exclusive; None = all)."""
    if as_of is None:
        return list(entries)
    return [e for e in entries if (e.get("effective_from") or "") <= as_of
            and (e.get("effective_to") is None or as_of < e["effective_to"])]


def _text(item: Mapping[str, Any], key: str, lang: str) -> Any:
    return item.get(f"{key}_{lang}") or item.get(f"{key}_zh")


def undrawn_answer(entry: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """A not-digitised entry as an answer shows it: no research note, texts in ``lang``."""
    layer = LAYERS.get(entry["layer"])
    return {
        "zone_id": entry["zone_id"], "layer": entry["layer"],
        "layer_title": (layer.title_zh if lang == "zh" else layer.title_en) if layer else entry["layer"],
        "kind": entry["kind"], "name": _text(entry, "name", lang), "name_zh": entry["name_zh"],
        "name_en": entry["name_en"], "district_code": entry["district_code"],
        "source": {"doc_no": entry.get("source_doc_no"), "article": entry.get("source_article"),
                   "issuer": entry.get("issuer")},
        "stated_area_km2": entry.get("stated_area_km2"),
        "reason": _text(entry, "reason", lang), "what_to_do": _text(entry, "what_to_do", lang),
        "governs": acts.governing_activities(entry.get("rules") or ()),
    }


def relevant_undrawn(entries: Iterable[Mapping[str, Any]], lang: str, as_of: str | None,
                     activities: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The not-digitised zones an answer lists: in force on ``as_of``; with ``activities``
    those that could govern one of them, without, all but administrative units; grouped
    by layer (registry order), then by id."""
    kept = [e for e in in_force(entries, as_of)
            if (any(acts.could_govern(e.get("rules") or (), a) for a in activities) if activities
                else e["layer"] != "admin")]
    kept.sort(key=lambda e: (LAYER_ORDER.get(e["layer"], len(LAYER_ORDER)), e["zone_id"]))
    return [undrawn_answer(e, lang) for e in kept]


def relevant_undrawn_cached(snap: Snapshot, entries: Sequence[Mapping[str, Any]], layers: Sequence[str] | None,
                            lang: str, as_of: str | None,
                            activities: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """``relevant_undrawn`` of ``entries`` shown in ``layers``, remembered per data version: a
    service asks for the same few districts, dates and activities all day. Callers must
    not change the result."""
    cache = snap.cached("relevant_undrawn", dict)
    key = (tuple(e["zone_id"] for e in entries), None if layers is None else tuple(layers), lang, as_of,
           None if not activities else tuple(activities))
    if key not in cache:
        if len(cache) >= 4096:
            cache.clear()
        shown = entries if layers is None else [e for e in entries if e["layer"] in layers]
        cache[key] = relevant_undrawn(shown, lang, as_of, activities)
    return cache[key]


# ------------------------------------------------------------------ coverage


def coverage_rows(snap: Snapshot) -> list[dict[str, Any]]:
    """``geo.coverage.coverage_table`` for this data version (cached)."""
    def build() -> list[dict[str, Any]]:
        zones = snap.records()
        known, official = {z["zone_id"] for z in zones}, _official_layers(zones)
        outstanding = [e for e in not_digitised_catalogue().entries if _outstanding(e, known, official)]
        return cov.coverage_table(zones, outstanding)

    return snap.cached("coverage_rows", build)


def coverage_answer(snap: Snapshot, lang: str) -> dict[str, Any]:
    """The answer of GET /v1/coverage."""
    rows = coverage_rows(snap)
    return {"data_version": snap.data_version,
            "covered": [r["adcode"] for r in rows if r["has_data"]],
            "districts": rows,
            "note": ("本服务只收录上列有数据的区的分区；其他区及北京市以外的地点无法判断。" if lang == "zh" else
                     "The service holds zones only for the districts with data above; it cannot answer for other "
                     "districts or for places outside Beijing.")}


def point_coverage(snap: Snapshot, lon: float, lat: float, lang: str) -> dict[str, Any]:
    rows = coverage_rows(snap)
    return cov.place_coverage(rows, int(cov.district_index([lon], [lat])[0]), lang)


def site_coverage(snap: Snapshot, site, lang: str) -> dict[str, Any]:
    """Coverage of the district holding most of the site (the others are named in
    ``districts``)."""
    rows = coverage_rows(snap)
    codes = cov.districts_touching(site)
    layer = cov.beijing_districts()
    if not codes:
        return cov.place_coverage(rows, -1, lang)
    outlines = [layer.outlines[layer.codes.index(c)] for c in codes]
    main = codes[int(np.argmax([shapely.intersection(o, site).area for o in outlines]))]
    out = cov.place_coverage(rows, layer.codes.index(main), lang)
    out["districts"] = [{"adcode": r["adcode"], "name_zh": r["name_zh"], "name_en": r["name_en"],
                         "coverage": r["status"]} for r in rows if r["adcode"] in codes]
    return out


def has_data(coverage: Mapping[str, Any]) -> bool:
    return coverage["coverage"] != "none"
