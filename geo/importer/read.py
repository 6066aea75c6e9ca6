"""Reading an import file: which dataset and layer, its features with decoded attribute text,
and its CRS (declared, corrected by the eastings, or refused as unknown)."""

from __future__ import annotations

import contextlib
import re
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import pyproj
import shapely

from geo import crs as gcrs
from geo import uploads
from geo.importer import safety
from geo.importer.options import ImportOptions, SourceError, UnsupportedFormatError

# Suffix -> GDAL driver. A .zip is unpacked (geo.uploads) and must hold exactly one of these.
FORMATS = {".shp": "ESRI Shapefile", ".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON",
           ".kml": "KML", ".fgb": "FlatGeobuf"}


# ---------------------------------------------------------------- reading


def _sibling(path: Path, suffix: str) -> Path | None:
    """A Shapefile sibling with any case of ``suffix`` (.PRJ and .prj both occur)."""
    return next((p for p in path.parent.iterdir() if p.stem == path.stem and p.suffix.lower() == suffix), None)


def locate_dataset(path: Path, workdir: Path, options: ImportOptions,
                   limits: uploads.UploadLimits) -> Path:
    """The file GDAL should open: ``path`` itself, or the one dataset inside a zip."""
    suffix = path.suffix.lower()
    if suffix == ".zip":
        files = uploads.extract_zip(path, workdir, limits)
        files = [f for f in files if "__MACOSX" not in f.parts]
        found = uploads.files_with_suffix(files, tuple(FORMATS))
        if options.layer_name and len(found) > 1:
            chosen = [f for f in found if options.layer_name in (f.name, f.stem)]
            if len(chosen) == 1:
                return chosen[0]
        if len(found) == 1:
            return found[0]
        names = ", ".join(str(f.relative_to(workdir)) for f in found) or "none"
        if not found:
            raise SourceError(f"{path.name} holds no .shp, .gpkg, .geojson, .kml or .fgb file (files: "
                              f"{', '.join(f.name for f in files[:20]) or 'none'})")
        raise SourceError(f"{path.name} holds several datasets ({names}); choose one with --layer-name")
    if suffix not in FORMATS:
        raise UnsupportedFormatError(
            f"{path.name}: unsupported file type {suffix or '(no suffix)'}; import a Shapefile (.zip, or "
            ".shp with its .shx/.dbf/.prj), GeoPackage (.gpkg), GeoJSON (.geojson/.json), KML (.kml) or "
            "FlatGeobuf (.fgb)")
    if suffix == ".shp":
        missing = [s for s in (".shx", ".dbf") if _sibling(path, s) is None]
        if missing:
            raise SourceError(f"Shapefile {path.name} lacks its {' and '.join(missing)} file(s); put all "
                              "parts (.shp .shx .dbf .prj .cpg) beside it or import them as one .zip")
    return path


def _gdal(path: Path) -> str:
    """What to hand GDAL for a checked dataset (safety.gdal_path pins the driver)."""
    return safety.gdal_path(path, FORMATS[path.suffix.lower()])


def choose_layer(path: Path, layer_name: str | None) -> str | None:
    """The layer to read; lists the layers when the choice is ambiguous or wrong. Checks that
    GDAL opened ``path`` with the driver its suffix names."""
    driver = FORMATS[path.suffix.lower()]
    try:
        layers = pyogrio.list_layers(_gdal(path))
        opened_as = pyogrio.read_info(_gdal(path), layer=str(layers[0][0])).get("driver") if len(layers) else driver
        safety.check_driver(path, opened_as, driver)
    except pyogrio.errors.DataSourceError as exc:
        raise SourceError(f"cannot open {path.name} as {driver}: {exc}") from None
    names = [str(name) for name, _ in layers]
    spatial = [str(name) for name, geom in layers if geom is not None]

    def listing() -> str:
        rows = []
        for name, geom in layers:
            count = pyogrio.read_info(_gdal(path), layer=str(name)).get("features", "?")
            rows.append(f"{name} ({geom or 'no geometry'}, {count} features)")
        return "; ".join(rows)

    if layer_name:
        if layer_name not in names:
            raise SourceError(f"{path.name} has no layer {layer_name!r}; its layers: {listing()}")
        return layer_name
    if len(spatial) == 1:
        return spatial[0]
    if not spatial:
        raise SourceError(f"{path.name} has no layer with geometries (layers: {listing() or 'none'})")
    raise SourceError(f"{path.name} has {len(spatial)} layers; choose one with --layer-name: {listing()}")


