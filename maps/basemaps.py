"""Basemap tile sources the map and the workbench may offer: URL templates and attributions.

Separate from ``maps.render`` so the workbench page can name them without importing folium.
No basemap is shown unless the user picks it: the default is the blank offline basemap, and
Tianditu appears only when the service has a Tianditu key.
"""

TIANDITU = "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0" \
           "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={token}"
TIANDITU_ATTR = '&copy; <a href="https://www.tianditu.gov.cn/">天地图 Tianditu</a> (GS(2024)0568号)'
OSM = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTR = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'


def tianditu_url(layer: str, token: str) -> str:
    """The Leaflet URL template of Tianditu's Web-Mercator ``layer`` (vec, cva, img, cia) with ``token``."""
    return TIANDITU.replace("{layer}", layer).replace("{token}", token)
