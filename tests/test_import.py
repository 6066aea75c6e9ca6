"""Importing official zone files: formats, encodings, CRS, mapping, validation, versions.

The files are built here from zones the product serves, written the way district bureaus'
GIS departments hand them over (Chinese column names, GBK DBF without .cpg, CGCS2000
Gauss-Krüger with and without the zone prefix, Chinese date notation, hectares).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pyproj
import pytest
import shapely

from geo import crs as gcrs
from geo import schema, uploads
from geo.importer import (
    ImportOptions,
    SourceError,
    UnsupportedFormatError,
    parse_mapping,
    parse_values,
    run_import,
)
from geo.store import ZoneStore
from tests.conftest import REPO, kill_writer_mid_write

IMPORT_LAYER = "collaboration"
DISTRICT = "110109"  # 门头沟区
OTHER_DISTRICT = "110117"  # 平谷区, far east of 门头沟
HOLE_RADIUS_M = 300.0


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def base_zones(bundled_zones):
    """What the service holds before an import: the bundled zones."""
    return bundled_zones


def replaced_zones(zones):
    """The zones an import of the layer in 门头沟 replaces (one of them multi-part)."""
    zones = zones[(zones.layer == IMPORT_LAYER) & (zones.district_code == DISTRICT)]
    assert len(zones) >= 3 and (zones.geom_type == "MultiPolygon").any()
    return zones


@pytest.fixture
def replaced(base_zones):
    return replaced_zones(base_zones)


@pytest.fixture
def store(tmp_path, base_zones):
    zone_store = ZoneStore(tmp_path / "store" / "zones.gpkg")
    zone_store.save(base_zones, action="init")
    return zone_store


def holed(geom):
    """``geom`` with a 300 m hole around its representative point (metric work in EPSG:4548)."""
    point = gcrs.to_metric(geom.representative_point())
    return gcrs.from_metric(gcrs.to_metric(geom).difference(point.buffer(HOLE_RADIUS_M)))


def chinese_date(iso: str) -> str:
    year, month, day = (int(p) for p in iso.split("-"))
    return f"{year}年{month}月{day}日"


def official_frame(zones):
    """``zones`` as a bureau hands them over: Chinese column names, dates in Chinese
    notation, areas in hectares; the first zone has a hole."""
    geoms = [holed(zones.geometry.iloc[0]), *zones.geometry.iloc[1:]]
    hectares = gcrs.geodesic_area_m2(geoms) / 1e4
    return gpd.GeoDataFrame({
        "标识": zones.zone_id.str.upper().tolist(),
        "名称": zones.name_zh.tolist(),
        "文号": zones.source_doc_no.tolist(),
        "文件名称": zones.source_title.tolist(),
        "发文机关": zones.issuer.tolist(),
        "发文日期": [chinese_date(d) for d in zones.issued_on],
        "生效日期": [d.replace("-", "/") for d in zones.effective_from],
        "面积": hectares.round(2).tolist(),
    }, geometry=geoms, crs="EPSG:4326")


@pytest.fixture
def official(replaced):
    return official_frame(replaced)


def first_label(official) -> str:
    """How problems name the first feature of a file."""
    return f"FID 0 «{official['名称'].iloc[0]}»"


def options(**overrides) -> ImportOptions:
    settings = {"layer": IMPORT_LAYER, "district": DISTRICT, "mapping": {"stated_area_km2": "面积:ha"}}
    settings.update(overrides)
    return ImportOptions(**settings)


def write_shapefile(frame, folder: Path, crs: str, *, encoding: str = "GBK", cpg: bool = False,
                    name: str = "zones") -> Path:
    """A Shapefile in ``crs``; without .cpg unless asked (what ArcGIS on Chinese Windows writes)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.shp"
    pyogrio.write_dataframe(gcrs.frame_from_wgs84(frame, crs), path, encoding=encoding)
    if not cpg:
        path.with_suffix(".cpg").unlink()
    return path


def shapefile_parts(shp: Path) -> list[Path]:
    return sorted(p for p in shp.parent.iterdir() if p.stem == shp.stem)


