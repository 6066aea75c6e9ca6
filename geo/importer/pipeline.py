"""The import pipeline: read, map, check, preview (the ImportReport), and write a new store
version when there is no problem."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj

from geo import crs as gcrs
from geo import schema, uploads
from geo.importer import safety
from geo.importer.checks import _by_feature, _label, check_districts, clean_geometries, replace_scope
from geo.importer.mapping import _district_table, _resolve_fields, _text, build_zones, district_code
from geo.importer.options import ImportOptions, ImportReport, SourceError
from geo.importer.read import FORMATS, choose_layer, determine_crs, locate_dataset, read_frame
from geo.store import AuditEvent, StoreBackend, diff_details, with_computed_area

SAMPLE_ROWS = 5


# ---------------------------------------------------------------- the pipeline


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _read_source(path: Path, options: ImportOptions, workdir: Path, limits: uploads.UploadLimits,
                 report: ImportReport) -> tuple[Path, gpd.GeoDataFrame, str]:
    """(dataset file, its features in the source CRS, that CRS); fills the report's reading facts."""
    dataset = locate_dataset(path, workdir, options, limits)
    report.format = FORMATS[dataset.suffix.lower()]
    checked = workdir / "checked"
    checked.mkdir(parents=True, exist_ok=True)
    dataset = safety.check_content(dataset, report.format, checked)
    try:
        report.dataset_layer = choose_layer(dataset, options.layer_name)
        frame, report.encoding, report.encoding_note, notes = read_frame(dataset, report.dataset_layer, options)
        report.warnings += notes
        report.features = len(frame)
        if not len(frame):
            raise SourceError(f"{dataset.name} has no features")
        crs, report.crs_note, notes = determine_crs(dataset, report.dataset_layer, frame, options)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, pyproj.exceptions.ProjError) as exc:
        # GDAL's and PROJ's refusals are about the file: a 4xx / exit 2 naming the reason, never a 500.
        raise SourceError(f"cannot read {dataset.name} as {report.format}: {exc}") from None
    report.crs = gcrs.describe_crs(crs)
    report.warnings += notes
    return dataset, frame, crs


def read_features(path: Path, options: ImportOptions, workdir: Path,
                  limits: uploads.UploadLimits = uploads.UploadLimits()) -> tuple[gpd.GeoDataFrame, str, str]:
    """(features in the source CRS, that CRS, how it was found) of an untrusted GIS file, through
    exactly the import's checks (allow-listed driver verified against the content, no VRT, no
    network, a GeoPackage without its triggers): for callers that read user files but write no
    zones (parcel batches, registered sites)."""
    report = ImportReport(source=path.name, source_sha256="", layer=options.layer)
    _, frame, crs = _read_source(path, options, workdir, limits, report)
    return frame, crs, report.crs_note


def _summarise(report: ImportReport, imported: gpd.GeoDataFrame) -> None:
    """Totals, extent and sample rows of the imported zones, with the warnings they call for."""
    report.zones = len(imported)
    report.area_km2 = round(float(np.nansum(imported["area_km2"])), 4)
    stated = imported["stated_area_km2"].dropna()
    report.stated_area_km2 = round(float(stated.sum()), 4) if len(stated) else None
    if report.stated_area_km2 and report.area_km2 and not 0.67 < report.stated_area_km2 / report.area_km2 < 1.5:
        report.warnings.append(f"stated areas total {report.stated_area_km2} km² but the geometries measure "
                               f"{report.area_km2} km²: is the area column in another unit? "
                               "(--map stated_area_km2=COLUMN:ha|m2|mu)")
    present = imported.geometry[imported.geometry.notna() & ~imported.geometry.is_empty]
    if len(present):
        report.extent = [round(float(v), 6) for v in present.total_bounds]
    report.sample = [
        {k: props[k] for k in ("zone_id", "name_zh", "district_code", "source_doc_no", "effective_from",
                               "stated_area_km2", "area_km2", "accuracy")}
        for props in map(schema.zone_properties, imported.head(SAMPLE_ROWS).to_dict("records"))]
    if not imported["rules"].map(bool).any():
        report.warnings.append("the imported zones carry no rule texts: a lookup names the zone but quotes "
                               "no prohibition (--rules-from ZONE_ID copies an existing zone's rules)")


