"""Build the zone table from the recipes: geometries, areas, checks, report, files.

``build_zones(recipes_dir, base_dir)`` builds every recipe in one context
(``geo.recipes``), computes geodesic areas, validates the table against
``geo.schema`` and runs the checks: the texts' own arithmetic (declared in each
recipe's ``checks:``), stated-vs-computed areas, children inside parents, unions vs the
sum of their parts and partitions covering their area without overlap. Each check
passes or is flagged with a reason; a flag does not stop the build, a recipe error does.

``write_build(zones, report, out_dir)`` writes ``zones.geojson``,
``layers/<layer>.geojson`` and ``REPORT.md``. Output is deterministic (sorted by id,
fixed key order, coordinates rounded to 1e-7°, one feature per line) so that a rebuild
is byte-identical and diffs show which zone changed. Files are written to temporary
names first and renamed only when all of them are written.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely
from shapely.geometry.base import BaseGeometry

from geo.recipes import (
    BaseLayers,
    BuildContext,
    BuiltZone,
    NotDigitisedRef,
    Recipe,
    RecipeError,
    ZoneEntry,
    area_km2,
    load_recipes,
)
from geo.schema import LAYERS, validate_zones, zones_from_records, zones_to_geojson
from geo.undrawn import UndrawnReasonError, user_texts

COORD_DECIMALS = 7
AREA_DECIMALS = 4
AREA_TOLERANCE_PCT = 5.0  # stated vs computed, for zones built from the text's rules
CONTAIN_TOLERANCE_PCT = 1.0  # share of a child allowed outside its parent (coarse base data)
OVERLAP_TOLERANCE_PCT = 0.5  # unions and partitions


@dataclass(frozen=True)
class CheckResult:
    group: str  # "arithmetic" | "area" | "geometry"
    name: str
    passed: bool
    detail: str


@dataclass
class Report:
    recipes: list[Recipe]
    built: dict[str, BuiltZone]
    areas: dict[str, float]
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def flagged(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    def markdown(self) -> str:
        return render_report(self)


# ---------------------------------------------------------------- building


def build_zones(recipes_dir: Path, base_dir: Path,
                on_zone: Callable[[ZoneEntry], None] | None = None) -> tuple[gpd.GeoDataFrame, Report]:
    """Build all recipes into a validated zone frame (digitised zones only) and its report."""
    recipes = load_recipes(recipes_dir)
    ctx = BuildContext(recipes, BaseLayers(base_dir))
    built = ctx.build_all(on_zone)
    areas = {zid: area_km2(b.geometry) for zid, b in built.items() if b.digitised}
    records = [zone_record(built[zid], areas[zid], built) for zid in sorted(built) if built[zid].digitised]
    zones = zones_from_records(records)
    validate_zones(zones)
    report = Report(recipes, built, areas)
    report.checks = run_checks(ctx, report)
    return zones, report


def zone_record(built: BuiltZone, area: float, all_built: dict[str, BuiltZone]) -> dict[str, Any]:
    """One zone-table row from a built recipe entry."""
    entry = built.entry
    data = entry.data
    parent = data.get("parent")
    if parent is not None and (parent not in all_built or not all_built[parent].digitised):
        state = "unknown" if parent not in all_built else "not digitised"
        raise RecipeError(f"{entry.where()}: parent {parent!r} is {state}; a digitised zone needs a digitised parent")
    polygonal = built.geometry.geom_type in ("Polygon", "MultiPolygon")
    return {
        **entry_metadata(entry),
        "area_km2": round(area, AREA_DECIMALS) if polygonal else None,
        "accuracy": data["accuracy"],
        "method": built.method,
        "geometry": built.geometry,
    }


def entry_metadata(entry: ZoneEntry) -> dict[str, Any]:
    """What the texts say about a recipe's zone, whatever its geometry: identity, citation,
    dates, stated area, rules (the zone-table columns but area, accuracy and method). The
    digitising workbench fills a not-digitised zone's draft from it."""
    data, recipe = entry.data, entry.recipe
    doc = recipe.documents.get(data.get("document"), {})
    district = {**recipe.district, **(data.get("district") or {})}
    return {
        "zone_id": entry.id,
        "parent_id": data.get("parent"),
        "layer": data["layer"],
        "kind": data["kind"],
        "name_zh": data["name_zh"],
        "name_en": data["name_en"],
        "district_code": str(district["code"]),
        "district_name": district["name_zh"],
        "source_doc_no": doc.get("doc_no"),
        "source_title": doc.get("title"),
        "source_article": None if data.get("article") is None else str(data["article"]),
        "issuer": data.get("issuer", doc.get("issuer")),
        "issued_on": data.get("issued_on", doc.get("issued_on")),
        "effective_from": data.get("effective_from", doc.get("effective_from")),
        "effective_to": data.get("effective_to", doc.get("effective_to")),
        "stated_area_km2": data.get("stated_area_km2"),
        "rules": data["rules"],
        "notes": data.get("notes"),
    }


