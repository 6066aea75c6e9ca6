"""The map page without a browser: local assets only, layers, languages, display geometry, export.

What the page does in a browser (clicks, panel answers, offline loading) is in
tests/test_map_browser.py.
"""

from __future__ import annotations

import json
import re

import folium
import folium.plugins
import numpy as np
import pytest
import shapely

from geo import crs, schema
from geo.schema import LAYERS
from maps.assets import FOLIUM_ASSETS, VENDOR_DIR, UnvendoredAssetError, localise
from maps.render import MapOptions, render_html, standalone_html, zone_style
from maps.simplify import display_geometry, vertex_count
from tests.conftest import make_zone
from tests.test_cli import run_cli

SCRIPT_SRC = re.compile(r"<script[^>]*\bsrc=[\"']([^\"']+)", re.I)
LINK_HREF = re.compile(r"<link[^>]*\bhref=[\"']([^\"']+)", re.I)
CSS_URL = re.compile(r"\burl\(\s*['\"]?([^'\")]+)")  # CSS is lowercase; JS has new URL(
IMPORT = re.compile(r"@import\s+['\"]?([^'\";\s]+)", re.I)
COORD = re.compile(r"\[-?\d+\.\d+, -?\d+\.\d+\]")
# The only internet URLs a page may carry: tile templates and attribution links of the optional basemaps.
TILE_HOSTS = ("tile.openstreetmap.org", "www.openstreetmap.org", "tianditu.gov.cn", "www.tianditu.gov.cn")


def resource_urls(html: str) -> list[str]:
    """Every URL the page would fetch by itself: scripts, stylesheets, icons, CSS url() and @import."""
    return SCRIPT_SRC.findall(html) + LINK_HREF.findall(html) + CSS_URL.findall(html) + IMPORT.findall(html)


def test_every_vendored_asset_exists_with_its_licence_and_is_listed():
    readme = (VENDOR_DIR / "README.md").read_text(encoding="utf-8")
    for relative in filter(None, FOLIUM_ASSETS.values()):
        assert (VENDOR_DIR / relative).is_file(), relative
        package = relative.split("/")[0]
        assert (VENDOR_DIR / package / "LICENSE").is_file(), f"{package} has no LICENSE file"
        assert f"`{package}/`" in readme, f"{package} missing from the vendor README"


def test_vendored_stylesheets_reference_only_files_that_exist():
    for css in VENDOR_DIR.rglob("*.css"):
        for ref in CSS_URL.findall(css.read_text(encoding="utf-8")):
            # "%23…" is an URL-encoded "#…" inside an inline SVG (Leaflet-Geoman's icons): no file.
            if ref.startswith(("#", "data:", "%23")):
                continue
            assert not ref.startswith(("http:", "https:", "//")), f"{css.name} loads {ref}"
            assert (css.parent / ref).is_file(), f"{css.name} refers to missing {ref}"


def test_a_folium_asset_without_a_vendored_copy_is_refused():
    m = folium.Map(tiles=None)
    folium.plugins.MiniMap().add_to(m)  # its Leaflet-MiniMap is not vendored
    with pytest.raises(UnvendoredAssetError, match="Control.MiniMap"):
        localise(m, inline=False)


def test_served_page_loads_scripts_and_styles_from_our_own_static_route(sample_client):
    page = sample_client.get("/map")
    assert page.status_code == 200
    urls = resource_urls(page.text)
    assert any(u.endswith("leaflet.js") for u in urls)
    for url in urls:
        assert not url.startswith(("http:", "https:", "//")), f"page loads {url} from the internet"
        if url.startswith(("data:", "#")):  # inline data, or a same-page reference (an SVG pattern): no fetch
            continue
        assert url.startswith("static/vendor/"), url
        asset = sample_client.get("/" + url)
        assert asset.status_code == 200, url
        assert asset.content == (VENDOR_DIR / url.removeprefix("static/vendor/")).read_bytes()


def test_served_page_mentions_internet_hosts_only_for_the_optional_basemaps(sample_client):
    html = sample_client.get("/map").text
    code = "\n".join(line for line in html.splitlines() if not line.strip().startswith("//"))  # JS comments
    hosts = set(re.findall(r"https?://([^/\"'\s\\]+)", code))
    assert hosts <= set(TILE_HOSTS), hosts - set(TILE_HOSTS)


def test_vendored_assets_are_served_compressed_and_path_traversal_is_refused(sample_client):
    js = sample_client.get("/static/vendor/leaflet-1.9.4/leaflet.js", headers={"Accept-Encoding": "gzip"})
    assert js.status_code == 200 and js.headers["content-encoding"] == "gzip"
    assert "max-age" in js.headers["cache-control"]  # versioned folders: safe to keep
    assert sample_client.get("/static/vendor/../render.py").status_code == 404
    assert sample_client.get("/static/vendor/leaflet-1.9.4/nope.js").status_code == 404


