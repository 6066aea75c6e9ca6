"""Digitising commands: ``georef``, ``trace``, ``publish`` (save a draft), ``review``, ``drafts``.

The same functions as the workbench page (``geo.digitise``). ``publish`` and ``review``
act as a named user: their API token comes from ``--token`` or ``$ZONING_TOKEN``
(``zoning users add``), so the author and reviewer recorded are people, and a reviewer
cannot approve their own draft from the command line either.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from api.cli.common import UserError, app, console, resolve_store, save_index_of, store_option

if TYPE_CHECKING:
    from geo.digitise import georef as georef_mod

# geo.digitise (PIL, rasterio, scipy) is imported by the commands that use it, not by every
# `zoning` command: `zoning serve` starts ~20 ms sooner.


def _token_option() -> str | None:
    return typer.Option(None, "--token", envvar="ZONING_TOKEN",
                        help="Your API token (from `zoning users add`); default $ZONING_TOKEN.")


def _user(store, token: str | None, permission: str):
    from geo.users import Users

    if not token:
        raise UserError("this command acts as a named user: pass --token or set ZONING_TOKEN "
                        "(an admin creates one with `zoning users add NAME --role editor`)")
    user = Users(store).by_token(token)
    if user is None:
        raise UserError("the API token is unknown or its user is disabled")
    if not user.may(permission):
        raise UserError(f"{user.name} ({user.role}) may not do this")
    return user


def _page(image: Path, page: int) -> tuple:
    from geo.digitise import sheets

    try:
        array = sheets.page_array_of_file(image, page)
    except sheets.SheetError as exc:
        raise UserError(f"{image}: {exc}") from None
    return array, image.read_bytes()


@app.command()
def georef(
    image: Path = typer.Argument(..., help="The sheet: PNG, JPEG, TIFF or PDF."),
    gcp: list[str] = typer.Option(..., "--gcp", help="Control point PX,PY,X,Y (pixel column, row; world x, y). Repeat."),
    crs: str = typer.Option("EPSG:4548", "--crs", help="CRS of X,Y: wgs84, cgcs2000, gcj02, bd09, EPSG:n, or gk "
                            "(CGCS2000 Gauss-Krüger, zone prefix detected)."),
    transform: str = typer.Option("affine", "--transform", help="affine (≥3 points) | poly2 (≥6) | tps (≥3)."),
    page: int = typer.Option(1, "--page", help="Page of a PDF (from 1)."),
    out: Path = typer.Option(..., "--out", help="Where to write SHEET.georef.json."),
) -> None:
    """Fit a pixel -> world transform; print each point's residual (m), the RMS and leave-one-out errors."""
    import hashlib

    from geo.digitise import georef as georef_mod

    array, data = _page(image, page)
    points = [georef_mod.ControlPoint.parse(text) for text in gcp]
    fitted = georef_mod.fit(points, crs, transform, image_size=(array.shape[1], array.shape[0]),
                            sheet_sha256=hashlib.sha256(data).hexdigest(), page=page)
    fitted.extra["filename"] = image.name
    table = Table("#", "pixel", "world", "residual m", "leave-one-out m", "")
    for i, (p, r, e) in enumerate(zip(fitted.points, fitted.residuals_m, fitted.loo_m, strict=True), start=1):
        table.add_row(str(i), f"{p['px']:.1f}, {p['py']:.1f}", f"{p['x']}, {p['y']}", f"{r:.2f}",
                      "" if e is None else f"{e:.2f}", "outlier?" if fitted.outlier == i - 1 else "")
    console.print(table)
    loo = "" if fitted.loo_rms_m is None else f", leave-one-out RMS {fitted.loo_rms_m:.2f} m"
    console.print(f"{transform}: RMS {fitted.rms_m:.2f} m{loo}; {fitted.crs_reason}", highlight=False)
    out.write_text(fitted.to_json(), encoding="utf-8")
    console.print(f"wrote {out}", highlight=False)


def _load_georef(path: Path) -> georef_mod.Georef:
    from geo.digitise import georef as georef_mod

    if not path.is_file():
        raise UserError(f"{path} is not a file")
    return georef_mod.Georef.from_json(path.read_text(encoding="utf-8"))


@app.command()
def trace(
    image: Path = typer.Argument(..., help="The sheet the georeference was fitted on."),
    georef_file: Path = typer.Option(..., "--georef", help="SHEET.georef.json from `zoning georef`."),
    colour: str = typer.Option(..., "--colour", "--color", help="The zone's fill or hatch colour, #RRGGBB."),
    tolerance: float = typer.Option(30.0, "--tolerance", help="Colour difference ΔE*ab accepted."),
    close_px: int = typer.Option(6, "--close-px", help="Closing radius (px) that fills hatch gaps."),
    min_area_m2: float = typer.Option(10_000.0, "--min-area-m2", help="Drop parts and holes smaller than this."),
    simplify_m: float = typer.Option(5.0, "--simplify-m", help="Simplify the outline to this tolerance (m)."),
    line_width_px: float = typer.Option(0.0, "--line-width-px", help="Drawn boundary width: half is taken off."),
    clip_district: str | None = typer.Option(None, "--clip-district", help="Clip to this district (adcode)."),
    out: Path = typer.Option(..., "--out", help="Where to write ZONE.geojson (WGS84)."),
) -> None:
    """Trace the zone of one colour into WGS84 (Multi)Polygon(s)."""
    from geo.digitise import trace as trace_mod

    fitted = _load_georef(georef_file)
    array, _ = _page(image, fitted.page)
    params = trace_mod.TraceParams(colour, tolerance, close_px, min_area_m2, simplify_m, line_width_px,
                                   clip_district)
    result = trace_mod.trace(array, fitted, params)
    out.write_text(result.to_geojson(), encoding="utf-8")
    console.print(f"{result.geometry.geom_type}, {result.area_m2 / 1e6:.4f} km² (geodesic), "
                  f"{result.parts_dropped} part(s) under {min_area_m2:g} m² dropped; wrote {out}", highlight=False)


