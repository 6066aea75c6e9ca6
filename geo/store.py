"""ZoneStore: the zone table in a GeoPackage, versioned, written atomically.

The file is an ordinary GeoPackage that QGIS opens directly:

* ``zones``          the current zone table (what the service answers from);
* ``zones_v0001``…   one full snapshot per data version (zone tables are small: a
                      snapshot costs kilobytes and makes history, diff and rollback trivial);
* ``versions``       one row per version: who, when, what, source file and hash, summary.

Every write copies the file to a temporary sibling, appends there, fsyncs and renames
over the original, so a crash or a validation error at any point leaves the previous
file intact. A lock file serialises writers. The interface is narrow (load, save,
versions) so that a PostGIS backend can implement the same methods.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from geo import schema
from geo.crs import geodesic_area_m2

CURRENT_LAYER = "zones"
VERSIONS_LAYER = "versions"
# GeoPackage 1.3 is what Debian's GDAL and older QGIS read without warnings.
DATASET_OPTIONS = {"VERSION": "1.3"}


class StoreError(RuntimeError):
    """The store file is missing, unreadable or has no such version."""


@dataclass(frozen=True)
class VersionInfo:
    version: int
    data_version: str  # "v3-1a2b3c4d": number plus content hash, echoed by the API
    created_at: str
    author: str
    action: str  # init | build | import | edit | rollback
    source: str | None
    source_sha256: str | None
    zone_count: int
    summary: str  # JSON: {"added": [...], "changed": [...], "removed": [...]}
    note: str | None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["summary"] = json.loads(self.summary) if self.summary else {}
        return d


def content_hash(zones: gpd.GeoDataFrame) -> str:
    """SHA-256 of the canonical GeoJSON of the zones (order-independent)."""
    ordered = zones.sort_values("zone_id") if len(zones) else zones
    text = json.dumps(schema.zones_to_geojson(ordered), ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def with_computed_area(zones: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Set area_km2 to the geodesic (GRS80) area of each polygon; None for points."""
    out = zones.copy()
    areas = geodesic_area_m2(out.geometry.values) / 1e6
    polygonal = out.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    out["area_km2"] = [round(float(a), 4) if p else None for a, p in zip(areas, polygonal, strict=True)]
    out["area_km2"] = out["area_km2"].astype(float)
    return out


def _features_by_id(zones: gpd.GeoDataFrame) -> dict[str, dict[str, Any]]:
    """GeoJSON features by zone id with the geometry as comparable text: rounded like the
    GeoJSON, then in normal form, so the same shape drawn from another start vertex (as GIS
    tools re-save rings), or a one-part MultiPolygon (as the GeoPackage stores a Polygon),
    is not a change."""
    features = schema.zones_to_geojson(zones)["features"]
    geoms = shapely.set_precision(np.asarray(zones.geometry.values, dtype=object), 1e-7)
    one_part = np.isin(shapely.get_type_id(geoms), (4, 5, 6)) & (shapely.get_num_geometries(geoms) == 1)
    geoms = shapely.normalize(np.where(one_part, shapely.get_geometry(geoms, 0), geoms))
    for feature, wkt in zip(features, shapely.to_wkt(geoms), strict=True):
        feature["geometry"] = wkt
    return {f["id"]: f for f in features}


def diff_zones(old: gpd.GeoDataFrame, new: gpd.GeoDataFrame) -> dict[str, list[str]]:
    """Zone ids added, removed and changed (any attribute or the geometry) from old to new."""
    old_by_id = _features_by_id(old)
    new_by_id = _features_by_id(new)
    return {
        "added": sorted(set(new_by_id) - set(old_by_id)),
        "removed": sorted(set(old_by_id) - set(new_by_id)),
        "changed": sorted(i for i in set(old_by_id) & set(new_by_id) if old_by_id[i] != new_by_id[i]),
    }


def diff_details(old: gpd.GeoDataFrame, new: gpd.GeoDataFrame) -> dict[str, Any]:
    """diff_zones with each zone's name, layer, district and geodesic area before/after,
    the fields that changed, and the total area of each table (km²)."""
    ids = diff_zones(old, new)
    old_a, new_a = (with_computed_area(f) for f in (old, new))
    old_f, new_f = _features_by_id(old_a), _features_by_id(new_a)

    def row(feature: dict[str, Any]) -> dict[str, Any]:
        p = feature["properties"]
        return {k: p[k] for k in ("zone_id", "layer", "district_code", "name_zh", "area_km2")}

    changed = []
    for zid in ids["changed"]:
        before, after = old_f[zid]["properties"], new_f[zid]["properties"]
        fields = [k for k in schema.ZONE_COLUMNS if k != "area_km2" and before[k] != after[k]]
        if old_f[zid]["geometry"] != new_f[zid]["geometry"]:
            fields.append("geometry")
        a0, a1 = before["area_km2"], after["area_km2"]
        changed.append({**row(new_f[zid]), "area_before_km2": a0, "area_after_km2": a1,
                        "area_delta_km2": None if a0 is None or a1 is None else round(a1 - a0, 4),
                        "fields": fields})
    return {
        "added": [row(new_f[i]) for i in ids["added"]],
        "removed": [row(old_f[i]) for i in ids["removed"]],
        "changed": changed,
        "area_km2": {"before": round(float(old_a["area_km2"].sum()), 4),
                     "after": round(float(new_a["area_km2"].sum()), 4)},
    }


