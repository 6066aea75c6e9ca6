"""The compensation map file in headless Chromium with the network blocked: the located section is drawn,
its popup shows the month's result, and the note says how many sampled sections have no coordinates."""

import pytest

from tests.compensation_helpers import run, samples_csv, twice
from tests.test_map_browser import ARTIFACTS, Page, browser  # noqa: F401 - browser is the shared fixture

pytestmark = pytest.mark.browser


def test_section_map_opens_offline_with_the_result_in_the_popup(browser, tmp_path):  # noqa: F811
    from maps.compensation_map import sections_map_html

    m = "2021-03"
    answer = run("110118", m, samples_csv(twice("S39", m, CODMn="8", NH3N="2.5", TP="0.2"),
                                          twice("S07", m, CODMn="4.5", NH3N="0.2", TP="0.05")))
    out = tmp_path / "sections.html"
    out.write_text(sections_map_html(answer), encoding="utf-8")
    recorder = Page(browser, ("file:", "data:"))
    try:
        p = recorder.page
        p.goto(out.as_uri())
        markers = p.locator("path.leaflet-interactive")
        markers.first.wait_for(timeout=20_000)
        assert markers.count() == 1  # S39 only: S07 has no published coordinates
        assert "1 sampled section(s) have no published coordinates" in p.inner_text("body")
        markers.first.click(force=True)
        popup = p.locator(".leaflet-popup-content")
        popup.wait_for(timeout=10_000)
        text = popup.inner_text()
        assert "S39 潮白河密云出境断面" in text and "100,000 元" in text and "经济开发区 50,000" in text
        ARTIFACTS.mkdir(exist_ok=True)
        p.screenshot(path=str(ARTIFACTS / "compensation-map-offline.png"))
        recorder.assert_clean()
    finally:
        recorder.context.close()
