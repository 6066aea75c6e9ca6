"""Vector tiles of a zone layer: the zones reaching a tile, clipped to it, with their
properties; the same tile from a PostGIS store (ST_AsMVT) as from the in-process tiler."""

from __future__ import annotations

import json
import math

import mapbox_vector_tile
import numpy as np
import pandas as pd
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


# ---------------------------------------------------------------- the district base layer


def base_tile_at(client, lon, lat, z):
    x, y = lonlat_tile(lon, lat, z)
    return client.get(f"/tiles/districts/{z}/{x}/{y}.mvt")


def test_the_base_layer_tile_holds_districts_and_neighbouring_counties_with_their_names(client):
    # 通州, on Beijing's border with 三河 and 大厂 (Langfang, Hebei)
    features = decoded(base_tile_at(client, 116.95, 39.92, 10), "districts")
    units = {f["properties"]["name_zh"]: f["properties"] for f in features}
    assert units["通州区"]["kind"] == "district" and units["通州区"]["adcode"] == "110112"
    assert units["三河市"]["kind"] == "neighbour" and units["三河市"]["name_en"].startswith("Sanhe")
    assert units["大厂回族自治县"]["kind"] == "neighbour"
    assert "北京市" not in units  # the whole-province outline: the districts draw it
    assert all(set(f["properties"]) == {"adcode", "name_zh", "name_en", "kind"} for f in features)
    # reference outlines as polygons, clipped to the tile and its buffer
    coords = np.array([c for f in features for ring in _rings(f["geometry"]) for c in ring])
    assert coords.min() >= -64 and coords.max() <= EXTENT + 64


def test_base_layer_tiles_off_the_grid_bad_coordinates_and_caching(client):
    answer = client.get("/tiles/districts/3/8/0.mvt")
    assert answer.status_code == 404 and "outside the grid" in answer.json()["detail"]
    assert client.get("/tiles/districts/-1/0/0.mvt").status_code == 404
    assert client.get("/tiles/districts/23/0/0.mvt").status_code == 404
    answer = client.get("/tiles/districts/x/0/0.mvt")
    assert answer.status_code == 422 and "z" in json.dumps(answer.json()["detail"])
    unknown = client.get("/tiles/district/5/0/0.mvt")
    assert unknown.status_code == 404 and "districts" in unknown.json()["detail"]
    assert decoded(client.get("/tiles/districts/5/0/0.mvt"), "districts") == []  # mid-Pacific
    first = base_tile_at(client, 116.4, 39.9, 9)
    assert first.headers["etag"].startswith('"base-')  # the base file, not the zones' data version
    again = client.get(first.url.path, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.postgis
def test_postgis_store_serves_the_same_base_tiles(zones, tmp_path, request):
    bodies = [[base_tile_at(client, lon, lat, z).content for lon, lat, z in ((116.95, 39.92, 10), (116.4, 39.9, 8))]
              for _, client in clients_on_each_backend(zones, tmp_path, request)]
    assert bodies[0][0] and bodies[0] == bodies[1]


# ---------------------------------------------------------------- the tiled page's size


def _more_zones(zones, count):
    """``zones`` plus ``count`` small schematic zones of 100 vertices in 门头沟 (page-size probe)."""
    import geopandas as gpd

    template = zones[zones["layer"] == "eco_redline"].iloc[[0]]
    rows = template.loc[template.index.repeat(count)].reset_index(drop=True)
    rows["zone_id"] = [f"probe-{i:04d}" for i in range(count)]
    rows["name_zh"] = [f"探针区{i}" for i in range(count)]
    rows["accuracy"] = "schematic"
    centres = shapely.points(115.8 + (np.arange(count) % 20) * 0.01, 39.9 + (np.arange(count) // 20) * 0.01)
    rows = rows.set_geometry(shapely.buffer(centres, 0.003, quad_segs=25), crs=zones.crs)
    return gpd.GeoDataFrame(pd.concat([zones, rows], ignore_index=True), crs=zones.crs)


def test_the_tiled_page_does_not_grow_with_the_zones_and_inlines_no_district_outline(zones):
    from maps.context import district_context
    from maps.render import MapOptions, render_html
    from maps.simplify import display_geometry
    from maps.tile_layers import TILE_URL

    context = district_context()
    tiled = MapOptions(tile_url=TILE_URL, data_version="v")
    more = _more_zones(zones, 300)
    sizes = {n: len(render_html(z, context, tiled).encode()) for n, z in (("bundled", zones), ("more", more))}
    assert abs(sizes["more"] - sizes["bundled"]) < 2048, sizes  # 300 zones more: layer counts only
    inline = {n: len(render_html(display_geometry(z), context, MapOptions(data_version="v")).encode())
              for n, z in (("bundled", zones), ("more", more))}
    assert inline["more"] - inline["bundled"] > 100 * 1024, inline  # the probe zones weigh when inlined
    # No district outline in the page: the inline page's district lines are not there, and the
    # page is under half of what it was with them inlined (252 KiB before this change).
    html = render_html(zones, context, tiled)
    inline_html = render_html(display_geometry(zones), context, MapOptions(data_version="v"))
    lon, lat = shapely.geometry.mapping(context.lines)["coordinates"][0][1]  # a vertex of a district border
    vertex = json.dumps([lon, lat])[1:-1]

    def without_config(page):  # the config carries the activity picker's hatching outlines (own job)
        head, rest = page.split('id="zoning-config">')
        return head + rest.split("</script>", 1)[1]

    assert vertex in without_config(inline_html) and vertex not in without_config(html)
    assert sizes["bundled"] < 160 * 1024, sizes
