"""The map in vector-tile mode, in a real browser (Debian's headless Chromium, internet blocked).

The app runs with ``map_inline_max_vertices=0``, so ``/map`` carries no zone geometry and
every layer is drawn by the vendored Leaflet.VectorGrid from ``/tiles/{layer}/{z}/{x}/{y}.mvt``.
What must keep working: the layers drawn in their colours, the layer control and the legend,
a click inside a zone answered by ``/v1/check`` with a popup of the zone's legal details,
search, ``?zone=``, the activity picker's verdicts, a tooltip on hover, and the district base
layer (Beijing's districts and the neighbouring counties) drawn from its own tiles.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
import shapely

from tests.browser import live_server
from tests.test_map_browser import (  # noqa: F401  (browser: the Chromium fixture)
    PIG,
    Page,
    browser,
    click_at,
    interior_point,
    result_zone_ids,
    server,
    wait_result,
    yongding_source_zone,
)

pytestmark = pytest.mark.browser
TILE_MEDIA = "application/vnd.mapbox-vector-tile"


@pytest.fixture(scope="module")
def tiled_server(tmp_path_factory):
    """The app on the bundled zones with the inline threshold forced to 0: always tiles."""
    from api.app import create_app
    from api.settings import Settings
    from geo.paths import BUNDLED_ZONES

    store = tmp_path_factory.mktemp("map-tiles-store") / "zones.gpkg"
    app = create_app(Settings(store=store, seed=BUNDLED_ZONES, log_level="warning", map_inline_max_vertices=0))
    with live_server(app) as base:
        yield base


class TilePage(Page):
    """A recording page that also lists the vector tiles it fetched (url, status, media type)."""

    def __init__(self, chromium, allowed):
        super().__init__(chromium, allowed)
        self.tiles: list[tuple[str, int, str]] = []
        self.page.on("response", lambda res: "/tiles/" in res.url and self.tiles.append(
            (res.url, res.status, res.headers.get("content-type", ""))))


@pytest.fixture
def page(browser, tiled_server):  # noqa: F811
    recorder = TilePage(browser, (tiled_server,))
    yield recorder
    recorder.context.close()


def drawn(p, layer: str) -> int:
    return p.locator(f".leaflet-overlay-pane svg path.zoning-layer-{layer}").count()


def wait_drawn(p, layer: str) -> None:
    p.wait_for_function(f"() => document.querySelectorAll('path.zoning-layer-{layer}').length > 0", timeout=20_000)


def test_the_page_carries_no_zone_and_the_layers_are_drawn_from_tiles(page, tiled_server, bundled_zones):
    with urllib.request.urlopen(f"{tiled_server}/map", timeout=60) as answer:
        html = answer.read().decode("utf-8")
    assert "L.vectorGrid.protobuf" in html
    config = json.loads(html.split('id="zoning-config">')[1].split("</script>")[0])
    # No zone geometry or properties: a zone id appears only in the list of zones drawn as outlines.
    named = {z: html.count(f'"{z}"') for z in bundled_zones["zone_id"] if f'"{z}"' in html}
    assert set(named) == set(config["outline_only"]) and set(named.values()) == {1}, named
    assert "hd-livestock-no-new-scale-farms" in config["outline_only"]  # all of 海淀: outline only
    p = page.open(f"{tiled_server}/map")
    layers = sorted(set(bundled_zones["layer"]))
    for layer in layers:
        wait_drawn(p, layer)
    requested = {url.split("/tiles/")[1].split("/")[0] for url, _, _ in page.tiles}
    assert requested == set(layers) | {"districts"}  # each zone layer, and the district base layer
    assert all(status == 200 and media == TILE_MEDIA for _, status, media in page.tiles), page.tiles
    # styled like the inline layers: the layer's colour, dashed because no bundled zone is official
    colour = p.evaluate("() => document.querySelector('path.zoning-layer-eco_redline').getAttribute('stroke')")
    from geo.schema import LAYERS

    assert colour == LAYERS["eco_redline"].color
    dashes = p.locator("path.zoning-layer-eco_redline").evaluate_all("ps => ps.map(p => p.getAttribute('stroke-dasharray'))")
    assert all(dashes), dashes
    page.assert_clean()


def test_layer_control_hides_and_shows_a_tiled_layer_and_the_legend_is_there(page, tiled_server):
    p = page.open(f"{tiled_server}/map")
    wait_drawn(p, "eco_redline")
    p.hover(".leaflet-control-layers")  # collapsed: it opens under the pointer
    label = p.locator(".leaflet-control-layers-overlays label", has_text="生态保护红线")
    label.locator("input").uncheck()
    assert drawn(p, "eco_redline") == 0
    label.locator("input").check()
    wait_drawn(p, "eco_redline")
    assert p.locator("#zp-map-legend [data-accuracy]").count() == 5
    assert p.locator("#zp-map-legend").is_visible()
    page.assert_clean()


def test_a_click_inside_a_zone_is_answered_by_the_check_with_a_popup_of_its_legal_details(page, tiled_server,
                                                                                         bundled_zones):
    zone = yongding_source_zone(bundled_zones)
    lon, lat = interior_point(zone.geometry)
    p = page.open(f"{tiled_server}/map")
    click_at(p, lon, lat)
    result = wait_result(p)
    assert zone["zone_id"] in result_zone_ids(p)
    popup = p.locator(f".zoning-answer-popup .zp-popup[data-zone-id='{zone['zone_id']}']")
    popup.wait_for(timeout=10_000)
    text = popup.inner_text()
    for value in (zone["name_zh"], zone["source_doc_no"], zone["effective_from"]):
        assert value in text
    assert "近似边界" in text  # not official, said in words
    assert p.locator(".zoning-answer-popup .zp-disclaimer").count() == 1
    assert result.locator(".zp-disclaimer").count() == 1
    page.assert_clean()


def test_search_opens_a_zone_from_the_api(page, tiled_server, bundled_zones):
    zone = yongding_source_zone(bundled_zones)
    p = page.open(f"{tiled_server}/map")
    p.fill("#zp-search", "永定河山峡段")
    p.locator(f"#zp-search-results li[data-zone='{zone['zone_id']}']").click()
    p.wait_for_selector(f".leaflet-popup-content .zp-popup[data-zone-id='{zone['zone_id']}']", timeout=10_000)
    assert zone["source_doc_no"] in p.locator(".leaflet-popup-content .zp-popup").inner_text()
    page.assert_clean()


def test_the_zone_parameter_opens_the_map_on_that_zone(page, tiled_server, bundled_zones):
    zone = yongding_source_zone(bundled_zones)
    p2 = page.open(f"{tiled_server}/map?zone={zone['zone_id']}&lang=en")
    p2.wait_for_selector(f".leaflet-popup-content .zp-popup[data-zone-id='{zone['zone_id']}']", timeout=10_000)
    centre = p2.evaluate("() => { const c = ZoningMap.map.getCenter(); return [c.lng, c.lat]; }")
    minx, miny, maxx, maxy = zone.geometry.bounds
    assert minx <= centre[0] <= maxx and miny <= centre[1] <= maxy
    page.assert_clean()


def tile_effects(p, layer: str) -> list[str]:
    """The effect classes of the layer's drawn paths (zoning-effect-prohibited, …)."""
    return p.locator(f"path.zoning-layer-{layer}").evaluate_all(
        "ps => ps.map(p => [...p.classList].find(c => c.startsWith('zoning-effect-')) || '')")


