"""The lookup index saved per data version: a loaded index answers exactly as a freshly
built one, a damaged or foreign one is detected and rebuilt, and the service saves it
next to the store so the next process loads it."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import shapely

from geo import index_files, schema
from geo.catalog import ZoneCatalog
from geo.lookup import ZoneIndex, build_arrays
from geo.paths import REPO_DIR
from geo.store import ZoneStore
from tests.conftest import make_zone


def random_points(zones, n, seed):
    minx, miny, maxx, maxy = zones.total_bounds
    rng = np.random.default_rng(seed)
    lon, lat = rng.uniform(minx - 0.01, maxx + 0.01, n), rng.uniform(miny - 0.01, maxy + 0.01, n)
    vertices = shapely.get_coordinates(zones.geometry.values)[::5]  # on boundaries: the exact-test path
    return np.r_[lon, vertices[:, 0]], np.r_[lat, vertices[:, 1]]


def saved_index(zones, directory, grid_size=256):
    ids = zones["zone_id"].tolist()
    index_files.save(directory, build_arrays(np.asarray(zones.geometry.values, dtype=object), grid_size),
                     zone_ids=ids, grid_size=grid_size)
    return ZoneIndex(zones, arrays=index_files.load(directory, zone_ids=ids))


def test_a_loaded_index_answers_exactly_as_a_freshly_built_one(bundled_zones, tmp_path):
    fresh = ZoneIndex(bundled_zones, grid_size=256)
    loaded = saved_index(bundled_zones, tmp_path / "v1", grid_size=256)
    assert isinstance(loaded.cell_start, np.memmap)  # memory-mapped, not read into memory
    lon, lat = random_points(bundled_zones, 20_000, seed=16)
    for as_of in (None, "2019-01-01"):
        a, b = fresh.lookup_points(lon, lat, as_of=as_of), loaded.lookup_points(lon, lat, as_of=as_of)
        assert np.array_equal(a.point, b.point) and np.array_equal(a.zone, b.zone)
    assert a.zone.size > 1_000  # points do fall in zones
    points_m = fresh.metric_points(lon[:2000], lat[:2000])
    hits = fresh.lookup_points(lon[:2000], lat[:2000])
    assert np.array_equal(fresh.distance_to_boundary_m(points_m, hits), loaded.distance_to_boundary_m(points_m, hits))
    near_a, near_b = fresh.nearby(points_m, 800, hits), loaded.nearby(points_m, 800, hits)
    assert near_a.zone.size > 0
    assert np.array_equal(near_a.zone, near_b.zone) and np.array_equal(near_a.distance_m, near_b.distance_m)
    site = shapely.box(116.0, 39.9, 116.2, 40.1)
    assert np.array_equal(fresh.site_overlaps(site).overlap_m2, loaded.site_overlaps(site).overlap_m2)


def test_point_zones_survive_the_round_trip(sample_zones, tmp_path):
    section = make_zone("t-section", shapely.Point(116.12, 39.93), layer=sorted(schema.POINT_LAYERS)[0])
    zones = pd.concat([sample_zones, schema.zones_from_records([section])], ignore_index=True)
    loaded = saved_index(zones, tmp_path / "v1")
    fresh = ZoneIndex(zones, grid_size=256)
    hits = loaded.lookup_points([116.12, 116.1201], [39.93, 39.93])
    assert hits.point.tolist() == [0] and zones["zone_id"][hits.zone[0]] == "t-section"
    # A point zone's boundary is the point itself: the section is ~8.5 m from the second point.
    for index in (fresh, loaded):
        near = index.nearby(index.metric_points([116.1201], [39.93]), 50, index.lookup_points([116.1201], [39.93]))
        assert zones["zone_id"][near.zone].tolist() == ["t-section"]
        assert near.distance_m[0] == pytest.approx(8.54, abs=0.05)


def corrupt_flip_byte(directory):
    path = directory / "entry_zone.npy"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))


def corrupt_truncate(directory):
    path = directory / "cell_start.npy"
    path.write_bytes(path.read_bytes()[:-800])


def corrupt_delete_file(directory):
    (directory / "zone_crs.npy").unlink()


def corrupt_manifest(directory):
    (directory / "manifest.json").write_text('{"format": "zoning-lookup-ind')


@pytest.mark.parametrize("damage", [corrupt_flip_byte, corrupt_truncate, corrupt_delete_file, corrupt_manifest])
def test_a_damaged_index_is_detected_and_rebuilt(sample_zones, tmp_path, damage, caplog):
    directory = tmp_path / "v1"
    ids = sample_zones["zone_id"].tolist()
    saved_index(sample_zones, directory)
    damage(directory)
    with pytest.raises(index_files.IndexFileError):
        index_files.load(directory, zone_ids=ids)
    builds = []

    def build():
        builds.append(1)
        return build_arrays(np.asarray(sample_zones.geometry.values, dtype=object), 256)

    arrays = index_files.load_or_build(directory, ids, build, grid_size=256)
    assert builds == [1] and "rebuilding the lookup index" in caplog.text
    index_files.load(directory, zone_ids=ids)  # the rebuilt directory is sound again
    rebuilt = ZoneIndex(sample_zones, arrays=arrays)
    lon, lat = random_points(sample_zones, 2_000, seed=3)
    fresh = ZoneIndex(sample_zones, grid_size=256)
    assert np.array_equal(rebuilt.lookup_points(lon, lat).zone, fresh.lookup_points(lon, lat).zone)


def test_an_index_of_other_zones_is_not_used(sample_zones, tmp_path):
    saved_index(sample_zones, tmp_path / "v1")
    reordered = sample_zones["zone_id"].tolist()[::-1]  # rows are referred to by position
    with pytest.raises(index_files.IndexFileError, match="other zones"):
        index_files.load(tmp_path / "v1", zone_ids=reordered)


def test_saving_over_an_existing_index_keeps_it_and_leaves_no_temporary_files(sample_zones, tmp_path):
    saved_index(sample_zones, tmp_path / "v1")
    before = (tmp_path / "v1" / "manifest.json").read_text()
    saved_index(sample_zones, tmp_path / "v1")  # a second process that built at the same time
    assert (tmp_path / "v1" / "manifest.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["v1"]


def test_the_catalog_saves_the_index_beside_the_store_and_the_next_process_loads_it(sample_zones, tmp_path):
    store = ZoneStore(tmp_path / "zones.gpkg")
    info = store.save(sample_zones, action="init")
    snap = ZoneCatalog(store).snapshot()
    snap.lookup_index()
    directory = tmp_path / "index" / "zones" / info.data_version
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["zone_count"] == len(sample_zones)
    # A new process loads it instead of building (a build would rewrite the files).
    mtime = (directory / "cell_start.npy").stat().st_mtime_ns
    code = ("import sys; from geo.catalog import ZoneCatalog; from geo.store import ZoneStore; "
            "import geo.lookup as L; L.build_arrays = None; "  # building would fail: it must load
            "i = ZoneCatalog(ZoneStore(sys.argv[1])).snapshot().lookup_index(); print(len(i))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "zones.gpkg")], cwd=REPO_DIR,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(len(sample_zones))
    assert (directory / "cell_start.npy").stat().st_mtime_ns == mtime
    # A new version gets its own directory; old ones are pruned to the last few.
    for k in range(index_files.KEEP_VERSIONS + 1):
        time.sleep(0.01)
        store.save(sample_zones.iloc[: 1 + k % 3], action="edit")
        ZoneCatalog(store).snapshot().lookup_index()
    kept = [d for d in (tmp_path / "index" / "zones").iterdir() if d.is_dir()]
    assert len(kept) == index_files.KEEP_VERSIONS