def _decode_raw_text(frame: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, str]:
    """Decode attributes read byte-for-byte (as latin-1): strict UTF-8 first, then GB18030.

    GB18030 is a superset of GBK and GB2312, the encodings of Chinese-Windows DBF files.
    """
    text_cols = [c for c in frame.columns if c != frame.geometry.name
                 and (frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c]))]
    raw = [c.encode("latin-1") for c in frame.columns if c != frame.geometry.name]
    raw += [v.encode("latin-1") for c in text_cols for v in frame[c] if isinstance(v, str)]
    if all(b.isascii() for b in raw):
        return frame, "ascii"
    for encoding in ("utf-8", "gb18030"):
        try:
            for b in raw:
                b.decode(encoding)
        except UnicodeDecodeError:
            continue

        def decode(v: Any, encoding: str = encoding) -> Any:
            return v.encode("latin-1").decode(encoding) if isinstance(v, str) else v

        out = frame.copy()
        for c in text_cols:
            out[c] = [decode(v) for v in out[c]]
        return out.rename(columns={c: decode(c) for c in out.columns if c != frame.geometry.name}), encoding
    raise SourceError("the attribute text is neither UTF-8 nor GB18030/GBK; name the encoding with "
                      "--encoding (e.g. big5) or add a .cpg file (属性编码无法识别)")


def read_frame(path: Path, layer: str | None, options: ImportOptions) -> tuple[gpd.GeoDataFrame, str, str, list[str]]:
    """The features with FIDs as index, the encoding used and how it was chosen, warnings."""
    driver = FORMATS[path.suffix.lower()]
    notes: list[str] = []
    detect = False
    encoding: str | None = None  # None: GDAL decides (the format's UTF-8, or what the .cpg names)
    if driver != "ESRI Shapefile":
        label, how = "utf-8", f"{driver} text is always UTF-8"
        if options.encoding:
            notes.append(f"--encoding {options.encoding} ignored: {how}")
    elif options.encoding:
        encoding = label = options.encoding
        how = "given with --encoding"
    elif (cpg := _sibling(path, ".cpg")) is not None:
        # GDAL understands .cpg contents such as "UTF-8", "936" or "ANSI 936" (GBK)
        label = cpg.read_text(encoding="ascii", errors="replace").strip() or "?"
        how = f"named by {cpg.name}"
    else:
        # No .cpg: read the bytes unchanged (ISO-8859-1 maps each byte to one character) and decode
        # here. (GDAL knows the codec as ISO-8859-1, not as Python's "latin-1".)
        encoding, label, how, detect = "ISO-8859-1", "", "", True
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            frame = pyogrio.read_dataframe(_gdal(path), layer=layer, fid_as_index=True, encoding=encoding)
    except LookupError:
        raise SourceError(f"unknown encoding {encoding!r}; use a Python codec name such as gb18030, "
                          "utf-8 or big5") from None
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError,
            pyogrio.errors.FieldError, pyogrio.errors.GeometryError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read {path.name} as {driver}: {exc}") from None
    for w in caught:
        if "Measured (M)" in str(w.message):
            notes.append("the file has M (measure) values: dropped, only x/y are imported")
    if detect:
        frame, label = _decode_raw_text(frame)
        how = "detected (no .cpg file)"
    return frame, label, how, notes


