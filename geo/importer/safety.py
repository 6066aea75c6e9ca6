"""An import file may only be what it says it is: no server files, no network, no SQL.

GDAL chooses a driver from a file's *content*: a ``.geojson`` that holds an OGR VRT
document (``<SrcDataSource>CSV:/etc/passwd</SrcDataSource>``) would read the server's
files, and one naming ``/vsicurl/http://…`` would make the server fetch URLs. So an
upload is opened only with the driver its suffix names, after its content is checked
against that driver, and then the driver GDAL actually used is checked again:

* GeoJSON must start with ``{`` and is opened as ``GeoJSON:<path>``, which makes GDAL use
  the GeoJSON driver and no other.
* Shapefile and FlatGeobuf must start with their magic numbers; GeoPackage with the
  SQLite header. A GeoPackage is read from a copy without triggers, and one with views
  (SQL run on every read) is refused.
* KML must be a ``<kml>`` document without a DTD (``<!DOCTYPE``/``<!ENTITY``: external
  entities, XXE, or entity expansion) and without ``<NetworkLink>`` (a link to other files
  or URLs).
* Any upload naming an OGR VRT document is refused.

:data:`GDAL_SAFE_CONFIG` is applied process-wide when this module is imported, as a second
wall: GDAL treats every ``/vsicurl/`` URL as absent (no request is sent), does not list
directories on open, and does not resolve GML/KML external references; PROJ does not use
the network either.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pyogrio
import pyproj

from geo.importer.options import SourceError, UnsupportedFormatError

GDAL_SAFE_CONFIG: dict[str, str] = {
    # /vsicurl/ considers a URL to exist only if it ends with one of these: none does in practice,
    # so GDAL sends no request at all (measured: no HEAD and no GET reach a loopback server).
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".zoning-no-network",
    "GDAL_HTTP_MAX_RETRY": "0",
    "GDAL_HTTP_TIMEOUT": "2",
    "GDAL_HTTP_CONNECTTIMEOUT": "2",
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GML_SKIP_RESOLVE_ELEMS": "ALL",
    "GML_DOWNLOAD_WFS_SCHEMA": "NO",
    "LIBKML_RESOLVE_STYLE": "NO",
    "LIBKML_EXTERNAL_STYLE": "NO",
    "GDAL_VRT_ENABLE_PYTHON": "NO",
    # SQL in a GeoPackage's schema may not call functions with side effects
    "OGR_SQLITE_PRAGMA": "trusted_schema=OFF",
}

# Drivers an import may be read with, by the suffix's driver label (geo.importer.read.FORMATS).
ALLOWED_DRIVERS: dict[str, frozenset[str]] = {
    "GeoJSON": frozenset({"GeoJSON"}),
    "ESRI Shapefile": frozenset({"ESRI Shapefile"}),
    "GPKG": frozenset({"GPKG"}),
    "KML": frozenset({"KML", "LIBKML"}),
    "FlatGeobuf": frozenset({"FlatGeobuf"}),
}

_SHAPEFILE_MAGIC = b"\x00\x00\x27\x0a"  # file code 9994, big-endian
_SQLITE_MAGIC = b"SQLite format 3\x00"
_FLATGEOBUF_MAGIC = b"fgb\x03"
_SNIFF_BYTES = 64 * 1024


class UnsafeSourceError(SourceError):
    """A file whose content could make GDAL read other files or the network."""


class ContentMismatchError(SourceError):
    """A file whose content is not the format its suffix names."""


def apply_gdal_safety() -> None:
    """Set :data:`GDAL_SAFE_CONFIG` for this process (idempotent) and turn PROJ's network off."""
    pyogrio.set_gdal_config_options(GDAL_SAFE_CONFIG)
    pyproj.network.set_network_enabled(False)


apply_gdal_safety()


def gdal_path(path: Path, driver: str) -> str:
    """The name to hand GDAL: ``GeoJSON:<path>`` forces the GeoJSON driver; the binary formats
    are pinned by their magic numbers (a NUL in the first bytes stops every text driver)."""
    return f"GeoJSON:{path}" if driver == "GeoJSON" else str(path)