# ---------------------------------------------------------------- checks


def _pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else math.inf


def _stated(ctx: BuildContext, item: Any, where: str) -> float:
    """A number, or a zone id's stated area."""
    if isinstance(item, int | float) and not isinstance(item, bool):
        return float(item)
    entry = ctx.entries.get(item)
    if entry is None:
        raise RecipeError(f"{where}: unknown zone {item!r}")
    value = entry.data.get("stated_area_km2")
    if value is None:
        raise RecipeError(f"{where}: zone {item!r} has no stated_area_km2")
    return float(value)


def run_checks(ctx: BuildContext, report: Report) -> list[CheckResult]:
    checks: list[CheckResult] = []
    for recipe in ctx.recipes:
        for i, check in enumerate(recipe.checks):
            checks.append(_declared_check(ctx, recipe, report, check, f"{recipe.path.name}: checks[{i}]"))
    checks.extend(_area_checks(ctx, report))
    checks.extend(_containment_checks(report))
    checks.extend(_union_checks(ctx, report))
    checks.extend(_partition_checks(ctx))
    return checks


def _declared_check(ctx: BuildContext, recipe: Recipe, report: Report, check: dict[str, Any],
                    where: str) -> CheckResult:
    source = f" ({check['source']})" if check.get("source") else ""
    if "sum_of" in check:
        parts = [_stated(ctx, p, where) for p in check["sum_of"]]
        total = _stated(ctx, check.get("equals"), where)
        tol = float(check.get("tolerance_km2", 0.005))
        diff = sum(parts) - total
        text = check.get("stated") or (" + ".join(f"{p:g}" for p in parts) + f" = {total:g}")
        detail = f"sum {sum(parts):.2f} vs {total:g} (difference {diff:+.3f} km²){source}"
        return CheckResult("arithmetic", text, abs(diff) <= tol, detail)
    if "area_matches" in check:
        zid = check["area_matches"]
        tol = float(check.get("tolerance_pct", AREA_TOLERANCE_PCT))
        stated = _stated(ctx, zid, where)
        name = f"{zid}: computed area within ±{tol:g} % of stated {stated:g} km²"
        if zid not in report.areas:
            return CheckResult("area", name, False, f"not digitised: {report.built[zid].reason}")
        ratio = report.areas[zid] / stated
        return CheckResult("area", name, abs(ratio - 1) * 100 <= tol,
                           f"computed {report.areas[zid]:.2f} km², ratio {ratio:.3f}{source}")
    if "parts" in check and "cover" in check:
        tol = float(check.get("tolerance_pct", OVERLAP_TOLERANCE_PCT))
        name = f"{', '.join(check['parts'])} partition {check['cover'] if isinstance(check['cover'], str) else 'the area'}"
        missing = [p for p in check["parts"] if p not in report.areas]
        if missing:
            return CheckResult("geometry", name, False, f"parts not digitised: {', '.join(missing)}")
        try:
            cover = ctx.evaluate(check["cover"], recipe)
        except NotDigitisedRef as exc:
            return CheckResult("geometry", name, False, f"the covered area {exc}")
        return _partition_result(name, [report.built[p].geometry for p in check["parts"]], cover, tol)
    raise RecipeError(f"{where}: unknown check; use sum_of/equals, area_matches or parts/cover")


