"""Activities and verdicts: "may I do this here?" from the zones that cover a place.

The activity catalogue (``data/boundaries/activities.yaml``) lists what a person may want
to do, with stable codes. Every recipe rule says which activities it governs and with
what effect (``prohibited``, ``restricted`` = allowed only with a condition or permit,
``required`` = an obligation such as exiting by a date, ``permitted``), quoting its own
words; zone rows carry these mappings in each rule's ``activities``.

A verdict for one activity at one place is decided only from:

* the digitised zones covering the place (in force on ``as_of``),
* the zones of the place's district that the documents define but that could not be
  drawn (``not_digitised``), which may or may not cover the place,
* the nearby zones (within ``near`` metres) whose boundary is not official.

and is exactly one of:

* ``prohibited`` — a covering zone's rule prohibits the activity. When every prohibiting
  zone's boundary is not official and lies within ``near`` metres, the verdict says
  ``near_approximate_boundary``: the place may in law be just outside.
* ``restricted`` — no covering zone prohibits it, some rule allows it only with a condition
  or attaches an obligation (each listed), and no undrawn zone of the district could
  prohibit it.
* ``unknown`` — nothing drawn prohibits it, but a zone of the district that could govern it
  is not drawn (those zones are named), or the service holds no data for the district.
  With a restriction already known the verdict carries ``at_least: restricted``.
* ``no_rule_found`` — every zone of the district that could govern it is drawn, and none
  covering the place rules on it. Never "permitted": the absence of a rule in the texts
  this service holds is not a permission. A non-official governing boundary within
  ``near`` metres sets ``near_approximate_boundary`` here too.

Everything here is a pure function over plain dicts (the zone objects of the API answers),
so the API, the CLI and the map decide alike.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from geo.paths import BOUNDARIES_DIR
from geo.schema import RULE_EFFECTS
from geo.yamlfile import read_yaml

ACTIVITIES_PATH = BOUNDARIES_DIR / "activities.yaml"
EFFECTS = RULE_EFFECTS
VERDICTS = ("prohibited", "restricted", "unknown", "no_rule_found")
# Effects that limit an activity: an undrawn zone with one of them could change a verdict.
LIMITING = ("prohibited", "restricted", "required")


class ActivityError(ValueError):
    """An unknown activity code or a malformed catalogue."""


@functools.lru_cache(maxsize=1)
def catalogue() -> dict[str, dict[str, Any]]:
    """code -> {code, name_zh, name_en, definition_zh, definition_en, aliases, ruled_on_by_bundled_texts}."""
    raw = read_yaml(ACTIVITIES_PATH)
    out = {}
    for code, item in (raw.get("activities") or {}).items():
        for need in ("name_zh", "name_en", "definition_zh", "definition_en"):
            if not str(item.get(need) or "").strip():
                raise ActivityError(f"activities.yaml: {code}: {need} is required")
        out[code] = {"code": code, "name_zh": item["name_zh"], "name_en": item["name_en"],
                     "definition_zh": item["definition_zh"], "definition_en": item["definition_en"],
                     "aliases": list(item.get("aliases") or []),
                     "ruled_on_by_bundled_texts": bool(item.get("ruled_on_by_bundled_texts", True))}
    return out


def activity_codes() -> frozenset[str]:
    return frozenset(catalogue())


def parse_activities(value: str | Iterable[str] | None) -> list[str] | None:
    """``"a,b"`` or a list of codes (or aliases) -> codes in the given order; None -> None.

    Raises ActivityError naming the unknown entries and the known codes.
    """
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [i.strip() for i in items if i and i.strip()]
    if not items:
        raise ActivityError("activity is empty; give one or more activity codes (GET /v1/activities lists them)")
    by_alias = {a.casefold(): code for code, item in catalogue().items()
                for a in [code, item["name_zh"], item["name_en"], *item["aliases"]]}
    codes, unknown = [], []
    for item in items:
        code = by_alias.get(item.casefold())
        if code is None:
            unknown.append(item)
        elif code not in codes:
            codes.append(code)
    if unknown:
        raise ActivityError(f"unknown activity {', '.join(map(repr, unknown))}; known codes: "
                            f"{', '.join(catalogue())}")
    return codes


def mappings(rules: Iterable[Mapping[str, Any]], activity: str) -> list[tuple[Mapping, Mapping]]:
    """(rule, mapping) pairs of ``rules`` that rule on ``activity``."""
    return [(rule, m) for rule in rules for m in rule.get("activities") or () if m["activity"] == activity]


def could_govern(rules: Iterable[Mapping[str, Any]], activity: str) -> bool:
    """Whether any of ``rules`` limits ``activity`` (prohibits, restricts or obliges)."""
    return any(m["effect"] in LIMITING for _, m in mappings(rules, activity))


def zone_effects(zone_rules: Iterable[tuple[str, Iterable[Mapping[str, Any]]]], activity: str) -> dict[str, str]:
    """zone_id -> the strongest limit its rules put on ``activity``: ``prohibited``, else
    ``restricted`` (restricted or required); zones that do not limit it are left out. What the
    map's activity picker shades (the inline map computes the same in the browser)."""
    out = {}
    for zone_id, rules in zone_rules:
        effects = {m["effect"] for _, m in mappings(rules, activity)}
        if "prohibited" in effects:
            out[zone_id] = "prohibited"
        elif effects & {"restricted", "required"}:
            out[zone_id] = "restricted"
    return out


