"""Coverage: which Beijing districts the service holds zones for, and how completely.

Per district: whether it has data at all and, per layer, how many zones its documents
define, how many of them are drawn and how many of those are official. A place is put in
a district by the district base layer (``geo.base``, Amap-derived, for reference: a point
within a few tens of metres of a district line may fall on the other side).

``coverage`` of a place is ``"none"`` (no zone of its district is held, or it lies outside
Beijing, the service area), ``"partial"`` (some zones of the district are not drawn or
not official) or ``"full"`` (every zone its documents define is drawn with an official
boundary). The plain-language note says which, in Chinese or English.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from geo.base import DISTRICTS, district_outlines
from geo.schema import LAYERS

BEIJING = "110000"
BEIJING_DISTRICTS = tuple(d for d in DISTRICTS if d.parent_adcode == BEIJING)


@dataclass(frozen=True)
class DistrictLayer:
    codes: list[str]
    names_zh: list[str]
    names_en: list[str]
    outlines: np.ndarray  # prepared polygons, one per code


@functools.lru_cache(maxsize=1)
def beijing_districts() -> DistrictLayer:
    """The 16 Beijing districts of the base layer (empty when the file is missing)."""
    layer = district_outlines()
    if layer is None:
        return DistrictLayer([], [], [], np.zeros(0, dtype=object))
    features = {code: k for k, code in enumerate(layer.columns["adcode"])}
    wanted = [d for d in BEIJING_DISTRICTS if d.adcode in features]
    rows = [features[d.adcode] for d in wanted]
    outlines = np.array(layer.geoms[rows], dtype=object)
    return DistrictLayer([d.adcode for d in wanted], [str(layer.columns["name_zh"][k]) for k in rows],
                         [d.name_en for d in wanted], outlines)


def district_index(lon, lat) -> np.ndarray:
    """For each WGS84 point the index into ``beijing_districts()`` of its district, -1
    outside Beijing (the first match wins on a shared line)."""
    layer = beijing_districts()
    lon, lat = np.asarray(lon, dtype=float).reshape(-1), np.asarray(lat, dtype=float).reshape(-1)
    out = np.full(lon.size, -1, dtype=np.intp)
    if lon.size == 1 and len(layer.outlines):  # one point: one call over the districts
        hits = np.flatnonzero(shapely.intersects_xy(layer.outlines, lon[0], lat[0]))
        out[0] = hits[0] if hits.size else -1
        return out
    for k, outline in enumerate(layer.outlines):
        todo = np.flatnonzero(out < 0)
        if not todo.size:
            break
        hit = shapely.intersects_xy(outline, lon[todo], lat[todo])
        out[todo[hit]] = k
    return out


def districts_touching(site: shapely.Geometry) -> list[str]:
    """Adcodes of the Beijing districts a WGS84 geometry intersects."""
    layer = beijing_districts()
    return [c for c, hit in zip(layer.codes, shapely.intersects(layer.outlines, site), strict=True) if hit]


def coverage_table(zones: Iterable[Mapping[str, Any]], undrawn: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per Beijing district: ``status`` and per layer ``defined``/``drawn``/``official``.

    ``zones`` are the drawn zones' properties (``Snapshot.records``), ``undrawn`` the not-digitised entries still
    outstanding (not replaced by an import). A zone counts for the district of its
    ``district_code``, even where it extends beyond it.
    """
    layer = beijing_districts()
    counts: dict[str, dict[str, dict[str, int]]] = {c: {} for c in layer.codes}
    for zone in zones:
        code, lyr, accuracy = zone["district_code"], zone["layer"], zone["accuracy"]
        if code in counts:
            row = counts[code].setdefault(lyr, {"defined": 0, "drawn": 0, "official": 0})
            row["defined"] += 1
            row["drawn"] += 1
            row["official"] += accuracy == "official"
    for entry in undrawn:
        if entry["district_code"] in counts:
            row = counts[entry["district_code"]].setdefault(entry["layer"], {"defined": 0, "drawn": 0, "official": 0})
            row["defined"] += 1
    out = []
    for code, zh, en in zip(layer.codes, layer.names_zh, layer.names_en, strict=True):
        layers = {lyr: counts[code][lyr] for lyr in LAYERS if lyr in counts[code]}
        total = {k: sum(v[k] for v in layers.values()) for k in ("defined", "drawn", "official")}
        status = "none" if not total["defined"] else ("full" if total["official"] == total["defined"] else "partial")
        out.append({"adcode": code, "name_zh": zh, "name_en": en, "status": status, "has_data": status != "none",
                    **total, "layers": layers})
    return out


NOTE = {
    "zh": {
        "outside": "该点在北京市以外，不在本服务范围内：本服务只收录北京市部分区的分区，无法判断该处适用哪些规定。",
        "none": "本服务没有{name}的任何分区数据（目前收录：{covered}），无法判断该处适用哪些规定；"
                "请向{name}人民政府及有关部门查询。",
        "partial": "本服务收录{name}文件规定的{defined}个分区，其中{drawn}个已绘制、{official}个为官方边界；"
                   "未绘制的分区见列表。",
        "full": "本服务收录{name}文件规定的全部{defined}个分区，均为官方边界。",
    },
    "en": {
        "outside": "This place is outside Beijing, outside the service area: the service holds zones for some Beijing "
                   "districts only and cannot say which rules apply here.",
        "none": "This service holds no zones for {name} (it covers {covered}), so it cannot say which rules apply "
                "here; ask the {name} government and its departments.",
        "partial": "This service holds {defined} zones that {name}'s documents define: {drawn} drawn, {official} with "
                   "official boundaries; the zones not drawn are listed.",
        "full": "This service holds all {defined} zones that {name}'s documents define, all with official boundaries.",
    },
}


def place_coverage(table: Sequence[Mapping[str, Any]], district: int, lang: str) -> dict[str, Any]:
    """``{coverage, district, in_service_area, coverage_note}`` for a place in district
    index ``district`` (-1 = outside Beijing) of ``coverage_table`` rows ``table``."""
    covered = ("、" if lang == "zh" else ", ").join(r[f"name_{lang}"] for r in table if r["has_data"])
    if district < 0:
        return {"coverage": "none", "in_service_area": False, "district": None,
                "coverage_note": NOTE[lang]["outside"]}
    row = table[district]
    note = NOTE[lang][row["status"]].format(name=row[f"name_{lang}"], covered=covered, defined=row["defined"],
                                            drawn=row["drawn"], official=row["official"])
    return {"coverage": row["status"], "in_service_area": True,
            "district": {"adcode": row["adcode"], "name_zh": row["name_zh"], "name_en": row["name_en"]},
            "coverage_note": note}
