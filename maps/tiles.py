"""Mapbox vector tiles of one zone layer, ``z/x/y`` in the Web Mercator tile grid.

In-process: the layer's zones are projected to EPSG:3857 once per data version (display
only: areas and distances never use Web Mercator), found per tile by an STRtree, clipped
to the tile plus a 64-pixel buffer, simplified to a quarter pixel and encoded by
``mapbox-vector-tile`` (4096 units per tile side, y down). A PostGIS store answers the same
request with ``ST_AsMVT`` in the database (``geo.store.postgis``); both carry the same
properties, so the map cannot tell them apart.

The district base layer (Beijing's districts and the neighbouring counties, a file shipped with
the package, not zones of the store) is tiled by the same in-process tiler on every backend,
as the layer ``districts`` (``BASE_LAYER``): the tiled map draws it instead of inlining it.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from geo.base import DISTRICTS_PATH, district_layer
from geo.crs import to_web_mercator

EXTENT = 4096
BUFFER = 64  # tile units: lines stay continuous across tile edges
WORLD = 20037508.342789244  # half the Web Mercator world, metres
MAX_ZOOM = 22
PROPERTIES = ("zone_id", "layer", "name_zh", "name_en", "district_code", "accuracy", "effective_from",
              "effective_to")
BASE_LAYER = "districts"  # the district base layer's tile layer id (not a zone layer)
BASE_PROPERTIES = ("adcode", "name_zh", "name_en", "kind")  # kind: "district" (Beijing) or "neighbour"
BEIJING_PREFIX = "11"


class TileError(ValueError):
    """z/x/y outside the tile grid."""


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of tile z/x/y in EPSG:3857 metres."""
    if not 0 <= z <= MAX_ZOOM or not (0 <= x < 2 ** z and 0 <= y < 2 ** z):
        raise TileError(f"tile {z}/{x}/{y} is outside the grid (zoom 0–{MAX_ZOOM}, x and y 0–2^zoom−1)")
    size = 2 * WORLD / 2 ** z
    return -WORLD + x * size, WORLD - (y + 1) * size, -WORLD + (x + 1) * size, WORLD - y * size


@dataclass
class LayerTiler:
    """A layer's zones in EPSG:3857 with their tree, built once per data version."""

    geoms: np.ndarray
    properties: list[dict]
    tree: shapely.STRtree

    @classmethod
    def of(cls, zones: gpd.GeoDataFrame, layer: str) -> LayerTiler:
        return cls.of_frame(zones[zones["layer"] == layer], PROPERTIES)

    @classmethod
    def of_frame(cls, frame: gpd.GeoDataFrame, properties: tuple[str, ...]) -> LayerTiler:
        """Every row of ``frame`` (WGS84), carrying the columns ``properties`` (nulls left out)."""
        geoms = np.asarray(to_web_mercator(np.asarray(frame.geometry.values, dtype=object)), dtype=object)
        rows = [{k: v for k, v in zip(properties, row, strict=True) if v is not None and v == v}
                for row in frame[list(properties)].itertuples(index=False)]
        return cls(geoms, rows, shapely.STRtree(geoms))

    def tile(self, z: int, x: int, y: int, name: str) -> bytes:
        """The MVT bytes of tile z/x/y (an empty tile when no zone reaches it)."""
        import mapbox_vector_tile

        minx, miny, maxx, maxy = tile_bounds(z, x, y)
        pad = (maxx - minx) * BUFFER / EXTENT
        box = (minx - pad, miny - pad, maxx + pad, maxy + pad)
        hits = np.sort(self.tree.query(shapely.box(*box), predicate="intersects"))
        features = []
        if hits.size:
            unit = (maxx - minx) / EXTENT
            clipped = shapely.simplify(shapely.clip_by_rect(self.geoms[hits], *box), unit / 4, preserve_topology=True)
            for k, geom in zip(hits.tolist(), clipped, strict=True):
                if geom is None or geom.is_empty:
                    continue
                pixel = shapely.transform(geom, lambda c: np.column_stack(
                    [(c[:, 0] - minx) / unit, (maxy - c[:, 1]) / unit]))
                features.append({"geometry": pixel, "properties": self.properties[k]})
        return mapbox_vector_tile.encode([{"name": name, "features": features}],
                                         default_options={"y_coord_down": True, "extents": EXTENT})


@dataclass(frozen=True)
class BaseTiles:
    """The district base layer's tiler, with a tag of the file's content (the tiles' ETag)."""

    tiler: LayerTiler
    tag: str
    bounds: tuple[float, float, float, float]  # WGS84 (minx, miny, maxx, maxy) of the units drawn


def base_tiles(path: Path = DISTRICTS_PATH) -> BaseTiles | None:
    """Tiles of Beijing's districts and the neighbouring counties (the whole-province outline
    is left out: the districts draw it), or None when the base layer file is missing."""
    path = Path(path)
    if not path.exists():
        return None
    return _base_tiles(path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _base_tiles(path: Path, mtime_ns: int) -> BaseTiles:
    frame = district_layer(path)
    units = frame[frame["level"] != "province"].to_crs("EPSG:4326")
    units = units.assign(kind=np.where(units["adcode"].astype(str).str.startswith(BEIJING_PREFIX),
                                       "district", "neighbour"))
    tag = "base-" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return BaseTiles(LayerTiler.of_frame(units, BASE_PROPERTIES), tag, tuple(float(v) for v in units.total_bounds))


def lonlat_tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The tile x, y containing a WGS84 point at zoom z (for tests and the map's first view)."""
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)
