"""Lookup commands: ``convert``, ``check``, ``check-file``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.table import Column, Table

from api.cli.common import UserError, app, console, err_console, resolve_store, store_option


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
ACTIVITY_OPTION_HELP = ("Activity code(s) to decide (repeat or comma-separate; `GET /v1/activities` lists them), "
                        "e.g. livestock_scale_farm_new.")


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
    activity: list[str] | None = typer.Option(None, "--activity", help=ACTIVITY_OPTION_HELP),
    store: Path | None = store_option(),
) -> None:
    """Which zones cover a point: rules, source document, distance to the boundary (same as GET /v1/check);
    with --activity, first the verdict: may this be done here?"""
    from api import answers
    from api.dependencies import coordinate_errors, parse_activity_field, parse_lang_field, parse_near_field
    from geo.catalog import ZoneCatalog
    from geo.crs import CoordinateError

    crs, as_of, layer_list = _lookup_options(crs, as_of, layers)
    lang, near = parse_lang_field(lang, "--lang", "option"), parse_near_field(near, "--near", "option")
    activities = parse_activity_field(activity, "--activity", "option")
    snap = ZoneCatalog(resolve_store(store)).snapshot()
    try:
        answer = answers.check_answer(snap, lon, lat, crs=crs, as_of=as_of, layers=layer_list, near_m=near, lang=lang,
                                      activities=activities)
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
    _print_verdicts(answer.get("verdicts") or [])
    console.print(answer["coverage_note"], highlight=False)
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
        console.print(f"未绘制的分区 zones not drawn ({len(answer['not_digitised'])}):", highlight=False)
        for z in answer["not_digitised"]:
            console.print(f"  [{z['layer_title']}] {z['name']} ({z['zone_id']}): {z['reason']} {z['what_to_do']}",
                          highlight=False)
    console.print(answer["disclaimer"], style="dim", highlight=False)


VERDICT_STYLE = {"prohibited": "bold red", "restricted": "bold yellow", "unknown": "bold magenta",
                 "no_rule_found": "bold"}


def _print_verdicts(verdicts: list[dict]) -> None:
    """Verdicts first: the word, the summary, the deciding rules, the zones not drawn."""
    for v in verdicts:
        console.print(f"[{VERDICT_STYLE[v['verdict']]}]{v['verdict']}[/] {v['summary']}", highlight=False)
        for d in v["deciding"]:
            cond = f" — {d['condition']}" if d["condition"] else ""
            console.print(f"  {d['effect']}: {d['name']} ({d['zone_id']}), {d['source']['doc_no'] or ''} "
                          f"{d['source']['article'] or ''}, {d['rule_code']}: “{d['quote_zh']}”{cond}", highlight=False)
        for u in v["undrawn"]:
            parts = f" ({'、'.join(u['parts'])})" if u["parts"] else ""
            console.print(f"  ? {u['name']}{parts}: {u['reason']} {u['what_to_do']}", highlight=False)


POINT_SUFFIXES = {".csv": "csv", ".txt": "csv", ".geojson": "json", ".json": "json", ".arrow": "arrow",
                  ".arrows": "arrow", ".parquet": "parquet", ".geoparquet": "parquet"}


@app.command("check-file")
def check_file(
    in_file: Path = typer.Argument(..., help="Points: CSV with a header lon,lat[,id] (or x,y; UTF-8 or GBK), a "
                                             "GeoJSON FeatureCollection of points, Arrow IPC (.arrow) or "
                                             "(Geo)Parquet (.parquet). With --sites: parcels (polygons)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .csv, .arrow or .parquet (written atomically)."),
    crs: str | None = typer.Option(None, "--crs", help=CRS_OPTION_HELP + " Parcels: default the file's CRS."),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_OPTION_HELP),
    layers: str | None = typer.Option(None, "--layers", help=LAYERS_OPTION_HELP),
    distances: bool = typer.Option(False, "--distances", help="Add distances_m: metres to each zone's boundary."),
    encoding: str | None = typer.Option(None, "--encoding", help="CSV encoding (default: UTF-8, else GB18030/GBK)."),
    sites: bool = typer.Option(False, "--sites", help="The file holds parcels (polygons): one row per (parcel, "
                                                      "zone) with overlap areas, as POST /v1/check/sites."),
    activity: list[str] | None = typer.Option(None, "--activity", help=ACTIVITY_OPTION_HELP + " Adds a column "
                                                "verdict_<code> per activity."),
    store: Path | None = store_option(),
    engine: str = typer.Option("local", "--engine", help="local (this process), or dask: GeoParquet/Parquet/CSV "
                               "in (with --sites: GeoParquet or GeoPackage), GeoParquet partitions out (a "
                               "directory), on dask.distributed."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="With --engine dask: a dask scheduler "
                                         "(tcp://host:8786); default a local cluster."),
    workers: int = typer.Option(2, "--workers", min=1, help="With --engine dask and no --scheduler: local workers."),
) -> None:
    """Look up every point of a file (same rules as POST /v1/check/batch); one output row per point."""
    if engine != "local":
        from api.cli.distributed import check_file_distributed

        return check_file_distributed(in_file, out, crs=crs, as_of=as_of, layers=layers, store=store,
                                      engine=engine, scheduler=scheduler, workers=workers, sites=sites,
                                      activity=activity)
    if not in_file.exists():
        raise UserError(f"{in_file} does not exist")
    from api.dependencies import parse_activity_field

    crs_name, as_of, layer_list = _lookup_options(crs or "wgs84", as_of, layers)
    activities = parse_activity_field(activity, "--activity", "option")
    if sites:
        from api.cli.sites import check_parcels_file

        check_parcels_file(in_file, out, crs=crs and crs_name, as_of=as_of, layers=layer_list, encoding=encoding,
                           activities=activities, store=store)
        return
    _check_points_file(in_file, out, crs=crs_name, as_of=as_of, layers=layer_list, distances=distances,
                       encoding=encoding, activities=activities, store=store)


def _check_points_file(in_file: Path, out: Path, *, crs: str, as_of: str, layers: list[str] | None,
                       distances: bool, encoding: str | None, activities: list[str] | None,
                       store: Path | None) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq
    from rich.progress import Progress

    from api import answers
    from api.batch import (
        answer_table,
        coordinate_error,
        point_verdicts,
        read_batch_points,
        with_verdict_columns,
    )
    from api.dependencies import InputError
    from geo import batch as gbatch
    from geo.atomic import atomic_path
    from geo.catalog import ZoneCatalog
    from geo.crs import CoordinateError

    out_kind = POINT_SUFFIXES.get(out.suffix.lower(), "csv")
    if out_kind == "json":
        raise UserError(f"{out.name}: write .csv, .arrow or .parquet")
    try:
        points = read_batch_points(in_file.read_bytes(), POINT_SUFFIXES.get(in_file.suffix.lower(), "csv"),
                                   encoding=encoding, option="--encoding")
    except InputError as exc:
        raise UserError(f"{in_file.name}: {exc.message}") from None
    snap = ZoneCatalog(resolve_store(store)).snapshot()
    step = 250_000
    tables, missing = [], {}
    with Progress(console=err_console) as progress:
        task = progress.add_task(in_file.name, total=len(points))
        for start in range(0, len(points), step):
            part = gbatch.PointColumns(points.ids[start:start + step], points.x[start:start + step],
                                       points.y[start:start + step], points.unit, points.first + start,
                                       None if points.rows is None else points.rows[start:start + step], points.crs)
            try:
                found = answers.look_up(snap, part.x, part.y, crs=points.crs or crs, as_of=as_of, layers=layers,
                                        near_m=0, distances=distances)
            except CoordinateError as exc:
                raise UserError(f"{in_file.name}: {coordinate_error(part, exc).message}") from None
            for entry in answers.not_digitised(snap, lon=found.lon, lat=found.lat, layers=layers):
                missing.setdefault(entry["zone_id"], entry)
            verdicts = point_verdicts(snap, part, found, activities, points.crs or crs, as_of, layers)
            tables.append(with_verdict_columns(answer_table(snap, part, found, distances=distances, full=True),
                                               verdicts))
            progress.advance(task, len(part))
    n = len(points)
    table = pa.concat_tables(tables)
    constants = {"crs": points.crs or crs, "as_of": as_of, "data_version": snap.data_version}
    for position, (name, value) in zip((3, 6, table.num_columns + 2), constants.items(), strict=True):
        # one dictionary entry repeated: a million-row column of Python strings costs seconds
        table = table.add_column(position, name, pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, np.int8)), pa.array([value])))
    with atomic_path(out) as tmp:
        if out_kind == "csv":
            with open(tmp, "wb") as f:
                for chunk in gbatch.iter_csv(table):
                    f.write(chunk)
        elif out_kind == "arrow":
            with pa.OSFile(str(tmp), "wb") as f, ipc.new_stream(f, table.schema) as writer:
                writer.write_table(table)
        else:
            lon, lat = table.column("lon_wgs84").to_numpy(), table.column("lat_wgs84").to_numpy()
            table = table.append_column("geometry", gbatch.point_wkb(lon, lat))
            pq.write_table(table.replace_schema_metadata(gbatch.geoparquet_metadata()), tmp)
    inside = int(np.count_nonzero(table.column("zone_count").to_numpy()))
    console.print(f"{n} points, {inside} inside at least one zone ({np.round(100 * inside / max(n, 1), 1)} %); "
                  f"wrote {out}", highlight=False)
    shown = answers.relevant_undrawn(missing.values(), "zh", as_of, activities)
    if shown:
        console.print(f"未绘制的分区 not drawn in these districts ({len(shown)}), so no answer for them: "
                      + "; ".join(f"{z['name_zh']} ({z['zone_id']})" for z in shown), highlight=False)
