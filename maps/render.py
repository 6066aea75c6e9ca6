"""The map page: a folium Map of every zone layer plus the side panel, as one HTML page.

``build_map`` takes zones already simplified for display (``maps.simplify``) and returns
the folium Map; ``render_html`` turns it into the page. The same page is served at
``GET /map`` (assets linked from ``static/vendor/``, lookups through the API) and written
by ``zoning map --out`` (assets inlined, no service: it opens from disk with no network).

The browser never does coordinate maths: typed coordinates go to ``/v1/check`` with their
CRS, and the marker goes where the answer's WGS84 point says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape

import folium
import folium.plugins
import geopandas as gpd
import jinja2
import numpy as np
import shapely
from branca.element import MacroElement

from geo.activities import catalogue
from geo.schema import ACCURACY, ACCURACY_TEXT, LAYERS, POINT_LAYERS, zone_properties
from maps.assets import RawHtml, localise, script_tag, style_tag, template_text
from maps.basemaps import OSM, OSM_ATTR, TIANDITU_ATTR, tianditu_url
from maps.context import DistrictContext, district_context
from maps.overlays import district_shapes, neighbour_labels, neighbours, undrawn_by_district, zone_flags
from maps.simplify import display_geometry
from maps.tile_layers import BaseTileLayer, ZoneTileLayer
from maps.tiles import BASE_LAYER, base_tiles

LANGS = ("zh", "en")
CHECK_CRS = ("wgs84", "cgcs2000", "gcj02", "bd09")

# Line pattern per accuracy: anything not official is dashed, coarser = sparser.
DASH = {"official": None, "traced": "12 3", "approximate": "8 4", "schematic": "4 4", "indicative": "2 6"}
# The district base layer: Beijing's district borders, and neighbouring units dashed (reference only).
DISTRICT_OUTLINE = {"color": "#4d4d4d", "weight": 1.2, "opacity": 0.8}
NEIGHBOUR_OUTLINE = {"color": "#7a7a7a", "weight": 1, "dashArray": "6 4", "fill": False}

TEXT = {
    "title": ("分区查询地图 — 北京区级规划分区", "Zoning map — Beijing district zones"),
    "blank": ("空白底图（离线）", "Blank (offline)"),
    "osm": ("OpenStreetMap", "OpenStreetMap"),
    "tdt_vec": ("天地图 矢量", "Tianditu vector"),
    "tdt_img": ("天地图 影像", "Tianditu imagery"),
    "districts": ("区界（参考）", "District boundaries (reference)"),
}



@dataclass(frozen=True)
class MapOptions:
    lang: str = "zh"
    focus_zone: str | None = None       # ?zone=ID: open centred on this zone
    api_base: str | None = "v1/"        # None: standalone export, no lookup service
    tianditu_token: str | None = None   # None: Tianditu basemaps hidden
    data_version: str | None = None
    inline_assets: bool = False         # True: one self-contained file (export)
    tile_url: str | None = None         # "tiles/{layer}/{z}/{x}/{y}.mvt": zones from vector tiles, none inline

    def __post_init__(self):
        if self.lang not in LANGS:
            raise ValueError(f"lang must be one of {', '.join(LANGS)}, got {self.lang!r}")


def text(key: str, lang: str) -> str:
    zh, en = TEXT[key]
    return zh if lang == "zh" else en


def zone_style(layer: str, accuracy: str, whole_district: bool = False, shared_primary: bool = True) -> dict:
    """Colour by layer, dashes by accuracy; administrative units, whole-district
    designations and all but one of the zones sharing a geometry are outlines only, so the
    zones with local restrictions stand out and fills never stack."""
    color = LAYERS[layer].color
    outline_only = layer == "admin" or whole_district or not shared_primary
    return {
        "color": color,
        "weight": 1.5 if outline_only else 2,
        "opacity": 0.9,
        "fillColor": color,
        "fillOpacity": 0.0 if outline_only else (0.7 if layer in POINT_LAYERS else 0.15),
        "dashArray": DASH.get(accuracy),
    }


def layer_order(zones: gpd.GeoDataFrame) -> list[str]:
    """Layers present, biggest total extent first, so small zones are drawn on top."""
    present = [layer for layer in LAYERS if (zones["layer"] == layer).any()]
    extent = {layer: float(shapely.area(zones.geometry[zones["layer"] == layer].values).sum()) for layer in present}
    return sorted(present, key=lambda layer: (-extent[layer], list(LAYERS).index(layer)))


def _features(zones: gpd.GeoDataFrame, flags: dict[str, dict] | None = None) -> dict:
    order = np.argsort(-shapely.area(zones.geometry.values), kind="stable")  # parents below children
    features = []
    for row, geom in zip(zones.iloc[order].to_dict("records"), zones.geometry.values[order], strict=True):
        props = {**zone_properties(row), **(flags or {}).get(row["zone_id"], {})}
        features.append({"type": "Feature", "id": row["zone_id"], "properties": props,
                         "geometry": shapely.geometry.mapping(geom)})
    return {"type": "FeatureCollection", "features": features}


def _layer_label(layer: str, count: int, lang: str) -> str:
    spec = LAYERS[layer]
    title = spec.title_zh if lang == "zh" else spec.title_en
    return (f'<span class="zl-swatch" style="border-color:{spec.color};background:{spec.color}33"></span>'
            f'{escape(title)} <span class="zl-count">({count})</span>')


def _bounds(frame: gpd.GeoDataFrame) -> list[list[float]] | None:
    if frame.empty:
        return None
    minx, miny, maxx, maxy = frame.total_bounds
    return [[float(miny), float(minx)], [float(maxy), float(maxx)]]


def _add_basemaps(m: folium.Map, options: MapOptions) -> None:
    lang = options.lang
    folium.FeatureGroup(name=text("blank", lang), overlay=False, show=True).add_to(m)
    folium.TileLayer(OSM, name=text("osm", lang), attr=OSM_ATTR, overlay=False, show=False, max_zoom=19).add_to(m)
    if options.tianditu_token:
        for key, base, labels in (("tdt_vec", "vec", "cva"), ("tdt_img", "img", "cia")):
            group = folium.FeatureGroup(name=text(key, lang), overlay=False, show=False)
            for layer in (base, labels):
                url = tianditu_url(layer, options.tianditu_token)
                folium.TileLayer(url, attr=TIANDITU_ATTR, subdomains="01234567", max_zoom=18,
                                 overlay=False, control=False).add_to(group)
            group.add_to(m)


class PanelInit(MacroElement):
    """Hands the map and its overlays to the side panel script (maps/templates/panel.js)."""

    _template = jinja2.Template("""
        {% macro script(this, kwargs) %}
        L.control.scale({imperial: false, maxWidth: 150}).addTo({{ this.map.get_name() }});
        ZoningMap.init({{ this.map.get_name() }}, {
            {%- for layer, geojson in this.layers.items() %}
            {{ layer|tojson }}: {{ geojson.get_name() }},
            {%- endfor %}
        }, JSON.parse(document.getElementById("zoning-config").textContent));
        {% endmacro %}
    """)

    def __init__(self, m: folium.Map, layers: dict[str, folium.GeoJson]):
        super().__init__()
        self._name = "PanelInit"
        self.map = m
        self.layers = layers


def build_map(zones: gpd.GeoDataFrame, context: DistrictContext | None = None,
              options: MapOptions = MapOptions()) -> folium.Map:
    """The folium Map for ``zones`` (display geometry, WGS84) over optional district context."""
    lang = options.lang
    if options.focus_zone is not None and not (zones["zone_id"] == options.focus_zone).any():
        raise LookupError(f"zone {options.focus_zone!r} not found")
    bounds = _bounds(zones) or [[39.4, 115.4], [41.1, 117.5]]  # Beijing when there are no zones
    centre = [(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2]
    m = folium.Map(location=centre, zoom_start=9, tiles=None, control_scale=False, max_zoom=19)
    m.get_root().title = text("title", lang)
    _add_basemaps(m, options)

    if context is not None:
        group = folium.FeatureGroup(name=text("districts", lang), show=True)
        base = base_tiles() if options.tile_url else None
        if base is not None:
            # Tile mode: the districts and every neighbouring unit from tiles; the page keeps the labels only.
            minx, miny, maxx, maxy = base.bounds
            styles = {"district": {**DISTRICT_OUTLINE, "fill": False, "className": "zoning-districts"},
                      "neighbour": {**NEIGHBOUR_OUTLINE, "className": "zoning-neighbour"}}
            BaseTileLayer(BASE_LAYER, styles, [[miny, minx], [maxy, maxx]], options.tile_url).add_to(group)
        else:
            folium.GeoJson(shapely.geometry.mapping(context.lines), style_function=lambda _f: DISTRICT_OUTLINE,
                           interactive=False, className="zoning-districts", control=False).add_to(group)
        for label in context.labels:
            name = label.name_zh if lang == "zh" else label.name_en.removesuffix(" District")
            folium.Marker([label.lat, label.lon], interactive=False, icon=folium.DivIcon(
                html=f'<span>{escape(name)}</span>', class_name="zoning-district-label", icon_size=(0, 0),
            )).add_to(group)
        # Units outside Beijing, dashed: reference outlines only. Inline, those a zone reaches into
        # (平蓟三); in tile mode all of them, as that choice needs the union of every zone.
        for unit in neighbour_labels() if base is not None else neighbours(zones):
            if "geometry" in unit:
                folium.GeoJson(shapely.geometry.mapping(unit["geometry"]), interactive=False, control=False,
                               className="zoning-neighbour", style_function=lambda _f: NEIGHBOUR_OUTLINE).add_to(group)
            name = unit["name_zh"] if lang == "zh" else unit["name_en"].split(" (")[0]
            folium.Marker([unit["label"][1], unit["label"][0]], interactive=False, icon=folium.DivIcon(
                html=f'<span>{escape(name)}</span>', class_name="zoning-district-label zoning-neighbour-label",
                icon_size=(0, 0))).add_to(group)
        group.add_to(m)

    overlays: dict[str, folium.GeoJson | ZoneTileLayer] = {}
    flags = zone_flags(zones)
    for layer in layer_order(zones):
        subset = zones[zones["layer"] == layer]
        if options.tile_url:
            # fill: VectorGrid starts from L.Path's options, which do not fill.
            styles = {a: {**zone_style(layer, a), "fill": True, "radius": 6,
                          "className": f"zoning-zone zoning-layer-{layer}"}
                      for a in ACCURACY}
            overlays[layer] = ZoneTileLayer(layer, _layer_label(layer, len(subset), lang), styles, _bounds(subset),
                                            options.tile_url)
            overlays[layer].add_to(m)
            continue
        geojson = folium.GeoJson(
            _features(subset, flags),
            name=_layer_label(layer, len(subset), lang),
            style_function=lambda f: zone_style(f["properties"]["layer"], f["properties"]["accuracy"],
                                                f["properties"].get("whole_district", False),
                                                f["properties"].get("shared_primary", True)),
            highlight_function=lambda _f: {"weight": 4, "fillOpacity": 0.3},
            marker=folium.CircleMarker(radius=6, class_name=f"zoning-zone zoning-layer-{layer}")
            if layer in POINT_LAYERS else None,
            on_each_feature=folium.JsCode("ZoningMap.bindZone"),
            className=f"zoning-zone zoning-layer-{layer}",
        )
        geojson.add_to(m)
        overlays[layer] = geojson

    # Collapsed so it never covers a popup; the panel's legend lists the layers anyway.
    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    folium.plugins.Fullscreen(
        position="topleft",
        title="全屏" if lang == "zh" else "Full screen",
        title_cancel="退出全屏" if lang == "zh" else "Exit full screen",
    ).add_to(m)
    folium.plugins.MeasureControl(
        position="topleft", primary_length_unit="meters", secondary_length_unit="kilometers",
        primary_area_unit="sqmeters", secondary_area_unit="hectares",
        localization="cn" if lang == "zh" else "en",
    ).add_to(m)
    folium.plugins.Draw(
        position="topleft", show_geometry_on_click=False,
        draw_options={"polyline": False, "circle": False, "circlemarker": False, "marker": False,
                      "polygon": {"allowIntersection": False, "showArea": False}, "rectangle": {"showArea": False}},
        edit_options={"edit": True, "remove": True},
    ).add_to(m)
    m.fit_bounds(bounds)
    PanelInit(m, overlays).add_to(m)
    return m


def page_config(zones: gpd.GeoDataFrame, options: MapOptions) -> dict:
    """What the panel script needs: language, API, layer titles/colours, accuracy texts, focus."""
    focus = None
    if options.focus_zone is not None:
        focus = {"zone_id": options.focus_zone,
                 "bounds": _bounds(zones[zones["zone_id"] == options.focus_zone])}
    undrawn = undrawn_by_district(zones)
    return {
        "lang": options.lang,
        "api": options.api_base,
        "activities": [{"code": a["code"], "zh": a["name_zh"], "en": a["name_en"]} for a in catalogue().values()],
        "undrawn": undrawn,                          # adcode -> activities an undrawn zone could govern
        "hatch": district_shapes(sorted(undrawn)),   # their outlines, hatched "unknown" by the picker
        "data_version": options.data_version,
        "tiled": options.tile_url is not None,       # zones drawn from vector tiles: popups come from /v1/check
        # Tile mode: zones drawn as outlines (whole-district designations, all but one of a shared
        # shape); few at any scale, so listed here rather than carried in every tile.
        "outline_only": sorted(z for z, f in zone_flags(zones).items()
                               if f["whole_district"] or not f["shared_primary"]) if options.tile_url else [],
        "check_crs": list(CHECK_CRS),
        "layers": {k: {"zh": v.title_zh, "en": v.title_en, "color": v.color} for k, v in LAYERS.items()},
        "accuracy": {k: {"zh": ACCURACY_TEXT[k][0], "en": ACCURACY_TEXT[k][1], "dash": DASH[k]} for k in ACCURACY},
        "focus": focus,
    }


def _panel_html(zones: gpd.GeoDataFrame, options: MapOptions, has_districts: bool) -> str:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(template_text("panel.html"))
    present = layer_order(zones)
    accuracies = [a for a in ACCURACY if (zones["accuracy"] == a).any()] or list(ACCURACY)
    return template.render(
        lang=options.lang, layers=[LAYERS[k] for k in sorted(present, key=list(LAYERS).index)],
        accuracies=[(a, ACCURACY_TEXT[a], DASH[a]) for a in accuracies],
        has_districts=has_districts, standalone=options.api_base is None,
        check_crs=CHECK_CRS, data_version=options.data_version, zone_count=len(zones),
        activities=list(catalogue().values()), covered=_covered(zones, options.lang),
    )


def _covered(zones: gpd.GeoDataFrame, lang: str) -> str:
    """The Beijing districts the zones belong to, by name, for the coverage line."""
    names = dict.fromkeys(n for n, c in zip(zones["district_name"], zones["district_code"], strict=True)
                          if str(c).startswith("11"))
    if lang == "en":
        from maps.overlays import _base
        base = _base()
        english = {} if base is None else dict(zip(base["name_zh"], base["name_en"], strict=True))
        return ", ".join(english.get(n, n).removesuffix(" District") for n in names)
    return "、".join(names)


def render_html(zones: gpd.GeoDataFrame, context: DistrictContext | None = None,
                options: MapOptions = MapOptions()) -> str:
    """The complete page for display-ready ``zones`` (see ``maps.simplify.display_geometry``)."""
    m = build_map(zones, context, options)
    localise(m, inline=options.inline_assets)
    figure = m.get_root()
    # An empty icon: no /favicon.ico request (a 404 in the console) and nothing to fetch offline.
    figure.header.add_child(RawHtml('<link rel="icon" href="data:,">'), name="zoning_icon")
    figure.header.add_child(RawHtml(style_tag(template_text("panel.css"))), name="zoning_panel_css")
    figure.header.add_child(RawHtml(script_tag(template_text("panel.js"))), name="zoning_panel_js")
    config = json.dumps(page_config(zones, options), ensure_ascii=False).replace("</", "<\\/")
    figure.html.add_child(RawHtml(f'<script type="application/json" id="zoning-config">{config}</script>'),
                          name="zoning_config")
    figure.html.add_child(RawHtml(_panel_html(zones, options, context is not None)), name="zoning_panel")
    html = figure.render()
    return html.replace("<html>", f'<html lang="{"zh-CN" if options.lang == "zh" else "en"}">', 1)


def standalone_html(zones: gpd.GeoDataFrame, lang: str = "zh", data_version: str | None = None) -> str:
    """One self-contained file for full-precision ``zones``: assets inlined, opens offline from disk.

    It has no lookup service, so the panel says to use ``zoning serve`` for point and site checks.
    """
    options = MapOptions(lang=lang, api_base=None, data_version=data_version, inline_assets=True)
    return render_html(display_geometry(zones), district_context(), options)