def test_each_layer_gets_its_own_overlay_in_its_registry_colour(sample_client, sample_zones):
    html = sample_client.get("/map").text
    for layer in set(sample_zones["layer"]):
        assert f"zoning-zone zoning-layer-{layer}" in html
        assert LAYERS[layer].color in html
    assert "zoning-layer-eco_redline" not in html  # no overlay for a layer with no zones


def test_zones_that_are_not_official_are_dashed_and_the_legend_says_why():
    assert zone_style("livestock_ban", "official")["dashArray"] is None
    dashes = {a: zone_style("livestock_ban", a)["dashArray"] for a in ("approximate", "schematic", "indicative")}
    assert all(dashes.values()) and len(set(dashes.values())) == 3
    zones = schema.zones_from_records([make_zone("t-a", shapely.box(116, 40, 116.1, 40.1), accuracy="schematic")])
    html = render_html(display_geometry(zones), None, MapOptions())
    legend = html[html.index('id="zoning-panel"'):]
    assert 'data-accuracy="schematic"' in legend and "示意边界" in legend and "schematic:" in legend
    assert "虚线边界均非法定边界" in legend and "not the legal boundary" in legend


def test_chinese_is_the_default_language_and_english_is_one_parameter_away(sample_client):
    zh = sample_client.get("/map").text
    en = sample_client.get("/map?lang=en").text
    assert '<html lang="zh-CN">' in zh and "按坐标定位查询" in zh and "<title>分区查询地图" in zh
    assert '<html lang="en">' in en and "Check a coordinate" in en and "<title>Zoning map" in en
    # The legend is bilingual in both.
    for html in (zh, en):
        assert "畜禽养殖禁养区" in html and "Livestock farming ban zones" in html


def test_bad_language_and_unknown_zone_are_client_errors_naming_the_problem(sample_client):
    bad_lang = sample_client.get("/map?lang=fr")
    assert bad_lang.status_code == 422 and "zh" in bad_lang.text
    missing = sample_client.get("/map?zone=no-such-zone")
    assert missing.status_code == 404 and "no-such-zone" in missing.json()["detail"]


def test_zone_parameter_hands_the_zone_and_its_bounds_to_the_page(sample_client):
    html = sample_client.get("/map?zone=t-holed").text
    config = json.loads(re.search(r'id="zoning-config">(.*?)</script>', html, re.S).group(1))
    assert config["focus"] == {"zone_id": "t-holed", "bounds": [[39.9, 116.2], [40.0, 116.3]]}
    assert config["api"] == "v1/" and config["lang"] == "zh"


def test_tianditu_basemaps_appear_only_when_a_token_is_set(tmp_path, sample_zones):
    from tests.conftest import _client_for

    seed = tmp_path / "seed.geojson"
    seed.write_text(json.dumps(schema.zones_to_geojson(sample_zones)), encoding="utf-8")
    with _client_for(tmp_path / "a", seed) as without:
        html = without.get("/map").text
        assert "tianditu" not in html and "OpenStreetMap" in html
    with _client_for(tmp_path / "b", seed, tianditu_token="test-key-123") as with_token:
        html = with_token.get("/map").text
        assert "vec_w" in html and "img_w" in html and "tk=test-key-123" in html
        for name in ("天地图 矢量", "天地图 影像"):  # layer control labels, JSON-escaped in the script
            assert json.dumps(name)[1:-1] in html


