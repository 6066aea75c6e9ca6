"""Import official zone files: read, decode, find the CRS, map fields, validate, preview.

A district bureau's file (Shapefile, GeoPackage, GeoJSON or KML) becomes zones of one
layer (and one district, if given): they replace that layer's zones, every other zone is
kept, and the result is a new store version. The same code serves ``zoning import`` and
``POST /v1/admin/import``; both show the :class:`ImportReport` (counts, areas, CRS and
how it was determined, encoding, extent, sample rows, problems) before anything is
written, and nothing is written when there is any problem.

Real files are messy, so each step says what it did: the DBF encoding is detected when
no ``.cpg`` names it, a Gauss-Krüger ``.prj`` whose zone prefix disagrees with the
eastings is corrected (with a warning), a missing CRS is refused rather than guessed,
Z/M values are dropped with a warning, and invalid rings are reported with their feature
and location (or repaired with ``make_valid`` when asked, area change reported).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import re
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely

from geo import crs as gcrs
from geo import schema, uploads
from geo.base import DISTRICTS_PATH
from geo.store import AuditEvent, StoreBackend, diff_details, with_computed_area

# Suffix -> GDAL driver. A .zip is unpacked (geo.uploads) and must hold exactly one of these.
FORMATS = {".shp": "ESRI Shapefile", ".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON",
           ".kml": "KML"}
SAMPLE_ROWS = 5
# Imported area outside the expected district beyond this tolerance is flagged.
DISTRICT_TOLERANCE_M = 1000.0
DISTRICT_OUTSIDE_WARN = 0.05

# Square kilometres per unit, for --map stated_area_km2=COLUMN:UNIT.
AREA_UNITS = {"km2": 1.0, "ha": 0.01, "m2": 1e-6, "mu": 1 / 1500}

# Column names official files commonly use, mapped automatically (and shown as "auto")
# unless the user maps the field. Our own exports carry the schema's names.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "name_zh": ("名称", "区域名称", "保护区名称", "禁养区名称", "名字", "MC", "NAME", "Name", "name"),
    "source_doc_no": ("文号", "发文文号", "批准文号", "WH"),
    "source_title": ("文件名称", "文件标题"),
    "issuer": ("发文机关", "发布机关", "批准机关"),
    "issued_on": ("发文日期", "印发日期", "发布日期", "批准日期"),
    "effective_from": ("生效日期", "实施日期"),
    "effective_to": ("失效日期", "废止日期"),
    "notes": ("备注", "BZ"),
}
MAPPABLE = tuple(c for c in schema.ZONE_COLUMNS if c not in ("area_km2", "layer"))
_DEFAULT_ACCURACY = "approximate"


class SourceError(ValueError):
    """The file cannot be read as zones (format, layer, encoding, CRS); names the fix."""


class UnsupportedFormatError(SourceError):
    """Not a Shapefile, GeoPackage, GeoJSON, KML or a zip of one."""


@dataclass
class ImportOptions:
    layer: str
    district: str | None = None  # adcode; sets district_code/district_name and narrows the scope
    mapping: Mapping[str, str] = field(default_factory=dict)  # schema column -> source column
    values: Mapping[str, str] = field(default_factory=dict)  # schema column -> constant
    crs: str | None = None
    accuracy: str | None = None  # None: 'approximate', said so in the preview
    repair: bool = False
    layer_name: str | None = None  # which layer of a GeoPackage/KML, or which file of a zip
    encoding: str | None = None
    rules_from: str | None = None  # an existing zone whose rule texts the imported zones take


@dataclass
class ImportReport:
    source: str
    source_sha256: str
    format: str = ""
    dataset_layer: str | None = None
    features: int = 0
    encoding: str = ""
    encoding_note: str = ""
    crs: str = ""
    crs_note: str = ""
    layer: str = ""
    district: dict[str, str] | None = None
    accuracy: str = ""
    fields: dict[str, str] = field(default_factory=dict)  # schema column -> where its values come from
    unmapped_columns: list[str] = field(default_factory=list)
    zones: int = 0
    area_km2: float = 0.0
    stated_area_km2: float | None = None
    extent: list[float] | None = None
    sample: list[dict[str, Any]] = field(default_factory=list)
    repairs: list[dict[str, Any]] = field(default_factory=list)
    district_check: list[dict[str, Any]] = field(default_factory=list)
    replaces: dict[str, int] = field(default_factory=dict)  # district code -> zones removed
    changes: dict[str, Any] = field(default_factory=dict)  # store.diff_details of the whole table
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    dry_run: bool = False
    version: dict[str, Any] | None = None  # the new store version when written

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


# ---------------------------------------------------------------- option parsing


def parse_mapping(items: Iterable[str]) -> dict[str, str]:
    """``["name_zh=MC,source_doc_no=WH", ...]`` -> {schema column: source column}."""
    mapping: dict[str, str] = {}
    for item in items:
        for pair in filter(None, (p.strip() for p in item.split(","))):
            key, sep, column = pair.partition("=")
            key, column = key.strip(), column.strip()
            if not sep or not key or not column:
                raise SourceError(f"--map {pair!r} must look like FIELD=COLUMN, e.g. name_zh=名称")
            _check_mappable(key, "--map")
            mapping[key] = column
    return mapping


def parse_values(items: Iterable[str]) -> dict[str, str]:
    """``["issuer=北京市门头沟区人民政府", ...]`` -> {schema column: constant} (one pair per item)."""
    values: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise SourceError(f"--set {item!r} must look like FIELD=VALUE, e.g. issuer=北京市门头沟区人民政府")
        _check_mappable(key, "--set")
        values[key] = value.strip()
    return values


def _check_mappable(key: str, option: str) -> None:
    if key not in MAPPABLE:
        raise SourceError(f"{option}: {key!r} is not a zone field; fields: {', '.join(MAPPABLE)} "
                          "(layer comes from --layer; area_km2 is computed)")


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
            raise SourceError(f"{path.name} holds no .shp, .gpkg, .geojson or .kml file (files: "
                              f"{', '.join(f.name for f in files[:20]) or 'none'})")
        raise SourceError(f"{path.name} holds several datasets ({names}); choose one with --layer-name")
    if suffix not in FORMATS:
        raise UnsupportedFormatError(
            f"{path.name}: unsupported file type {suffix or '(no suffix)'}; import a Shapefile (.zip, or "
            ".shp with its .shx/.dbf/.prj), GeoPackage (.gpkg), GeoJSON (.geojson/.json) or KML (.kml)")
    if suffix == ".shp":
        missing = [s for s in (".shx", ".dbf") if _sibling(path, s) is None]
        if missing:
            raise SourceError(f"Shapefile {path.name} lacks its {' and '.join(missing)} file(s); put all "
                              "parts (.shp .shx .dbf .prj .cpg) beside it or import them as one .zip")
    return path


def choose_layer(path: Path, layer_name: str | None) -> str | None:
    """The layer to read; lists the layers when the choice is ambiguous or wrong."""
    try:
        layers = pyogrio.list_layers(path)
    except pyogrio.errors.DataSourceError as exc:
        raise SourceError(f"cannot open {path.name} as {FORMATS[path.suffix.lower()]}: {exc}") from None
    names = [str(name) for name, _ in layers]
    spatial = [str(name) for name, geom in layers if geom is not None]

    def listing() -> str:
        rows = []
        for name, geom in layers:
            count = pyogrio.read_info(path, layer=str(name)).get("features", "?")
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
            frame = pyogrio.read_dataframe(path, layer=layer, fid_as_index=True, encoding=encoding)
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
        meta = pyogrio.read_info(path, layer=layer).get("crs")
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


# ---------------------------------------------------------------- geometry


def _label(fid: Any, name: Any) -> str:
    return f"FID {fid}" + (f" «{name}»" if isinstance(name, str) and name else "")


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """The polygon parts of ``geom`` (make_valid may add lines or points)."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    polys = [q for p in parts for q in shapely.get_parts(p)]
    if not polys:
        return shapely.Polygon()
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def _location_lonlat(reason: str, crs: str) -> str:
    """' at lon, lat' for the [x y] location in a GEOS validity reason."""
    m = re.search(r"\[\s*([-+0-9.eE]+)\s+([-+0-9.eE]+)", reason)
    if not m:
        return ""
    try:
        lon, lat = gcrs.to_wgs84(float(m.group(1)), float(m.group(2)), crs)
    except ValueError:
        return ""
    return f" (lon {float(lon):.6f}, lat {float(lat):.6f})"


