"""Parcel batches: POST /v1/check/sites and `zoning check-file --sites` (geo.parcels)."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from geo.crs import geodesic_area_m2
from tests.test_api_check import run_cli

AS_OF = "2022-01-01"


def random_parcels(n: int, seed: int = 1) -> gpd.GeoDataFrame:
    """Rectangles of ~100-900 m around the sample zones, a few far away."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(115.97, 116.33, n), rng.uniform(39.87, 40.08, n)
    w = rng.uniform(0.001, 0.01, n)
    frame = gpd.GeoDataFrame({"地块编号": [f"DK-{i:04d}" for i in range(n)], "面积": np.round(w * 1e4, 1)},
                             geometry=shapely.box(x, y, x + w, y + w * 0.7), crs="EPSG:4326")
    frame.loc[0, "geometry"] = shapely.box(116.5, 39.5, 116.51, 39.51)  # touches no zone
    return frame


def rows_of(text: str) -> tuple[list[dict], list[str]]:
    lines = text.rstrip("\n").split("\n")
    return list(csv.DictReader(io.StringIO("\n".join(lines[:-1]) + "\n"))), lines[-1].split(",")


def test_overlaps_equal_geopandas_overlay_with_geodesic_area(sample_zones):
    from geo.lookup import ZoneIndex
    from geo.parcels import parcel_overlaps

    parcels = random_parcels(400)
    index = ZoneIndex(sample_zones)
    found = parcel_overlaps(index, parcels.geometry.values)
    # the reference: geopandas overlay, geodesic area of each piece
    zones = sample_zones[["zone_id", "geometry"]]
    pieces = gpd.overlay(parcels.assign(parcel=np.arange(len(parcels))), zones, how="intersection",
                         keep_geom_type=True)
    expected = {(p, z): a for p, z, a in zip(pieces["parcel"], pieces["zone_id"],
                                             geodesic_area_m2(pieces.geometry.values), strict=True) if a > 0}
    zone_ids = index.zones["zone_id"].to_numpy()
    got = {(int(p), zone_ids[z]): a for p, z, a in zip(found.parcel, found.zone, found.overlap_m2, strict=True)
           if a > 0}
    assert got.keys() == expected.keys() and len(got) > 100
    worst = max(abs(got[k] - expected[k]) / expected[k] for k in got)
    assert worst <= 1e-6, worst
    assert np.allclose(found.parcel_area_m2, geodesic_area_m2(parcels.geometry.values), rtol=1e-12)


def gpkg_bytes(frame: gpd.GeoDataFrame, tmp_path, crs: str) -> bytes:
    path = tmp_path / "parcels.gpkg"
    pyogrio.write_dataframe(frame.to_crs(crs), path, driver="GPKG")
    return path.read_bytes()


def test_geopackage_in_gauss_kruger_gives_one_row_per_parcel_and_zone(sample_client, tmp_path):
    parcels = random_parcels(60)
    body = gpkg_bytes(parcels, tmp_path, "EPSG:4548")
    answer = sample_client.post("/v1/check/sites", params={"as_of": AS_OF}, content=body,
                                headers={"content-type": "application/geopackage+sqlite3"})
    assert answer.status_code == 200, answer.text
    rows, trailer = rows_of(answer.text)
    assert trailer[:3] == ["#complete", "60", str(len(rows))]
    assert {"地块编号", "面积", "zone_id", "overlap_m2", "share_of_parcel", "share_of_zone", "rules"} <= set(rows[0])
    far = [r for r in rows if r["地块编号"] == "DK-0000"]
    assert len(far) == 1 and far[0]["zone_id"] == "" and float(far[0]["overlap_m2"]) == 0
    assert {r["地块编号"] for r in rows} == set(parcels["地块编号"])  # every parcel appears
    # the shares agree with the areas (parcels went through EPSG:4548 and back: same areas to ~1e-6)
    for r in rows:
        if r["zone_id"]:
            assert float(r["share_of_parcel"]) == pytest.approx(float(r["overlap_m2"]) / float(r["parcel_area_m2"]),
                                                                abs=1e-6)
    inside = [r for r in rows if r["zone_id"] == "t-square"]
    assert inside and all(r["rules"] == "ban_scale_livestock" for r in inside)


def test_parcels_as_gpkg_and_geoparquet_answers(sample_client, tmp_path):
    parcels = random_parcels(30, seed=4)
    body = parcels.to_json().encode()
    for fmt in ("gpkg", "parquet"):
        answer = sample_client.post("/v1/check/sites", params={"as_of": AS_OF, "format": fmt}, content=body,
                                    headers={"content-type": "application/geo+json"})
        assert answer.status_code == 200, answer.text
        path = tmp_path / f"out.{fmt}"
        path.write_bytes(answer.content)
        out = gpd.read_parquet(path) if fmt == "parquet" else gpd.read_file(path)
        assert set(out["地块编号"]) == set(parcels["地块编号"]) and out.crs.to_epsg() == 4326
        assert "overlap_m2" in out.columns and out.geometry.geom_type.isin(["Polygon"]).all()


