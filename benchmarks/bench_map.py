"""Map page weight and load time, on the bundled zones.

Prints: vertices drawn vs full precision; the page's bytes (HTML and linked vendored
assets, raw and gzip) next to the same page with unsimplified geometry; server render
time (first request of a data version, then cached); and load time in headless Chromium
(navigation until the panel is ready, fresh browser context each run, internet blocked)
for the served page and the standalone export opened from disk. Then the vector-tile mode
(``ZONING_MAP_INLINE_MAX_VERTICES`` forced to 0) against the inline page as baseline: page bytes,
the tiles holding zones at z 8/10/12 (count, bytes, render ms per tile in-process, HTTP ms), the
district base layer's tiles at the same zooms, and Chromium's time until every tiled layer is drawn
with the tiles of that first view (zone layers and base layer apart).

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
            if CHROMIUM.exists():
                browser_load_times(base, export)
            else:
                print(f"load time: skipped, {CHROMIUM} not found")
    vector_tiles(zones, html)


def browser_load_times(base: str, export: bytes) -> None:
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


# Every vector-tile layer has loaded the tiles of the view (GridLayer.isLoading) and drawn something.
TILES_LOADED = """() => { let busy = false;
  ZoningMap.map.eachLayer(l => { if (l instanceof L.GridLayer && l.isLoading && l.isLoading()) busy = true; });
  return !busy && document.querySelectorAll('path.zoning-zone').length > 0; }"""


def tiled_first_view(base: str) -> tuple[list[float], list[tuple[str, int]]]:
    """Chromium on the tile-mode /map: seconds until every layer is drawn (per cold run), and the
    tiles fetched for the first view (url, bytes)."""
    from playwright.sync_api import sync_playwright

    times, fetched = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        for _ in range(RUNS):
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(base) else r.abort())
            tiles: list[tuple[str, int]] = []
            page.on("response", lambda res, into=tiles: "/tiles/" in res.url and into.append(
                (res.url, int(res.headers.get("content-length", 0)))))
            start = time.perf_counter()
            page.goto(f"{base}/map")
            page.wait_for_selector("body[data-zoning-ready]", state="attached", timeout=60_000)
            page.wait_for_function(TILES_LOADED, timeout=60_000)
            times.append(time.perf_counter() - start)
            fetched = tiles
            context.close()
        browser.close()
    return times, fetched


def tile_figures(zones, layers: list[str], zoom: int) -> tuple[int, list[int], float]:
    """(tiles holding zones, their sizes in bytes, best ms per tile rendered in-process) at ``zoom``."""
    from maps.tiles import LayerTiler

    return layer_tile_figures([(layer, LayerTiler.of(zones, layer), zones[zones["layer"] == layer].total_bounds)
                               for layer in layers], zoom)


def layer_tile_figures(tilers, zoom: int) -> tuple[int, list[int], float]:
    """:func:`tile_figures` of (layer name, tiler, WGS84 bounds) triples."""
    import mapbox_vector_tile

    from benchmarks.timing import best_seconds
    from maps.tiles import lonlat_tile

    sizes, seconds = [], 0.0
    for layer, tiler, (minx, miny, maxx, maxy) in tilers:
        col0, row0 = lonlat_tile(minx, maxy, zoom)
        col1, row1 = lonlat_tile(maxx, miny, zoom)
        for x in range(col0, col1 + 1):
            for y in range(row0, row1 + 1):
                body = tiler.tile(zoom, x, y, layer)
                if mapbox_vector_tile.decode(body).get(layer, {}).get("features"):
                    sizes.append(len(body))
                    seconds += best_seconds(tiler.tile, zoom, x, y, layer)
    return len(sizes), sizes, seconds / max(len(sizes), 1) * 1000


def vector_tiles(zones, inline_html: bytes) -> None:
    """The map page inline (baseline) vs in tile mode, and the tiles themselves at z 8/10/12."""
    from maps.tiles import BASE_LAYER, base_tiles, lonlat_tile

    print("\nvector-tile mode (ZONING_MAP_INLINE_MAX_VERTICES below the zones' vertex count):")
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(store=Path(tmp) / "zones.gpkg", seed=BUNDLED_ZONES, log_level="warning",
                                  map_inline_max_vertices=0))
        with live_server(app) as base:
            tiled, _ = fetch(f"{base}/map")
            print(f"page HTML inline {kib(len(inline_html))} raw {kib(gz(inline_html))} gzip  (baseline)")
            print(f"page HTML tiled  {kib(len(tiled))} raw {kib(gz(tiled))} gzip  "
                  f"({len(tiled) / len(inline_html):.2f}x raw, {gz(tiled) / gz(inline_html):.2f}x gzip; "
                  "what remains is the district labels, the hatching shapes and the panel)")
            layers = sorted(set(zones["layer"]))
            for zoom in (8, 10, 12):
                count, sizes, ms = tile_figures(zones, layers, zoom)
                col, row = lonlat_tile(116.0, 39.95, zoom)
                _, first = fetch(f"{base}/tiles/eco_redline/{zoom}/{col}/{row}.mvt")
                http = min(fetch(f"{base}/tiles/eco_redline/{zoom}/{col}/{row}.mvt")[1] for _ in range(5))
                print(f"z{zoom:<2} {count:4d} tiles hold zones ({len(layers)} layers): {kib(sum(sizes))} in all, "
                      f"median {statistics.median(sizes) / 1024:.1f} KiB, max {max(sizes) / 1024:.1f} KiB per tile; "
                      f"render {ms:.1f} ms/tile in-process; one eco_redline tile over HTTP {http * 1000:.1f} ms "
                      f"(first {first * 1000:.0f} ms)")
            base_layer = base_tiles()
            for zoom in (8, 10, 12):
                count, sizes, ms = layer_tile_figures([(BASE_LAYER, base_layer.tiler, base_layer.bounds)], zoom)
                print(f"z{zoom:<2} {count:4d} tiles of the district base layer: {kib(sum(sizes))} in all, "
                      f"median {statistics.median(sizes) / 1024:.1f} KiB, max {max(sizes) / 1024:.1f} KiB per tile; "
                      f"render {ms:.1f} ms/tile in-process")
            if CHROMIUM.exists():
                times, fetched = tiled_first_view(base)
                base_fetched = [n for url, n in fetched if f"/tiles/{BASE_LAYER}/" in url]
                zone_fetched = [n for url, n in fetched if f"/tiles/{BASE_LAYER}/" not in url]
                print(f"tiled /map in Chromium: until every layer is drawn median {statistics.median(times) * 1000:.0f} ms "
                      f"(min {min(times) * 1000:.0f}, {RUNS} cold runs); first view fetched {len(zone_fetched)} zone "
                      f"tiles, {kib(sum(zone_fetched))}, and {len(base_fetched)} base tiles, {kib(sum(base_fetched))} "
                      "(uncompressed)")


if __name__ == "__main__":
    main()