# ---------------------------------------------------------------- CRS


def _declared_crs(path: Path, driver: str) -> tuple[str | None, str]:
    """(normalised CRS or None, what the file says) from the .prj or the dataset's metadata."""
    if driver == "ESRI Shapefile":
        prj = _sibling(path, ".prj")
        if prj is None:
            return None, "no .prj file"
        wkt = prj.read_text(encoding="utf-8", errors="replace")
        found = gcrs.crs_from_prj(wkt)
        if found is None:
            name = re.search(r'^\s*\w+\["([^"]+)"', wkt)
            return None, (f"{prj.name} names a coordinate system that cannot be identified "
                          f"({name.group(1) if name else wkt[:60]!r})")
        return found, f"from {prj.name}"
    return None, ""


def _central_meridian(crs: str) -> float | None:
    """The central meridian of a transverse Mercator CRS, else None."""
    op = pyproj.CRS.from_user_input(crs).coordinate_operation
    if op is None or "transverse mercator" not in op.method_name.lower():
        return None
    params = {p.name.lower(): p.value for p in op.params}
    return params.get("longitude of natural origin")


def _check_gk(crs: str, frame: gpd.GeoDataFrame) -> gcrs.GKGuess | None:
    """detect_gk_crs's reading of the eastings when ``crs`` is a CGCS2000 GK zone they contradict."""
    cm = _central_meridian(crs) if crs.startswith("EPSG:") else None
    if cm is None or "CGCS2000" not in pyproj.CRS.from_user_input(crs).name:
        return None
    coords = shapely.get_coordinates(frame.geometry.values)
    if not len(coords):
        return None
    try:
        guess = gcrs.detect_gk_crs(coords[:, 0], coords[:, 1], central_meridian=cm)
    except gcrs.CoordinateError:
        return None
    return None if guess.crs == crs else guess


def determine_crs(path: Path, layer: str | None, frame: gpd.GeoDataFrame,
                  options: ImportOptions) -> tuple[str, str, list[str]]:
    """(CRS, how it was determined, warnings). Refuses rather than guesses a missing CRS."""
    driver = FORMATS[path.suffix.lower()]
    declared, how = _declared_crs(path, driver)
    if declared is None and driver != "ESRI Shapefile":
        meta = pyogrio.read_info(_gdal(path), layer=layer).get("crs")
        declared = gcrs.crs_from_prj(meta) if meta else None
        how = f"from the {driver} metadata" if declared else f"the {driver} file declares no CRS"
    notes: list[str] = []
    if options.crs:
        chosen = gcrs.parse_crs(options.crs)
        if declared and declared != chosen:
            notes.append(f"the file declares {gcrs.describe_crs(declared)} ({how}); using --crs "
                         f"{gcrs.describe_crs(chosen)} as told")
        guess = _check_gk(chosen, frame)
        if guess:
            raise SourceError(f"--crs {chosen} does not fit the coordinates: {guess.reason}")
        return chosen, "given with --crs", notes
    if declared is None:
        hint = ""
        coords = shapely.get_coordinates(frame.geometry.values)
        if len(coords):
            with contextlib.suppress(gcrs.CoordinateError):
                guess = gcrs.detect_gk_crs(coords[:, 0], coords[:, 1])
                hint = f"; the eastings suggest {guess.crs} ({guess.reason}) — confirm it with the data's supplier"
        raise SourceError(f"{path.name}: {how} — the coordinate system is unknown and is not guessed; "
                          f"pass --crs (e.g. --crs EPSG:4548 or --crs EPSG:4527){hint} (缺少坐标系，请指定 --crs)")
    guess = _check_gk(declared, frame)
    if guess:
        notes.append(f"{how} says {gcrs.describe_crs(declared)}, but {guess.reason}; using {guess.crs}")
        return guess.crs, f"{how}, corrected by the eastings (zone prefix)", notes
    return declared, how, notes


