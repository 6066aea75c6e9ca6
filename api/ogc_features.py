"""Pre-encoded GeoJSON features, built once per data version, layer and output CRS.

An items page used to copy the layer's table, re-round every geometry and re-encode it
(61.7 ms for one page of ``collaboration``). Now each layer is encoded once per data
version and CRS: every feature becomes its final JSON bytes, and a page is a slice of
them joined into the FeatureCollection envelope. Requests that change the feature
itself (``properties=``, ``skipGeometry``) encode just their page.

Features are RFC 7946 in CRS84 (counter-clockwise exteriors, 7 decimals ≈ 1 cm) or in
the requested CRS with its own axis order and precision (``OutputCRS``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import shapely

from api.ogc_query import filter_table
from geo import crs as geocrs
from geo.catalog import Snapshot
from geo.published import published_properties
from geo.schema import zones_to_geojson

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


@dataclass(frozen=True)
class OutputCRS:
    uri: str
    name: str  # geo.crs name used for the transformation
    swap_axes: bool  # the CRS's first axis is north (latitude or northing)
    decimals: int  # 1e-7 degree is ~1 cm; projected output to the millimetre


@dataclass(frozen=True)
class LayerData:
    """One collection on one data version: its zones, their filter table and ids."""

    zones: gpd.GeoDataFrame  # WGS84, positions 0..n-1
    table: gpd.GeoDataFrame  # api.ogc_query.filter_table
    positions_by_id: dict[str, int]


def layer_data(snap: Snapshot, layer: str) -> LayerData:
    def build(zones: gpd.GeoDataFrame) -> LayerData:
        subset = zones[zones["layer"] == layer].reset_index(drop=True)
        return LayerData(subset, filter_table(subset), {z: i for i, z in enumerate(subset["zone_id"])})

    return snap.derived(f"ogc-layer:{layer}", build)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def features_in(frame: gpd.GeoDataFrame, out: OutputCRS, properties: list[str] | None = None,
                skip_geometry: bool = False) -> list[dict[str, Any]]:
    """GeoJSON features with the published properties (all, or ``properties``)."""
    if len(frame) == 0:
        return []
    if out.uri != CRS84:
        frame = geocrs.frame_from_wgs84(frame, out.name)
        if out.swap_axes:
            frame = frame.set_geometry(shapely.transform(frame.geometry.values, lambda c: c[:, ::-1]))
    features = zones_to_geojson(frame, precision=out.decimals)["features"]
    for feature in features:
        props = published_properties(feature["properties"])
        feature["properties"] = props if properties is None else {k: props[k] for k in properties}
        if skip_geometry:
            feature["geometry"] = None
    return features


def encoded_features(snap: Snapshot, layer: str, out: OutputCRS) -> list[bytes]:
    """Every feature of ``layer`` as JSON bytes in ``out``, in collection order (cached)."""
    data = layer_data(snap, layer)

    def build(_zones) -> list[bytes]:
        return [_dumps(f) for f in features_in(data.zones, out)]

    return snap.derived(f"ogc-features:{layer}:{out.uri}", build)


def encode_page(snap: Snapshot, layer: str, out: OutputCRS, positions, properties: list[str] | None,
                skip_geometry: bool) -> list[bytes]:
    """The features at ``positions`` as JSON bytes: cached ones, or this page encoded now."""
    if properties is None and not skip_geometry:
        cached = encoded_features(snap, layer, out)
        return [cached[i] for i in positions]
    frame = layer_data(snap, layer).zones.iloc[list(positions)]
    return [_dumps(f) for f in features_in(frame, out, properties, skip_geometry)]


def collection_bytes(features: list[bytes], members: dict[str, Any]) -> bytes:
    """``{"type":"FeatureCollection","features":[…], **members}`` without re-encoding features."""
    tail = _dumps(members)[1:]  # members as '"k":v,…}' (empty members give '}')
    return b'{"type":"FeatureCollection","features":[' + b",".join(features) + b"]" + \
        (b"," + tail if len(tail) > 1 else tail)
