"""OGC API – Tiles: what a tile client relies on — the tiling scheme, the tileset metadata and
its limits, tiles in the OGC order (zoom, row, column) that are the same tiles as
``/tiles/{layer}/{z}/{x}/{y}.mvt``, clear errors, the same tiles from a PostGIS store, and
GDAL reading them.

GDAL 3.6's OGCAPI driver (Debian bookworm) follows the landing → tilesets → tileset → tile
matrix set links of this service but opens no vector layer from them, with no error: in that
build the driver's vector-tile branch (``#ifdef OGR_ENABLE_DRIVER_GML``) is compiled out, as
GDAL 3.6's CMake configures ``frmts`` before the GML option exists (docs/scaling.md). So GDAL
is tested with its MVT driver over HTTP (``/vsicurl/``) on a tile chosen from the OGC tileset
metadata.
"""

from __future__ import annotations

import json
import re
import subprocess

import mapbox_vector_tile
import pytest
import shapely

from api.ogc_tiles import CONFORMANCE, LIMITS_MAX_ZOOM, MAX_ZOOM
from geo import schema
from geo.paths import BUNDLED_ZONES
from maps.tiles import lonlat_tile
from tests.store_backends import clients_on_each_backend
from tests.test_tiles import tile_lonlat_box

MVT = "application/vnd.mapbox-vector-tile"
BASE = "/collections/{layer}/tiles/WebMercatorQuad"


@pytest.fixture(scope="module")
def zones():
    return schema.zones_from_geojson(BUNDLED_ZONES.read_text(encoding="utf-8"))


def ids_in(content: bytes, layer: str) -> set[str]:
    decoded = mapbox_vector_tile.decode(content).get(layer, {"features": []})["features"]
    return {f["properties"]["zone_id"] for f in decoded}


def test_the_tile_matrix_set_is_web_mercator_quad_in_tms_2_json(client):
    listing = client.get("/tileMatrixSets").json()
    assert [t["id"] for t in listing["tileMatrixSets"]] == ["WebMercatorQuad"]
    tms = client.get(listing["tileMatrixSets"][0]["links"][0]["href"].replace("http://testserver", "")).json()
    assert tms["crs"] == "http://www.opengis.net/def/crs/EPSG/0/3857"
    matrices = tms["tileMatrices"]
    assert [m["id"] for m in matrices] == [str(z) for z in range(MAX_ZOOM + 1)]
    assert matrices[0]["scaleDenominator"] == pytest.approx(559082264.0287178)
    assert all(a["scaleDenominator"] / b["scaleDenominator"] == pytest.approx(2) for a, b in zip(matrices, matrices[1:], strict=False))
    assert matrices[10]["matrixWidth"] == matrices[10]["matrixHeight"] == 1024
    assert matrices[0]["pointOfOrigin"] == pytest.approx([-20037508.3427892, 20037508.3427892])
    assert client.get("/tileMatrixSets/WorldCRS84Quad").status_code == 404


def test_landing_page_collections_and_conformance_lead_to_the_tiles(client):
    landing = client.get("/").json()
    assert any(link["rel"].endswith("/tiling-schemes") for link in landing["links"])
    conforms = client.get("/conformance").json()["conformsTo"]
    assert set(CONFORMANCE) <= set(conforms)
    collection = client.get("/collections/eco_redline").json()
    tiles = next(link for link in collection["links"] if link["rel"].endswith("/tilesets-vector"))
    tilesets = client.get(tiles["href"].replace("http://testserver", "")).json()["tilesets"]
    assert [t["dataType"] for t in tilesets] == ["vector"]
    item = next(link for link in tilesets[0]["links"] if link["rel"] == "item")
    assert item["type"] == MVT and item["templated"]
    assert item["href"].endswith("/collections/eco_redline/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}")


@pytest.mark.parametrize("layer", ["eco_redline", "water_source", "monitoring_section"])
def test_the_limits_hold_every_zone_and_tiles_come_in_zoom_row_column_order(client, zones, layer):
    meta = client.get(BASE.format(layer=layer)).json()
    limits = {lim["tileMatrix"]: lim for lim in meta["tileMatrixSetLimits"]}
    assert sorted(limits, key=int) == [str(z) for z in range(LIMITS_MAX_ZOOM + 1)]
    expected = set(zones.loc[zones.layer == layer, "zone_id"])
    for z in (8, 10):
        lim = limits[str(z)]
        seen: set[str] = set()
        for row in range(lim["minTileRow"], lim["maxTileRow"] + 1):
            for col in range(lim["minTileCol"], lim["maxTileCol"] + 1):
                answer = client.get(f"{BASE.format(layer=layer)}/{z}/{row}/{col}")
                assert answer.status_code == 200 and answer.headers["content-type"] == MVT
                # the same tile as /tiles/{layer}/{z}/{x}/{y}.mvt, x being the column and y the row
                assert answer.content == client.get(f"/tiles/{layer}/{z}/{col}/{row}.mvt").content
                seen |= ids_in(answer.content, layer)
        assert seen == expected, (z, expected - seen)
    # a tile inside the grid but outside the limits is empty
    assert ids_in(client.get(f"{BASE.format(layer=layer)}/10/0/0").content, layer) == set()