def clean_geometries(frame: gpd.GeoDataFrame, crs: str, layer: str, names: pd.Series,
                     repair: bool) -> tuple[np.ndarray, list[str], list[str], dict[Any, shapely.Geometry]]:
    """(geometries in the source CRS, problems, warnings, originals of repaired features)."""
    geoms = np.asarray(frame.geometry.values, dtype=object).copy()
    problems: list[str] = []
    notes: list[str] = []
    repaired: dict[Any, shapely.Geometry] = {}
    has_z = shapely.has_z(geoms) & ~shapely.is_missing(geoms)
    if has_z.any():
        notes.append(f"{int(has_z.sum())} feature(s) have Z (height) values: dropped, zones are 2D")
        geoms = shapely.force_2d(geoms)
    allowed = ("Point", "MultiPoint") if layer in schema.POINT_LAYERS else ("Polygon", "MultiPolygon")
    for i, (fid, geom) in enumerate(zip(frame.index, geoms, strict=True)):
        where = _label(fid, names.iloc[i])
        if geom is None or geom.is_empty:
            problems.append(f"{where}: has no geometry")
            continue
        if geom.geom_type not in allowed:
            problems.append(f"{where}: is a {geom.geom_type}; layer {layer!r} needs {' or '.join(allowed)}")
            continue
        if geom.is_valid:
            continue
        reason = shapely.is_valid_reason(geom)
        if not repair:
            problems.append(f"{where}: invalid geometry — {reason}{_location_lonlat(reason, crs)}; "
                            "fix it in GIS or import with --repair (几何无效)")
            continue
        fixed = _polygonal(shapely.make_valid(geom)) if allowed[0] == "Polygon" else shapely.make_valid(geom)
        if fixed.is_empty:
            problems.append(f"{where}: invalid geometry — {reason}; make_valid leaves no polygon")
            continue
        repaired[fid] = geom
        geoms[i] = fixed
    return geoms, problems, notes, repaired