def _area_checks(ctx: BuildContext, report: Report) -> Iterable[CheckResult]:
    for zid in sorted(report.areas):
        data = ctx.entries[zid].data
        stated = data.get("stated_area_km2")
        if stated is None or report.built[zid].geometry.geom_type not in ("Polygon", "MultiPolygon"):
            continue
        ratio = report.areas[zid] / float(stated)
        ok = abs(ratio - 1) * 100 <= AREA_TOLERANCE_PCT
        gap = report.areas[zid] - float(stated)
        detail = f"computed {report.areas[zid]:.2f} km² vs stated {stated:g} km² (difference {gap:+.2f} km²), ratio {ratio:.3f}"
        if not ok:
            reason = data.get("stated_area_note") or "no explanation in the recipe"
            detail += f"; {data['accuracy']}: {reason}"
        yield CheckResult("area", f"{zid}: stated vs computed within ±{AREA_TOLERANCE_PCT:g} %", ok, detail)


def _containment_checks(report: Report) -> Iterable[CheckResult]:
    for zid in sorted(report.areas):
        built = report.built[zid]
        parent = built.entry.data.get("parent")
        if parent is None:
            continue
        child, outer = built.geometry, report.built[parent].geometry
        name = f"{zid} inside its parent {parent}"
        if child.geom_type in ("Point", "MultiPoint"):
            yield CheckResult("geometry", name, bool(outer.covers(child)), "point location")
            continue
        outside = area_km2(shapely.difference(child, outer))
        share = _pct(outside, report.areas[zid])
        yield CheckResult("geometry", name, share <= CONTAIN_TOLERANCE_PCT,
                          f"{outside:.3f} km² ({share:.2f} %) outside; tolerance {CONTAIN_TOLERANCE_PCT:g} %")


def _zone_components(spec: Any) -> list[str]:
    """Zone ids listed directly in a union's ``of``."""
    out = []
    for item in spec.get("of") or []:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict) and item.get("op") == "ref":
            out.append(item["id"])
    return out


def _union_checks(ctx: BuildContext, report: Report) -> Iterable[CheckResult]:
    for zid in sorted(report.areas):
        spec = ctx.entries[zid].geometry_spec
        if spec.get("op") != "union":
            continue
        parts = _zone_components(spec)
        built_parts = [p for p in parts if p in report.areas]
        if not built_parts:
            continue
        total = sum(report.areas[p] for p in built_parts)
        overlap = total - report.areas[zid]
        share = _pct(overlap, total)
        skipped = [p for p in parts if p not in report.areas]
        detail = (f"union {report.areas[zid]:.2f} km² vs sum of {len(built_parts)} parts {total:.2f} km²; "
                  f"overlap {overlap:.2f} km² ({share:.2f} %)")
        if skipped:
            detail += f"; parts not digitised: {', '.join(skipped)}"
        yield CheckResult("geometry", f"{zid}: union vs sum of parts", share <= OVERLAP_TOLERANCE_PCT, detail)


def _partition_result(name: str, cells: list[BaseGeometry], cover: BaseGeometry, tol: float) -> CheckResult:
    union = shapely.union_all(cells)
    cover_km2 = area_km2(cover)
    overlap = sum(area_km2(c) for c in cells) - area_km2(union)
    gap = area_km2(shapely.difference(cover, union))
    spill = area_km2(shapely.difference(union, cover))
    ok = all(_pct(x, cover_km2) <= tol for x in (overlap, gap, spill))
    detail = (f"area {cover_km2:.2f} km²; uncovered {gap:.3f} km², outside {spill:.3f} km², "
              f"overlap {overlap:.3f} km² (tolerance {tol:g} % each)")
    return CheckResult("geometry", name, ok, detail)


def _partition_checks(ctx: BuildContext) -> Iterable[CheckResult]:
    for recipe, key, result in ctx.built_partitions():
        cover = ctx.evaluate(recipe.partitions[key]["of"], recipe)
        yield _partition_result(f"partition {key} ({recipe.path.name}) covers its area without overlap",
                                list(result.cells.values()), cover, OVERLAP_TOLERANCE_PCT)


# ---------------------------------------------------------------- report


def _md(text: Any) -> str:
    return "" if text is None else str(text).replace("|", "\\|").replace("\n", " ")


def _num(value: Any, digits: int = 2) -> str:
    return "" if value is None else f"{float(value):.{digits}f}"


