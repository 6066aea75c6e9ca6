"""Map page weight and load time, on the bundled zones.

Prints: vertices drawn vs full precision; the page's bytes (HTML and linked vendored
assets, raw and gzip) next to the same page with unsimplified geometry; server render
time (first request of a data version, then cached); and load time in headless Chromium
(navigation until the panel is ready, fresh browser context each run, internet blocked)
for the served page and the standalone export opened from disk.

    python benchmarks/bench_map.py      (after `pip install -e '.[test]'`; needs /usr/bin/chromium)
"""

from __future__ import annotations

import gzip
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.browser (Chromium settings and the live server)

from api.app import create_app  # noqa: E402
from api.settings import Settings  # noqa: E402
from geo import schema  # noqa: E402
from geo.paths import BUNDLED_ZONES  # noqa: E402
from maps.assets import VENDOR_DIR  # noqa: E402
from maps.context import district_context  # noqa: E402
from maps.render import MapOptions, render_html, standalone_html  # noqa: E402
from maps.simplify import display_geometry, vertex_count  # noqa: E402
from tests.browser import ARGS, CHROMIUM, VIEWPORT, live_server  # noqa: E402

RUNS = 5
ASSET = re.compile(r"""(?:src|href)="(static/vendor/[^"]+)\"""")


def kib(n: int) -> str:
    return f"{n / 1024:8.1f} KiB"


def gz(data: bytes) -> int:
    return len(gzip.compress(data, 6))


def fetch(url: str) -> tuple[bytes, float]:
    start = time.perf_counter()
    with urllib.request.urlopen(url) as answer:
        body = answer.read()
    return body, time.perf_counter() - start


def load_times(browser, url: str, allowed: tuple[str, ...]) -> list[float]:
    """Seconds from navigation start until the panel is ready, one fresh context per run."""
    times = []
    for _ in range(RUNS):
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(allowed) else r.abort())
        start = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("body[data-zoning-ready]", state="attached", timeout=60_000)
        times.append(time.perf_counter() - start)
        context.close()
    return times


def main() -> None:
    zones = schema.zones_from_geojson(BUNDLED_ZONES.read_text(encoding="utf-8"))
    start = time.perf_counter()
    display = display_geometry(zones)
    simplify_s = time.perf_counter() - start
    print(f"zones: {len(zones)}; vertices full {vertex_count(zones)}, drawn {vertex_count(display)} "
          f"(simplified in {simplify_s * 1000:.0f} ms)")

    full_page = render_html(zones, district_context(), MapOptions()).encode("utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(store=Path(tmp) / "zones.gpkg", seed=BUNDLED_ZONES, log_level="warning"))
        with live_server(app) as base:
            html, first_s = fetch(f"{base}/map")
            _, cached_s = fetch(f"{base}/map")
            assets = ASSET.findall(html.decode("utf-8"))
            asset_bytes = [(VENDOR_DIR / a.removeprefix("static/vendor/")).read_bytes() for a in assets]
            print(f"server: first /map of a data version {first_s * 1000:.0f} ms, cached {cached_s * 1000:.1f} ms")
            print(f"page HTML        {kib(len(html))} raw {kib(gz(html))} gzip")
            print(f"  unsimplified   {kib(len(full_page))} raw {kib(gz(full_page))} gzip  (not served)")
            print(f"vendored assets  {kib(sum(map(len, asset_bytes)))} raw "
                  f"{kib(sum(map(gz, asset_bytes)))} gzip  ({len(assets)} files, cacheable)")
            print(f"total first load {kib(len(html) + sum(map(len, asset_bytes)))} raw "
                  f"{kib(gz(html) + sum(map(gz, asset_bytes)))} gzip")

            export = standalone_html(zones).encode("utf-8")
            print(f"standalone export {kib(len(export))} (zoning map --out)")
            if not CHROMIUM.exists():
                print(f"load time: skipped, {CHROMIUM} not found")
                return
            from playwright.sync_api import sync_playwright

            with sync_playwright() as playwright, tempfile.TemporaryDirectory() as out:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                served = load_times(browser, f"{base}/map", (base,))
                path = Path(out) / "map.html"
                path.write_bytes(export)
                offline = load_times(browser, path.as_uri(), ("file:", "data:"))
                browser.close()
            for label, times in (("served /map", served), ("export file://", offline)):
                print(f"load until ready, {label:15s} median {statistics.median(times) * 1000:6.0f} ms, "
                      f"min {min(times) * 1000:6.0f} ms, max {max(times) * 1000:6.0f} ms ({RUNS} cold runs)")


if __name__ == "__main__":
    main()
