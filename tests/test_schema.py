import json

import pandas as pd
import pytest
import shapely

from geo import schema
from tests.conftest import make_zone


def test_valid_zones_pass_validation(sample_zones):
    schema.validate_zones(sample_zones)


def problems_for(**overrides):
    geometry = overrides.pop("geometry", shapely.box(116, 40, 116.1, 40.1))
    zone_id = overrides.pop("zone_id", "t-a")
    zones = schema.zones_from_records([make_zone(zone_id, geometry, **overrides)])
    with pytest.raises(schema.ZoneValidationError) as info:
        schema.validate_zones(zones)
    return info.value.problems


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"layer": "bogus"}, "zone t-a: layer 'bogus' is unknown"),
        ({"accuracy": "exact"}, "zone t-a: accuracy 'exact' is not one of"),
        ({"effective_from": "2020-13-01"}, "zone t-a: effective_from must be a YYYY-MM-DD date"),
        ({"effective_to": "2019-01-01"}, "zone t-a: effective_to 2019-01-01 is not after effective_from"),
        ({"source_doc_no": None}, "zone t-a: source_doc_no is required"),
        ({"district_code": "1101"}, "zone t-a: district_code must be a 6-digit adcode"),
        ({"parent_id": "nope"}, "zone t-a: parent_id 'nope' is not a zone"),
        ({"rules": [{"code": "x"}]}, "zone t-a: rules item 0 lacks 'text_zh'"),
        ({"stated_area_km2": -1.0}, "zone t-a: stated_area_km2 must be a non-negative number"),
        ({"geometry": shapely.Polygon()}, "zone t-a: geometry is empty"),
        ({"geometry": shapely.Point(116, 40)}, "zone t-a: geometry must be Polygon or MultiPolygon"),
        ({"geometry": shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])}, "zone t-a: geometry is invalid: Self-intersection"),
        ({"geometry": shapely.box(440000, 4400000, 450000, 4410000)}, "outside lon/lat range"),
        ({"zone_id": "Bad Id"}, "zone Bad Id: zone_id must be a lowercase slug"),
    ],
)
def test_validation_names_zone_and_field(overrides, expected):
    assert any(expected in p for p in problems_for(**overrides)), problems_for(**overrides)


def test_admin_zones_need_no_document():
    zones = schema.zones_from_records([
        make_zone("t-admin", shapely.box(116, 40, 116.1, 40.1), layer="admin",
                  source_doc_no=None, source_title=None, issuer=None, issued_on=None)])
    schema.validate_zones(zones)


def test_duplicate_ids_and_unknown_columns_are_reported(sample_zones):
    dup = sample_zones.copy()
    dup.loc[1, "zone_id"] = "t-square"
    dup["parent_id"] = None
    with pytest.raises(schema.ZoneValidationError, match="duplicate zone_id"):
        schema.validate_zones(dup)
    extra = sample_zones.assign(colour="red")
    with pytest.raises(schema.ZoneValidationError, match="unknown column"):
        schema.validate_zones(extra)
    with pytest.raises(schema.ZoneValidationError, match="missing column"):
        schema.validate_zones(sample_zones.drop(columns=["rules"]))


def test_wrong_crs_is_rejected(sample_zones):
    with pytest.raises(schema.ZoneValidationError, match="CRS must be EPSG:4326"):
        schema.validate_zones(sample_zones.to_crs(4548))


def test_geojson_round_trip_keeps_every_field(sample_zones):
    text = json.dumps(schema.zones_to_geojson(sample_zones), ensure_ascii=False)
    back = schema.zones_from_geojson(text)
    pd.testing.assert_frame_equal(back.drop(columns="geometry"), sample_zones.drop(columns="geometry"))
    assert all(a.normalize().equals_exact(b.normalize(), 1e-9) for a, b in zip(back.geometry, sample_zones.geometry, strict=True))


def test_geojson_output_follows_rfc7946_winding(sample_zones):
    clockwise = sample_zones.copy()
    clockwise["geometry"] = shapely.orient_polygons(clockwise.geometry.values, exterior_cw=True)
    fc = schema.zones_to_geojson(clockwise)
    for feature in fc["features"]:
        geom = shapely.geometry.shape(feature["geometry"])
        assert geom.exterior.is_ccw
        assert all(not ring.is_ccw for ring in geom.interiors)
