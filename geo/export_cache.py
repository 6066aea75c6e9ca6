"""Export files built once per data version and option set, kept on disk next to the store.

GIS clients read remote files in pieces (GDAL ``/vsicurl/``, QGIS "Add vector layer →
HTTP(S)"): a HEAD for the size, then byte ranges, sometimes on new connections. That
only works when every request for the same URL gets the same bytes, so an export is
built once — for one data version, format and option set (CRS, encoding, selection) —
written atomically into ``<store>.exports/<data_version>/`` and served from there. Its
ETag is the SHA-256 of its content, recorded beside it.

Only the newest ``KEEP_VERSIONS`` data versions keep their files; an older version's
export is rebuilt from the store's history when asked for again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd

from geo.atomic import write_atomically
from geo.export import FORMATS, parse_encoding, parse_export_crs, parse_format, write_export

KEEP_VERSIONS = 4


@dataclass(frozen=True)
class ExportFile:
    path: Path
    etag: str  # strong, quoted: '"<sha256>"'
    size: int
    mtime: float
    media_type: str
    extension: str


@dataclass(frozen=True)
class ExportRequest:
    """What an export file is made of; equal requests share one file."""

    format: str
    crs: str | None = None
    encoding: str | None = None
    layers: str | None = None
    district: str | None = None
    as_of: str | None = None
    geometry: str | None = None

    def normalised(self) -> ExportRequest:
        """Validated options in one spelling, so ``EPSG:4326`` and the default share a file."""
        fmt = parse_format(self.format).name
        crs = parse_export_crs(self.crs)
        encoding = parse_encoding(self.encoding, fmt)
        return ExportRequest(fmt, None if crs == "wgs84" else crs, None if encoding == "utf-8" else encoding,
                             self.layers, self.district, self.as_of,
                             self.geometry.strip().lower() if self.geometry else None)

    def key(self) -> str:
        text = json.dumps(self.__dict__, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def selection(self) -> dict[str, Any]:
        return {"layers": self.layers, "district": self.district, "as_of": self.as_of, "geometry": self.geometry,
                "encoding": self.encoding}


def cache_dir_for(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".exports")


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class ExportCache:
    def __init__(self, root: Path):
        self.root = root
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def get(self, request: ExportRequest, data_version: str, zones: gpd.GeoDataFrame) -> ExportFile:
        """The export file for ``request`` on ``data_version`` (``zones`` already selected),
        built on first use. Raises ExportError for options no file can be made with."""
        request = request.normalised()
        export_format = FORMATS[request.format]
        folder = self.root / data_version
        path = folder / f"{request.key()}.{export_format.extension}"
        etag_path = path.with_name(path.name + ".sha256")
        with self._lock(str(path)):
            if not (path.exists() and etag_path.exists()):
                folder.mkdir(parents=True, exist_ok=True)
                write_export(zones, request.format, path, data_version=data_version, crs=request.crs,
                             selection=request.selection(), encoding=request.encoding)
                write_atomically(etag_path, _sha256(path).encode())
                self._prune(keep=data_version)
        stat = path.stat()
        return ExportFile(path, f'"{etag_path.read_text().strip()}"', stat.st_size, stat.st_mtime,
                          export_format.media_type, export_format.extension)

    def _prune(self, keep: str) -> None:
        """Drop the files of all but the KEEP_VERSIONS most recently built data versions."""
        folders = sorted((p for p in self.root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime,
                         reverse=True)
        for folder in folders[KEEP_VERSIONS:]:
            if folder.name != keep:
                shutil.rmtree(folder, ignore_errors=True)