# ---------------------------------------------------------------- field mapping


def _iso_date(value: Any) -> str:
    """A YYYY-MM-DD string from a date, a timestamp or common Chinese spellings."""
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date | np.datetime64):
        return pd.Timestamp(value).date().isoformat()
    text = str(value).strip()
    m = re.fullmatch(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T].*)?", text) \
        or re.fullmatch(r"(\d{4})(\d{2})(\d{2})", text)
    if not m:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD, YYYY/M/D or YYYY年M月D日)")
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
    except ValueError:
        raise ValueError(f"{value!r} is not a real date") from None


def _text(value: Any) -> str | None:
    if schema._is_missing(value) or value is pd.NaT:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip() or None


def _slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", text.lower())).strip("-")


def _name_slug(name: str | None, index: int) -> str:
    """The id part for a zone name: the slug of an ASCII name, else a hash of the whole name
    (stable across re-imports, unlike a row number), else the row number."""
    if not name:
        return f"f{index + 1:03d}"
    slug = _slug(name) if name.isascii() else ""
    return slug or hashlib.sha1(name.encode()).hexdigest()[:8]


def _resolve_fields(frame: gpd.GeoDataFrame, options: ImportOptions) -> tuple[dict[str, str], dict[str, str]]:
    """(schema column -> source column, schema column -> description for the preview)."""
    columns = [c for c in frame.columns if c != frame.geometry.name]
    source_of: dict[str, str] = {}
    for key, column in options.mapping.items():
        col, _ = _split_unit(key, column)
        if col not in columns:
            raise SourceError(f"--map {key}={column}: the file has no column {col!r}; its columns: "
                              f"{', '.join(columns) or 'none'}")
        source_of[key] = col
    described = {k: f"column {v}" for k, v in options.mapping.items()}
    for key, aliases in {**{c: (c,) for c in MAPPABLE}, **FIELD_ALIASES}.items():
        if key in source_of or key in options.values:
            continue
        hit = next((a for a in aliases if a in columns), None)
        if key in FIELD_ALIASES and hit is None:
            hit = key if key in columns else None
        if hit is not None:
            source_of[key] = hit
            described[key] = f"column {hit} (auto)"
    for key, value in options.values.items():
        described[key] = f"value {value!r} (--set)"
    return source_of, described


