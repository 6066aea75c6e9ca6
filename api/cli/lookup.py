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
    engine: str = typer.Option("local", "--engine", help="local (this process), or dask: GeoParquet/Parquet/CSV "
                               "in, GeoParquet partitions out (a directory), on dask.distributed."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="With --engine dask: a dask scheduler "
                                         "(tcp://host:8786); default a local cluster."),
    workers: int = typer.Option(2, "--workers", min=1, help="With --engine dask and no --scheduler: local workers."),
) -> None:
    """Look up every point of a file (same rules as POST /v1/check/batch); one output row per point."""
    if engine != "local":
        from api.cli.distributed import check_file_distributed

        return check_file_distributed(in_file, out, crs=crs, as_of=as_of, layers=layers, store=store,
                                      engine=engine, scheduler=scheduler, workers=workers)
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
