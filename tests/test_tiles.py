"""Vector tiles of a zone layer: the zones reaching a tile, clipped to it, with their
properties; the same tile from a PostGIS store (ST_AsMVT) as from the in-process tiler."""

from __future__ import annotations

import math

import mapbox_vector_tile
import numpy as np
import pytest
import shapely

from geo import schema
from geo.paths import BUNDLED_ZONES
from maps.tiles import EXTENT, lonlat_tile
from tests.store_backends import clients_on_each_backend

MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
Z = 11


def tile_lonlat_box(z, x, y):
    n = 2 ** z

    def lat(row):
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return shapely.box(x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y))


def decoded(answer, layer):
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == MEDIA_TYPE
    return mapbox_vector_tile.decode(answer.content).get(layer, {"features": []})["features"]


@pytest.fixture(scope="module")
def zones():
    return schema.zones_from_geojson(BUNDLED_ZONES.read_text(encoding="utf-8"))


def test_a_tile_holds_the_layer_zones_that_reach_it_clipped_with_their_properties(client, zones):
    zone = zones[zones.layer == "eco_redline"].iloc[0]
    point = zone.geometry.representative_point()
    x, y = lonlat_tile(point.x, point.y, Z)
    features = decoded(client.get(f"/tiles/eco_redline/{Z}/{x}/{y}.mvt"), "eco_redline")
    found = {f["properties"]["zone_id"] for f in features}
    layer = zones[zones.layer == "eco_redline"]
    box = tile_lonlat_box(Z, x, y)
    assert zone.zone_id in found
    assert set(layer.zone_id[shapely.intersects(layer.geometry.values, box)]) <= found  # all that reach it
    margin = box.buffer(box.bounds[2] - box.bounds[0])  # nothing from far away
    assert found <= set(layer.zone_id[shapely.intersects(layer.geometry.values, margin)])
    props = next(f["properties"] for f in features if f["properties"]["zone_id"] == zone.zone_id)
    assert props["name_zh"] == zone.name_zh and props["accuracy"] == zone.accuracy
    coords = np.array([c for f in features for ring in _rings(f["geometry"]) for c in ring])
    assert coords.min() >= -64 and coords.max() <= EXTENT + 64  # clipped to the tile and its buffer


def _rings(geometry):
    coords = geometry["coordinates"]
    if geometry["type"] == "Polygon":
        return coords
    return [ring for polygon in coords for ring in polygon]


def test_empty_tiles_unknown_layers_and_tiles_off_the_grid(client):
    assert decoded(client.get("/tiles/eco_redline/5/0/0.mvt"), "eco_redline") == []  # mid-Pacific
    assert client.get("/tiles/no_such_layer/5/0/0.mvt").status_code == 404
    answer = client.get("/tiles/eco_redline/3/8/0.mvt")
    assert answer.status_code == 404 and "outside the grid" in answer.json()["detail"]
    again = client.get("/tiles/eco_redline/5/0/0.mvt")
    assert client.get("/tiles/eco_redline/5/0/0.mvt", headers={"If-None-Match": again.headers["etag"]}).status_code == 304


@pytest.mark.postgis
def test_postgis_st_asmvt_tiles_match_the_in_process_tiler(zones, tmp_path, request):
    tiles = []
    for layer in ("eco_redline", "livestock_ban"):
        point = zones[zones.layer == layer].geometry.iloc[0].representative_point()
        tiles += [(layer, z, *lonlat_tile(point.x, point.y, z)) for z in (8, Z, 13)]
    by_backend = []
    for _, client in clients_on_each_backend(zones, tmp_path, request):
        answers = []
        for layer, z, x, y in tiles:
            features = decoded(client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt"), layer)
            answers.append(sorted((f["properties"]["zone_id"], tuple(sorted(f["properties"].items())))
                                  for f in features))
        by_backend.append(answers)
    assert all(by_backend[0])  # every tile holds zones
    assert by_backend[0] == by_backend[1]