def _head(path: Path, n: int = _SNIFF_BYTES) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def _not_a(path: Path, driver: str, what: str) -> ContentMismatchError:
    return ContentMismatchError(f"{path.name} is not a {driver} file: {what} (文件内容与扩展名不符)")


def _check_kml(path: Path) -> None:
    data = path.read_bytes()
    lowered = data.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        raise UnsafeSourceError(f"{path.name}: KML with a DTD (<!DOCTYPE> / <!ENTITY>) is not accepted — entities "
                                "can read other files; export the KML again without a DOCTYPE")
    if b"<networklink" in lowered:
        raise UnsafeSourceError(f"{path.name}: KML with a <NetworkLink> (a link to another file or URL) is not "
                                "accepted; import the linked data itself")
    if b"<kml" not in lowered[:_SNIFF_BYTES]:
        raise _not_a(path, "KML", "it has no <kml> element")


def _neutralise_geopackage(path: Path, workdir: Path) -> Path:
    """A copy of the GeoPackage without triggers; refuses views. SQLite reads the schema only."""
    copy = workdir / path.name  # same name: messages name the file the user sent
    if copy.resolve() == path.resolve():
        raise SourceError(f"{path}: the GeoPackage check needs a folder of its own")
    shutil.copyfile(path, copy)
    try:
        db = sqlite3.connect(copy, isolation_level=None)
        try:
            db.execute("PRAGMA trusted_schema=OFF")
            rows = db.execute("SELECT type, name FROM sqlite_master WHERE type IN ('trigger', 'view')").fetchall()
            views = sorted(name for kind, name in rows if kind == "view")
            if views:
                raise UnsafeSourceError(f"{path.name}: GeoPackage views ({', '.join(views[:5])}) run SQL on every "
                                        "read and are not accepted; export the layer to a plain GeoPackage table")
            for _, name in rows:
                db.execute(f'DROP TRIGGER "{name.replace(chr(34), chr(34) * 2)}"')
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise _not_a(path, "GeoPackage", f"SQLite cannot read it ({exc})") from None
    return copy


def check_content(path: Path, driver: str, workdir: Path) -> Path:
    """Refuse ``path`` unless its content is a ``driver`` file without external references;
    returns the file to open (for a GeoPackage, a copy without triggers in ``workdir``)."""
    if driver not in ALLOWED_DRIVERS:
        raise UnsupportedFormatError(f"{path.name}: {driver} files are not imported")
    if str(path).startswith("/vsi") or not path.is_file():
        raise SourceError(f"{path}: not a regular file")
    head = _head(path)
    if b"ogrvrtdatasource" in head.lower() or b"<vrtdataset" in head.lower():
        raise UnsafeSourceError(f"{path.name} is a GDAL VRT document, which can read other files and URLs; "
                                "VRT is not accepted (虚拟数据源文件不予导入)")
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if driver == "GeoJSON" and not text.startswith(b"{"):
        raise _not_a(path, driver, "GeoJSON starts with '{'")
    if driver == "ESRI Shapefile" and not head.startswith(_SHAPEFILE_MAGIC):
        raise _not_a(path, "Shapefile (.shp)", "the file code 9994 is missing")
    if driver == "FlatGeobuf" and not (head.startswith(_FLATGEOBUF_MAGIC) and head[4:7] == b"fgb"):
        raise _not_a(path, driver, "the FlatGeobuf magic bytes are missing")
    if driver == "KML":
        _check_kml(path)
    if driver == "GPKG":
        if not head.startswith(_SQLITE_MAGIC):
            raise _not_a(path, "GeoPackage", "it is not an SQLite database")
        return _neutralise_geopackage(path, workdir)
    return path


def check_driver(path: Path, opened_as: str | None, driver: str) -> None:
    """After GDAL opened ``path``: the driver it used must be one allowed for ``driver``."""
    if opened_as not in ALLOWED_DRIVERS[driver]:
        raise UnsafeSourceError(f"{path.name} opened as {opened_as or 'an unknown format'}, not {driver}; "
                                "refused (文件内容与扩展名不符)")
