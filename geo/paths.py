"""Where the bundled data lives, relative to the repository (editable install)."""

from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[1]
BOUNDARIES_DIR = REPO_DIR / "data" / "boundaries"
BASE_DIR = BOUNDARIES_DIR / "base"
RECIPES_DIR = BOUNDARIES_DIR / "recipes"
BUNDLED_ZONES = BOUNDARIES_DIR / "zones.geojson"
DEFAULT_STORE = REPO_DIR / "var" / "zones.gpkg"