def _split_unit(key: str, column: str) -> tuple[str, float]:
    if key == "stated_area_km2" and ":" in column:
        col, unit = column.rsplit(":", 1)
        if unit.lower() in AREA_UNITS:
            return col, AREA_UNITS[unit.lower()]
    return column, 1.0


def _district_table(current: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame | None, dict[str, str], str | None]:
    """(district polygons or None, adcode -> Chinese name, why the polygons are missing).

    Names also come from the zones already served, so a district stays nameable without
    the base layer.
    """
    names = {c: n for c, n in zip(current["district_code"], current["district_name"], strict=True)
             if isinstance(c, str) and isinstance(n, str)}
    if not DISTRICTS_PATH.exists():
        return None, names, f"the district base layer ({DISTRICTS_PATH.name}) is not available"
    frame = pyogrio.read_dataframe(DISTRICTS_PATH, columns=["adcode", "name_zh"])
    names.update(zip(frame["adcode"].astype(str), frame["name_zh"].astype(str), strict=True))
    return frame, names, None


def district_code(district: str, names: Mapping[str, str]) -> str:
    """The adcode of ``district``: an adcode (110109) or a Chinese name (门头沟区 / 门头沟)."""
    wanted = district.strip()
    if schema.ADCODE_RE.match(wanted):
        return wanted
    codes = sorted(c for c, n in names.items() if wanted in (n, n.removesuffix("区")))
    if len(codes) != 1:
        raise SourceError(f"--district {district!r} is not a known district name; pass its 6-digit adcode, "
                          "e.g. 110109 (门头沟区)")
    return codes[0]


