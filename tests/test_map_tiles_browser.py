"""The map in vector-tile mode, in a real browser (Debian's headless Chromium, internet blocked).

The app runs with ``map_inline_max_vertices=0``, so ``/map`` carries no zone geometry and
every layer is drawn by the vendored Leaflet.VectorGrid from ``/tiles/{layer}/{z}/{x}/{y}.mvt``.
What must keep working: the layers drawn in their colours, the layer control and the legend,
a click inside a zone answered by ``/v1/check`` with a popup of the zone's legal details,
search, ``?zone=``, and the activity picker's verdicts.
"""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.browser import live_server
from tests.test_map_browser import (  # noqa: F401  (browser: the Chromium fixture)
    PIG,
    Page,
    browser,
    click_at,
    interior_point,
    result_zone_ids,
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
    assert requested == set(layers)
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
