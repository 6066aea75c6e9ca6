"""Registered sites and what a data version changes for them: ``zoning sites import|list``
and ``zoning impact`` (as /v1/admin/sites and /v1/admin/impact)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from api.cli.common import UserError, app, console, resolve_store, store_option

sites_app = typer.Typer(help="The registered sites (farms, permits, projects) kept beside the zone store.",
                        no_args_is_help=True)
app.add_typer(sites_app, name="sites")


def _read_sites(path: Path, crs: str | None):
    from api.settings import get_settings
    from geo import impact as gimpact
    from geo.importer import SourceError
    from geo.parcels import ParcelInputError

    if not path.exists():
        raise UserError(f"{path} does not exist")
    with tempfile.TemporaryDirectory(prefix="zoning-sites-") as tmp:
        try:
            return gimpact.read_sites_file(path, crs=crs, workdir=Path(tmp), max_sites=get_settings().max_parcels)
        except (ParcelInputError, SourceError, ValueError) as exc:
            raise UserError(f"{path.name}: {exc}") from None


@sites_app.command("import")
def import_sites(
    file: Path = typer.Argument(..., help="Sites as points or polygons: GeoPackage, zipped Shapefile, GeoJSON, "
                                          "GeoParquet or CSV with a wkt column; site_id/id/编号 and name/名称 "
                                          "columns are recognised."),
    crs: str | None = typer.Option(None, "--crs", help="CRS when the file declares none (e.g. EPSG:4548)."),
    store: Path | None = store_option(),
) -> None:
    """Replace the registered sites with the sites of FILE."""
    from api.cli.common import cli_audit
    from geo import impact as gimpact

    sites = _read_sites(file, crs)
    zone_store = resolve_store(store)
    gimpact.save_sites(sites, zone_store, cli_audit("sites.replace", file.name, sites=len(sites)))
    console.print(f"{len(sites)} site(s) registered in {zone_store.location}", highlight=False)


@app.command("impact")
def impact(
    version_from: int | None = typer.Option(None, "--from", help="Earlier version (default: the one before --to)."),
    version_to: int | None = typer.Option(None, "--to", help="Later version (default: the current one)."),
    sites_file: Path | None = typer.Option(None, "--sites", help="Sites file (default: the registered sites)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Change rows: .csv or .gpkg."),
    summary_out: Path | None = typer.Option(None, "--summary", help="Short summary: .html or .pdf."),
    crs: str | None = typer.Option(None, "--crs", help="CRS of --sites when the file declares none."),
    as_of: str | None = typer.Option(None, "--as-of", help="Date the zones are compared on (default today)."),
    store: Path | None = store_option(),
) -> None:
    """Sites that entered or left zones, or whose zones' rules changed, between two data versions."""
    from api.dependencies import parse_as_of_field
    from api.errors import NotFoundError
    from api.impact import compute_impact
    from geo import impact as gimpact
    from geo.atomic import atomic_path
    from maps.report import impact_html, impact_pdf

    day = parse_as_of_field(as_of, "--as-of", "option")
    zone_store = resolve_store(store)
    sites = _read_sites(sites_file, crs) if sites_file else gimpact.load_sites(zone_store)
    if not len(sites):
        raise UserError("no sites: give --sites FILE or register them with `zoning sites import FILE`")
    for path, allowed in ((out, (".csv", ".gpkg")), (summary_out, (".html", ".pdf"))):
        if path is not None and path.suffix.lower() not in allowed:
            raise UserError(f"{path.name}: write {' or '.join(allowed)}")
    try:
        changes, summary = compute_impact(zone_store, sites, version_from, version_to, day)
    except NotFoundError as exc:
        raise UserError(str(exc)) from None
    if out is not None:
        gimpact.write_changes(changes, out.suffix.lower().lstrip("."), out)
    if summary_out is not None:
        with atomic_path(summary_out) as tmp:
            if summary_out.suffix.lower() == ".pdf":
                tmp.write_bytes(impact_pdf(summary))
            else:
                tmp.write_text(impact_html(summary), encoding="utf-8")
    counts = ", ".join(f"{k} {v}" for k, v in summary["changes"].items())
    console.print(f"v{summary['from']} → v{summary['to']}: {summary['sites_affected']} of {summary['sites']} site(s) "
                  f"affected ({counts})", highlight=False)
    for row in summary["examples"][:10]:
        console.print(f"  {row['site_id']} {row['name']}: {row['change']} {row['zone_id'] or ''} "
                      f"{row['zone_name_zh'] or ''}", highlight=False)