def build_zones(frame: gpd.GeoDataFrame, geoms: np.ndarray, options: ImportOptions, *,
                source_name: str, format_label: str, crs_label: str, district_names: Mapping[str, str],
                repaired: Mapping[Any, shapely.Geometry], rules: list[dict[str, str]],
                ) -> tuple[gpd.GeoDataFrame, dict[str, str], list[str]]:
    """The imported zones (WGS84 geometry still to come), the field descriptions, problems."""
    source_of, described = _resolve_fields(frame, options)
    layer = options.layer
    problems: list[str] = []
    accuracy = options.values.get("accuracy") or options.accuracy or _DEFAULT_ACCURACY
    defaults = {
        "kind": layer, "accuracy": accuracy,
        "method": f"imported from {source_name} ({format_label}, {crs_label})",
    }
    if options.accuracy is None and "accuracy" not in source_of and "accuracy" not in options.values:
        described["accuracy"] = (f"default {_DEFAULT_ACCURACY!r} — pass --accuracy official if this file "
                                 "is the legal boundary (默认按近似边界导入)")
    elif options.accuracy:
        described["accuracy"] = f"value {options.accuracy!r} (--accuracy)"
    if options.district:
        described["district_code"] = f"value {options.district!r} (--district)"
    described.setdefault("kind", f"default {layer!r} (the layer)")
    described.setdefault("method", f"default {defaults['method']!r}")
    described.setdefault("effective_from", "default: issued_on")
    described.setdefault("name_en", "default: the layer's English title and name_zh")
    described.setdefault("zone_id", "generated: layer-district-slug of name (or FID)")
    if options.rules_from:
        described["rules"] = f"{len(rules)} rule(s) of zone {options.rules_from} (--rules-from)"
    described.setdefault("rules", "none (imported zones carry no rule texts)")

    records: list[dict[str, Any]] = []
    used_ids: dict[str, int] = {}
    for i, (fid, row) in enumerate(frame.iterrows()):
        rec: dict[str, Any] = {"layer": layer}
        name_guess = row.get(source_of["name_zh"]) if "name_zh" in source_of else None
        where = _label(fid, _text(name_guess))
        for key in MAPPABLE:
            if key in options.values:
                raw = options.values[key]
            elif key in source_of:
                raw = row[source_of[key]]
            else:
                continue
            try:
                rec[key] = _convert(key, raw, options.mapping.get(key, ""))
            except ValueError as exc:
                col = source_of.get(key)
                problems.append(f"{where}: {key}{f' (column {col})' if col else ''} {exc}")
        for key, value in defaults.items():
            rec.setdefault(key, value)
        if options.accuracy:
            rec["accuracy"] = options.accuracy
        if fid in repaired:
            rec["method"] = f"{rec['method']}; ring repaired with make_valid (几何已修复)"
        if options.district:
            if rec.get("district_code") not in (None, options.district):
                problems.append(f"{where}: district_code {rec['district_code']} differs from --district "
                                f"{options.district}")
            rec["district_code"] = options.district
        code = rec.get("district_code")
        if code and not rec.get("district_name"):
            rec["district_name"] = district_names.get(code)
        rec.setdefault("effective_from", rec.get("issued_on"))
        if rec.get("name_zh") and not rec.get("name_en"):
            rec["name_en"] = f"{schema.LAYERS[layer].title_en}: {rec['name_zh']}"
        if not rec.get("zone_id"):
            rec["zone_id"] = "-".join(p for p in (layer.replace("_", "-"), code, _name_slug(rec.get("name_zh"), i)) if p)
        rec["zone_id"] = _slug(rec["zone_id"])
        n = used_ids.get(rec["zone_id"], 0) + 1
        used_ids[rec["zone_id"]] = n
        if n > 1:
            rec["zone_id"] = f"{rec['zone_id']}-{n}"
        rec.setdefault("rules", list(rules))
        rec["geometry"] = geoms[i]
        rec["_fid"] = fid
        records.append(rec)
    unnamed = sorted({r["district_code"] for r in records if r.get("district_code") and not r.get("district_name")})
    if unnamed:
        problems.append(f"district name unknown for {', '.join(unnamed)}: --set district_name=… "
                        "(data/boundaries/base/districts.geojson names districts when present)")
    fids = [r.pop("_fid") for r in records]
    zones = gpd.GeoDataFrame(
        [{k: v for k, v in r.items() if k != "geometry"} for r in records],
        geometry=[r["geometry"] for r in records],
    )
    zones.index = pd.Index(fids, name="fid")
    return zones, described, problems


def _convert(key: str, value: Any, mapped: str) -> Any:
    if key in schema.DATE_COLUMNS:
        return None if _text(value) is None else _iso_date(value)
    if key in schema.FLOAT_COLUMNS:
        if _text(value) is None:
            return None
        _, factor = _split_unit(key, mapped)
        try:
            return float(str(value).replace(",", "")) * factor
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
    if key == "rules":
        rules = json.loads(value) if isinstance(value, str) else value
        if not isinstance(rules, list):
            raise ValueError("must be a JSON list of {code, text_zh, text_en}")
        return rules
    return _text(value)


# ---------------------------------------------------------------- checks