def test_the_activity_picker_shades_tiled_zones_hatches_unknown_districts_and_the_click_gives_the_verdict(
        page, tiled_server, bundled_zones):
    zone = yongding_source_zone(bundled_zones)
    lon, lat = interior_point(zone.geometry)
    p = page.open(f"{tiled_server}/map")
    wait_drawn(p, "water_source")
    p.select_option("#zp-activity", PIG)
    # the tiles are redrawn with the zones that limit the activity (from /v1/activities/{code}/zones)
    p.wait_for_selector("path.zoning-effect-prohibited", timeout=20_000)
    assert "zoning-effect-prohibited" in tile_effects(p, "livestock_ban")  # 海淀's ban and 门头沟's ban zones
    fill = p.evaluate("() => getComputedStyle(document.querySelector('path.zoning-effect-prohibited')).fill")
    assert fill == "rgb(178, 24, 43)"
    assert "zoning-effect-none" in tile_effects(p, "admin")  # district outlines say nothing about farms
    # districts with undrawn zones that could rule on it are hatched
    p.wait_for_selector("path.zoning-unknown", timeout=10_000)
    assert p.locator("path.zoning-unknown").count() == 3
    click_at(p, lon, lat)
    result = wait_result(p)
    assert result.locator(".zp-verdict").first.get_attribute("data-verdict") == "prohibited"
    p.select_option("#zp-activity", "")  # back to every zone in its layer colours
    p.wait_for_function("() => document.querySelectorAll('path.zoning-zone').length > 0 && "
                        "!document.querySelector('path[class*=zoning-effect-]')", timeout=20_000)
    page.assert_clean()


def topmost_zone_at(zones, lon: float, lat: float):
    """The zone a pointer at (lon, lat) is over: of the zones holding the point, the one in the
    layer drawn last (``layer_order``: biggest extent first, so small layers on top)."""
    from maps.render import layer_order

    point = shapely.Point(lon, lat)
    holding = zones[shapely.contains(zones.geometry.values, point)]
    order = layer_order(zones)
    top = max(holding["layer"], key=order.index)
    hits = holding[holding["layer"] == top]
    assert len(hits) == 1, hits["zone_id"].tolist()  # else which one is on top is not defined
    return hits.iloc[0]


