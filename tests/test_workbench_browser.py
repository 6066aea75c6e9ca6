"""The workbench in a real browser (Debian's headless Chromium, internet blocked).

An editor logs in, picks the zone from the worklist, uploads the synthetic sheet, places
4 control points (clicking the sheet, typing the coordinates printed on its kilometre
grid: two in EPSG:4548, two in zone-prefixed Gauss-Krüger), picks the zone's colour on
the sheet, auto-traces, saves the draft and cannot approve it; a reviewer approves it;
``/v1/check`` inside the polygon then lists the zone with accuracy ``traced``. On the
GeoPackage and on the PostGIS store.
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from geo.store import store_at
from geo.users import Users
from tests.browser import live_server
from tests.store_backends import BACKENDS, new_location
from tests.synthetic_sheet import make_sheet, spread_gcps
from tests.test_map_browser import ARTIFACTS, Page, browser  # noqa: F401  (browser: a fixture)

pytestmark = pytest.mark.browser
ZONE = "mtg-jyq-ztsk-1"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module", params=BACKENDS)
def server(tmp_path_factory, request):
    from api.app import create_app
    from api.settings import Settings
    from geo.paths import BUNDLED_ZONES

    if request.param == "postgis":
        request.applymarker(pytest.mark.postgis)
    store = new_location(request.param, tmp_path_factory.mktemp("workbench-store"), request)
    with live_server(create_app(Settings(store=store, seed=BUNDLED_ZONES, log_level="warning",
                                         admin_token="bootstrap-admin-token-for-browser"))) as base:
        users = Users(store_at(store))
        users.add("ed", "editor", password=PASSWORD, actor="test")
        users.add("rita", "reviewer", password=PASSWORD, actor="test")
        yield base


def login(chromium, server, name):
    recorder = Page(chromium, (server,))
    page = recorder.page
    page.goto(f"{server}/workbench")
    page.fill("#login-name", name)
    page.fill("#login-password", PASSWORD)
    page.click("#login-button")
    page.wait_for_selector("#worklist .item", timeout=20_000)
    return recorder, page


def click_sheet(page, px: float, py: float) -> None:
    """Click the sheet pane at image pixel (px, py), as a person would."""
    point = page.evaluate("([px, py]) => { const p = workbenchMaps.image.latLngToContainerPoint([-py, px]);"
                          " return [p.x, p.y]; }", [px, py])
    box = page.locator("#image").bounding_box()
    page.mouse.click(box["x"] + point[0], box["y"] + point[1])


def test_editor_traces_and_a_different_reviewer_publishes(browser, server, tmp_path):  # noqa: F811
    sheet = make_sheet()
    sheet_file = tmp_path / "附图1.jpg"
    sheet_file.write_bytes(sheet.jpeg)

    editor, page = login(browser, server, "ed")
    page.click(f"#worklist .item[data-zone='{ZONE}']")
    page.wait_for_function("() => document.getElementById('zone-meta').textContent.includes('门政发')")
    page.set_input_files("#sheet-file", str(sheet_file))
    page.click("#sheet-upload")
    page.wait_for_function("() => document.getElementById('sheet-info').textContent.includes('2000 × 1500')")
    page.evaluate("() => workbenchMaps.image.setView([-750, 1000], -0.5, {animate: false})")

    # Four control points: click the sheet, type the coordinate printed on the grid.
    page.click("#gcp-mode")
    for i, gcp in enumerate(spread_gcps(sheet, 4)):
        click_sheet(page, gcp.px, gcp.py)
        prefixed = i >= 2
        page.select_option("#gcp-crs", "gk" if prefixed else "EPSG:4548")
        page.fill("#gcp-x", str(gcp.x + 39_000_000 if prefixed else gcp.x))
        page.fill("#gcp-y", str(gcp.y))
        page.click("#gcp-typed")
    page.click("#gcp-mode")
    assert page.locator("#gcp-table tbody tr").count() == 4
    page.click("#georef-fit")
    page.wait_for_function("() => document.getElementById('georef-rms').textContent.includes('RMS')", timeout=30_000)
    residuals = page.locator("#gcp-table tbody tr td:nth-child(4)").all_inner_texts()
    assert len(residuals) == 4 and all(float(r) < 20 for r in residuals)  # clicks on a zoomed-out sheet: ~2-4 px
    assert page.locator("#map img.leaflet-image-layer").count() == 1  # the warped overlay
    page.fill("#overlay-opacity", "0.3")

    # Pick the zone's colour on its outline, then auto-trace.
    a = sheet.world_to_pixel
    x, y = sheet.zone_metric.exterior.interpolate(0.31, normalized=True).coords[0]
    px, py = a[:, :2] @ np.array([x, y]) + a[:, 2]
    page.evaluate("([px, py]) => workbenchMaps.image.setView([-py, px], 2, {animate: false})", [float(px), float(py)])
    page.click("#pick-mode")
    click_sheet(page, px, py)
    picked = page.input_value("#trace-colour")
    r, g, b = (int(picked[i:i + 2], 16) for i in (1, 3, 5))
    assert r > 150 and g < 110 and b < 110, picked
    page.fill("#trace-min-area", "50000")
    page.fill("#trace-simplify", "2")
    page.fill("#trace-line", "3")
    page.click("#trace-run")
    page.wait_for_function("() => document.getElementById('trace-info').textContent.includes('km²')", timeout=60_000)
    page.click("#draft-save")
    page.wait_for_function("() => document.getElementById('draft-info').textContent.includes('saved')", timeout=30_000)
    assert "%" in page.inner_text("#area-check")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "workbench-editor.png"))

    # The editor cannot approve their own draft.
    page.wait_for_selector("#drafts tr[data-draft]")
    page.click("#drafts tr[data-draft]")
    page.wait_for_selector("#review-panel:not(.hidden)")
    page.click("#review-approve")
    page.wait_for_function("() => document.getElementById('status').textContent.includes('may not')")
    # The refused approval is the one failed request (and Chromium's console line about it).
    assert [f for f in editor.failed if "/review" not in f] == [] and editor.blocked == []
    assert [e for e in editor.errors if "403" not in e] == []
    editor.context.close()

    reviewer, page = login(browser, server, "rita")
    page.click("#drafts tr[data-draft]")
    page.wait_for_selector("#review-panel:not(.hidden)")
    assert "ed" in page.inner_text("#review-meta") and "traced from the official map sheet" in page.inner_text(
        "#review-meta")
    page.wait_for_selector("#map img.leaflet-image-layer")  # the sheet's overlay under the draft
    page.wait_for_function("() => document.getElementById('sheet-info').textContent.includes('2000 × 1500')")
    page.click("#review-approve")
    page.wait_for_function("() => document.getElementById('review-info').textContent.includes('published')",
                           timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "workbench-review.png"))
    reviewer.assert_clean()
    reviewer.context.close()

    inside = sheet.zone_wgs84.representative_point()
    answer = httpx.get(f"{server}/v1/check", params={"lon": inside.x, "lat": inside.y}).json()
    hit = next(z for z in answer["inside"] if z["zone_id"] == ZONE)
    assert hit["accuracy"] == "traced"
    assert ZONE not in {z["zone_id"] for z in answer["not_digitised"]}