def zip_with_gbk_names(files: list[Path], zip_path: Path, stem: str) -> Path:
    """Zip ``files`` renamed to ``stem`` + suffix, the names stored in GBK without the UTF-8
    flag, as Windows' built-in zip does on a Chinese system. (Python always writes non-ASCII
    names as UTF-8, so ASCII placeholders of the same byte length are patched afterwards.)"""
    gbk = stem.encode("gbk")
    placeholder = b"Q" * len(gbk)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for f in files:
            archive.write(f, placeholder.decode() + f.suffix)
    zip_path.write_bytes(zip_path.read_bytes().replace(placeholder, gbk))
    return zip_path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def layer_zones(store: ZoneStore, district: str = DISTRICT):
    zones = store.load()
    return zones[(zones.layer == IMPORT_LAYER) & (zones.district_code == district)].sort_values("name_zh")


def assert_same_shapes(stored, official_frame):
    by_name = dict(zip(official_frame["名称"], official_frame.geometry, strict=True))
    for name, geom in zip(stored.name_zh, stored.geometry, strict=True):
        assert shapely.hausdorff_distance(geom, by_name[name]) < 1e-6, name


# ---------------------------------------------------------------- formats, encodings, CRS


def test_gbk_shapefile_in_zone_prefixed_gk_is_decoded_and_reprojected(tmp_path, store, official, replaced):
    shp = write_shapefile(official, tmp_path / "src", "EPSG:4527")
    archive = zip_with_gbk_names(shapefile_parts(shp), tmp_path / "官方分区.zip", "门头沟协作区")
    report = run_import(store, archive, options(), dry_run=False, author="tester")
    assert report.ok, report.problems
    assert (report.encoding, report.encoding_note) == ("gb18030", "detected (no .cpg file)")
    assert report.crs.startswith("EPSG:4527") and report.crs_note == "from 门头沟协作区.prj"
    stored = layer_zones(store)
    assert sorted(stored.name_zh) == sorted(official["名称"])
    assert_same_shapes(stored, official)
    # holes and multi-part polygons survive the trip
    assert any(len(p.interiors) for g in stored.geometry for p in shapely.get_parts(g))
    assert any(g.geom_type == "MultiPolygon" for g in stored.geometry)
    # Chinese dates and hectares are normalised to the schema's ISO dates and km²
    dates = {(z.name_zh, z.issued_on, z.effective_from) for z in replaced.itertuples()}
    assert {(z.name_zh, z.issued_on, z.effective_from) for z in stored.itertuples()} == dates
    assert stored.stated_area_km2.tolist() == pytest.approx(stored.area_km2.tolist(), rel=1e-3)
    info = store.current()
    assert (info.action, info.author, info.source, info.source_sha256) == (
        "import", "tester", "官方分区.zip", digest(archive))


def test_unprefixed_gk_shapefile_with_ascii_columns_uses_the_explicit_mapping(tmp_path, store, official):
    ascii_frame = official.rename(columns={"名称": "MC", "文号": "WH", "文件名称": "WJMC", "发文机关": "FWJG",
                                           "发文日期": "FWRQ", "生效日期": "SXRQ", "面积": "MJ"})
    shp = write_shapefile(ascii_frame, tmp_path / "src", "EPSG:4548", encoding="UTF-8", cpg=True)
    mapping = parse_mapping(["name_zh=MC,source_doc_no=WH,source_title=WJMC", "issuer=FWJG,issued_on=FWRQ",
                             "effective_from=SXRQ,stated_area_km2=MJ:ha"])
    report = run_import(store, shp, options(mapping=mapping), dry_run=False, author="t")
    assert report.ok, report.problems
    assert report.crs.startswith("EPSG:4548") and report.encoding_note == "named by zones.cpg"
    assert report.fields["name_zh"] == "column MC" and report.fields["stated_area_km2"] == "column MJ:ha"
    assert_same_shapes(layer_zones(store), official)


def test_prj_naming_the_wrong_gk_variant_is_corrected_by_the_eastings(tmp_path, store, official):
    shp = write_shapefile(official, tmp_path / "src", "EPSG:4527")
    # the .prj claims the unprefixed CM 117E system while the eastings carry zone prefix 39
    shp.with_suffix(".prj").write_text(pyproj.CRS("EPSG:4548").to_wkt("WKT1_ESRI"))
    report = run_import(store, shp, options(), dry_run=False, author="t")
    assert report.ok, report.problems
    assert report.crs.startswith("EPSG:4527")
    assert any("EPSG:4548" in w and "zone prefix 39" in w for w in report.warnings)
    assert_same_shapes(layer_zones(store), official)