def prepare_import(path: Path, current: gpd.GeoDataFrame, options: ImportOptions, *, workdir: Path,
                   source_name: str | None = None, limits: uploads.UploadLimits = uploads.UploadLimits(),
                   ) -> tuple[ImportReport, gpd.GeoDataFrame | None]:
    """Read, check and merge an import file; (report, new whole table or None on problems).

    Raises SourceError / UploadError when the file cannot be read at all.
    """
    if options.layer not in schema.LAYERS:
        raise SourceError(f"unknown layer {options.layer!r}; layers: {', '.join(schema.LAYERS)}")
    if options.accuracy is not None and options.accuracy not in schema.ACCURACY:
        raise SourceError(f"--accuracy {options.accuracy!r} is not one of {', '.join(schema.ACCURACY)}")
    districts, district_names, missing_reason = _district_table(current)
    report = ImportReport(source=source_name or path.name, source_sha256=file_sha256(path), layer=options.layer)
    if options.district:
        options = replace(options, district=district_code(options.district, district_names))
        report.district = {"code": options.district, "name": district_names.get(options.district, "?")}
    rules: list[dict[str, str]] = []
    if options.rules_from:
        match = current[current["zone_id"] == options.rules_from]
        if match.empty:
            raise SourceError(f"--rules-from {options.rules_from}: no such zone in the current data")
        rules = list(match["rules"].iloc[0])
    _, frame, crs = _read_source(path, options, workdir, limits, report)

    source_of, _ = _resolve_fields(frame, options)
    names = frame[source_of["name_zh"]].map(_text) if "name_zh" in source_of else pd.Series([None] * len(frame))
    geoms, problems, notes, repaired = clean_geometries(frame, crs, options.layer, names, options.repair)
    report.problems += problems
    report.warnings += notes
    zones, report.fields, problems = build_zones(
        frame, geoms, options, source_name=report.source, format_label=report.format, crs_label=report.crs,
        district_names=district_names, repaired=repaired, rules=rules)
    report.problems += problems
    report.accuracy = str(zones["accuracy"].iloc[0])
    report.unmapped_columns = [c for c in frame.columns
                               if c != frame.geometry.name and c not in source_of.values()]
    labels = {zid: _label(fid, name) for zid, fid, name in zip(zones["zone_id"], zones.index, names, strict=True)}

    try:
        zones = gcrs.frame_to_wgs84(zones.set_crs(None, allow_override=True), crs)
    except gcrs.CoordinateError as exc:
        raise SourceError(f"the coordinates do not fit {report.crs} ({report.crs_note}): {exc}; "
                          "pass the right --crs") from None
    zones = zones.set_crs(schema.CRS, allow_override=True)
    for fid, original in repaired.items():
        before = abs(gcrs.geodesic_area_m2(gcrs.geometry_to_wgs84(original, crs))) / 1e6
        after = gcrs.geodesic_area_m2(zones.geometry.loc[fid]) / 1e6
        report.repairs.append({"feature": labels[zones.loc[fid, "zone_id"]], "zone_id": zones.loc[fid, "zone_id"],
                               "area_before_km2": round(before, 6), "area_after_km2": round(after, 6),
                               "area_delta_km2": round(after - before, 6)})
    imported = with_computed_area(schema.normalize_zones(zones.reset_index(drop=True)))
    scope = replace_scope(current, options.layer, options.district)
    kept = current[~scope]
    kept_ids = set(kept["zone_id"])
    located = {p.split(":")[0] for p in report.problems}
    try:
        # parents among the kept zones are fine; the merged table is validated below
        schema.validate_zones(imported.assign(parent_id=[None if p in kept_ids else p
                                                         for p in imported["parent_id"]]))
    except schema.ZoneValidationError as exc:
        report.problems += _by_feature(exc.problems, labels, located)
    _summarise(report, imported)
    checkable = imported[imported["district_code"].notna() & imported.geometry.is_valid
                         & ~imported.geometry.is_empty]
    if len(checkable):
        rows, notes, problems = check_districts(checkable, districts, missing_reason)
        report.district_check = rows
        report.warnings += notes
        report.problems += problems

    report.replaces = {str(k): int(v) for k, v in current[scope]["district_code"].value_counts().items()}
    if not options.district:
        report.warnings.append(f"no --district: the import replaces layer {options.layer!r} in every district "
                               f"({sum(report.replaces.values())} zone(s))")
    clash = sorted(kept_ids & set(imported["zone_id"]))
    if clash:
        report.problems.append(f"zone id(s) {', '.join(clash)} are already used by zones outside the replaced "
                               "scope (another layer or district); map zone_id to other values")
    if report.problems:
        return report, None
    merged = gpd.GeoDataFrame(pd.concat([kept, imported], ignore_index=True), geometry="geometry", crs=schema.CRS)
    try:
        schema.validate_zones(merged)
    except schema.ZoneValidationError as exc:
        report.problems += [f"after the import: {p}" for p in exc.problems]
        return report, None
    report.changes = diff_details(current, merged)
    return report, merged


def run_import(store: StoreBackend, path: Path, options: ImportOptions, *, dry_run: bool, author: str,
               source_name: str | None = None,
               limits: uploads.UploadLimits = uploads.UploadLimits(),
               audit: AuditEvent | None = None) -> ImportReport:
    """Prepare the import and, unless dry run or any problem, write it as a new version
    (with ``audit`` recorded in the same transaction)."""
    current, info = store.snapshot()  # one read; a write after it makes save() refuse
    base_version = info.version
    with tempfile.TemporaryDirectory(prefix="zoning-import-") as tmp:
        report, merged = prepare_import(Path(path), current, options, workdir=Path(tmp),
                                        source_name=source_name, limits=limits)
    report.dry_run = dry_run
    if merged is None or dry_run:
        return report
    district = f" district {options.district}" if options.district else ""
    note = (f"import of layer {options.layer}{district}: {report.zones} zone(s), {report.crs} "
            f"({report.crs_note}), encoding {report.encoding}, accuracy {report.accuracy}")
    info = store.save(merged, action="import", author=author, source=report.source,
                      source_sha256=report.source_sha256, note=note, base_version=base_version,
                      audit=audit)
    report.version = info.as_dict()
    return report