def governing_activities(rules: Iterable[Mapping[str, Any]]) -> list[str]:
    """Activity codes some rule of ``rules`` limits, in catalogue order."""
    limited = {m["activity"] for rule in rules for m in rule.get("activities") or () if m["effect"] in LIMITING}
    return [code for code in catalogue() if code in limited]


def _lang(item: Mapping[str, Any], key: str, lang: str) -> Any:
    return item.get(f"{key}_{lang}") or item.get(f"{key}_zh")


def _source(zone: Mapping[str, Any]) -> dict[str, Any]:
    src = zone.get("source") or {}
    return {"doc_no": src.get("doc_no"), "article": src.get("article"), "issuer": src.get("issuer")}


def _deciding(zone: Mapping[str, Any], rule: Mapping, mapping: Mapping, lang: str) -> dict[str, Any]:
    out = {"zone_id": zone["zone_id"], "name": _lang(zone, "name", lang), "layer": zone["layer"],
           "accuracy": zone["accuracy"], "effect": mapping["effect"], "rule_code": rule["code"],
           "rule_text": _lang(rule, "text", lang), "quote_zh": mapping["quote_zh"],
           "condition": _lang(mapping, "condition", lang) if mapping["effect"] in ("restricted", "required") else None,
           "source": _source(zone)}
    for key in ("distance_to_boundary_m", "distance_m", "share_of_site", "overlap_area_m2"):
        if key in zone:
            out[key] = zone[key]
    return out


def undrawn_governing(entries: Sequence[Mapping[str, Any]], activity: str, lang: str) -> list[dict[str, Any]]:
    """The not-digitised zones among ``entries`` that could govern ``activity``, with
    parts folded into their nearest listed ancestor (``parts`` names them)."""
    hits = [e for e in entries if could_govern(e.get("rules") or (), activity)]
    ids = {e["zone_id"] for e in hits}
    parents = {e["zone_id"]: e.get("parent_id") for e in entries}

    def top(zid: str) -> str:
        up = parents.get(zid)
        while up is not None and up not in ids and up in parents:
            up = parents.get(up)
        return top(up) if up in ids else zid

    grouped: dict[str, dict[str, Any]] = {}
    for e in hits:
        head = top(e["zone_id"])
        if head == e["zone_id"]:
            grouped.setdefault(head, {"parts": []})
            effects = sorted({m["effect"] for _, m in mappings(e.get("rules") or (), activity)} & set(LIMITING),
                             key=EFFECTS.index)
            grouped[head].update({
                "zone_id": e["zone_id"], "name": _lang(e, "name", lang), "layer": e["layer"], "effects": effects,
                "source": {"doc_no": e.get("source_doc_no"), "article": e.get("source_article"),
                           "issuer": e.get("issuer")},
                "reason": _lang(e, "reason", lang), "what_to_do": _lang(e, "what_to_do", lang)})
        else:
            grouped.setdefault(head, {"parts": []})["parts"].append(_lang(e, "name", lang))
    return [grouped[e["zone_id"]] for e in hits if e["zone_id"] in grouped]


