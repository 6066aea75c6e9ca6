"""Where the bundled data lives: ``data/`` in a checkout (editable install), or the ``zoning_data``
package it is shipped as by ``pip install .`` (setup.py maps one to the other).

The default zone store is ``var/zones.gpkg`` in a checkout; an installed ``zoning`` has no
writable home of its own, so it uses ``$XDG_DATA_HOME/zoning/zones.gpkg`` (default
``~/.local/share/zoning/zones.gpkg``). ``ZONING_STORE`` overrides both. Files derived from
the bundled data (a binary copy of the district layer) are cached in ``var/cache`` or
``$XDG_CACHE_HOME/zoning``.
"""

import importlib.util
import os
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    checkout = REPO_DIR / "data"
    if (checkout / "boundaries").is_dir():
        return checkout
    spec = importlib.util.find_spec("zoning_data")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return checkout  # neither: the paths below do not exist and the callers say so


def _default_store() -> Path:
    if (REPO_DIR / "data" / "boundaries").is_dir():
        return REPO_DIR / "var" / "zones.gpkg"
    home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(home) / "zoning" / "zones.gpkg"


def _cache_dir() -> Path:
    if (REPO_DIR / "data" / "boundaries").is_dir():
        return REPO_DIR / "var" / "cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")) / "zoning"


DATA_DIR = _data_dir()
BOUNDARIES_DIR = DATA_DIR / "boundaries"
BASE_DIR = BOUNDARIES_DIR / "base"
RECIPES_DIR = BOUNDARIES_DIR / "recipes"
BUNDLED_ZONES = BOUNDARIES_DIR / "zones.geojson"
DEFAULT_STORE = _default_store()
# Files derived from the bundled data, rebuilt when missing (``ZONING_CACHE_DIR`` overrides).
CACHE_DIR = Path(os.environ.get("ZONING_CACHE_DIR") or _cache_dir())
