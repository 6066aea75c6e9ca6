"""Browser assets from local files instead of folium's CDN URLs.

folium elements declare the scripts and stylesheets they need as CDN URLs
(``default_js`` / ``default_css``). ``localise(map, inline=...)`` swaps every one of them
for a vendored file in ``maps/static/vendor`` — linked under ``static/vendor/`` for the
served page, or inlined (images as data: URIs) for the standalone export — so the page
works on a network with no internet. An unknown URL is an error, never a silent CDN load.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from html import escape
from pathlib import Path

import folium
from branca.element import Element, Figure

from maps import TEMPLATES_DIR, VENDOR_DIR

# Relative, so the page also works when the app is served under a path prefix.
VENDOR_URL = "static/vendor/"

# folium's name for each asset it declares -> vendored file (relative to VENDOR_DIR). Keyed
# by name, not URL, so no CDN address appears in served code; None: not needed, dropped —
# jQuery, Bootstrap, glyphicons, Font Awesome and awesome-markers only serve folium's icon
# markers, which the map does not use. The vendored versions are listed in the vendor README.
FOLIUM_ASSETS: dict[str, str | None] = {
    "leaflet": "leaflet-1.9.4/leaflet.js",
    "leaflet_css": "leaflet-1.9.4/leaflet.css",
    "leaflet_draw_js": "leaflet-draw-1.0.4/leaflet.draw.js",
    "leaflet_draw_css": "leaflet-draw-1.0.4/leaflet.draw.css",
    "leaflet_measure_js": "leaflet-measure-2.1.7/leaflet-measure.min.js",
    "leaflet_measure_css": "leaflet-measure-2.1.7/leaflet-measure.css",
    "Control.Fullscreen.js": "leaflet.fullscreen-3.0.0/Control.FullScreen.js",
    "Control.FullScreen.css": "leaflet.fullscreen-3.0.0/Control.FullScreen.css",
    # Not folium's: the map's vector-tile mode (maps.tile_layers) declares it under this name.
    "leaflet_vectorgrid": "leaflet.vectorgrid-1.3.0/Leaflet.VectorGrid.bundled.min.js",
    "jquery": None,
    "bootstrap": None,
    "awesome_markers": None,
    "bootstrap_css": None,
    "glyphicons_css": None,
    "awesome_markers_font_css": None,
    "awesome_markers_css": None,
    "awesome_rotate_css": None,
}

_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""")


class UnvendoredAssetError(RuntimeError):
    """folium asked for a CDN URL that has no vendored copy."""


class RawHtml(Element):
    """HTML emitted as is (branca's Element would run it through Jinja)."""

    def __init__(self, html: str):
        super().__init__()
        self.html = html

    def render(self, **kwargs) -> str:
        return self.html


def _elements(root) -> list:
    out, stack = [], [root]
    while stack:
        element = stack.pop(0)
        out.append(element)
        stack[0:0] = list(element._children.values())
    return out


def _vendored(name: str, url: str) -> str | None:
    if name not in FOLIUM_ASSETS:
        raise UnvendoredAssetError(
            f"folium wants {name} ({url}), which is not vendored: add it to maps/static/vendor and maps/assets.py")
    return FOLIUM_ASSETS[name]


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def inline_css(path: Path) -> str:
    """A stylesheet with its relative url(...) references embedded as data: URIs."""
    def embed(match: re.Match) -> str:
        ref = match.group(2)
        if ref.startswith(("#", "data:")):
            return match.group(0)
        return f'url("{_data_uri((path.parent / ref).resolve())}")'
    return _CSS_URL.sub(embed, path.read_text(encoding="utf-8"))


def script_tag(js: str) -> str:
    return "<script>" + js.replace("</script", "<\\/script") + "</script>"


def style_tag(css: str) -> str:
    return "<style>" + css.replace("</style", "<\\/style") + "</style>"


def _asset_html(relative: str, inline: bool) -> str:
    path = VENDOR_DIR / relative
    if relative.endswith(".js"):
        if inline:
            return script_tag(path.read_text(encoding="utf-8"))
        return f'<script src="{escape(VENDOR_URL + relative)}"></script>'
    if inline:
        return style_tag(inline_css(path))
    return f'<link rel="stylesheet" href="{escape(VENDOR_URL + relative)}"/>'


def localise(m: folium.Map, inline: bool) -> list[str]:
    """Replace every folium CDN asset under ``m`` with its vendored file; returns the files used.

    Call after the map is complete, before rendering. Scripts keep folium's order
    (Leaflet first, then plugins), stylesheets likewise.
    """
    scripts: list[str] = []
    styles: list[str] = []
    for element in _elements(m):
        for attr, bucket in (("default_js", scripts), ("default_css", styles)):
            for name, url in getattr(element, attr, None) or []:
                relative = _vendored(name, url)
                if relative and relative not in bucket:
                    bucket.append(relative)
            if getattr(element, attr, None):
                setattr(element, attr, [])  # instance attribute: the class default stays intact
    figure = m.get_root()
    assert isinstance(figure, Figure), "add the map to a Figure before localising"
    for i, relative in enumerate(styles + scripts):
        figure.header.add_child(RawHtml(_asset_html(relative, inline)), name=f"vendor_{i:02d}")
    return styles + scripts


def template_text(name: str) -> str:
    """One of our own page assets (maps/templates/)."""
    return (TEMPLATES_DIR / name).read_text(encoding="utf-8")
