"""Point batch over HTTP against geopandas ``sjoin`` in-process, measured in one run.

For 100 000 and 1 000 000 random points over the four districts' extent:

* baseline: ``geopandas.sjoin(points, zones, predicate="within")`` in this process,
  starting from coordinate arrays (``points_from_xy`` counted: a caller has numbers);
* ``POST /v1/check/batch`` on a uvicorn server (one worker, 127.0.0.1) with the points as
  CSV in and CSV out, and as Arrow IPC in and out: the time from sending the body to
  holding the whole answer (the client's own file preparation not counted);
* ``zoning check-file`` in-process (read CSV, look up, write CSV).

Each figure is the best of ``REPEATS``; the ratio is baseline time / HTTP time
(> 1: the HTTP batch answers faster than the in-process sjoin).

    python -m benchmarks.run batch
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import geopandas as gpd  # noqa: E402
import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.ipc as ipc  # noqa: E402

from benchmarks.bench_lookup import four_district_bounds, start_server  # noqa: E402
from geo import schema  # noqa: E402
from geo.paths import BUNDLED_ZONES  # noqa: E402
from geo.selection import select_zones  # noqa: E402

SIZES = (100_000, 1_000_000)
REPEATS = 3
AS_OF = "2024-01-01"


def best(fn) -> tuple[float, object]:
    times, result = [], None
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def sjoin_seconds(zones: gpd.GeoDataFrame, lon: np.ndarray, lat: np.ndarray) -> tuple[float, int]:
    def run():
        points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
        return gpd.sjoin(points, zones[["zone_id", "geometry"]], predicate="within", how="inner")
    seconds, joined = best(run)
    return seconds, len(joined)


def csv_body(lon: np.ndarray, lat: np.ndarray) -> bytes:
    import pyarrow.csv as pacsv

    table = pa.table({"id": np.arange(lon.size), "lon": lon, "lat": lat})
    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    return sink.getvalue()


def arrow_body(lon: np.ndarray, lat: np.ndarray) -> bytes:
    table = pa.table({"id": np.arange(lon.size), "lon": lon, "lat": lat})
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def post(client: httpx.Client, url: str, body: bytes, content_type: str, accept: str) -> tuple[float, bytes]:
    def run():
        answer = client.post(url, content=body, headers={"content-type": content_type, "accept": accept},
                             params={"as_of": AS_OF})
        answer.raise_for_status()
        return answer.content
    return best(run)


def hits_in_csv(content: bytes) -> int:
    import pyarrow.csv as pacsv

    lines = content.rstrip(b"\n").split(b"\n")
    assert lines[-1].startswith(b"#complete,"), "the CSV answer lacks its trailer row"
    table = pacsv.read_csv(io.BytesIO(b"\n".join(lines[:-1])))
    return int(table.column("zone_count").to_numpy().sum())


def hits_in_arrow(content: bytes) -> int:
    return int(ipc.open_stream(content).read_all().column("zone_count").to_numpy().sum())


def main() -> None:
    zones = schema.zones_from_geojson(BUNDLED_ZONES.read_text(encoding="utf-8"))
    # The zones the HTTP batch answers with on AS_OF: in force then (points never fall in point zones).
    zones = select_zones(zones, as_of=AS_OF)
    zones = zones[zones.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    minx, miny, maxx, maxy = four_district_bounds()
    rng = np.random.default_rng(7)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server, base = start_server(Path(tmp))
        try:
            with httpx.Client(timeout=600) as client:
                for n in SIZES:
                    lon, lat = rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)
                    base_s, base_hits = sjoin_seconds(zones, lon, lat)
                    rows.append((f"geopandas sjoin, {n:,} points (in-process baseline)",
                                 f"{base_s:.3f} s, {n / base_s / 1e6:.2f} M points/s"))
                    for label, body, ctype, accept, count in (
                            ("CSV in, CSV out", csv_body(lon, lat), "text/csv", "text/csv", hits_in_csv),
                            ("Arrow in, Arrow out", arrow_body(lon, lat), "application/vnd.apache.arrow.stream",
                             "application/vnd.apache.arrow.stream", hits_in_arrow)):
                        seconds, content = post(client, base + "/v1/check/batch", body, ctype, accept)
                        hits = count(content)
                        rows.append((f"HTTP batch, {label}, {n:,} points ({len(body) / 1e6:.1f} MB in)",
                                     f"{seconds:.3f} s, {n / seconds / 1e6:.2f} M points/s — "
                                     f"{base_s / seconds:.2f}× sjoin (hits {hits:,}, sjoin {base_hits:,})"))
                    rows.append(cli_row(Path(tmp), lon, lat, base_s))
        finally:
            server.terminate()
            server.wait(timeout=30)
    width = max(len(r[0]) for r in rows)
    print("point batch (bench_batch.py); machine shared with other jobs")
    for name, figure in rows:
        print(f"  {name:<{width}}  {figure}")


def cli_row(tmp: Path, lon: np.ndarray, lat: np.ndarray, base_s: float) -> tuple[str, str]:
    """``zoning check-file`` in-process on the same points (CSV in, CSV out)."""
    import os

    from typer.testing import CliRunner

    from api.cli import app

    source, out = tmp / "points.csv", tmp / "out.csv"
    source.write_bytes(csv_body(lon, lat))
    store = tmp / "zones.gpkg"
    os.environ.setdefault("ZONING_SEED", str(BUNDLED_ZONES))
    runner = CliRunner()

    def run():
        result = runner.invoke(app, ["check-file", str(source), "--out", str(out), "--as-of", AS_OF,
                                     "--store", str(store)])
        assert result.exit_code == 0, result.output
    seconds, _ = best(run)
    return (f"zoning check-file, CSV in and out, {lon.size:,} points",
            f"{seconds:.3f} s, {lon.size / seconds / 1e6:.2f} M points/s — {base_s / seconds:.2f}× sjoin")


if __name__ == "__main__":
    main()
