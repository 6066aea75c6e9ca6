"""POST /v1/check/batch in its columnar forms (CSV, Arrow IPC, GeoParquet), encodings,
the completeness markers, and `zoning check-file` on the same path."""

from __future__ import annotations

import csv
import io
import json

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
import shapely

from tests.conftest import _client_for
from tests.test_api_check import csv_body, post_batch, random_points, run_cli

ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"


def csv_answer(text: str) -> tuple[list[dict], list[str]]:
    """(rows, trailer fields) of a CSV answer."""
    lines = text.rstrip("\n").split("\n")
    return list(csv.DictReader(io.StringIO("\n".join(lines[:-1]) + "\n"))), lines[-1].split(",")


def test_csv_answer_matches_the_json_answer_and_ends_with_its_trailer(sample_client):
    lon, lat = random_points(500)
    json_answer = post_batch(sample_client, csv_body(lon, lat), as_of="2020-06-01").json()
    answer = sample_client.post("/v1/check/batch", params={"as_of": "2020-06-01"}, content=csv_body(lon, lat),
                                headers={"content-type": "text/csv", "accept": "text/csv"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows, trailer = csv_answer(answer.text)
    assert [r["id"] for r in rows] == [r["id"] for r in json_answer["results"]]
    assert [r["zone_ids"].split(";") if r["zone_ids"] else [] for r in rows] == \
        [r["zone_ids"] for r in json_answer["results"]]
    assert [int(r["zone_count"]) for r in rows] == [len(r["zone_ids"]) for r in json_answer["results"]]
    assert trailer == ["#complete", "500", json_answer["data_version"]]
    assert answer.headers["x-zoning-count"] == "500"
    assert answer.headers["x-zoning-data-version"] == json_answer["data_version"]


def test_json_answer_ends_with_the_count_and_complete(sample_client):
    answer = post_batch(sample_client, csv_body([116.05, 116.5], [39.92, 39.5]))
    tail = answer.text.rstrip()[-60:]
    assert tail.endswith('"returned":2,"complete":true}'), tail
    assert answer.json()["complete"] is True and answer.json()["returned"] == 2


def test_csv_distances_are_metres_to_each_zone_boundary(sample_client):
    # 116.05, 39.92 is 0.02° north of t-square's southern edge: ~2 221 m; the other edges are farther
    answer = sample_client.post("/v1/check/batch", params={"as_of": "2022-01-01", "distances": "true"},
                                content="id,lon,lat\na,116.05,39.92\nb,117.5,40.5\n",
                                headers={"content-type": "text/csv", "accept": "text/csv"})
    rows, _ = csv_answer(answer.text)
    assert rows[0]["zone_ids"] == "t-square" and float(rows[0]["distances_m"]) == pytest.approx(2221, abs=5)
    assert rows[1]["zone_ids"] == "" and rows[1]["distances_m"] == ""


def arrow_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def test_arrow_in_and_out_gives_the_csv_answer(sample_client):
    lon, lat = random_points(300, seed=3)
    body = arrow_bytes(pa.table({"id": [f"p{i}" for i in range(300)], "lon": lon, "lat": lat}))
    answer = sample_client.post("/v1/check/batch", params={"as_of": "2020-06-01"}, content=body,
                                headers={"content-type": ARROW, "accept": ARROW})
    assert answer.status_code == 200 and answer.headers["content-type"] == ARROW
    table = ipc.open_stream(answer.content).read_all()
    expected = post_batch(sample_client, csv_body(lon, lat), as_of="2020-06-01").json()["results"]
    assert table.column("id").to_pylist() == [r["id"] for r in expected]
    assert [z.split(";") if z else [] for z in table.column("zone_ids").to_pylist()] == \
        [r["zone_ids"] for r in expected]


def test_a_cut_arrow_stream_is_detectable(sample_client):
    body = arrow_bytes(pa.table({"lon": [116.05] * 1000, "lat": [39.92] * 1000}))
    answer = sample_client.post("/v1/check/batch", content=body, headers={"content-type": ARROW, "accept": ARROW})
    table = ipc.open_stream(answer.content).read_all()
    assert table.schema.metadata[b"count"] == b"1000" and table.num_rows == 1000  # rows read == count: whole
    with pytest.raises((pa.ArrowInvalid, OSError)):  # cut inside a message: unreadable
        ipc.open_stream(answer.content[:-100]).read_all()


def test_geoparquet_in_gcj02_and_out_as_wgs84_points(sample_client, tmp_path):
    from geo import crs as geocrs

    x, y = geocrs.from_wgs84([116.05, 116.25, 116.5], [39.92, 39.95, 39.5], "gcj02")
    points = gpd.GeoDataFrame({"id": ["a", "b", "c"]}, geometry=gpd.points_from_xy(x, y))
    path = tmp_path / "in.parquet"
    points.to_parquet(path)
    answer = sample_client.post("/v1/check/batch", params={"as_of": "2022-01-01", "crs": "gcj02"},
                                content=path.read_bytes(), headers={"content-type": PARQUET, "accept": PARQUET})
    assert answer.status_code == 200, answer.text
    (tmp_path / "out.parquet").write_bytes(answer.content)
    out = gpd.read_parquet(tmp_path / "out.parquet")  # geopandas reads it as GeoParquet
    assert out.crs.to_string() == "OGC:CRS84" and list(out["id"]) == ["a", "b", "c"]
    assert [list(z) for z in out["zone_ids"]] == [["t-square"], [], []]  # b is in t-holed's hole
    assert shapely.equals_exact(out.geometry.values[0], shapely.Point(116.05, 39.92), 1e-7)


def test_columnar_answers_take_more_points_than_json(tmp_path, sample_zones):
    seed = tmp_path / "sample.geojson"
    from geo.schema import zones_to_geojson

    seed.write_text(json.dumps(zones_to_geojson(sample_zones)), encoding="utf-8")
    with _client_for(tmp_path, seed, max_batch_points=10, max_columnar_points=20) as client:
        body = "lon,lat\n" + "116.05,39.92\n" * 15
        assert post_batch(client, body).status_code == 413  # JSON: over 10
        answer = client.post("/v1/check/batch", content=body, params={"format": "csv"},
                             headers={"content-type": "text/csv"})
        assert answer.status_code == 200 and csv_answer(answer.text)[1][1] == "15"
        too_many = client.post("/v1/check/batch", content="lon,lat\n" + "116.05,39.92\n" * 21,
                               params={"format": "csv"}, headers={"content-type": "text/csv"})
        assert too_many.status_code == 413 and "20" in too_many.json()["detail"]


def test_unknown_format_is_422(sample_client):
    answer = sample_client.post("/v1/check/batch", params={"format": "xlsx"}, content="lon,lat\n116,39.9\n",
                                headers={"content-type": "text/csv"})
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", "format"]


@pytest.fixture
def sample_store(tmp_path, sample_zones):
    from geo.store import ZoneStore

    path = tmp_path / "cli" / "zones.gpkg"
    ZoneStore(path).save(sample_zones, action="init")
    return path


CHINESE_CSV = "编号,lon,lat,id\n养殖场,116.05,39.92,门头沟一号\n养殖场,116.5,39.5,门头沟二号\n"


@pytest.mark.parametrize(("data", "params"), [
    (CHINESE_CSV.encode("gbk"), {}),                      # Excel on Chinese Windows
    (CHINESE_CSV.encode("gb18030"), {}),
    (b"\xef\xbb\xbf" + CHINESE_CSV.encode("utf-8"), {}),  # Excel's "CSV UTF-8"
    (CHINESE_CSV.encode("gbk"), {"encoding": "gbk"}),
])
def test_gbk_and_bom_csv_are_read(sample_client, data, params):
    answer = post_batch(sample_client, data, as_of="2022-01-01", **params)
    assert answer.status_code == 200, answer.text
    assert [(r["id"], r["zone_ids"]) for r in answer.json()["results"]] == [("门头沟一号", ["t-square"]),
                                                                             ("门头沟二号", [])]


def test_undecodable_csv_names_the_encodings_tried_and_how_to_resave(sample_client):
    answer = post_batch(sample_client, b"id,lon,lat\n\xff\xfe\x80,116,39.9\n")
    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert "utf-8, gb18030" in error["msg"] and "CSV UTF-8" in error["msg"] and "encoding=" in error["msg"]


def test_forced_wrong_encoding_is_422(sample_client):
    answer = post_batch(sample_client, CHINESE_CSV.encode("gbk"), encoding="utf-8")
    assert answer.status_code == 422 and "not utf-8 text" in answer.json()["detail"][0]["msg"]


def test_fast_and_row_by_row_readers_agree():
    from geo import batch as gbatch

    lon, lat = random_points(200, seed=11)
    text = csv_body(lon, lat).encode()
    fast = gbatch.read_csv_points(text)
    assert fast is not None
    with_blank = text.replace(b"\np5,", b"\n\np5,", 1)
    assert gbatch.read_csv_points(with_blank) is None  # blank line: the row reader counts rows
    from api.batch import read_batch_points

    slow = read_batch_points(with_blank, "csv")
    assert fast.ids.to_pylist() == slow.ids.to_pylist()
    assert np.array_equal(fast.x, slow.x) and np.array_equal(fast.y, slow.y)
    assert slow.where(5) == (("row", 8), "row 8")  # after the blank line, as a spreadsheet counts


def test_cli_check_file_reads_gbk_writes_distances_and_parquet(monkeypatch, capsys, sample_store, tmp_path):
    source = tmp_path / "farms.csv"
    source.write_bytes(CHINESE_CSV.encode("gbk"))
    out = tmp_path / "out.csv"
    code, stdout, err = run_cli(monkeypatch, capsys, "check-file", str(source), "--out", str(out), "--distances",
                                "--as-of", "2022-01-01", "--store", str(sample_store))
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["id"] for r in rows] == ["门头沟一号", "门头沟二号"]
    assert rows[0]["zone_ids"] == "t-square" and float(rows[0]["distances_m"]) == pytest.approx(2221, abs=5)
    assert rows[0]["layers"] == "livestock_ban" and rows[0]["as_of"] == "2022-01-01"
    parquet = tmp_path / "out.parquet"
    code, _, err = run_cli(monkeypatch, capsys, "check-file", str(source), "--out", str(parquet),
                           "--as-of", "2022-01-01", "--store", str(sample_store))
    assert code == 0, err
    assert pq.read_table(parquet).column("zone_ids").to_pylist() == ["t-square", ""]


def test_cli_check_file_encoding_error_speaks_of_the_file_not_a_body(monkeypatch, capsys, sample_store, tmp_path):
    source = tmp_path / "farms.csv"
    source.write_bytes(b"id,lon,lat\n\xff\xfe\x80,116,39.9\n")
    code, _, err = run_cli(monkeypatch, capsys, "check-file", str(source), "--out", str(tmp_path / "o.csv"),
                           "--store", str(sample_store))
    assert code == 2 and "farms.csv" in err and "--encoding" in err and "gb18030" in err
    assert "body" not in err.lower()
    empty = tmp_path / "empty.csv"
    empty.write_text("lon,lat\n")
    code, _, err = run_cli(monkeypatch, capsys, "check-file", str(empty), "--out", str(tmp_path / "o.csv"),
                           "--store", str(sample_store))
    assert code == 2 and "no points" in err and "body" not in err.lower()


def test_columnar_answers_carry_a_verdict_column_per_activity(client):
    from tests.test_verdicts import HAIDIAN, PIG, TIANANMEN, YONGDING, ZHAITANG

    places = [ZHAITANG, YONGDING, TIANANMEN, *HAIDIAN]
    body = "id,lon,lat\n" + "\n".join(f"p{i},{x},{y}" for i, (x, y) in enumerate(places))
    as_json = client.post("/v1/check/batch", params={"activity": PIG}, content=body,
                          headers={"content-type": "text/csv"}).json()["results"]
    answer = client.post("/v1/check/batch", params={"activity": PIG, "format": "csv"}, content=body,
                         headers={"content-type": "text/csv"})
    rows, _ = csv_answer(answer.text)
    assert [r[f"verdict_{PIG}"] for r in rows] == [r["verdicts"][PIG] for r in as_json]
    assert rows[1][f"verdict_{PIG}"] == "prohibited"
    bad = client.post("/v1/check/batch", params={"activity": "nope", "format": "csv"}, content=body,
                      headers={"content-type": "text/csv"})
    assert bad.status_code == 422


def test_deeply_nested_json_is_422_and_the_cli_names_the_file(monkeypatch, capsys, sample_client, sample_store,
                                                              tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    answer = post_batch(sample_client, deep, "application/json")
    assert answer.status_code == 422 and "nested too deeply" in answer.json()["detail"][0]["msg"]
    source = tmp_path / "farms.geojson"
    source.write_text('{"type": "FeatureCollection", ', encoding="utf-8")
    code, _, err = run_cli(monkeypatch, capsys, "check-file", str(source), "--out", str(tmp_path / "o.csv"),
                           "--store", str(sample_store))
    assert code == 2 and "farms.geojson: the file is not valid JSON" in err and "body" not in err.lower()
