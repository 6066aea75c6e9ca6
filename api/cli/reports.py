"""``zoning report-site``: the site compliance report as PDF or HTML (as POST /v1/report)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from api.cli.common import UserError, app, console, resolve_store, store_option


@app.command("report-site")
def report_site(
    site_file: Path = typer.Argument(..., help="GeoJSON site: a Polygon, MultiPolygon or Point (or a Feature or a "
                                               "FeatureCollection of one)."),
    out: Path = typer.Option(..., "--out", "-o", help="report.pdf or report.html (written atomically)."),
    activity: str | None = typer.Option(None, "--activity", help="Planned activity, e.g. livestock_farm."),
    project: str = typer.Option("—", "--project", help="Project name shown on the report."),
    crs: str = typer.Option("wgs84", "--crs", help="Coordinates of the site: wgs84, cgcs2000, gcj02, bd09, EPSG:n."),
    as_of: str | None = typer.Option(None, "--as-of", help="Date the rules apply on (default today in Beijing)."),
    lang: str = typer.Option("zh", "--lang", help="zh (Chinese first) or en."),
    base_url: str = typer.Option("http://127.0.0.1:8000/", "--base-url",
                                 help="Service address the report's permalink points to."),
    store: Path | None = store_option(),
) -> None:
    """Write a site compliance report (选址合规性审查报告): zones, rules, map, permalink."""
    from api.dependencies import (
        InputError,
        parse_activity_field,
        parse_as_of_field,
        parse_crs_field,
        parse_lang_field,
    )
    from api.reports import build_report, parse_site, render
    from geo.atomic import atomic_path
    from geo.catalog import ZoneCatalog

    fmt = {".pdf": "pdf", ".html": "html", ".htm": "html"}.get(out.suffix.lower())
    if fmt is None:
        raise UserError(f"{out.name}: write a .pdf or .html report")
    if not site_file.exists():
        raise UserError(f"{site_file} does not exist")
    try:
        data = json.loads(site_file.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{site_file.name} is not GeoJSON: {exc}") from None
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        features = data.get("features") or []
        if len(features) != 1:
            raise UserError(f"{site_file.name} holds {len(features)} features; a report is about one site")
        data = features[0]
    try:
        crs_name = parse_crs_field(crs, "--crs", "option")
        day, language = parse_as_of_field(as_of, "--as-of", "option"), parse_lang_field(lang, "--lang", "option")
        site = parse_site(data, crs_name)
        activities = parse_activity_field(activity, "--activity", "option")
    except InputError as exc:
        raise UserError(f"{site_file.name}: {exc.message}") from None
    snap = ZoneCatalog(resolve_store(store)).snapshot()
    report = build_report(snap, site, input_crs=crs_name, as_of=day, lang=language, project=project,
                          activity=activities[0] if activities else None, permalink_base=base_url.rstrip("/") + "/")
    with atomic_path(out) as tmp:
        tmp.write_bytes(render(report, fmt))
    console.print(f"report {report.report_id}: {len(report.zones)} zone(s), data {report.data_version}; wrote {out}",
                  highlight=False)