def test_shapefile_without_prj_is_refused_unless_crs_is_given(tmp_path, store, official):
    shp = write_shapefile(official, tmp_path / "src", "EPSG:4527")
    shp.with_suffix(".prj").unlink()
    with pytest.raises(SourceError, match=r"no \.prj file.*pass --crs.*EPSG:4527"):
        run_import(store, shp, options(), dry_run=False, author="t")
    assert [v.version for v in store.versions()] == [1]
    report = run_import(store, shp, options(crs="EPSG:4527"), dry_run=False, author="t")
    assert report.ok and report.crs_note == "given with --crs"
    assert_same_shapes(layer_zones(store), official)


def test_cpg_naming_code_page_936_decodes_gbk(tmp_path, store, official):
    shp = write_shapefile(official, tmp_path / "src", "EPSG:4527")
    shp.with_suffix(".cpg").write_text("936")  # what ArcGIS writes for GBK
    report = run_import(store, shp, options(), dry_run=False, author="t")
    assert report.ok, report.problems
    assert (report.encoding, report.encoding_note) == ("936", "named by zones.cpg")
    assert sorted(layer_zones(store).name_zh) == sorted(official["名称"])


def test_crs_option_that_contradicts_the_eastings_is_refused(tmp_path, store, official):
    shp = write_shapefile(official, tmp_path / "src", "EPSG:4527")
    shp.with_suffix(".prj").unlink()
    with pytest.raises(SourceError, match="--crs EPSG:4548 does not fit the coordinates.*zone prefix 39"):
        run_import(store, shp, options(crs="EPSG:4548"), dry_run=False, author="t")


def test_geopackage_with_two_layers_lists_them_until_one_is_chosen(tmp_path, store, official):
    gpkg = tmp_path / "bureau.gpkg"
    pyogrio.write_dataframe(gcrs.frame_from_wgs84(official, "EPSG:4548"), gpkg, layer="协作区")
    outline = gpd.GeoDataFrame({"名称": ["门头沟区"]}, geometry=[shapely.box(115.4, 39.8, 116.2, 40.2)], crs=4326)
    pyogrio.write_dataframe(outline, gpkg, layer="区界")
    with pytest.raises(SourceError, match=r"2 layers; choose one with --layer-name: .*协作区 \(.*\d features\).*区界"):
        run_import(store, gpkg, options(), dry_run=True, author="t")
    with pytest.raises(SourceError, match="has no layer '禁养区'"):
        run_import(store, gpkg, options(layer_name="禁养区"), dry_run=True, author="t")
    report = run_import(store, gpkg, options(layer_name="协作区"), dry_run=False, author="t")
    assert report.ok and report.dataset_layer == "协作区" and report.encoding == "utf-8"
    assert_same_shapes(layer_zones(store), official)


def test_kml_placemark_names_become_zone_names(tmp_path, store, official):
    kml = tmp_path / "zones.kml"
    pyogrio.write_dataframe(official.rename(columns={"名称": "Name"})[["Name", "geometry"]], kml, driver="KML")
    values = {"source_doc_no": "门政发〔2020〕9号", "source_title": "测试文件", "issuer": "门头沟区人民政府",
              "issued_on": "2020-02-25"}
    report = run_import(store, kml, options(mapping={}, values=values), dry_run=False, author="t")
    assert report.ok, report.problems
    assert report.fields["name_zh"] == "column Name (auto)"
    stored = layer_zones(store)
    assert sorted(stored.name_zh) == sorted(official["名称"])
    assert set(stored.source_doc_no) == {"门政发〔2020〕9号"}
    assert_same_shapes(stored, official)