def test_page_is_cached_per_version_with_etag_and_gzip(sample_client):
    first = sample_client.get("/map", headers={"Accept-Encoding": "gzip"})
    assert first.headers["content-encoding"] == "gzip"
    again = sample_client.get("/map", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert sample_client.get("/map?lang=en").headers["etag"] != first.headers["etag"]


# ---------------------------------------------------------------- display geometry


def _wiggly_pair():
    """Two zones sharing a wiggly edge (a coverage), 2 km wide, near 门头沟."""
    xs = np.linspace(116.0, 116.02, 200)
    edge = [(x, 40.0 + 0.0002 * np.sin(i / 3)) for i, x in enumerate(xs)]
    south = shapely.Polygon([(116.0, 39.98), (116.02, 39.98), *reversed(edge)])
    north = shapely.Polygon([*edge, (116.02, 40.02), (116.0, 40.02)])
    return schema.zones_from_records([make_zone("t-south", south), make_zone("t-north", north)])


def test_display_geometry_has_fewer_vertices_and_stays_valid_and_close():
    zones = _wiggly_pair()
    display = display_geometry(zones, 10.0)
    assert vertex_count(display) < vertex_count(zones) / 3
    assert display.geometry.is_valid.all() and not display.geometry.is_empty.any()
    full_m, shown_m = crs.to_metric(zones.geometry.values), crs.to_metric(display.geometry.values)
    assert (shapely.hausdorff_distance(full_m, shown_m) <= 10.0 + 1.5).all()  # tolerance + rounding


def test_display_geometry_keeps_shared_edges_shared():
    display = display_geometry(_wiggly_pair(), 10.0)
    metric = crs.to_metric(display.geometry.values)
    gap_or_overlap = shapely.area(shapely.intersection(*metric))
    assert gap_or_overlap < 1.0  # m²: no overlap
    assert shapely.area(shapely.union_all(metric)) == pytest.approx(
        shapely.area(shapely.union_all(crs.to_metric(_wiggly_pair().geometry.values))), rel=1e-3)


def test_display_geometry_never_changes_the_zones_it_is_given(sample_zones):
    before = sample_zones.geometry.copy()
    display_geometry(sample_zones, 500.0)
    assert before.geom_equals_exact(sample_zones.geometry, tolerance=0).all()


def test_display_geometry_never_erases_a_small_zone():
    tiny = schema.zones_from_records([make_zone("t-tiny", shapely.box(116.0, 40.0, 116.0001, 40.0001))])
    display = display_geometry(tiny, 50.0)  # tolerance far larger than the 8 m zone
    assert not display.geometry.is_empty.any() and display.geometry.is_valid.all()


def test_served_page_carries_simplified_not_full_geometry(client, bundled_zones):
    html = client.get("/map").text
    shown = len(COORD.findall(html))
    assert 0 < shown < vertex_count(bundled_zones) / 2


# ---------------------------------------------------------------- standalone export


def test_standalone_export_inlines_everything(sample_zones):
    html = standalone_html(sample_zones, lang="en")
    assert not SCRIPT_SRC.findall(html), "scripts must be inline"
    assert [u for u in LINK_HREF.findall(html) if not u.startswith("data:")] == []
    assert all(u.startswith(("data:", "#")) for u in CSS_URL.findall(html)), "CSS images must be data: URIs"
    assert "L.Map" in html or "leaflet" in html.lower()
    assert "offline export without the lookup service" in html
    assert '"api": null' in html


def test_cli_map_writes_a_self_contained_file_from_the_store(tmp_path, sample_zones):
    from geo.store import ZoneStore

    ZoneStore(tmp_path / "z.gpkg").save(sample_zones, action="init")
    out = tmp_path / "map.html"
    result = run_cli("map", "--out", str(out), "--lang", "en", "--store", str(tmp_path / "z.gpkg"))
    assert result.returncode == 0, result.stderr
    html = out.read_text(encoding="utf-8")
    assert '<html lang="en">' in html and not SCRIPT_SRC.findall(html)
    assert "t-holed" in html and "3 zones" in html
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temporary left behind


def test_cli_map_refuses_bad_language_and_missing_folder_without_writing(tmp_path, sample_zones):
    from geo.store import ZoneStore

    ZoneStore(tmp_path / "z.gpkg").save(sample_zones, action="init")
    store = ("--store", str(tmp_path / "z.gpkg"))
    bad_lang = run_cli("map", "--out", str(tmp_path / "m.html"), "--lang", "fr", *store)
    assert bad_lang.returncode == 2 and "--lang" in bad_lang.stderr
    no_dir = run_cli("map", "--out", str(tmp_path / "nope" / "m.html"), *store)
    assert no_dir.returncode == 2 and "existing folder" in no_dir.stderr
    assert not (tmp_path / "m.html").exists()


def test_panel_script_has_every_ui_text_in_both_languages():
    from maps.assets import template_text

    js = template_text("panel.js")
    blocks = re.search(r"zh: \{(.*?)\n    \},\n    en: \{(.*?)\n    \}", js, re.S)
    zh_keys, en_keys = (set(re.findall(r"(\w+): \"", block)) for block in blocks.groups())
    assert zh_keys == en_keys and len(zh_keys) > 40
    used = set(re.findall(r"\bt\(\"(\w+)\"\)", js)) | set(re.findall(r"row\(\"(\w+)\"", js))
    assert used <= zh_keys, used - zh_keys


def test_ban_zones_and_red_lines_have_clearly_different_colours():
    import colorsys

    def hue(colour: str) -> float:
        r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
        return colorsys.rgb_to_hsv(r, g, b)[0] * 360

    from geo.schema import LAYERS

    a, b = hue(LAYERS["livestock_ban"].color), hue(LAYERS["eco_redline"].color)
    assert min(abs(a - b), 360 - abs(a - b)) >= 30  # red vs magenta, not two near-identical reds