SUMMARY = {
    "zh": {
        "prohibited": "{name}：禁止。依据{docs}。",
        "restricted": "{name}：有条件限制（须满足所列条件或义务）。依据{docs}。",
        "unknown": "{name}：无法判断。所在区有{n}个可能对此作出规定的分区未能绘制，须向发文机关核实。",
        "unknown_at_least": "{name}：至少有条件限制；所在区另有{n}个可能禁止此活动的分区未能绘制，须向发文机关核实。",
        "unknown_no_data": "{name}：无法判断。本服务没有该处所在区的分区数据。",
        "no_rule_found": "{name}：本服务收录的文件中未发现对该处此活动的规定（不等于允许）。",
        "near": "该处距近似边界不足{near}米，法定边界以官方数据为准，结论可能不同。",
    },
    "en": {
        "prohibited": "{name}: prohibited, under {docs}.",
        "restricted": "{name}: restricted (allowed only with the conditions or obligations listed), under {docs}.",
        "unknown": "{name}: unknown. {n} zone(s) of this district that could rule on it are not drawn; "
                   "ask the issuing body.",
        "unknown_at_least": "{name}: at least restricted; {n} zone(s) of this district that could prohibit it "
                            "are not drawn; ask the issuing body.",
        "unknown_no_data": "{name}: unknown. This service holds no zones for this place's district.",
        "no_rule_found": "{name}: no rule found for it here in the documents this service holds "
                         "(this is not a permission).",
        "near": "The place is within {near} m of an approximate boundary; the legal line may decide otherwise.",
    },
}