def _to_file_frame(zones: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = zones.copy()
    out["rules"] = [json.dumps(r, ensure_ascii=False) for r in out["rules"]]
    return out


def _from_file_frame(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    frame = frame.copy()
    frame["rules"] = [json.loads(r) if isinstance(r, str) and r else [] for r in frame["rules"]]
    for col in schema.FLOAT_COLUMNS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    if frame.crs is None or not frame.crs.equals(schema.CRS):
        frame = frame.set_crs(schema.CRS, allow_override=True)
    return schema.normalize_zones(frame)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ZoneStore:
    """Versioned zone table in one GeoPackage file."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    # -- reading -------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.path.exists()

    def _require(self) -> None:
        if not self.path.exists():
            raise StoreError(f"zone store {self.path} does not exist; run `zoning serve` or `zoning info` "
                             "once to create it from the bundled zones")

    def load(self, version: int | None = None) -> gpd.GeoDataFrame:
        """The zone table (current, or the snapshot of ``version``), validated."""
        self._require()
        layer = CURRENT_LAYER if version is None else self._snapshot_layer(version)
        try:
            frame = pyogrio.read_dataframe(self.path, layer=layer)
        except pyogrio.errors.DataLayerError as exc:
            raise StoreError(f"version {version} is not in {self.path}") from exc
        zones = _from_file_frame(frame)
        schema.validate_zones(zones)
        return zones

    def versions(self) -> list[VersionInfo]:
        self._require()
        frame = pyogrio.read_dataframe(self.path, layer=VERSIONS_LAYER)
        rows = frame.sort_values("version").to_dict("records")
        return [VersionInfo(**{k: (None if pd.isna(v) else v) for k, v in r.items()}) for r in rows]

    def current(self) -> VersionInfo:
        return self.versions()[-1]

    def version(self, number: int) -> VersionInfo:
        for info in self.versions():
            if info.version == number:
                return info
        raise StoreError(f"no version {number} in {self.path}; versions are "
                         f"{', '.join(str(v.version) for v in self.versions())}")

    @staticmethod
    def _snapshot_layer(version: int) -> str:
        return f"zones_v{version:04d}"

    # -- writing -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def save(self, zones: gpd.GeoDataFrame, *, action: str, author: str = "zoning",
             source: str | None = None, source_sha256: str | None = None,
             note: str | None = None, base_version: int | None = None) -> VersionInfo:
        """Validate ``zones`` and write them as a new current version; atomic.

        ``base_version``: the version ``zones`` were derived from; if another writer got in
        first, refuse instead of silently undoing its change.
        """
        zones = with_computed_area(schema.normalize_zones(zones))
        schema.validate_zones(zones)
        with self._locked():
            if base_version is not None and self.exists() and self.current().version != base_version:
                raise StoreError(f"the store changed while this change was prepared (version "
                                 f"{self.current().version} is current, the change was based on "
                                 f"{base_version}); run it again")
            previous = self.load() if self.exists() else schema.empty_zones()
            number = self.current().version + 1 if self.exists() else 1
            info = VersionInfo(
                version=number,
                data_version=f"v{number}-{content_hash(zones)[:8]}",
                created_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
                author=author, action=action, source=source, source_sha256=source_sha256,
                zone_count=len(zones), summary=json.dumps(diff_zones(previous, zones), ensure_ascii=False),
                note=note,
            )
            self._write_atomically(zones, info)
        return info

    def rollback(self, version: int, *, author: str = "zoning") -> VersionInfo:
        """Make the snapshot of ``version`` current again, as a new version (history kept)."""
        zones = self.load(version)
        return self.save(zones, action="rollback", author=author, note=f"rollback to version {version}")

    def _write_atomically(self, zones: gpd.GeoDataFrame, info: VersionInfo) -> None:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp.gpkg", dir=self.path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the store is meant to be opened in QGIS by others too
        try:
            if self.exists():
                shutil.copyfile(self.path, tmp)
                versions = pd.DataFrame([asdict(v) for v in self.versions()] + [asdict(info)])
            else:
                tmp.unlink()
                versions = pd.DataFrame([asdict(info)])
            file_frame = _to_file_frame(zones)
            for layer in (CURRENT_LAYER, self._snapshot_layer(info.version)):
                pyogrio.write_dataframe(file_frame, tmp, layer=layer, driver="GPKG",
                                        geometry_type="Unknown", dataset_options=DATASET_OPTIONS)
            pyogrio.write_dataframe(versions, tmp, layer=VERSIONS_LAYER, driver="GPKG",
                                    dataset_options=DATASET_OPTIONS)
            _fsync_file(tmp)
            os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)
        finally:
            tmp.unlink(missing_ok=True)

    def cleanup_temporary_files(self) -> list[Path]:
        """Remove temp files left by a writer that was killed mid-write."""
        stale = list(self.path.parent.glob(f".{self.path.name}.*.tmp.gpkg"))
        for p in stale:
            p.unlink(missing_ok=True)
        return stale


def open_store(path: str | os.PathLike[str], seed: str | os.PathLike[str]) -> ZoneStore:
    """The store at ``path``, created from the bundled GeoJSON ``seed`` on first use."""
    store = ZoneStore(path)
    if not store.exists():
        seed = Path(seed)
        if not seed.exists():
            raise StoreError(f"no zone store at {path} and no bundled zones at {seed} to create it from; "
                             "run `zoning build` first")
        zones = schema.zones_from_geojson(seed.read_text(encoding="utf-8"))
        store.save(zones, action="init", source=seed.name,
                   source_sha256=hashlib.sha256(seed.read_bytes()).hexdigest())
    return store