def test_geojson_export_of_our_own_zones_imports_unchanged(tmp_path, store):
    current = store.load()
    mine = current[(current.layer == IMPORT_LAYER) & (current.district_code == DISTRICT)]
    path = tmp_path / "mine.geojson"
    path.write_text(json.dumps(schema.zones_to_geojson(mine), ensure_ascii=False), encoding="utf-8")
    report = run_import(store, path, options(mapping={}), dry_run=True, author="t")
    assert report.ok, report.problems
    assert report.fields["zone_id"] == "column zone_id (auto)" and report.fields["rules"] == "column rules (auto)"
    assert report.changes["added"] == report.changes["removed"] == report.changes["changed"] == []


def test_attributes_in_neither_utf8_nor_gb18030_are_a_clear_error(tmp_path, store, official):
    # 0xFF bytes are neither UTF-8 nor GB18030
    frame = gpd.GeoDataFrame({"MC": ["ÿÿ"] * len(official)}, geometry=official.geometry.values, crs=4326)
    shp = write_shapefile(frame, tmp_path / "src", "EPSG:4548", encoding="ISO-8859-1")
    with pytest.raises(SourceError, match="neither UTF-8 nor GB18030.*--encoding"):
        run_import(store, shp, options(mapping={}), dry_run=True, author="t")


def test_z_values_are_dropped_with_a_warning(tmp_path, store, official):
    gpkg = tmp_path / "z.gpkg"
    pyogrio.write_dataframe(official.set_geometry(shapely.force_3d(official.geometry.values, 120.0)), gpkg)
    report = run_import(store, gpkg, options(), dry_run=False, author="t")
    assert report.ok, report.problems
    assert any("Z (height) values: dropped" in w for w in report.warnings)
    assert not shapely.has_z(layer_zones(store).geometry.values).any()


def test_unsupported_file_type_is_named(tmp_path, store):
    path = tmp_path / "zones.dwg"
    path.write_bytes(b"AC1027")
    with pytest.raises(UnsupportedFormatError, match=r"unsupported file type \.dwg"):
        run_import(store, path, options(), dry_run=True, author="t")


def test_shapefile_missing_its_dbf_says_which_parts_are_needed(tmp_path, store, official):
    shp = write_shapefile(official, tmp_path / "src", "EPSG:4527")
    shp.with_suffix(".dbf").unlink()
    with pytest.raises(SourceError, match=r"lacks its \.dbf.*\.zip"):
        run_import(store, shp, options(), dry_run=True, author="t")


# ---------------------------------------------------------------- mapping and validation


def test_field_mapping_syntax_errors_name_the_field():
    with pytest.raises(SourceError, match="must look like FIELD=COLUMN"):
        parse_mapping(["name_zh"])
    with pytest.raises(SourceError, match="'colour' is not a zone field"):
        parse_mapping(["colour=YS"])
    with pytest.raises(SourceError, match="must look like FIELD=VALUE"):
        parse_values(["issuer"])
    assert parse_values(["source_title=关于印发方案的通知，附件"]) == {"source_title": "关于印发方案的通知，附件"}


def test_mapping_to_a_missing_column_lists_the_columns(tmp_path, store, official):
    shp = write_shapefile(official, tmp_path / "src", "EPSG:4527")
    with pytest.raises(SourceError, match="no column 'MC'; its columns: 标识, 名称, 文号"):
        run_import(store, shp, options(mapping={"name_zh": "MC"}), dry_run=True, author="t")


def test_missing_citation_is_reported_per_feature_and_nothing_is_written(tmp_path, store, official):
    shp = write_shapefile(official.drop(columns=["文号"]), tmp_path / "src", "EPSG:4527")
    before = digest(store.path)
    report = run_import(store, shp, options(), dry_run=False, author="t")
    assert not report.ok and report.version is None
    assert any(p.startswith(first_label(official)) and "source_doc_no is required" in p for p in report.problems)
    assert digest(store.path) == before and [v.version for v in store.versions()] == [1]