def check_districts(zones: gpd.GeoDataFrame, districts: gpd.GeoDataFrame | None,
                    missing_reason: str | None) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Share of each district's imported area outside that district: (rows, warnings, problems)."""
    if districts is None:
        return [], [f"{missing_reason}; the district extent of the data was not checked"], []
    rows, notes, problems = [], [], []
    for code, group in zones.groupby("district_code"):
        match = districts[districts["adcode"] == str(code)]
        if match.empty:
            notes.append(f"district {code} is not in the district boundaries; extent not checked")
            continue
        name = match["name_zh"].iloc[0]
        area = gcrs.to_metric(shapely.union_all(group.geometry.values))
        bound = gcrs.to_metric(shapely.union_all(match.geometry.values)).buffer(DISTRICT_TOLERANCE_M)
        if area.area > 0:
            outside = shapely.difference(area, bound).area / area.area
        else:  # points: share of points outside
            pts = shapely.get_parts(area)
            outside = float(np.mean(~shapely.contains(bound, pts))) if len(pts) else 0.0
        rows.append({"district_code": str(code), "district_name": name, "outside_share": round(outside, 4)})
        where = (f"outside {name} ({code}) (+{DISTRICT_TOLERANCE_M:.0f} m tolerance) — check --district "
                 "and the CRS (数据超出区界)")
        if outside > 0.999:  # nothing inside: the wrong district or the wrong CRS, never right
            problems.append(f"all imported data lies {where}")
        elif outside > DISTRICT_OUTSIDE_WARN:
            notes.append(f"{outside:.0%} of the imported data lies {where}")
    return rows, notes, problems


def _by_feature(problems: list[str], labels: Mapping[str, str], located: set[str]) -> list[str]:
    """Schema problems ('zone <id>: <message>') named by feature, one line per message.

    Geometry problems of features in ``located`` are dropped: they were reported already,
    with their location.
    """
    grouped: dict[str, list[str]] = {}
    out = []
    for p in problems:
        m = re.match(r"zone (\S+): (.*)", p)
        if not m or m.group(1) not in labels:
            out.append(p)
        elif not (m.group(2).startswith("geometry") and labels[m.group(1)] in located):
            grouped.setdefault(m.group(2), []).append(labels[m.group(1)])
    for message, where in grouped.items():
        field = message.split(" ", 1)[0]
        hint = ""
        if field == "district_code" and " is required" in message:
            hint = "; pass --district ADCODE or --map district_code=COLUMN"
        elif " is required" in message and field in MAPPABLE:
            hint = f"; map a column (--map {field}=COLUMN) or give one value (--set {field}=VALUE)"
        shown = ", ".join(where[:5]) + (f" and {len(where) - 5} more" if len(where) > 5 else "")
        out.append(f"{shown}: {message}{hint}")
    return out


def replace_scope(current: gpd.GeoDataFrame, layer: str, district: str | None) -> pd.Series:
    """The zones an import of ``layer`` (and ``district``) replaces."""
    mask = current["layer"] == layer
    if district:
        mask &= current["district_code"] == district
    return mask


# ---------------------------------------------------------------- the pipeline


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _read_source(path: Path, options: ImportOptions, workdir: Path, limits: uploads.UploadLimits,
                 report: ImportReport) -> tuple[Path, gpd.GeoDataFrame, str]:
    """(dataset file, its features in the source CRS, that CRS); fills the report's reading facts."""
    dataset = locate_dataset(path, workdir, options, limits)
    report.format = FORMATS[dataset.suffix.lower()]
    report.dataset_layer = choose_layer(dataset, options.layer_name)
    frame, report.encoding, report.encoding_note, notes = read_frame(dataset, report.dataset_layer, options)
    report.warnings += notes
    report.features = len(frame)
    if not len(frame):
        raise SourceError(f"{dataset.name} has no features")
    crs, report.crs_note, notes = determine_crs(dataset, report.dataset_layer, frame, options)
    report.crs = gcrs.describe_crs(crs)
    report.warnings += notes
    return dataset, frame, crs