def verdict(activity: str, inside: Sequence[Mapping[str, Any]], undrawn: Sequence[Mapping[str, Any]], *,
            nearby: Sequence[Mapping[str, Any]] = (), near_m: float = 0.0, has_data: bool = True,
            lang: str = "zh", overlap_key: str | None = None, no_data_note: str | None = None) -> dict[str, Any]:
    """The verdict on ``activity`` at a place covered by ``inside`` (zone objects with
    ``rules`` and, for points, ``distance_to_boundary_m``), where ``undrawn`` are the
    not-digitised entries of the place's district in force, ``nearby`` the zones within
    ``near_m`` that do not cover it (with ``distance_m``), and ``has_data`` whether the
    service holds any zone for the place's district. For sites, ``overlap_key`` names the
    overlap measure a zone must have above zero to count (``overlap_area_m2``);
    ``no_data_note`` replaces the summary's reason when ``has_data`` is false."""
    item = catalogue()[activity]
    name = item[f"name_{lang}"]
    text = SUMMARY[lang]
    if overlap_key:
        inside = [z for z in inside if (z.get(overlap_key) or 0) > 0]
    found = [(z, r, m) for z in inside for r, m in mappings(z.get("rules") or (), activity)]
    prohibiting = [_deciding(z, r, m, lang) for z, r, m in found if m["effect"] == "prohibited"]
    limiting = [_deciding(z, r, m, lang) for z, r, m in found if m["effect"] in ("restricted", "required")]
    permitting = [_deciding(z, r, m, lang) for z, r, m in found if m["effect"] == "permitted"]
    could = undrawn_governing(undrawn, activity, lang)
    could_prohibit = [u for u in could if "prohibited" in u["effects"]]
    out: dict[str, Any] = {"activity": activity, "name": name, "definition": item[f"definition_{lang}"]}
    near_flag, near_zones = False, []
    if not has_data and not prohibiting:
        summary = f"{name}：{no_data_note}" if no_data_note and lang == "zh" else \
            f"{name}: {no_data_note}" if no_data_note else text["unknown_no_data"].format(name=name)
        out.update(verdict="unknown", summary=summary, deciding=limiting, undrawn=[])
    elif prohibiting:
        deciding = prohibiting
        near_zones = [d for d in deciding if d["accuracy"] != "official"
                      and d.get("distance_to_boundary_m") is not None and d["distance_to_boundary_m"] <= near_m]
        near_flag = bool(near_zones) and len(near_zones) == len(deciding)
        out.update(verdict="prohibited", summary=text["prohibited"].format(name=name, docs=_docs(deciding, lang)),
                   deciding=deciding + limiting, undrawn=[])
    elif limiting and not could_prohibit:
        out.update(verdict="restricted", summary=text["restricted"].format(name=name, docs=_docs(limiting, lang)),
                   deciding=limiting, undrawn=[])
    elif limiting:
        out.update(verdict="unknown", at_least="restricted", deciding=limiting, undrawn=could_prohibit,
                   summary=text["unknown_at_least"].format(name=name, n=len(could_prohibit)))
    elif could:
        out.update(verdict="unknown", summary=text["unknown"].format(name=name, n=len(could)), deciding=[],
                   undrawn=could)
    else:
        near_zones = [_deciding(z, r, m, lang) for z in nearby if z["accuracy"] != "official"
                      and (z.get("distance_m") or 0) <= near_m
                      for r, m in mappings(z.get("rules") or (), activity) if m["effect"] in LIMITING]
        near_flag = bool(near_zones)
        out.update(verdict="no_rule_found", summary=text["no_rule_found"].format(name=name), deciding=[],
                   undrawn=[])
    if permitting:
        out["permitted_by"] = permitting
    out["near_approximate_boundary"] = near_flag
    if near_flag:
        out["summary"] += (" " if lang == "en" else "") + text["near"].format(near=f"{near_m:g}")
        if out["verdict"] == "no_rule_found":
            out["near_zones"] = near_zones
    return out


def _docs(deciding: Sequence[Mapping[str, Any]], lang: str) -> str:
    sep = "、" if lang == "zh" else ", "
    docs = dict.fromkeys(d["source"]["doc_no"] for d in deciding if d["source"]["doc_no"])
    return sep.join(docs) or ("所列规则" if lang == "zh" else "the rules listed")


def verdicts(activities: Sequence[str], inside: Sequence[Mapping[str, Any]], undrawn: Sequence[Mapping[str, Any]],
             **kwargs: Any) -> list[dict[str, Any]]:
    """``verdict`` for each activity, in the requested order."""
    return [verdict(a, inside, undrawn, **kwargs) for a in activities]


def verdict_code(activity: str, rules_of_inside: Iterable[Iterable[Mapping[str, Any]]],
                 undrawn: Sequence[Mapping[str, Any]], has_data: bool = True) -> str:
    """Only the verdict word, from the rule lists of the covering zones: the batch path,
    where building the full verdict object per point would cost more than the lookup."""
    effects = {m["effect"] for rules in rules_of_inside for _, m in mappings(rules, activity)}
    if "prohibited" in effects:
        return "prohibited"
    if not has_data:
        return "unknown"
    could = {m["effect"] for e in undrawn for _, m in mappings(e.get("rules") or (), activity)}
    if effects & {"restricted", "required"}:
        return "unknown" if "prohibited" in could else "restricted"
    return "unknown" if could & set(LIMITING) else "no_rule_found"
