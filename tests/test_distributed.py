"""The distributed batch (``zoning check-file --engine dask``) answers exactly as the in-process
engine: 2 M points on a local dask.distributed cluster of two workers, and a GeoParquet file
in GCJ-02 through the command line."""

from __future__ import annotations

import subprocess
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

from geo import crs as geocrs
from geo.catalog import ZoneCatalog
from geo.distributed import _joined, check_points
from geo.paths import BUNDLED_ZONES
from geo.store import open_store
from tests.conftest import REPO

N_POINTS = 2_000_000
PARTITIONS = 4


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return open_store(tmp_path_factory.mktemp("store") / "zones.gpkg", BUNDLED_ZONES)


def points(store, n: int, seed: int):
    """n points, deterministic: uniform over the zones' extent (a margin outside too) plus
    zone vertices (on boundaries, where the exact test decides)."""
    zones = store.load()
    minx, miny, maxx, maxy = zones.total_bounds
    rng = np.random.default_rng(seed)
    vertices = shapely.get_coordinates(zones.geometry.values)
    k = min(len(vertices), n // 10)
    lon = np.r_[rng.uniform(minx - 0.05, maxx + 0.05, n - k), vertices[:k, 0]]
    lat = np.r_[rng.uniform(miny - 0.05, maxy + 0.05, n - k), vertices[:k, 1]]
    return lon, lat


def in_process(store, lon, lat, as_of=None):
    """The in-process engine's answer for every point: (zone_count, zone_ids, layers)."""
    snap = ZoneCatalog(store).snapshot()
    hits = snap.lookup_index().lookup_points(lon, lat, as_of=as_of)
    count = np.bincount(hits.point, minlength=lon.size)
    ids, layers = _joined(hits, count, snap.zones["zone_id"].to_numpy(dtype=object),
                          snap.zones["layer"].to_numpy(dtype=object))
    return count, ids, layers, snap.data_version


def test_two_million_points_on_a_dask_cluster_answer_as_in_process(store, tmp_path):
    lon, lat = points(store, N_POINTS, seed=16)
    src = tmp_path / "points"
    src.mkdir()
    for k, part in enumerate(np.array_split(np.arange(N_POINTS), PARTITIONS)):  # plain Parquet, lon/lat columns
        pq.write_table(pa.table({"id": part, "lon": lon[part], "lat": lat[part]}), src / f"part.{k}.parquet")
    result = check_points(src, tmp_path / "out", store.location, engine="dask", n_workers=2, as_of="2024-06-01")
    assert result["partitions"] == PARTITIONS
    out = pd.read_parquet(tmp_path / "out").sort_values("id", kind="stable").reset_index(drop=True)
    assert len(sorted((tmp_path / "out").glob("*.parquet"))) == PARTITIONS
    count, ids, layers, version = in_process(store, lon, lat, as_of="2024-06-01")
    assert out["id"].to_numpy().tolist() == list(range(N_POINTS))
    assert np.array_equal(out["zone_count"].to_numpy(), count)
    assert out["zone_ids"].to_numpy(dtype=object).tolist() == ids.tolist()
    assert out["layers"].to_numpy(dtype=object).tolist() == layers.tolist()
    assert set(out["data_version"]) == {version}
    assert np.array_equal(out["lon_wgs84"].to_numpy(), lon)
    assert (count > 0).sum() > 100_000 and (count > 1).sum() > 1_000  # inside one zone, and several


def test_check_file_engine_dask_reads_and_writes_geoparquet_in_any_crs(store, tmp_path):
    lon, lat = points(store, 40_000, seed=7)
    gx, gy = geocrs.from_wgs84(lon, lat, "gcj02")
    frame = gpd.GeoDataFrame({"id": [f"p{i}" for i in range(lon.size)]}, geometry=gpd.points_from_xy(gx, gy))
    src = tmp_path / "in"
    src.mkdir()
    for k, part in enumerate(np.array_split(np.arange(lon.size), 2)):
        frame.iloc[part].to_parquet(src / f"part.{k}.parquet")
    out = tmp_path / "answers"
    done = subprocess.run([sys.executable, "-m", "api.cli", "check-file", str(src), "--engine", "dask", "--workers",
                           "1", "--crs", "gcj02", "--as-of", "2024-06-01", "--out", str(out), "--store",
                           store.location], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "2 partition(s)" in done.stdout
    answers = gpd.read_parquet(out)  # GeoParquet: geometry and CRS come back
    assert answers.crs.to_epsg() == 4326 and len(answers) == lon.size
    answers = answers.set_index("id").loc[frame["id"]]
    wgs_lon, wgs_lat = geocrs.to_wgs84(gx, gy, "gcj02")
    count, ids, _, _ = in_process(store, wgs_lon, wgs_lat, as_of="2024-06-01")
    assert answers["zone_ids"].to_numpy(dtype=object).tolist() == ids.tolist()
    assert np.array_equal(answers.geometry.x.to_numpy(), wgs_lon)


def test_check_file_engine_dask_refuses_bad_input_naming_it(store, tmp_path):
    src = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"a": [1.0], "b": [2.0]}), src)
    done = subprocess.run([sys.executable, "-m", "api.cli", "check-file", str(src), "--engine", "dask",
                           "--out", str(tmp_path / "o"), "--store", store.location],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2 and "lon,lat" in done.stderr
    assert not (tmp_path / "o").exists()