def _summarise(report: ImportReport, imported: gpd.GeoDataFrame) -> None:
    """Totals, extent and sample rows of the imported zones, with the warnings they call for."""
    report.zones = len(imported)
    report.area_km2 = round(float(np.nansum(imported["area_km2"])), 4)
    stated = imported["stated_area_km2"].dropna()
    report.stated_area_km2 = round(float(stated.sum()), 4) if len(stated) else None
    if report.stated_area_km2 and report.area_km2 and not 0.67 < report.stated_area_km2 / report.area_km2 < 1.5:
        report.warnings.append(f"stated areas total {report.stated_area_km2} km² but the geometries measure "
                               f"{report.area_km2} km²: is the area column in another unit? "
                               "(--map stated_area_km2=COLUMN:ha|m2|mu)")
    present = imported.geometry[imported.geometry.notna() & ~imported.geometry.is_empty]
    if len(present):
        report.extent = [round(float(v), 6) for v in present.total_bounds]
    report.sample = [
        {k: props[k] for k in ("zone_id", "name_zh", "district_code", "source_doc_no", "effective_from",
                               "stated_area_km2", "area_km2", "accuracy")}
        for props in map(schema.zone_properties, imported.head(SAMPLE_ROWS).to_dict("records"))]
    if not imported["rules"].map(bool).any():
        report.warnings.append("the imported zones carry no rule texts: a lookup names the zone but quotes "
                               "no prohibition (--rules-from ZONE_ID copies an existing zone's rules)")


