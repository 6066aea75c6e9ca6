"""Cross-check: PostGIS ST_Covers and geo.lookup agree exactly on the bundled zones.

The fixture starts a throwaway PostgreSQL 15 + PostGIS 3 server (Debian's
postgresql-15-postgis-3). Without it the test is skipped locally, but fails in CI
(env CI set), where .ci/run installs it.
"""

from __future__ import annotations

import os

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.lookup import ZoneIndex
from geo.paths import BASE_DIR
from tests.postgis_server import COVERS_SQL, PostGISUnavailable, load_points, load_zones, postgis_server

pytestmark = pytest.mark.postgis

FOUR_DISTRICTS = ("110108", "110109", "110117", "110118")  # 海淀, 门头沟, 平谷, 密云


@pytest.fixture(scope="module")
def postgis():
    try:
        with postgis_server() as server:
            yield server
    except PostGISUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostGIS cross-check: {exc}")
        pytest.skip(str(exc))


def district_points(n: int, seed: int):
    """n random points over the four districts' extent, plus every zone vertex for exact-boundary cases."""
    districts = gpd.read_file(BASE_DIR / "districts.geojson")
    minx, miny, maxx, maxy = districts[districts["adcode"].isin(FOUR_DISTRICTS)].total_bounds
    rng = np.random.default_rng(seed)
    return rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)


def test_postgis_st_covers_agrees_exactly_with_the_engine(postgis, bundled_zones):
    import psycopg

    lon, lat = district_points(10_000, seed=2024)
    vertices = shapely.get_coordinates(bundled_zones.geometry.values)[::7]  # on the boundary: covered
    lon, lat = np.r_[lon, vertices[:, 0]], np.r_[lat, vertices[:, 1]]
    with psycopg.connect(postgis.conninfo, autocommit=True) as conn:
        load_zones(conn, bundled_zones.geometry.values, bundled_zones["zone_id"].tolist())
        load_points(conn, lon, lat)
        expected = set(conn.execute(COVERS_SQL).fetchall())
    hits = ZoneIndex.from_frame(bundled_zones).lookup_points(lon, lat)
    found = set(zip(hits.point.tolist(), hits.zone.tolist(), strict=True))
    assert len(expected) > 5_000  # the random points do fall in zones, not only the vertices
    assert found == expected, (f"{len(found - expected)} pairs only in the engine, "
                               f"{len(expected - found)} only in PostGIS")