def test_csv_with_wkt_and_zipped_gbk_shapefile(sample_client, tmp_path):
    parcels = random_parcels(20, seed=6)
    text = "名称,wkt\n" + "".join(f"{n},\"{g.wkt}\"\n" for n, g in zip(parcels["地块编号"], parcels.geometry,
                                                                      strict=True))
    answer = sample_client.post("/v1/check/sites", params={"as_of": AS_OF}, content=text.encode("gbk"),
                                headers={"content-type": "text/csv"})
    assert answer.status_code == 200, answer.text
    from_csv = rows_of(answer.text)[0]
    shp = tmp_path / "shp"
    shp.mkdir()
    parcels.rename(columns={"地块编号": "名称"}).drop(columns="面积").to_file(shp / "parcels.shp", encoding="gbk")
    (shp / "parcels.cpg").unlink(missing_ok=True)  # as Chinese-Windows tools write them: no .cpg
    archive = tmp_path / "parcels.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for part in shp.iterdir():
            z.write(part, part.name)
    answer = sample_client.post("/v1/check/sites", params={"as_of": AS_OF}, content=archive.read_bytes(),
                                headers={"content-type": "application/zip"})
    assert answer.status_code == 200, answer.text
    from_shp = rows_of(answer.text)[0]
    assert [(r["名称"], r["zone_id"]) for r in from_shp] == [(r["名称"], r["zone_id"]) for r in from_csv]
    for a, b in zip(from_shp, from_csv, strict=True):
        assert float(a["overlap_m2"]) == pytest.approx(float(b["overlap_m2"]), rel=1e-6, abs=0.01)


def test_invalid_and_over_limit_parcel_files_are_refused(sample_client, tmp_path):
    bowtie = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"n": 1}, "geometry": {
        "type": "Polygon", "coordinates": [[[116.0, 39.9], [116.1, 40.0], [116.1, 39.9], [116.0, 40.0], [116.0, 39.9]]]}}]}
    answer = sample_client.post("/v1/check/sites", content=json.dumps(bowtie),
                                headers={"content-type": "application/geo+json"})
    assert answer.status_code == 422 and "Self-intersection" in answer.json()["detail"][0]["msg"]
    no_crs = sample_client.post("/v1/check/sites", content=b"name,wkt\na,POINT (1 2)\n",
                                headers={"content-type": "text/csv"})
    assert no_crs.status_code == 422 and "must be polygons" in no_crs.json()["detail"][0]["msg"]


def test_parcel_limit_is_413(tmp_path, sample_zones):
    from geo.schema import zones_to_geojson
    from tests.conftest import _client_for

    seed = tmp_path / "sample.geojson"
    seed.write_text(json.dumps(zones_to_geojson(sample_zones)), encoding="utf-8")
    with _client_for(tmp_path, seed, max_parcels=5) as client:
        answer = client.post("/v1/check/sites", content=random_parcels(6).to_json(),
                             headers={"content-type": "application/geo+json"})
    assert answer.status_code == 413 and "limit is 5" in answer.json()["detail"]


@pytest.fixture
def sample_store(tmp_path, sample_zones):
    from geo.store import ZoneStore

    path = tmp_path / "cli" / "zones.gpkg"
    ZoneStore(path).save(sample_zones, action="init")
    return path


def test_cli_check_file_sites_writes_a_geopackage_like_the_api(monkeypatch, capsys, sample_store, sample_client,
                                                              tmp_path):
    parcels = random_parcels(40, seed=8)
    source = tmp_path / "parcels.geojson"
    source.write_text(parcels.to_json(), encoding="utf-8")
    out = tmp_path / "out.gpkg"
    code, stdout, err = run_cli(monkeypatch, capsys, "check-file", str(source), "--sites", "--out", str(out),
                                "--as-of", AS_OF, "--store", str(sample_store))
    assert code == 0, err
    assert "40 parcels" in stdout
    written = gpd.read_file(out)
    api = rows_of(sample_client.post("/v1/check/sites", params={"as_of": AS_OF}, content=source.read_bytes(),
                                     headers={"content-type": "application/geo+json"}).text)[0]
    assert list(written["地块编号"]) == [r["地块编号"] for r in api]
    assert [z if isinstance(z, str) else "" for z in written["zone_id"]] == [r["zone_id"] for r in api]
    bad = tmp_path / "bad.xyz"
    bad.write_text("x")
    code, _, err = run_cli(monkeypatch, capsys, "check-file", str(bad), "--sites", "--out", str(out),
                           "--store", str(sample_store))
    assert code == 2 and "unsupported parcel file" in err


def test_parcels_get_the_verdict_of_the_parcel_as_a_whole(client):
    from tests.test_verdicts import PIG, TIANANMEN, YONGDING

    parcels = gpd.GeoDataFrame({"name": ["yongding", "tiananmen"]}, geometry=[
        shapely.box(YONGDING[0] - 0.002, YONGDING[1] - 0.002, YONGDING[0] + 0.002, YONGDING[1] + 0.002),
        shapely.box(TIANANMEN[0] - 0.001, TIANANMEN[1] - 0.001, TIANANMEN[0] + 0.001, TIANANMEN[1] + 0.001)],
        crs="EPSG:4326")
    answer = client.post("/v1/check/sites", params={"activity": PIG}, content=parcels.to_json(),
                         headers={"content-type": "application/geo+json"})
    assert answer.status_code == 200, answer.text
    rows, _ = rows_of(answer.text)
    verdict = {r["name"]: r[f"verdict_{PIG}"] for r in rows}
    assert verdict["yongding"] == "prohibited"  # in the gorge corridor, as a point there is
    assert all(r[f"verdict_{PIG}"] == "prohibited" for r in rows if r["name"] == "yongding")
    single = client.get("/v1/check", params={"lon": TIANANMEN[0], "lat": TIANANMEN[1], "activity": PIG}).json()
    assert verdict["tiananmen"] == single["verdicts"][0]["verdict"]