def test_bow_tie_is_refused_naming_feature_and_location(tmp_path, store, official):
    bow_tie = shapely.Polygon([(115.80, 39.95), (115.86, 40.00), (115.86, 39.95), (115.80, 40.00)])
    broken = official.copy()
    broken.loc[broken.index[0], "geometry"] = bow_tie
    shp = write_shapefile(broken, tmp_path / "src", "EPSG:4527")
    before = digest(store.path)
    report = run_import(store, shp, options(), dry_run=False, author="t")
    problem = next(p for p in report.problems if "invalid geometry" in p)
    assert problem.startswith(first_label(official)) and "Self-intersection" in problem and "--repair" in problem
    lon, lat = (float(v) for v in re.search(r"lon ([\d.]+), lat ([\d.]+)", problem).groups())
    assert (lon, lat) == pytest.approx((115.83, 39.975), abs=1e-4)  # where the two edges cross
    assert digest(store.path) == before


def test_repair_makes_the_bow_tie_valid_and_reports_the_area_change(tmp_path, store, official):
    bow_tie = shapely.Polygon([(115.80, 39.95), (115.86, 40.00), (115.86, 39.95), (115.80, 40.00)])
    broken = official.copy()
    broken.loc[broken.index[0], "geometry"] = bow_tie
    shp = write_shapefile(broken, tmp_path / "src", "EPSG:4527")
    report = run_import(store, shp, options(repair=True), dry_run=False, author="t")
    assert report.ok, report.problems
    [repair] = report.repairs
    assert repair["feature"] == first_label(official)
    # drawn as a bow-tie the two lobes cancel; repaired, both triangles count (half the box)
    box_km2 = gcrs.geodesic_area_m2(shapely.box(115.80, 39.95, 115.86, 40.00)) / 1e6
    assert repair["area_before_km2"] == pytest.approx(0, abs=1e-3)
    assert repair["area_after_km2"] == pytest.approx(box_km2 / 2, rel=1e-3)
    stored = layer_zones(store)
    fixed = stored[stored.name_zh == official["名称"].iloc[0]].iloc[0]
    assert fixed.geometry.is_valid and "make_valid" in fixed.method


def test_dry_run_previews_counts_areas_crs_encoding_extent_and_samples(tmp_path, store, official):
    shp = write_shapefile(official, tmp_path / "src", "EPSG:4527")
    before = digest(store.path)
    report = run_import(store, shp, options(), dry_run=True, author="t")
    assert report.ok and report.dry_run and report.version is None
    assert digest(store.path) == before
    assert report.features == report.zones == len(official)
    assert report.area_km2 == pytest.approx(gcrs.geodesic_area_m2(official.geometry.values).sum() / 1e6, rel=1e-4)
    assert report.stated_area_km2 == pytest.approx(report.area_km2, rel=1e-3)
    minx, miny, maxx, maxy = official.total_bounds
    assert report.extent == pytest.approx([minx, miny, maxx, maxy], abs=1e-6)
    assert [s["name_zh"] for s in report.sample] == official["名称"].tolist()
    assert report.accuracy == "approximate" and "--accuracy official" in report.fields["accuracy"]
    assert report.replaces == {DISTRICT: len(official)}
    assert {r["name_zh"] for r in report.changes["added"]} == set(official["名称"])
    assert report.district_check == [{"district_code": DISTRICT, "district_name": "门头沟区", "outside_share": 0.0}]


def test_data_outside_the_expected_district_is_flagged(tmp_path, store, official):
    shp = write_shapefile(official, tmp_path / "src", "EPSG:4527")
    report = run_import(store, shp, options(district=OTHER_DISTRICT), dry_run=True, author="t")
    assert any(p.startswith("all imported data lies outside 平谷区 (110117)") for p in report.problems)
    # one more zone, east of 门头沟 in 海淀 and 朝阳: a warning with the share, not a refusal
    stray = gpd.GeoDataFrame({**{c: [official[c].iloc[0]] for c in official.columns if c != "geometry"},
                              "名称": ["飞地"]}, geometry=[shapely.box(116.20, 39.90, 116.45, 40.15)], crs=4326)
    shp = write_shapefile(pd.concat([official, stray], ignore_index=True), tmp_path / "src2", "EPSG:4527")
    report = run_import(store, shp, options(), dry_run=True, author="t")
    assert report.ok, report.problems
    assert any("of the imported data lies outside 门头沟区 (110109)" in w for w in report.warnings)


