"""The map's vector-tile mode: one Leaflet.VectorGrid layer per zone layer, fed by ``/tiles``.

Above ``ZONING_MAP_INLINE_MAX_VERTICES`` the map page carries no zone geometry: each layer
is a ``L.vectorGrid.protobuf`` over ``tiles/{layer}/{z}/{x}/{y}.mvt`` (relative, so a path
prefix works), drawn as SVG in the overlay pane with the same colours and accuracy dashes as
the inline layers (``style`` per accuracy, from ``maps.render.zone_style``), asking only for
tiles inside the layer's extent (GridLayer ``bounds``: 8 layers over Beijing's first view
asked 200 tiles without it, most of them empty). The zones are interactive for hover only:
the tooltip (names, layer, accuracy when not official) is built from the properties every
tile already carries (``maps.tiles.PROPERTIES``) and the page's layer and accuracy texts, so
neither the tiles nor the page grow for it. A click goes on to the map, which asks
``/v1/check`` and shows the answer's zones in a popup and the panel (``maps/templates/panel.js``).

``BaseTileLayer`` draws the district base layer (``tiles/districts/…``: Beijing's districts,
and the neighbouring counties dashed) under the zones, so the tiled page inlines no outline.

Tiles are requested up to ``MAX_NATIVE_ZOOM`` and scaled beyond it: at z16 a tile unit is
~0.6 m in Beijing, finer than any zone drawn from text.
"""

from __future__ import annotations

import folium
import jinja2

VECTORGRID_JS = ("leaflet_vectorgrid", "static/vendor/leaflet.vectorgrid-1.3.0/Leaflet.VectorGrid.bundled.min.js")
MAX_NATIVE_ZOOM = 16
TILE_URL = "tiles/{layer}/{z}/{x}/{y}.mvt"


class ZoneTileLayer(folium.map.Layer):
    """A zone layer drawn from vector tiles; ``styles`` maps each accuracy to a Leaflet path style."""

    _template = jinja2.Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.vectorGrid.protobuf({{ this.url|tojson }}, {
            rendererFactory: L.svg.tile, interactive: {{ this.hover|tojson }}, pane: "overlayPane",
            maxNativeZoom: {{ this.max_native_zoom }}, maxZoom: 19, bounds: {{ this.bounds|tojson }},
            vectorTileLayerStyles: {
                {{ this.layer|tojson }}: ZoningMap.{{ this.style_function }}({{ this.layer|tojson }}, {{ this.styles|tojson }})
            }
        });
        {%- if this.hover %}
        ZoningMap.hoverTiles({{ this.get_name() }});
        {%- endif %}
        {% endmacro %}
    """)
    default_js = [VECTORGRID_JS]
    style_function = "tileStyle"  # panel.js: (layer id, styles by accuracy) -> VectorGrid style function
    hover = True                  # a tooltip on hover (the features are interactive)

    def __init__(self, layer: str, name: str, styles: dict[str, dict], bounds: list[list[float]],
                 url_template: str = TILE_URL, control: bool = True):
        super().__init__(name=name, overlay=True, control=control, show=True)
        self._name = type(self).__name__
        self.layer = layer
        self.styles = styles
        self.url = url_template.replace("{layer}", layer)
        self.bounds = bounds  # [[south, west], [north, east]]: no tile is asked for outside the layer
        self.max_native_zoom = MAX_NATIVE_ZOOM


class BaseTileLayer(ZoneTileLayer):
    """The district base layer from ``tiles/districts/…``, not interactive, each unit styled by
    its ``kind`` (``styles``: "district" and "neighbour" to a Leaflet path style); added to the
    district group, so the layer control shows and hides it with the labels."""

    style_function = "baseStyle"
    hover = False

    def __init__(self, layer: str, styles: dict[str, dict], bounds: list[list[float]], url_template: str = TILE_URL):
        super().__init__(layer, layer, styles, bounds, url_template, control=False)
