"""Real GIS clients against a running server: GDAL's OGC API driver and GDAL reading our exports.

The server runs under uvicorn on a free 127.0.0.1 port, once on synthetic zones (more
than GDAL's page size of 10 in one layer, so paging is exercised) and once on the
bundled zones. The GDAL command-line tools (Debian gdal-bin, 3.6 in bookworm) are a
different GDAL build from the one inside pyogrio, which is why they are used here.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely

from geo import schema
from geo.paths import BUNDLED_ZONES
from geo.store import ZoneStore
from tests.conftest import REPO, make_zone, required_tool
from tests.test_export import LONG_NOTE, RULES, assert_same_zones, normalise

pytestmark = pytest.mark.gdal


def gdal_tool(name: str) -> str:
    return required_tool(name, "gdal-bin")


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def synthetic_zones() -> gpd.GeoDataFrame:
    """25 ban zones in a row (paging), a holed water zone, a multipolygon with long notes, a point."""
    records = [
        make_zone(f"t-ban-{i:02d}", shapely.box(116.0 + i * 0.01, 39.9, 116.008 + i * 0.01, 39.95),
                  name_zh=f"禁养区第{i}片", stated_area_km2=None if i % 3 else 0.5 + i,
                  issued_on="2021-03-01" if i % 5 == 0 else "2020-02-25",
                  effective_to="2021-01-01" if i == 7 else None, accuracy=schema.ACCURACY[i % 4])
        for i in range(25)
    ]
    holed = shapely.Polygon([(116.2, 39.9), (116.3, 39.9), (116.3, 40.0), (116.2, 40.0)],
                            holes=[[(116.24, 39.94), (116.26, 39.94), (116.26, 39.96), (116.24, 39.96)]])
    records += [
        make_zone("t-holed", holed, layer="water_source", name_zh="一级保护区（含湖心岛）"),
        make_zone("t-multi", shapely.MultiPolygon([shapely.box(116.4012345, 39.8012345, 116.45, 39.85),
                                                   shapely.box(116.5, 39.8, 116.55, 39.85)]),
                  layer="eco_redline", notes=LONG_NOTE, rules=RULES, district_code="110117", district_name="平谷区"),
        make_zone("t-point", shapely.Point(116.1234567, 39.9876543), layer="monitoring_section", rules=[]),
    ]
    return schema.zones_from_records(records)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def uvicorn_server(tmp: Path, seed: Path) -> Iterator[str]:
    """The app under uvicorn on a free 127.0.0.1 port with a fresh store in ``tmp`` made from
    ``seed``; yields the base URL. Its log (with uvicorn's access lines: every request
    URL) is ``tmp/server.log``."""
    store = tmp / "zones.gpkg"
    port = free_port()
    env = {**os.environ, "ZONING_STORE": str(store), "ZONING_SEED": str(seed), "ZONING_LOG_LEVEL": "warning"}
    log = open(tmp / "server.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1",
         "--port", str(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, (tmp / "server.log").read_text()
            assert time.monotonic() < deadline, "server did not start within 60 s"
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module", params=["synthetic", "bundled"])
def server(request, tmp_path_factory):
    """(base URL, store path) of a uvicorn server on a free port; stopped after the module."""
    gdal_tool("ogrinfo")
    tmp = tmp_path_factory.mktemp(f"server-{request.param}")
    if request.param == "synthetic":
        seed = tmp / "seed.geojson"
        seed.write_text(json.dumps(schema.zones_to_geojson(synthetic_zones(), precision=None), ensure_ascii=False),
                        encoding="utf-8")
    else:
        assert BUNDLED_ZONES.exists(), "data/boundaries/zones.geojson is missing: run `zoning build`"
        seed = BUNDLED_ZONES
    with uvicorn_server(tmp, seed) as base:
        yield base, tmp / "zones.gpkg"


def stored_zones(store: Path) -> gpd.GeoDataFrame:
    return ZoneStore(store).load()


def layer_names(listing: str) -> list[str]:
    """Layer names from `ogrinfo -ro -q` output lines like '1: livestock_ban (title: …) (Polygon)'."""
    names = []
    for line in listing.splitlines():
        head, sep, rest = line.partition(": ")
        if sep and head.strip().isdigit():
            names.append(rest.split(" (")[0])
    return names


# ------------------------------------------------------------------ OGC API – Features


def test_ogrinfo_lists_every_collection(server):
    base, store = server
    zones = stored_zones(store)
    listing = run(gdal_tool("ogrinfo"), "-ro", "-q", f"OAPIF:{base}")
    expected = [layer for layer in schema.LAYERS if layer in set(zones["layer"])]
    assert layer_names(listing) == expected
    assert "畜禽养殖禁养区" in listing or "livestock_ban" not in expected  # titles come through in Chinese


def test_ogr2ogr_copies_each_collection_with_the_same_features_and_attributes(server, tmp_path):
    base, store = server
    zones = stored_zones(store)
    for layer in sorted(set(zones["layer"])):
        out = tmp_path / f"{layer}.gpkg"
        run(gdal_tool("ogr2ogr"), "-f", "GPKG", str(out), f"OAPIF:{base}", layer)
        copied = pyogrio.read_dataframe(out, datetime_as_string=True)
        expected = zones[zones["layer"] == layer]
        assert len(copied) == len(expected), layer
        assert_same_zones(normalise(copied), expected)


def test_gdal_spatial_filter_gets_only_zones_whose_geometry_intersects(server):
    base, store = server
    zones = stored_zones(store)
    layer = zones["layer"].iloc[0]
    subset = zones[zones["layer"] == layer]
    # A small box inside the first zone's representative point: GDAL sends it as bbox.
    x, y = shapely.get_coordinates(subset.geometry.iloc[0].representative_point())[0]
    box = shapely.box(x - 1e-4, y - 1e-4, x + 1e-4, y + 1e-4)
    out = run(gdal_tool("ogrinfo"), "-ro", "-so", "-spat", *(str(v) for v in box.bounds), f"OAPIF:{base}", layer)
    count = int(next(line for line in out.splitlines() if line.startswith("Feature Count:")).split(":")[1])
    assert count == int(shapely.intersects(subset.geometry.values, box).sum()) >= 1


def test_ogr2ogr_where_on_a_date_field_is_filtered_by_the_server_with_the_right_zones(server, tmp_path):
    base, store = server
    zones = stored_zones(store)
    recent = zones["issued_on"] >= "2021-01-01"
    # A layer where the filter has something to keep and something to drop (the bundled
    # livestock_ban has none since 2021: the case, where every zone used to come back).
    layer = next(name for name in schema.LAYERS
                 if 0 < (recent & (zones["layer"] == name)).sum() < (zones["layer"] == name).sum())
    expected = sorted(zones.loc[recent & (zones["layer"] == layer), "zone_id"])
    log = store.parent / "server.log"
    seen = len(log.read_text())
    out = tmp_path / "recent.geojson"
    run(gdal_tool("ogr2ogr"), "-f", "GeoJSON", str(out), f"OAPIF:{base}", layer,
        "-where", "issued_on >= '2021-01-01'")
    empty = tmp_path / "ban.geojson"
    run(gdal_tool("ogr2ogr"), "-f", "GeoJSON", str(empty), f"OAPIF:{base}", "livestock_ban",
        "-where", "issued_on >= '2021-01-01'")
    assert sorted(f["properties"]["zone_id"] for f in json.loads(empty.read_text(encoding="utf-8"))["features"]) \
        == sorted(zones.loc[recent & (zones["layer"] == "livestock_ban"), "zone_id"])
    got = sorted(f["properties"]["zone_id"] for f in json.loads(out.read_text(encoding="utf-8"))["features"])
    assert got == expected
    # GDAL sent the condition to the server (as CQL text, since /api offers it) instead of
    # fetching every zone and filtering itself, and the server answered it.
    items = [line for line in log.read_text()[seen:].splitlines() if f"/collections/{layer}/items" in line]
    filtered = [line for line in items if "filter=issued_on" in line]
    assert filtered and all(" 200 " in line for line in filtered), items
    # The only unfiltered request is GDAL's first-page probe for the field list, never paging.
    assert all("offset=" not in line for line in items if line not in filtered), items


# ------------------------------------------------------------------ exports read by the GDAL command line


def download(base: str, query: str, path: Path) -> Path:
    with urllib.request.urlopen(f"{base}/v1/export?{query}", timeout=120) as answer:
        assert answer.status == 200
        path.write_bytes(answer.read())
    return path


def read_with_gdal_cli(source: str, tmp_path: Path, *options: str) -> gpd.GeoDataFrame:
    """Every layer of ``source`` converted to WGS84 GeoJSON by the system ogr2ogr, parsed here."""
    frames = []
    for i, layer in enumerate(layer_names(run(gdal_tool("ogrinfo"), "-ro", "-q", source))):
        if layer == "provenance":
            continue
        out = tmp_path / f"layer{i}.geojson"
        run(gdal_tool("ogr2ogr"), "-f", "GeoJSON", "-t_srs", "EPSG:4326", "-lco", "COORDINATE_PRECISION=12",
            *options, str(out), source, layer)
        frames.append(gpd.GeoDataFrame.from_features(json.loads(out.read_text(encoding="utf-8"))["features"]))
    return gpd.GeoDataFrame(gpd.pd.concat(frames, ignore_index=True))


@pytest.mark.parametrize(("fmt", "extension", "query"), [
    ("geojson", "geojson", ""),
    ("gpkg", "gpkg", ""),
    ("gpkg", "gpkg", "&crs=EPSG:4548"),
    ("shp", "zip", ""),
    ("shp", "zip", "&crs=EPSG:4490"),
    ("kml", "kml", ""),
    ("csv", "csv", ""),
])
def test_gdal_command_line_reads_each_export_back_to_the_same_zones(server, tmp_path, fmt, extension, query):
    base, store = server
    path = download(base, f"format={fmt}{query}", tmp_path / f"export.{extension}")
    source = f"/vsizip/{path}" if fmt == "shp" else str(path)
    # A CSV file cannot carry its CRS; its crs column says WGS84.
    frame = read_with_gdal_cli(source, tmp_path, *(["-s_srs", "EPSG:4326"] if fmt == "csv" else []))
    if fmt == "shp":
        from geo.export import SHAPEFILE_FIELDS

        frame = frame.rename(columns={short: full for full, short in SHAPEFILE_FIELDS.items()})
    assert_same_zones(normalise(frame, shapefile=fmt == "shp"), stored_zones(store), shapefile=fmt == "shp")


# ------------------------------------------------------------------ exports opened by URL (/vsicurl/)


@pytest.mark.parametrize(("filename", "prefix"), [
    ("zones.geojson", "/vsicurl/"),
    ("zones.gpkg", "/vsicurl/"),
    ("zones.kml", "/vsicurl/"),
    ("zones.zip", "/vsizip//vsicurl/"),
    ("zones.csv", "CSV:/vsicurl/"),  # with zones.csvt (types) and zones.prj (CRS) fetched beside it
])
def test_gdal_opens_each_export_by_url_without_downloading_it_first(server, tmp_path, filename, prefix):
    base, store = server
    with urllib.request.urlopen(f"{base}/healthz", timeout=30) as answer:
        version = json.load(answer)["data_version"]
    source = f"{prefix}{base}/v1/export/{version}/{filename}"
    # read_with_gdal_cli reprojects to EPSG:4326, which fails for a layer without a CRS: the
    # CSV's CRS must come from zones.prj.
    frame = read_with_gdal_cli(source, tmp_path)
    shapefile = filename.endswith(".zip")
    if shapefile:
        from geo.export import SHAPEFILE_FIELDS

        frame = frame.rename(columns={short: full for full, short in SHAPEFILE_FIELDS.items()})
    assert_same_zones(normalise(frame, shapefile=shapefile), stored_zones(store), shapefile=shapefile)


def test_gdal_reads_csv_companion_types_so_dates_are_dates(server):
    base, _ = server
    out = run(gdal_tool("ogrinfo"), "-ro", "-so", "-al", f"CSV:/vsicurl/{base}/v1/export/latest/zones.csv")
    assert "issued_on: Date" in out and "area_km2: Real" in out
    assert "WGS 84" in out or "WGS_1984" in out