def hover_at(p, lon: float, lat: float, layer: str, zoom: int = 14) -> None:
    """Centre the map on (lon, lat), wait for the layer's tiles, then move the mouse there."""
    p.evaluate("([lat, lon, zoom]) => ZoningMap.map.setView([lat, lon], zoom, {animate: false})", [lat, lon, zoom])
    wait_drawn(p, layer)
    box = p.locator(".folium-map").bounding_box()
    p.mouse.move(box["x"] + 5, box["y"] + box["height"] - 5)
    p.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=4)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_hovering_a_tiled_zone_shows_its_names_layer_and_that_it_is_not_official(page, tiled_server, bundled_zones,
                                                                                 lang):
    from geo.schema import ACCURACY_TEXT, LAYERS

    lon, lat = interior_point(yongding_source_zone(bundled_zones).geometry)
    zone = topmost_zone_at(bundled_zones, lon, lat)
    assert zone["accuracy"] != "official"
    p = page.open(f"{tiled_server}/map?lang={lang}")
    hover_at(p, lon, lat, zone["layer"])
    tip = p.locator(".leaflet-tooltip.zoning-tile-tooltip")
    tip.wait_for(timeout=10_000)
    text = tip.inner_text()
    page_lang = 0 if lang == "zh" else 1
    assert text.index(zone["name_zh"]) < text.index(zone["name_en"])  # both names, Chinese first
    spec = LAYERS[zone["layer"]]
    assert (spec.title_zh if lang == "zh" else spec.title_en) in text
    assert ACCURACY_TEXT[zone["accuracy"]][page_lang] in text  # not official, said in words
    for internal in (zone["zone_id"], zone["layer"], "name_zh", "undefined", "null"):
        assert internal not in text
    # the pointer leaves the zones: the tooltip goes
    box = p.locator(".folium-map").bounding_box()
    p.evaluate("() => ZoningMap.map.setView([30, 100], 14, {animate: false})")  # far from every zone
    p.mouse.move(box["x"] + box["width"] / 2 + 3, box["y"] + box["height"] / 2 + 3)
    tip.wait_for(state="detached", timeout=10_000)
    page.assert_clean()


def test_the_inline_map_shows_the_same_tooltip_as_the_tiled_map(browser, tiled_server, server, bundled_zones):  # noqa: F811
    lon, lat = interior_point(yongding_source_zone(bundled_zones).geometry)
    zone = topmost_zone_at(bundled_zones, lon, lat)
    texts = []
    for base, selector in ((tiled_server, ".zoning-tile-tooltip"), (server, ".leaflet-tooltip")):
        recorder = TilePage(browser, (base,))
        try:
            p = recorder.open(f"{base}/map")
            hover_at(p, lon, lat, zone["layer"])
            # has_text: the inline map may keep the tooltip of the zone the pointer crossed on its way
            # (Leaflet's own binding; the tiled map's single tooltip is checked to close above)
            tip = p.locator(selector, has_text=zone["name_zh"])
            tip.wait_for(timeout=10_000)
            texts.append(tip.inner_text())
            recorder.assert_clean()
        finally:
            recorder.context.close()
    assert texts[0] == texts[1] and zone["name_zh"] in texts[0], texts


def test_a_click_on_a_hovered_tiled_zone_still_checks_the_point(page, tiled_server, bundled_zones):
    lon, lat = interior_point(yongding_source_zone(bundled_zones).geometry)
    zone = topmost_zone_at(bundled_zones, lon, lat)
    p = page.open(f"{tiled_server}/map")
    hover_at(p, lon, lat, zone["layer"])
    p.locator(".leaflet-tooltip.zoning-tile-tooltip").wait_for(timeout=10_000)
    box = p.locator(".folium-map").bounding_box()
    p.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    wait_result(p)
    assert zone["zone_id"] in result_zone_ids(p)
    page.assert_clean()


def test_districts_and_neighbouring_counties_are_drawn_from_base_tiles_with_their_labels(page, tiled_server):
    from maps.tiles import BASE_LAYER

    with urllib.request.urlopen(f"{tiled_server}/map", timeout=60) as answer:
        html = answer.read().decode("utf-8")
    assert "zoning-districts" not in html.split("L.vectorGrid.protobuf")[0].split("<body>")[-1]  # no inline outline
    p = page.open(f"{tiled_server}/map")
    p.wait_for_function("() => document.querySelectorAll('path.zoning-neighbour').length > 0 && "
                        "document.querySelectorAll('path.zoning-districts').length > 0", timeout=20_000)
    base = [(status, media) for url, status, media in page.tiles if f"/tiles/{BASE_LAYER}/" in url]
    assert base and set(base) == {(200, TILE_MEDIA)}, page.tiles
    neighbour = p.locator("path.zoning-neighbour").first
    assert neighbour.get_attribute("stroke-dasharray") == "6 4"  # dashed like the inline map's
    assert neighbour.get_attribute("fill") == "none"
    labels = p.locator(".zoning-neighbour-label").all_inner_texts()
    for name in ("蓟州区", "三河市", "大厂回族自治县", "香河县"):  # the ones the inline map shows too
        assert name in labels
    # the layer control's district entry hides the tiled outlines with the labels
    p.hover(".leaflet-control-layers")
    p.locator(".leaflet-control-layers-overlays label", has_text="区界").locator("input").uncheck()
    assert p.locator("path.zoning-neighbour").count() == 0 and p.locator(".zoning-neighbour-label").count() == 0
    page.assert_clean()
