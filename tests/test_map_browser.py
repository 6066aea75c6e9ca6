"""The map in a real browser: headless Chromium (Debian's) through Playwright, internet blocked.

The app runs under uvicorn on a free localhost port, on a fresh store of the bundled
zones. Every request that is not to localhost (or file:/data: for the export) is aborted
and recorded, so a CDN reference or a tile request would fail the test.
"""

from __future__ import annotations

import os

import pytest
import shapely

from geo import crs
from tests.browser import ARGS, CHROMIUM, VIEWPORT, live_server
from tests.conftest import REPO

pytestmark = pytest.mark.browser

ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found (Debian package chromium; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app on the bundled zones (a fresh store), served by uvicorn on a free localhost port."""
    from api.app import create_app
    from api.settings import Settings
    from geo.paths import BUNDLED_ZONES

    store = tmp_path_factory.mktemp("map-store") / "zones.gpkg"
    with live_server(create_app(Settings(store=store, seed=BUNDLED_ZONES, log_level="warning"))) as base:
        yield base


class Page:
    """A browser page that records failed, blocked and erroring things."""

    def __init__(self, browser, allowed: tuple[str, ...]):
        self.context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
        self.page = self.context.new_page()
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []

        def route(r):
            if r.request.url.startswith(allowed):
                r.continue_()
            else:
                self.blocked.append(r.request.url)
                r.abort()

        self.page.route("**/*", route)
        self.page.on("requestfailed", lambda req: self.failed.append(f"{req.url} {req.failure}"))
        self.page.on("response", lambda res: res.status >= 400 and self.failed.append(f"{res.url} {res.status}"))
        self.page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def open(self, url: str):
        self.page.goto(url)
        self.page.wait_for_selector("body[data-zoning-ready]", state="attached", timeout=20_000)
        return self.page

    def assert_clean(self):
        assert self.blocked == [], f"requests to the internet: {self.blocked}"
        assert self.failed == [], f"failed requests: {self.failed}"
        assert self.errors == [], f"console errors: {self.errors}"


@pytest.fixture
def page(browser, server):
    recorder = Page(browser, (server,))
    yield recorder
    recorder.context.close()


def _zone_counts(zones) -> dict[str, int]:
    return {layer: int(n) for layer, n in zones["layer"].value_counts().items()}


def _drawn_counts(page, layers) -> dict[str, int]:
    return {layer: page.locator(f"path.zoning-layer-{layer}").count() for layer in layers}


def yongding_source_zone(zones):
    """The 永定河 drinking-water source zone in 门头沟 (mtg-…), looked up in the data."""
    hits = zones[zones["zone_id"].str.startswith("mtg-") & (zones["layer"] == "water_source")
                 & zones["name_zh"].str.contains("永定河")]
    assert len(hits) == 1, hits["zone_id"].tolist()
    return hits.iloc[0]


def interior_point(geom, margin_m: float = 100.0) -> tuple[float, float]:
    """A WGS84 point at least ``margin_m`` inside ``geom`` (so display simplification cannot matter)."""
    inner = shapely.buffer(crs.to_metric(geom), -margin_m)
    assert not inner.is_empty, "zone too thin for a safe interior point"
    point = crs.from_metric(shapely.point_on_surface(inner))
    return point.x, point.y


def click_at(page, lon: float, lat: float, zoom: int = 14) -> None:
    """Centre the map on (lon, lat) and click there with the mouse, as a person would."""
    page.evaluate("([lat, lon, zoom]) => ZoningMap.map.setView([lat, lon], zoom, {animate: false})", [lat, lon, zoom])
    box = page.locator(".folium-map").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def wait_result(page, before: str | None = None):
    page.wait_for_function(
        "(before) => { const el = document.getElementById('zp-result');"
        " return ['done', 'error'].includes(el.dataset.state) && el.dataset.seq !== before; }",
        arg=before, timeout=20_000)
    return page.locator("#zp-result")


def result_zone_ids(page) -> list[str]:
    return page.locator("#zp-result .zp-card").evaluate_all("cards => cards.map(c => c.dataset.zoneId)")


# ---------------------------------------------------------------- tests


def test_page_loads_offline_and_draws_every_layer(page, server, bundled_zones):
    p = page.open(f"{server}/map")
    expected = _zone_counts(bundled_zones)
    assert _drawn_counts(p, expected) == expected
    assert p.locator("path.zoning-districts").count() >= 1
    assert p.locator(".leaflet-control-layers-overlays label").count() == len(expected) + 1  # + districts
    page.assert_clean()


def test_clicking_inside_the_yongding_source_zone_shows_it_in_the_panel(page, server, bundled_zones):
    zone = yongding_source_zone(bundled_zones)
    lon, lat = interior_point(zone.geometry)
    p = page.open(f"{server}/map")
    click_at(p, lon, lat)
    result = wait_result(p)
    assert zone["zone_id"] in result_zone_ids(p)
    assert zone["name_zh"] in result.inner_text()
    assert p.locator("#zp-result .zp-disclaimer").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "map-yongding-check.png"
    p.screenshot(path=str(shot))
    assert shot.stat().st_size > 20_000
    page.assert_clean()


@pytest.mark.parametrize(("lang", "message"), [("zh", "不在本服务范围内"), ("en", "outside the service area")])
def test_clicking_far_from_every_zone_says_the_service_has_no_data_there(page, server, bundled_zones, lang, message):
    lon, lat = 116.60, 39.62  # 大兴/通州 border country (just over the line in 河北), south-east of every zone
    assert not shapely.intersects(bundled_zones.geometry.values, shapely.Point(lon, lat).buffer(0.05)).any()
    p = page.open(f"{server}/map?lang={lang}")
    click_at(p, lon, lat, zoom=12)
    result = wait_result(p)
    assert result_zone_ids(p) == []
    # not "in no zone": the service holds nothing for this district, and says so
    assert message in result.locator(".zp-coverage-none").inner_text()
    assert result.locator(".zp-none").count() == 0
    page.assert_clean()


def test_a_gcj02_coordinate_gives_the_same_answer_as_its_wgs84_twin(page, server, bundled_zones):
    zone = yongding_source_zone(bundled_zones)
    lon, lat = interior_point(zone.geometry)
    glon, glat = crs.from_wgs84(lon, lat, "gcj02")
    p = page.open(f"{server}/map")
    answers = []
    for x, y, system in ((lon, lat, "wgs84"), (glon, glat, "gcj02")):
        before = p.locator("#zp-result").get_attribute("data-seq")
        p.fill("#zp-lon", f"{x:.8f}")
        p.fill("#zp-lat", f"{y:.8f}")
        p.select_option("#zp-crs", system)
        p.click("#zp-locate-go")
        wait_result(p, before)
        marker = p.evaluate("() => { const m = ZoningMap.map; let ll = null;"
                            " m.eachLayer(l => { if (l.options && l.options.className === 'zoning-check-marker')"
                            " ll = l.getLatLng(); }); return ll && [ll.lng, ll.lat]; }")
        answers.append((sorted(result_zone_ids(p)), marker))
    (wgs_ids, wgs_marker), (gcj_ids, gcj_marker) = answers
    assert zone["zone_id"] in wgs_ids and gcj_ids == wgs_ids
    # The marker sits at the WGS84 point the API echoed, not at the typed GCJ-02 numbers.
    assert wgs_marker == pytest.approx([lon, lat], abs=1e-6)
    assert gcj_marker == pytest.approx([lon, lat], abs=1e-6)
    page.assert_clean()


def test_drawing_a_site_shows_the_overlap_with_each_zone(page, server, bundled_zones):
    zone = yongding_source_zone(bundled_zones)
    lon, lat = interior_point(zone.geometry)
    p = page.open(f"{server}/map")
    p.evaluate("([lat, lon]) => ZoningMap.map.setView([lat, lon], 16, {animate: false})", [lat, lon])
    box = p.locator(".folium-map").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    p.click(".leaflet-draw-draw-polygon")
    for dx, dy in ((-20, -20), (20, -20), (20, 20), (-20, 20), (-20, -20)):  # a 40 px square, closed
        p.mouse.click(cx + dx, cy + dy)
        p.wait_for_timeout(150)  # quicker clicks read as a double click, which ends the polygon early
    result = wait_result(p)
    assert zone["zone_id"] in result_zone_ids(p)
    card = result.locator(f".zp-card[data-zone-id='{zone['zone_id']}']").inner_text()
    assert "100.0% 占地块" in card  # the small site lies wholly inside the zone
    assert "平方米" in result.locator(".zp-point").inner_text() or "m²" in result.inner_text()
    page.assert_clean()


def test_searching_a_zone_by_name_opens_its_popup_with_the_legal_details(page, server, bundled_zones):
    zone = yongding_source_zone(bundled_zones)
    p = page.open(f"{server}/map")
    p.fill("#zp-search", "永定河山峡段")
    p.locator(f"#zp-search-results li[data-zone='{zone['zone_id']}']").click()
    popup = p.locator(".leaflet-popup-content .zp-popup")
    popup.wait_for(timeout=10_000)
    text = popup.inner_text()
    for value in (zone["name_zh"], zone["source_doc_no"], zone["effective_from"]):
        assert value in text
    assert "近似边界" in text  # accuracy in words, not a code
    # The parent zone is a link that opens the parent's popup.
    popup.locator(f"td a[data-zone='{zone['parent_id']}']").click()  # the parent link, not the shared-shape list
    p.wait_for_selector(f".leaflet-popup-content .zp-popup[data-zone-id='{zone['parent_id']}']", timeout=10_000)
    page.assert_clean()


def test_zone_parameter_opens_the_map_on_that_zone(page, server, bundled_zones):
    zone = yongding_source_zone(bundled_zones)
    p = page.open(f"{server}/map?zone={zone['zone_id']}&lang=en")
    popup = p.locator(".leaflet-popup-content .zp-popup")
    popup.wait_for(timeout=10_000)
    assert popup.get_attribute("data-zone-id") == zone["zone_id"]
    centre = p.evaluate("() => { const c = ZoningMap.map.getCenter(); return [c.lng, c.lat]; }")
    minx, miny, maxx, maxy = zone.geometry.bounds
    assert minx <= centre[0] <= maxx and miny <= centre[1] <= maxy
    page.assert_clean()


def test_static_export_opens_from_disk_with_the_network_blocked(browser, bundled_zones, tmp_path):
    from maps.render import standalone_html

    out = tmp_path / "map.html"
    out.write_text(standalone_html(bundled_zones, lang="zh"), encoding="utf-8")
    recorder = Page(browser, ("file:", "data:"))
    try:
        p = recorder.open(out.as_uri())
        expected = _zone_counts(bundled_zones)
        assert _drawn_counts(p, expected) == expected
        ARTIFACTS.mkdir(exist_ok=True)
        p.screenshot(path=str(ARTIFACTS / "map-export-offline.png"))
        recorder.assert_clean()
    finally:
        recorder.context.close()


# ---------------------------------------------------------------- what matters: activities, coverage, legibility

PIG = "livestock_scale_farm_new"


def pick_activity(p, code: str) -> None:
    p.select_option("#zp-activity", code)
    p.wait_for_function("(code) => !code || document.querySelectorAll('path[data-effect]').length > 0", arg=code)


def effect_of(p, zone_id: str) -> str | None:
    return p.get_attribute(f'path[data-zone-id="{zone_id}"]', "data-effect")


def test_activity_picker_shades_prohibited_zones_and_hatches_districts_with_undrawn_ones(page, server):
    p = page.open(f"{server}/map")
    pick_activity(p, PIG)
    assert effect_of(p, "mtg-jyq-ydh") == "prohibited"  # 门政发〔2020〕9号
    assert effect_of(p, "hd-livestock-no-new-scale-farms") == "prohibited"  # 海政办发〔2017〕33号, all of 海淀
    assert effect_of(p, "mtg-yl-1") == ""  # elder-care zones say nothing about farms
    fill = p.evaluate("() => getComputedStyle(document.querySelector('path[data-zone-id=\"mtg-jyq-ydh\"]')).fill")
    assert fill == "rgb(178, 24, 43)"
    # 门头沟, 平谷 and 海淀 have ban-zone parts that are not drawn: hatched "unknown"
    hatched = p.locator("path.zoning-unknown")
    assert hatched.count() == 3
    assert all(h == "url(#zoning-hatch)" for h in hatched.evaluate_all("ps => ps.map(p => p.getAttribute('fill'))"))
    assert p.locator("#zp-map-legend-activity").is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    p.screenshot(path=str(ARTIFACTS / "map-activity-pig-farm.png"))
    pick_activity(p, "parking")  # only the 永定河 notice rules on parking, and every zone it names is drawn
    assert effect_of(p, "mtg-ydh-hdgl") == "prohibited" and effect_of(p, "hd-livestock-no-new-scale-farms") == ""
    assert p.locator("path.zoning-unknown").count() == 0
    page.assert_clean()


def test_a_click_with_an_activity_shows_the_verdict_before_the_rules(page, server, bundled_zones):
    zone = yongding_source_zone(bundled_zones)
    lon, lat = interior_point(zone.geometry)
    p = page.open(f"{server}/map")
    pick_activity(p, PIG)
    click_at(p, lon, lat)
    result = wait_result(p)
    first = result.locator(":scope > *").first
    assert "zp-verdicts" in first.get_attribute("class")
    verdict = result.locator(".zp-verdict").first
    assert verdict.get_attribute("data-verdict") == "prohibited"
    assert "门政发〔2020〕9号" in verdict.inner_text() and "禁止" in verdict.inner_text()
    # rules second: the zone cards come after the verdict
    assert result.locator(".zp-verdicts ~ .zp-card").count() >= 1
    p.screenshot(path=str(ARTIFACTS / "map-verdict-first.png"))
    page.assert_clean()


def test_a_point_in_dongcheng_says_the_service_has_no_data_for_it(page, server):
    p = page.open(f"{server}/map")
    p.fill("#zp-lon", "116.397")
    p.fill("#zp-lat", "39.909")
    p.click("#zp-locate-go")
    result = wait_result(p)
    assert "本服务没有东城区的任何分区数据" in result.locator(".zp-coverage-none").inner_text()
    assert result.locator(".zp-none").count() == 0
    page.assert_clean()


OVERLAPS = """() => {
  const boxes = [...document.querySelectorAll('.zoning-district-label span')]
    .filter(s => getComputedStyle(s).visibility !== 'hidden' && s.offsetParent !== null)
    .map(s => { const r = s.getBoundingClientRect(); return [s.textContent, r.left, r.top, r.right, r.bottom]; });
  const clashes = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    if (a[1] < b[3] && b[1] < a[3] && a[2] < b[4] && b[2] < a[4]) clashes.push(a[0] + ' / ' + b[0]);
  }
  return {shown: boxes.map(b => b[0]), clashes};
}"""


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_district_labels_do_not_overlap_at_any_zoom(page, server, lang):
    p = page.open(f"{server}/map?lang={lang}")
    for zoom in (8, 9, 10, 11, 12):
        p.evaluate("(z) => ZoningMap.map.setView([39.93, 116.35], z, {animate: false})", zoom)
        p.evaluate("() => ZoningMap.declutter()")
        boxes = p.evaluate(OVERLAPS)
        assert boxes["clashes"] == [], f"zoom {zoom}: {boxes['clashes']}"
        assert len(boxes["shown"]) >= 5, f"zoom {zoom}: only {boxes['shown']}"
    # close in, both small central districts get their label
    assert {"东城区", "西城区"} <= set(boxes["shown"]) if lang == "zh" else {"Dongcheng", "Xicheng"} <= set(boxes["shown"])
    p.screenshot(path=str(ARTIFACTS / f"map-labels-{lang}.png"))
    page.assert_clean()


def test_accuracy_legend_is_visible_without_scrolling_at_1400_by_900(page, server):
    p = page.open(f"{server}/map")
    assert p.viewport_size == {"width": 1400, "height": 900}
    for row in p.locator("#zp-map-legend [data-accuracy]").all():
        box = row.bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= 900 and box["x"] + box["width"] <= 1400
    assert p.locator("#zp-map-legend [data-accuracy]").count() == 5  # official, traced, approximate, schematic, indicative
    page.assert_clean()


def test_whole_district_designations_are_outlines_and_shared_shapes_list_each_other(page, server):
    p = page.open(f"{server}/map")
    for zone_id in ("hd-zgc-science-city", "pg-capital-east-eco-zone", "mtg-xzq-stbh"):
        assert p.get_attribute(f'path[data-zone-id="{zone_id}"]', "fill-opacity") == "0", zone_id
    # the five 门头沟 zones drawn with the 永定河 corridor's geometry: one fill, one popup naming all
    five = ["mtg-jyq", "mtg-jyq-ws", "mtg-jyq-ydh", "mtg-sthx", "mtg-ydh-sxgc"]
    fills = [p.get_attribute(f'path[data-zone-id="{z}"]', "fill-opacity") for z in five]
    assert sum(f != "0" for f in fills) == 1, fills
    p.evaluate("() => ZoningMap.focusZone('mtg-jyq-ydh')")
    popup = p.locator(".leaflet-popup .zp-popup")
    popup.wait_for()
    listed = popup.locator(".zp-shared [data-zone]").evaluate_all("as => as.map(a => a.dataset.zone)")
    assert sorted(listed) == sorted(set(five) - {"mtg-jyq-ydh"})
    # 平蓟三 reaches into Tianjin and Hebei: those units are outlined, dashed, with their names
    assert p.locator("path.zoning-neighbour").count() == 4
    assert "三河市" in p.locator(".zoning-neighbour-label").all_inner_texts()
    page.assert_clean()


# ---------------------------------------------------------------- API documentation, offline


def _operation_count(server) -> int:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{server}/openapi.json", timeout=30) as answer:
        api = json.load(answer)
    return sum(1 for methods in api["paths"].values() for method in methods
               if method in ("get", "head", "post", "put", "delete", "patch"))


def test_swagger_ui_docs_render_every_operation_offline(page, server):
    p = page.page
    p.goto(f"{server}/docs")
    p.wait_for_selector(".opblock", timeout=20_000)
    p.wait_for_load_state("networkidle")
    assert p.locator(".opblock").count() == _operation_count(server)
    assert p.locator(".opblock-summary-path", has_text="/v1/check").count() >= 1
    page.assert_clean()


def test_redoc_docs_render_every_operation_offline(page, server):
    p = page.page
    p.goto(f"{server}/redoc")
    p.wait_for_selector("[data-section-id^='operation/']", timeout=30_000)
    p.wait_for_load_state("networkidle")
    assert p.locator("[data-section-id^='operation/']").count() == _operation_count(server)
    assert "fonts.googleapis" not in p.content()
    page.assert_clean()