def prepare_import(path: Path, current: gpd.GeoDataFrame, options: ImportOptions, *, workdir: Path,
                   source_name: str | None = None, limits: uploads.UploadLimits = uploads.UploadLimits(),
                   ) -> tuple[ImportReport, gpd.GeoDataFrame | None]:
    """Read, check and merge an import file; (report, new whole table or None on problems).

    Raises SourceError / UploadError when the file cannot be read at all.
    """
    if options.layer not in schema.LAYERS:
        raise SourceError(f"unknown layer {options.layer!r}; layers: {', '.join(schema.LAYERS)}")
    if options.accuracy is not None and options.accuracy not in schema.ACCURACY:
        raise SourceError(f"--accuracy {options.accuracy!r} is not one of {', '.join(schema.ACCURACY)}")
    districts, district_names, missing_reason = _district_table(current)
    report = ImportReport(source=source_name or path.name, source_sha256=file_sha256(path), layer=options.layer)
    if options.district:
        options = replace(options, district=district_code(options.district, district_names))
        report.district = {"code": options.district, "name": district_names.get(options.district, "?")}
    rules: list[dict[str, str]] = []
    if options.rules_from:
        match = current[current["zone_id"] == options.rules_from]
        if match.empty:
            raise SourceError(f"--rules-from {options.rules_from}: no such zone in the current data")
        rules = list(match["rules"].iloc[0])
    _, frame, crs = _read_source(path, options, workdir, limits, report)

    source_of, _ = _resolve_fields(frame, options)
    names = frame[source_of["name_zh"]].map(_text) if "name_zh" in source_of else pd.Series([None] * len(frame))
    geoms, problems, notes, repaired = clean_geometries(frame, crs, options.layer, names, options.repair)
    report.problems += problems
    report.warnings += notes
    zones, report.fields, problems = build_zones(
        frame, geoms, options, source_name=report.source, format_label=report.format, crs_label=report.crs,
        district_names=district_names, repaired=repaired, rules=rules)
    report.problems += problems
    report.accuracy = str(zones["accuracy"].iloc[0])
    report.unmapped_columns = [c for c in frame.columns
                               if c != frame.geometry.name and c not in source_of.values()]
    labels = {zid: _label(fid, name) for zid, fid, name in zip(zones["zone_id"], zones.index, names, strict=True)}

    try:
        zones = gcrs.frame_to_wgs84(zones.set_crs(None, allow_override=True), crs)
    except gcrs.CoordinateError as exc:
        raise SourceError(f"the coordinates do not fit {report.crs} ({report.crs_note}): {exc}; "
                          "pass the right --crs") from None
    zones = zones.set_crs(schema.CRS, allow_override=True)
    for fid, original in repaired.items():
        before = abs(gcrs.geodesic_area_m2(gcrs.geometry_to_wgs84(original, crs))) / 1e6
        after = gcrs.geodesic_area_m2(zones.geometry.loc[fid]) / 1e6
        report.repairs.append({"feature": labels[zones.loc[fid, "zone_id"]], "zone_id": zones.loc[fid, "zone_id"],
                               "area_before_km2": round(before, 6), "area_after_km2": round(after, 6),
                               "area_delta_km2": round(after - before, 6)})
    imported = with_computed_area(schema.normalize_zones(zones.reset_index(drop=True)))
    scope = replace_scope(current, options.layer, options.district)
    kept = current[~scope]
    kept_ids = set(kept["zone_id"])
    located = {p.split(":")[0] for p in report.problems}
    try:
        # parents among the kept zones are fine; the merged table is validated below
        schema.validate_zones(imported.assign(parent_id=[None if p in kept_ids else p
                                                         for p in imported["parent_id"]]))
    except schema.ZoneValidationError as exc:
        report.problems += _by_feature(exc.problems, labels, located)
    _summarise(report, imported)
    checkable = imported[imported["district_code"].notna() & imported.geometry.is_valid
                         & ~imported.geometry.is_empty]
    if len(checkable):
        rows, notes, problems = check_districts(checkable, districts, missing_reason)
        report.district_check = rows
        report.warnings += notes
        report.problems += problems

    report.replaces = {str(k): int(v) for k, v in current[scope]["district_code"].value_counts().items()}
    if not options.district:
        report.warnings.append(f"no --district: the import replaces layer {options.layer!r} in every district "
                               f"({sum(report.replaces.values())} zone(s))")
    clash = sorted(kept_ids & set(imported["zone_id"]))
    if clash:
        report.problems.append(f"zone id(s) {', '.join(clash)} are already used by zones outside the replaced "
                               "scope (another layer or district); map zone_id to other values")
    if report.problems:
        return report, None
    merged = gpd.GeoDataFrame(pd.concat([kept, imported], ignore_index=True), geometry="geometry", crs=schema.CRS)
    try:
        schema.validate_zones(merged)
    except schema.ZoneValidationError as exc:
        report.problems += [f"after the import: {p}" for p in exc.problems]
        return report, None
    report.changes = diff_details(current, merged)
    return report, merged


def run_import(store: StoreBackend, path: Path, options: ImportOptions, *, dry_run: bool, author: str,
               source_name: str | None = None,
               limits: uploads.UploadLimits = uploads.UploadLimits(),
               audit: AuditEvent | None = None) -> ImportReport:
    """Prepare the import and, unless dry run or any problem, write it as a new version
    (with ``audit`` recorded in the same transaction)."""
    current, info = store.snapshot()  # one read; a write after it makes save() refuse
    base_version = info.version
    with tempfile.TemporaryDirectory(prefix="zoning-import-") as tmp:
        report, merged = prepare_import(Path(path), current, options, workdir=Path(tmp),
                                        source_name=source_name, limits=limits)
    report.dry_run = dry_run
    if merged is None or dry_run:
        return report
    district = f" district {options.district}" if options.district else ""
    note = (f"import of layer {options.layer}{district}: {report.zones} zone(s), {report.crs} "
            f"({report.crs_note}), encoding {report.encoding}, accuracy {report.accuracy}")
    info = store.save(merged, action="import", author=author, source=report.source,
                      source_sha256=report.source_sha256, note=note, base_version=base_version,
                      audit=audit)
    report.version = info.as_dict()
    return report