@app.command()
def publish(
    zone_geojson: Path = typer.Argument(..., help="The traced zone (GeoJSON, WGS84), e.g. from `zoning trace`."),
    zone: str = typer.Option(..., "--zone", help="The zone id it draws (see the worklist)."),
    sheet: Path = typer.Option(..., "--sheet", help="The sheet it was traced from (stored with the draft)."),
    georef_file: Path = typer.Option(..., "--georef", help="SHEET.georef.json."),
    token: str | None = _token_option(),
    store: Path | None = store_option(),
) -> None:
    """Save a draft of the zone for review (it is published when another user with the reviewer role approves)."""
    import shapely

    from api.settings import get_settings
    from geo.digitise import sheets
    from geo.digitise.drafts import Drafts, area_check

    zone_store = resolve_store(store)
    user = _user(zone_store, token, "draft.write")
    fitted = _load_georef(georef_file)
    try:
        data = json.loads(zone_geojson.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{zone_geojson}: not readable GeoJSON ({exc})") from None
    features = data.get("features", [data]) if isinstance(data, dict) else []
    geoms = [shapely.geometry.shape(f.get("geometry", f)) for f in features]
    trace_params = next((f.get("properties", {}).get("trace") for f in features if isinstance(f, dict)), None)
    stored = sheets.SheetStore(zone_store, legacy_dir=sheets.legacy_folder(zone_store, get_settings().sheets_dir)).add(
        sheet.read_bytes(), sheet.name, uploaded_by=user.name, role=user.role, client="cli")
    if fitted.sheet_sha256 and fitted.sheet_sha256 != stored.sha256:
        raise UserError(f"the georeference was fitted on another file (SHA-256 {fitted.sheet_sha256[:12]}…) "
                        f"than {sheet.name} ({stored.sha256[:12]}…)")
    provenance = {"sheet": {"sha256": stored.sha256, "filename": stored.filename, "page": fitted.page},
                  "georef": fitted.summary(), "trace": trace_params}
    draft = Drafts(zone_store).save(zone, shapely.union_all(geoms), provenance, author=user.name, role=user.role,
                                    client="cli")
    check = area_check(draft.shape, draft.record.get("stated_area_km2"))
    stated = "" if check["stated_area_km2"] is None else (
        f" vs stated {check['stated_area_km2']} km² ({'within' if check['ok'] else 'OUTSIDE'} ±5 %)")
    console.print(f"draft {draft.id} of {zone} saved by {user.name}: {check['area_km2']} km²{stated}; "
                  f"waiting for review (`zoning review {draft.id} --approve`)", highlight=False)


@app.command()
def review(
    draft: int = typer.Argument(..., help="Draft number."),
    approve: bool = typer.Option(False, "--approve", help="Approve: publish it as a new data version."),
    reject: str | None = typer.Option(None, "--reject", help="Reject, with the comment for the editor."),
    comment: str | None = typer.Option(None, "--comment", help="A comment with an approval."),
    token: str | None = _token_option(),
    store: Path | None = store_option(),
) -> None:
    """Approve (publish) or reject a draft, as a reviewer who did not write it."""
    from geo.digitise.drafts import Drafts

    if approve == (reject is not None):
        raise UserError("give exactly one of --approve and --reject \"comment\"")
    zone_store = resolve_store(store)
    user = _user(zone_store, token, "draft.review")
    done = Drafts(zone_store).review(draft, reviewer=user.name, role=user.role, approve=approve,
                                     comment=reject if reject is not None else comment, client="cli")
    if done.status == "published":
        info = zone_store.version(done.version)
        console.print(f"draft {draft} published: {done.zone_id} is served as {info.data_version} "
                      f"(author {done.author}, reviewer {user.name})", highlight=False)
        save_index_of(zone_store)
    else:
        console.print(f"draft {draft} rejected; {done.author} sees the comment", highlight=False)


@app.command()
def drafts(status: str | None = typer.Option(None, "--status", help="pending | rejected | published"),
           store: Path | None = store_option(), as_json: bool = typer.Option(False, "--json")) -> None:
    """Workbench drafts, newest first."""
    from geo.digitise.drafts import Drafts, area_check

    found = Drafts(resolve_store(store)).list(status)
    if as_json:
        print(json.dumps([d.as_dict() for d in found], ensure_ascii=False, indent=1))
        return
    table = Table("draft", "zone", "status", "author", "reviewer", "km²", "stated", "comment")
    for d in found:
        check = area_check(d.shape, d.record.get("stated_area_km2"))
        table.add_row(str(d.id), d.zone_id, d.status, d.author, d.reviewer or "", str(check["area_km2"]),
                      str(check["stated_area_km2"] or ""), d.comment or "")
    console.print(table)
