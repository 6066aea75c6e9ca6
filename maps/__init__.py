"""Rendering: the map page, its assets and display geometry (imports ``geo``, never ``api``).

The paths are here, not in ``maps.assets``, so the server can mount the vendored files
without importing folium (~0.4 s) before the first page is asked for.
"""

from pathlib import Path

VENDOR_DIR = Path(__file__).resolve().parent / "static" / "vendor"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