def test_import_replaces_only_its_layer_and_district(tmp_path, store, official, replaced):
    before = store.load().set_index("zone_id")
    shp = write_shapefile(official, tmp_path / "src", "EPSG:4527")
    report = run_import(store, shp, options(), dry_run=False, author="t")
    after = store.load().set_index("zone_id")
    kept = sorted(set(before.index) - set(replaced.zone_id))
    assert set(before.loc[kept].layer) > {IMPORT_LAYER} and set(before.loc[kept].district_code) > {DISTRICT}
    assert after.loc[kept].drop(columns="geometry").equals(before.loc[kept].drop(columns="geometry"))
    assert not set(after.index) & set(replaced.zone_id)
    assert sorted(z["zone_id"] for z in report.changes["removed"]) == sorted(replaced.zone_id)


def test_generated_zone_ids_are_stable_across_reimports(tmp_path, store, official):
    shp = write_shapefile(official, tmp_path / "src", "EPSG:4527")
    run_import(store, shp, options(), dry_run=False, author="t")
    ids = sorted(layer_zones(store).zone_id)
    assert all(i.startswith(f"collaboration-{DISTRICT}-") for i in ids)
    report = run_import(store, shp, options(), dry_run=False, author="t")
    assert sorted(layer_zones(store).zone_id) == ids
    assert report.version["summary"] == {"added": [], "removed": [], "changed": []}


def test_mapped_ids_and_rules_from_replace_approximations_in_place(tmp_path, store, official, replaced):
    holed_id, plain_id = replaced.zone_id.iloc[0], replaced.zone_id.iloc[1]
    shp = write_shapefile(official, tmp_path / "src", "EPSG:4527")
    report = run_import(store, shp, options(mapping={"zone_id": "标识"}, accuracy="official", rules_from=plain_id),
                        dry_run=False, author="t")
    assert report.ok, report.problems
    changed = {c["zone_id"]: c for c in report.changes["changed"]}
    assert set(changed) == set(replaced.zone_id) and not report.changes["added"] + report.changes["removed"]
    assert "geometry" in changed[holed_id]["fields"] and changed[holed_id]["area_delta_km2"] < 0  # the hole
    assert "geometry" not in changed[plain_id]["fields"] and changed[plain_id]["area_delta_km2"] == 0
    stored = layer_zones(store)
    assert set(stored.accuracy) == {"official"}
    rules = replaced.set_index("zone_id").loc[plain_id, "rules"]
    assert rules and all(r == rules for r in stored.rules)


# ---------------------------------------------------------------- archives


def test_broken_zip_is_refused(tmp_path, store):
    path = tmp_path / "zones.zip"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(uploads.BadArchiveError, match="not a readable zip archive"):
        run_import(store, path, options(), dry_run=True, author="t")


@pytest.mark.parametrize("entry", ["../evil.shp", "data/../../evil.shp", "/etc/evil.shp", "..\\evil.shp"])
def test_zip_entries_leaving_the_folder_are_refused_by_name(tmp_path, store, entry):
    path = tmp_path / "zones.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("zones.shp", b"x")
        archive.writestr(entry, b"x")
    with pytest.raises(uploads.UnsafeArchiveError, match=f"zip entry {entry!r}".replace("\\", "\\\\")):
        run_import(store, path, options(), dry_run=True, author="t")
    assert not (tmp_path / "evil.shp").exists() and not (tmp_path.parent / "evil.shp").exists()


def test_zip_bomb_is_refused_naming_the_ratio(tmp_path, store):
    path = tmp_path / "zones.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zones.dbf", b"\0" * (20 * 1024 * 1024))
    with pytest.raises(uploads.ZipBombError, match=r"expands \d+x .* limit of 200x"):
        run_import(store, path, options(), dry_run=True, author="t")


def test_zip_with_too_many_entries_is_refused(tmp_path, store):
    path = tmp_path / "zones.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(201):
            archive.writestr(f"f{i}.txt", b"")
    with pytest.raises(uploads.UploadTooLargeError, match="201 entries, more than the limit of 200"):
        run_import(store, path, options(), dry_run=True, author="t")