def test_a_tile_holds_the_zones_under_it_row_being_y(client, zones):
    zone = zones[zones.layer == "eco_redline"].iloc[0]
    point = zone.geometry.representative_point()
    x, y = lonlat_tile(point.x, point.y, 12)
    assert shapely.intersects(tile_lonlat_box(12, x, y), zone.geometry)
    assert zone.zone_id in ids_in(client.get(f"{BASE.format(layer='eco_redline')}/12/{y}/{x}").content, "eco_redline")


def test_bad_and_out_of_range_tiles_are_refused_with_a_clear_message(client):
    base = BASE.format(layer="eco_redline")
    for path, status, words in ((f"{base}/23/0/0", 404, "0–22"), (f"{base}/3/8/0", 404, "outside tile matrix 3"),
                                (f"{base}/3/0/-1", 404, "outside tile matrix 3"), (f"{base}/x/0/0", 400, "integer"),
                                (f"{base}/3/0/1.5", 400, "integer"),
                                ("/collections/eco_redline/tiles/WorldCRS84Quad/3/0/0", 404, "WebMercatorQuad"),
                                ("/collections/no_such/tiles", 404, "collections are"),
                                (f"{base}/3/0/0?zoom=1", 400, "unknown query parameter")):
        answer = client.get(path)
        assert answer.status_code == status, path
        assert words in answer.json()["description"], (path, answer.json())
    tile = client.get(f"{base}/8/96/210")
    again = client.get(f"{base}/8/96/210", headers={"If-None-Match": tile.headers["etag"]})
    assert again.status_code == 304


def test_the_api_document_describes_the_tile_paths(client):
    paths = client.get("/api").json()["paths"]
    tile = paths["/collections/eco_redline/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"]["get"]
    assert MVT in tile["responses"]["200"]["content"]
    assert {"400", "404"} <= set(tile["responses"])
    assert "/tileMatrixSets/{tileMatrixSetId}" in paths and "/collections/eco_redline/tiles" in paths


@pytest.mark.postgis
def test_a_postgis_store_serves_the_same_ogc_tiles(zones, tmp_path, request):
    answers = []
    for _, client in clients_on_each_backend(zones, tmp_path, request):
        per_backend = []
        for layer in ("eco_redline", "livestock_ban"):
            meta = client.get(BASE.format(layer=layer)).json()
            lim = next(m for m in meta["tileMatrixSetLimits"] if m["tileMatrix"] == "9")
            for row in range(lim["minTileRow"], lim["maxTileRow"] + 1):
                for col in range(lim["minTileCol"], lim["maxTileCol"] + 1):
                    content = client.get(f"{BASE.format(layer=layer)}/9/{row}/{col}").content
                    decoded = mapbox_vector_tile.decode(content).get(layer, {"features": []})["features"]
                    per_backend.append(sorted(tuple(sorted(f["properties"].items())) for f in decoded))
        answers.append((meta["tileMatrixSetLimits"], per_backend))
    assert any(answers[0][1])
    assert answers[0] == answers[1]


@pytest.mark.gdal
def test_gdal_reads_the_zones_of_a_tile_chosen_from_the_tileset_metadata(zones, tmp_path):
    from api.app import create_app
    from api.settings import Settings
    from tests.browser import live_server
    from tests.conftest import required_tool

    ogrinfo = required_tool("ogrinfo", "gdal-bin")
    app = create_app(Settings(store=tmp_path / "zones.gpkg", seed=BUNDLED_ZONES, log_level="warning"))
    with live_server(app) as base:
        import urllib.request

        with urllib.request.urlopen(f"{base}{BASE.format(layer='water_source')}", timeout=30) as answer:
            meta = json.load(answer)
        zone = zones[zones.zone_id.str.startswith("mtg-") & (zones.layer == "water_source")].iloc[0]
        point = zone.geometry.representative_point()
        col, row = lonlat_tile(point.x, point.y, 10)
        lim = next(m for m in meta["tileMatrixSetLimits"] if m["tileMatrix"] == "10")
        assert lim["minTileRow"] <= row <= lim["maxTileRow"] and lim["minTileCol"] <= col <= lim["maxTileCol"]
        # GDAL's MVT driver takes z/x/y from a {z}/{x}/{y}.mvt name: the same tile as .../10/{row}/{col}
        url = f"/vsicurl/{base}/tiles/water_source/10/{col}/{row}.mvt"
        done = subprocess.run([ogrinfo, "-ro", "-al", "-geom=SUMMARY", url], capture_output=True, text=True,
                              timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Layer name: water_source" in done.stdout
    assert f"zone_id (String) = {zone.zone_id}" in done.stdout
    assert f"name_zh (String) = {zone.name_zh}" in done.stdout
    assert "accuracy (String) = approximate" in done.stdout
    # georeferenced in Web Mercator, inside the tile
    extent = next(line for line in done.stdout.splitlines() if line.startswith("Extent:"))
    minx, miny, maxx, maxy = (float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", extent))
    box = shapely.box(minx, miny, maxx, maxy)
    from geo.crs import to_web_mercator

    assert box.buffer(1000).intersects(to_web_mercator(zone.geometry))
