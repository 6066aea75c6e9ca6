"""Parcels on dask (``zoning check-file PARCELS --sites --engine dask``) answer exactly as the
in-process parcel batch: 120 000 parcels in four partitions on a dask.distributed LocalCluster
of two workers, GeoParquet partitions in a Gauss-Krüger CRS with an activity verdict through
the command line, and bad input refused with nothing left behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shapely

from api.parcels import result_columns
from geo import crs as geocrs
from geo import parcels as gparcels
from geo.catalog import ZoneCatalog
from geo.parcels_distributed import check_parcels
from geo.paths import BUNDLED_ZONES
from geo.store import open_store
from tests.conftest import REPO
from tests.test_api_check import run_cli
from tests.test_verdicts import PIG

AS_OF = "2024-06-01"
N_PARCELS = 120_000


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return open_store(tmp_path_factory.mktemp("store") / "zones.gpkg", BUNDLED_ZONES)


def synthetic_parcels(store, n: int, seed: int) -> gpd.GeoDataFrame:
    """n parcels, deterministic: rectangles of ~100 m to 1 km over the zones' extent (inside
    zones, across their boundaries, outside), a tenth centred on zone vertices (all crossing a
    boundary), every 50th a two-part MultiPolygon; own columns of text (some empty) and numbers."""
    zones = store.load()
    minx, miny, maxx, maxy = zones.total_bounds
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)
    vertices = shapely.get_coordinates(zones.geometry.values)
    on_edge = rng.choice(len(vertices), n // 10)
    x[: n // 10], y[: n // 10] = vertices[on_edge, 0], vertices[on_edge, 1]
    w = rng.uniform(0.001, 0.01, n)
    geoms = shapely.box(x - w / 2, y - w / 3, x + w / 2, y + w / 3)
    multi = np.arange(0, n, 50)
    geoms[multi] = shapely.multipolygons(np.stack([geoms[multi], shapely.box(x[multi] + w[multi],
                                         y[multi], x[multi] + 1.5 * w[multi], y[multi] + w[multi] / 2)], axis=1))
    owner = np.where(rng.random(n) < 0.2, None, np.array(["村集体", "国有", "个人"], dtype=object)[rng.integers(0, 3, n)])
    return gpd.GeoDataFrame({"地块编号": [f"DK-{i:06d}" for i in range(n)], "owner": owner,
                             "rank": rng.integers(1, 5, n)}, geometry=geoms, crs="EPSG:4326")


def in_process(store, path: Path, out: Path, activities: list[str] | None = None) -> gpd.GeoDataFrame:
    """The in-process parcel batch (as ``check-file --sites`` without the parcel limit), read back."""
    parcels = gparcels.read_parcels(path, workdir=out.parent, max_parcels=10**9)
    snap = ZoneCatalog(store).snapshot()
    frames = gparcels.iter_results(snap.lookup_index(), parcels, as_of=AS_OF, layers=None,
                                   verdict_columns=result_columns(snap, parcels, activities, AS_OF))
    gparcels.write_results(frames, "parquet", out)
    return gpd.read_parquet(out)


def assert_same_rows(got: gpd.GeoDataFrame, expected: gpd.GeoDataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(pd.DataFrame(got.drop(columns="geometry")),
                                  pd.DataFrame(expected.drop(columns="geometry")))
    assert shapely.equals_exact(got.geometry.values, expected.geometry.values, tolerance=0).all()
    assert got.crs.to_epsg() == 4326


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "api.cli", "check-file", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def test_parcels_on_a_two_worker_cluster_answer_row_for_row_as_in_process(store, tmp_path):
    frame = synthetic_parcels(store, N_PARCELS, seed=16)
    src = tmp_path / "parcels.parquet"  # one file, cut into partitions of 30 000
    frame.to_parquet(src)
    result = check_parcels(src, tmp_path / "out", store.location, engine="dask", n_workers=2, as_of=AS_OF,
                           partition_parcels=30_000)
    assert result["partitions"] == 4 and result["parcels"] == N_PARCELS
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == [f"part.{k:05d}.parquet" for k in range(4)]  # and no temporary directory left beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "parcels.parquet"]
    got = gpd.read_parquet(tmp_path / "out")
    expected = in_process(store, src, tmp_path / "in-process.parquet")
    assert len(got) == result["rows"] > N_PARCELS  # parcels crossing boundaries have one row per zone
    assert_same_rows(got, expected)
    assert got["zone_id"].notna().sum() == result["overlaps"] > 20_000
    assert (got["owner"].isna().sum() > 10_000) and (got.geometry.geom_type == "MultiPolygon").any()
    about = pq.read_schema(tmp_path / "out" / files[0]).metadata[b"zoning"].decode()
    assert result["data_version"] in about and AS_OF in about


def test_cli_gauss_kruger_partitions_with_an_activity_equal_check_file_sites(store, tmp_path):
    frame = synthetic_parcels(store, 6_000, seed=4)
    gk = frame.copy()
    gk.geometry = geocrs.geometry_from_wgs84(frame.geometry.values, "EPSG:4548")
    gk = gk.set_crs("EPSG:4548", allow_override=True)
    src = tmp_path / "in"
    src.mkdir()
    for k, part in enumerate(np.array_split(np.arange(len(gk)), 3)):
        gk.iloc[part].to_parquet(src / f"part.{k}.parquet")
    out = tmp_path / "answers"
    done = cli(str(src), "--sites", "--engine", "dask", "--workers", "1", "--as-of", AS_OF, "--activity", PIG,
               "--out", str(out), "--store", store.location)
    assert done.returncode == 0, done.stderr
    assert "6000 parcels (EPSG:4548, from the file) in 3 partition(s)" in done.stdout
    single = tmp_path / "parcels.parquet"
    gk.to_parquet(single)
    reference = tmp_path / "reference.parquet"  # the in-process command, same file in one piece
    done = cli(str(single), "--sites", "--as-of", AS_OF, "--activity", PIG, "--out", str(reference),
               "--store", store.location)
    assert done.returncode == 0, done.stderr
    got, expected = gpd.read_parquet(out), gpd.read_parquet(reference)
    assert_same_rows(got, expected)
    assert set(got[f"verdict_{PIG}"]) >= {"prohibited"}


def test_a_geopackage_is_cut_into_partitions_and_answers_as_in_process(store, tmp_path):
    frame = synthetic_parcels(store, 3_000, seed=9)
    src = tmp_path / "parcels.gpkg"
    frame.to_file(src, layer="parcels", driver="GPKG")
    result = check_parcels(src, tmp_path / "out", store.location, engine="local", as_of=AS_OF,
                           partition_parcels=1_000)
    assert result["partitions"] == 3
    assert_same_rows(gpd.read_parquet(tmp_path / "out"), in_process(store, src, tmp_path / "ref.parquet"))


def refused_by(store, tmp_path, src: Path, *args: str, runner) -> str:
    """The command's error for ``src``: exit 2, and no output nor temporary files left behind
    (an earlier answer in ``out`` stays as it was)."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    (out / "part.00000.parquet").write_bytes(b"earlier answer")
    before = sorted(p.name for p in tmp_path.iterdir())
    code, stdout, stderr = runner("check-file", str(src), "--sites", "--engine", "dask", "--workers", "1",
                                  "--out", str(out), "--store", store.location, *args)
    assert code == 2, (stdout, stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert [p.read_bytes() for p in out.iterdir()] == [b"earlier answer"]
    return " ".join(stderr.split())


def test_bad_parcel_input_exits_2_naming_the_problem_and_leaves_nothing(store, tmp_path, monkeypatch, capsys):
    def refused(src: Path, *args: str) -> str:
        return refused_by(store, tmp_path, src, *args, runner=lambda *a: run_cli(monkeypatch, capsys, *a))

    assert "nothing.parquet does not exist" in refused(tmp_path / "nothing.parquet")
    points = gpd.GeoDataFrame({"a": range(4)}, geometry=gpd.points_from_xy([116.0] * 4, [40.0] * 4), crs=4326)
    points.to_parquet(tmp_path / "points.parquet")
    message = refused(tmp_path / "points.parquet")
    assert "in partition 1 of 1, parcel 0 (row 1) is Point; parcels must be polygons" in message
    metres = synthetic_parcels(store, 50, seed=1)
    metres.geometry = geocrs.geometry_from_wgs84(metres.geometry.values, "EPSG:4548")
    metres.set_crs("EPSG:4326", allow_override=True).to_parquet(tmp_path / "says-wgs84.parquet")  # wrong CRS
    assert "coordinate outside wgs84" in refused(tmp_path / "says-wgs84.parquet")
    metres.set_crs(None, allow_override=True).to_parquet(tmp_path / "no-crs.parquet")
    assert "declares no CRS; name it with --crs" in refused(tmp_path / "no-crs.parquet")
    (tmp_path / "parcels.csv").write_text("wkt\nPOINT (1 2)\n")
    assert "reads parcels from GeoParquet" in refused(tmp_path / "parcels.csv")
    assert "unknown CRS" in refused(tmp_path / "no-crs.parquet", "--crs", "EPSG:99999")