def render_report(report: Report) -> str:
    """REPORT.md: zones with stated vs computed areas, checks, not-digitised zones, places."""
    built = report.built
    digitised = [z for z in sorted(built) if built[z].digitised]
    missing = [z for z in sorted(built) if not built[z].digitised]
    passed = sum(c.passed for c in report.checks)
    out = [
        "# 区划数字化报告 Zone digitisation report",
        "",
        "Generated by `zoning build` from `data/boundaries/recipes/*.yaml` and `data/boundaries/base/`. "
        "Do not edit by hand. 由 `zoning build` 生成，请勿手工编辑。",
        "",
        "Accuracy: `official` = legal boundary; `approximate` = built from the text's rules, not the legal "
        "line; `schematic` = location and extent only; `indicative` = inferred from the text's components, "
        "may be far off. Areas are geodesic (GRS80).",
        "",
        "## 概况 Summary",
        "",
        f"- zones in recipes: {len(built)}; digitised: {len(digitised)}; not digitised: {len(missing)}",
    ]
    by_acc: dict[str, int] = {}
    for z in digitised:
        by_acc[built[z].entry.data["accuracy"]] = by_acc.get(built[z].entry.data["accuracy"], 0) + 1
    out.append("- digitised by accuracy: " + ", ".join(f"{k} {v}" for k, v in sorted(by_acc.items())))
    out.append(f"- checks: {passed} passed, {len(report.checks) - passed} flagged")
    out.append("")
    for recipe in report.recipes:
        d = recipe.district
        out += [f"## {d['name_zh']} {d.get('name_en', '')} ({d['code']}) — `{recipe.path.name}`", "",
                "| zone_id | 名称 name | layer | stated km² | computed km² | ratio | accuracy | method |",
                "|---|---|---|---:|---:|---:|---|---|"]
        for entry in sorted(recipe.zones, key=lambda e: e.id):
            b = built[entry.id]
            stated = entry.data.get("stated_area_km2")
            area = report.areas.get(entry.id) if b.digitised else None
            polygonal = b.digitised and b.geometry.geom_type in ("Polygon", "MultiPolygon")
            ratio = f"{area / stated:.3f}" if polygonal and stated else ""
            computed = _num(area) if polygonal else ("point" if b.digitised else "not digitised")
            method = b.method if b.digitised else f"not digitised: {b.reason}"
            out.append(f"| `{entry.id}` | {_md(entry.data['name_zh'])}<br>{_md(entry.data['name_en'])} | "
                       f"{entry.data['layer']} | {_num(stated)} | {computed} | {ratio} | "
                       f"{entry.data['accuracy']} | {_md(method)} |")
        out.append("")
    titles = {"arithmetic": "文本算术核对 The texts' own arithmetic",
              "area": "面积核对 Stated vs computed areas",
              "geometry": "几何核对 Geometric checks"}
    out += ["## 核对 Checks", ""]
    for group, title in titles.items():
        rows = [c for c in report.checks if c.group == group]
        if not rows:
            continue
        out += [f"### {title}", "", "| result | check | detail |", "|---|---|---|"]
        out += [f"| {'pass' if c.passed else '**flagged**'} | {_md(c.name)} | {_md(c.detail)} |" for c in rows]
        out.append("")
    out += ["## 未数字化 Not digitised", "",
            "Zones the texts name that could not be drawn honestly. They are not in `zones.geojson`.", "",
            "| zone_id | 名称 name | document | stated km² | reason |", "|---|---|---|---:|---|"]
    for zid in missing:
        entry = built[zid].entry
        doc = entry.recipe.documents.get(entry.data.get("document"), {})
        article = f" {entry.data['article']}" if entry.data.get("article") else ""
        out.append(f"| `{zid}` | {_md(entry.data['name_zh'])}<br>{_md(entry.data['name_en'])} | "
                   f"{_md(doc.get('doc_no', ''))}{_md(article)} | {_num(entry.data.get('stated_area_km2'))} | "
                   f"{_md(built[zid].reason)} |")
    out += ["", "## 引用坐标 Cited places", "",
            "| file | key | 名称 | lon, lat (WGS84) | as cited | source |", "|---|---|---|---|---|---|"]
    for recipe in report.recipes:
        for key, p in sorted(recipe.places.items()):
            out.append(f"| {recipe.path.name} | {key} | {_md(p.name_zh)} | {p.lon:.6f}, {p.lat:.6f} | "
                       f"{p.cited[0]!r}, {p.cited[1]!r} ({p.crs}) | {_md(p.source)} |")
    out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------- files