def test_zip_holding_several_datasets_asks_which(tmp_path, store, official):
    shp = write_shapefile(official, tmp_path / "src", "EPSG:4527")
    other = write_shapefile(official, tmp_path / "src", "EPSG:4527", name="other")
    path = tmp_path / "both.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for f in shapefile_parts(shp) + shapefile_parts(other):
            archive.write(f, f.name)
    with pytest.raises(SourceError, match=r"several datasets \(other\.shp, zones\.shp\); choose one with --layer-name"):
        run_import(store, path, options(), dry_run=True, author="t")
    assert run_import(store, path, options(layer_name="zones"), dry_run=True, author="t").ok


def test_copy_limited_stops_at_the_limit_and_leaves_no_file(tmp_path):
    import io

    dest = tmp_path / "upload.bin"
    with pytest.raises(uploads.UploadTooLargeError, match="limit of 1000 bytes"):
        uploads.copy_limited(io.BytesIO(b"x" * 1001), dest, 1000)
    assert not dest.exists()
    assert uploads.copy_limited(io.BytesIO(b"x" * 1000), dest, 1000) == 1000


# ---------------------------------------------------------------- the CLI


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "200", **(env or {})})


def test_cli_import_preview_then_import_history_diff_and_rollback(tmp_path, store, official, replaced):
    shp = write_shapefile(official, tmp_path / "src", "EPSG:4527")
    common = ["--layer", IMPORT_LAYER, "--district", "门头沟", "--map", "stated_area_km2=面积:ha",
              "--store", str(store.path)]
    before = digest(store.path)
    preview = run_cli("import", str(shp), *common, "--dry-run")
    assert preview.returncode == 0, preview.stderr
    assert "EPSG:4527" in preview.stdout and "gb18030" in preview.stdout and official["名称"].iloc[0] in preview.stdout
    assert "nothing was written" in preview.stderr and digest(store.path) == before

    done = run_cli("import", str(shp), *common, "--accuracy", "official", "--author", "区规划分局")
    assert done.returncode == 0, done.stderr
    assert "imported as version 2" in done.stderr

    history = run_cli("history", "--store", str(store.path), "--json")
    versions = json.loads(history.stdout)
    assert [(v["version"], v["action"], v["author"]) for v in versions] == [
        (1, "init", "zoning"), (2, "import", "区规划分局")]
    assert versions[1]["source"] == "zones.shp" and len(versions[1]["summary"]["added"]) == len(official)

    diff = json.loads(run_cli("diff", "1", "2", "--store", str(store.path), "--json").stdout)
    assert sorted(r["zone_id"] for r in diff["removed"]) == sorted(replaced.zone_id)
    assert diff["area_km2"]["after"] < diff["area_km2"]["before"]  # the hole

    rolled = run_cli("rollback", "1", "--store", str(store.path))
    assert rolled.returncode == 0 and "served again as version 3" in rolled.stdout
    assert sorted(store.load().zone_id) == sorted(store.load(1).zone_id)
    assert run_cli("rollback", "9", "--store", str(store.path)).returncode == 2


def test_cli_refused_import_lists_problems_and_exits_2(tmp_path, store, official):
    shp = write_shapefile(official.drop(columns=["发文机关"]), tmp_path / "src", "EPSG:4527")
    before = digest(store.path)
    result = run_cli("import", str(shp), "--layer", IMPORT_LAYER, "--district", DISTRICT, "--store", str(store.path))
    assert result.returncode == 2
    assert "problem:" in result.stdout and "issuer is required" in result.stdout
    assert "import refused" in result.stderr and "Traceback" not in result.stderr
    assert digest(store.path) == before


def test_import_killed_mid_write_leaves_the_previous_version_serving(tmp_path, store, official, replaced):
    shp = write_shapefile(official, tmp_path / "src", "EPSG:4527")
    before = digest(store.path)
    kill_writer_mid_write([sys.executable, "-m", "api.cli", "import", str(shp), "--layer", IMPORT_LAYER,
                           "--district", DISTRICT, "--store", str(store.path)], tmp_path / "hook")
    assert digest(store.path) == before
    assert [v.version for v in store.versions()] == [1]
    assert sorted(layer_zones(store).zone_id) == sorted(replaced.zone_id)
    assert {p.name for p in store.path.parent.iterdir() if p.name.startswith(store.path.name)} <= {
        store.path.name, f"{store.path.name}-wal", f"{store.path.name}-shm"}  # nothing but the store