def _round_coords(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, COORD_DECIMALS)
    if isinstance(value, list | tuple):
        return [_round_coords(v) for v in value]
    return value


def geojson_text(zones: gpd.GeoDataFrame) -> str:
    """Deterministic FeatureCollection text: sorted by zone_id, one feature per line."""
    ordered = zones.sort_values("zone_id", kind="stable").reset_index(drop=True)
    features = zones_to_geojson(ordered, precision=COORD_DECIMALS)["features"]
    lines = []
    for feature in features:
        geometry = feature["geometry"]
        feature = {**feature, "geometry": {"type": geometry["type"],
                                           "coordinates": _round_coords(geometry["coordinates"])}}
        lines.append(json.dumps(feature, ensure_ascii=False, separators=(",", ":"), allow_nan=False))
    return '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"


def not_digitised_records(report: Report) -> list[dict[str, Any]]:
    """Zones the texts define but that could not be drawn, with their citation, dates,
    rules (and the activities each governs), a user-facing reason and what to do in
    Chinese and English, and the research note as ``method_note`` (for reports only).

    The lookup answers list these for the district a point lies in: "not inside any
    digitised zone" must never read as "not inside any zone".
    """
    out = []
    for zid in sorted(report.built):
        built = report.built[zid]
        if built.digitised:
            continue
        data, recipe = built.entry.data, built.entry.recipe
        doc = recipe.documents.get(data.get("document"), {})
        district = {**recipe.district, **(data.get("district") or {})}
        article = None if data.get("article") is None else str(data["article"])
        issuer = data.get("issuer", doc.get("issuer"))
        try:
            texts = user_texts(built.entry.geometry_spec, {"issuer": issuer, "doc_no": doc.get("doc_no"),
                                                           "article": article, "name_zh": data["name_zh"],
                                                           "name_en": data["name_en"]})
        except UndrawnReasonError as exc:
            raise RecipeError(f"{built.entry.where()}: {exc}") from None
        out.append({
            "zone_id": zid, "parent_id": data.get("parent"), "layer": data["layer"], "kind": data["kind"],
            "name_zh": data["name_zh"], "name_en": data["name_en"],
            "district_code": str(district["code"]), "district_name": district["name_zh"],
            "source_doc_no": doc.get("doc_no"), "source_article": article, "issuer": issuer,
            "effective_from": data.get("effective_from", doc.get("effective_from")),
            "effective_to": data.get("effective_to", doc.get("effective_to")),
            "stated_area_km2": data.get("stated_area_km2"), "rules": data["rules"],
            **texts, "method_note": built.reason,
        })
    return out


def build_outputs(zones: gpd.GeoDataFrame, report: Report) -> dict[str, str]:
    """Relative path -> text for every file a build writes."""
    files = {"zones.geojson": geojson_text(zones), "REPORT.md": report.markdown(),
             "not_digitised.json": json.dumps(not_digitised_records(report), ensure_ascii=False, indent=1) + "\n"}
    for layer in sorted(set(zones["layer"])):
        files[f"layers/{layer}.geojson"] = geojson_text(zones[zones["layer"] == layer])
    return files


def write_build(zones: gpd.GeoDataFrame, report: Report, out_dir: Path) -> list[Path]:
    """Write all outputs atomically: temp files first, renamed only when all are written.

    Layer files of layers that no longer have zones are removed.
    """
    out_dir = Path(out_dir)
    files = build_outputs(zones, report)
    temps: list[tuple[Path, Path]] = []
    try:
        for rel, text in files.items():
            target = out_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            temps.append((tmp, target))
    except OSError:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, target in temps:
        os.replace(tmp, target)
    layer_dir = out_dir / "layers"
    for stale in sorted(layer_dir.glob("*.geojson")):
        if f"layers/{stale.name}" not in files and stale.stem in LAYERS:
            stale.unlink()
    return [target for _, target in temps]
