"""OGC API – Features speed, side by side with pygeoapi serving the same zones.

Both servers run under uvicorn (one worker, 127.0.0.1, access log off) on the bundled
zones: zoning from its store, pygeoapi 0.21 (``pip install -e '.[bench]'``) from one
GeoJSON file per collection written from the same zones with the same properties
(pygeoapi's GeoJSON provider reads its file on every request). ``wrk`` (8 connections,
5 s) measures each row on zoning, then on pygeoapi, alternating, three rounds; the
table gives the median requests/s of each and the ratio zoning ÷ pygeoapi.

Rows: a small page (``monitoring_section``, 10 points), a large page
(``collaboration?limit=100``, the layer with the most vertices), a small item (one
point) and a large item (the zone with the most vertices), all ``f=json``; plus a CQL2
filtered page on zoning alone.

Then ``/v1/check`` at random points, idle and while 4 more connections page through
the collections (random collection, offset and limit 10 or 100), alternating: the
figure the issue asks for is the ratio, which should stay above 0.8.

    python -m benchmarks.run ogc
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import shapely  # noqa: E402

from benchmarks.bench_lookup import WRK_SCRIPT, four_district_bounds, run_wrk, start_server  # noqa: E402
from geo.paths import BUNDLED_ZONES  # noqa: E402
from geo.published import published_properties  # noqa: E402
from geo.schema import zones_from_geojson, zones_to_geojson  # noqa: E402
from tests.browser import free_port  # noqa: E402

ROUNDS = 3
LOAD_CONNECTIONS = 4

PYGEOAPI_CONFIG = """\
server:
  bind: {{host: 127.0.0.1, port: {port}}}
  url: http://127.0.0.1:{port}
  mimetype: application/json; charset=UTF-8
  encoding: utf-8
  language: en-US
  cors: false
  pretty_print: false
  limits: {{default_items: 100, max_items: 10000}}
  map: {{url: "http://127.0.0.1/none/{{z}}/{{x}}/{{y}}.png", attribution: none}}
logging: {{level: ERROR}}
metadata:
  identification: {{title: zones, description: zones, keywords: [zones], keywords_type: theme,
                    terms_of_service: none, url: "http://127.0.0.1/"}}
  license: {{name: none, url: "http://127.0.0.1/"}}
  provider: {{name: bench, url: "http://127.0.0.1/"}}
  contact: {{name: bench, position: bench, address: none, city: none, stateorprovince: none, postalcode: "0",
            country: none, phone: "0", fax: "0", email: none@example.com, url: "http://127.0.0.1/", hours: none,
            instructions: none, role: pointOfContact}}
resources:
{resources}
"""
PYGEOAPI_RESOURCE = """\
  {layer}:
    type: collection
    title: {layer}
    description: {layer}
    keywords: [{layer}]
    extents: {{spatial: {{bbox: [-180, -90, 180, 90], crs: "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}}}}
    providers:
      - type: feature
        name: GeoJSON
        data: {path}
        id_field: zone_id
"""

# A new URL for every request (a bbox a hair different each time, covering the same zones),
# so zoning's OGC answer cache cannot answer it: the cost of building each answer.
FRESH_SCRIPT = """\
request = function()
  local d = math.random() * 1e-6
  return wrk.format("GET", string.format("{path}&bbox=%.9f,39.0,118.0,41.5", 115.0 + d))
end
"""

LOAD_SCRIPT = """\
local pages = {{{pages}}}
request = function()
  return wrk.format("GET", pages[math.random(#pages)])
end
"""


def write_pygeoapi_data(zones, folder: Path) -> list[str]:
    """One GeoJSON file per layer with the published properties; returns the resource YAML blocks."""
    resources = []
    for layer in dict.fromkeys(zones["layer"]):
        collection = zones_to_geojson(zones[zones["layer"] == layer])
        for feature in collection["features"]:
            feature["properties"] = published_properties(feature["properties"])
        path = folder / f"{layer}.geojson"
        path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
        resources.append(PYGEOAPI_RESOURCE.format(layer=layer, path=path))
    return resources


def start_pygeoapi(zones, folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    config = folder / "pygeoapi.yml"
    config.write_text(PYGEOAPI_CONFIG.format(port=port, resources="".join(write_pygeoapi_data(zones, folder))),
                      encoding="utf-8")
    openapi = folder / "openapi.yml"
    env = {**os.environ, "PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    subprocess.run([str(Path(sys.executable).with_name("pygeoapi")), "openapi", "generate", str(config),
                    "--output-file", str(openapi)], check=True, env=env, capture_output=True, timeout=120)
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "pygeoapi.starlette_app:APP", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(base + "/collections?f=json", timeout=5):
                return server, base
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError("pygeoapi did not start: "
                                   + server.stderr.read().decode(errors="replace")[-2000:]) from None
            time.sleep(0.3)


def rows(zones) -> list[tuple[str, str, bool]]:
    """(label, path, new URL every request) of the compared requests."""
    vertices = shapely.get_num_coordinates(zones.geometry.values)
    by_layer = zones.assign(vertices=vertices).groupby("layer")["vertices"].sum()
    large_layer = by_layer.idxmax()
    largest = zones.iloc[int(vertices.argmax())]
    point = zones[zones["layer"] == "monitoring_section"].iloc[0]
    small = "/collections/monitoring_section/items?f=json&limit=10"
    large = f"/collections/{large_layer}/items?f=json&limit=100"
    return [
        ("small page (monitoring_section, limit=10)", small, False),
        (f"large page ({large_layer}, limit=100)", large, False),
        (f"small item ({point['zone_id']})", f"/collections/monitoring_section/items/{point['zone_id']}?f=json",
         False),
        (f"large item ({largest['zone_id']}, {int(vertices.max())} vertices)",
         f"/collections/{largest['layer']}/items/{largest['zone_id']}?f=json", False),
        ("small page, a new URL every request (bbox)", small, True),
        (f"large page ({large_layer}), a new URL every request (bbox)", large, True),
    ]


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as answer:
        return answer.read()


def same_features(ours: bytes, theirs: bytes) -> bool:
    """Both servers answer the same features (ids), so the comparison is like for like."""
    def ids(body):
        return sorted(f["id"] for f in body["features"]) if "features" in body else [body["id"]]

    return ids(json.loads(ours)) == ids(json.loads(theirs))


def load_pages(zones) -> str:
    pages = []
    for layer, count in zones["layer"].value_counts().items():
        for limit in (10, 100):
            for offset in range(0, max(count, 1), limit):
                pages.append(f'"/collections/{layer}/items?f=json&limit={limit}&offset={offset}"')
    return ", ".join(pages)


def check_under_load(base: str, workdir: Path, zones) -> list[tuple[str, str]]:
    minx, miny, maxx, maxy = four_district_bounds()
    check = workdir / "check.lua"
    check.write_text(WRK_SCRIPT.format(minx=minx, miny=miny, dx=maxx - minx, dy=maxy - miny))
    load = workdir / "load.lua"
    load.write_text(LOAD_SCRIPT.format(pages=load_pages(zones)))
    idle, loaded, ogc = [], [], []
    for _ in range(ROUNDS):
        idle.append(run_wrk(base + "/v1/check", check, timeout=30)[0])
        result: dict[str, float] = {}

        def page_collections(into: dict[str, float] = result) -> None:
            into["rate"] = run_wrk(base + "/", load, connections=LOAD_CONNECTIONS, seconds=7, timeout=30)[0]

        background = threading.Thread(target=page_collections)
        background.start()
        time.sleep(1)  # the OGC load is running before and after the measured 5 s
        loaded.append(run_wrk(base + "/v1/check", check, timeout=30)[0])
        background.join()
        ogc.append(result["rate"])
    ratio = statistics.median(b / a for a, b in zip(idle, loaded, strict=True))
    return [
        ("`/v1/check` idle (median of 3)", f"{statistics.median(idle):,.0f} req/s"),
        (f"`/v1/check` while {LOAD_CONNECTIONS} more connections page collections",
         f"{statistics.median(loaded):,.0f} req/s — **{ratio:.0%}** of idle (rounds "
         f"{', '.join(f'{b / a:.0%}' for a, b in zip(idle, loaded, strict=True))}); the OGC load ran at "
         f"{statistics.median(ogc):,.0f} req/s"),
    ]


def main() -> None:
    if not shutil.which("wrk"):
        print("bench_ogc: wrk is not installed (Debian package wrk); nothing measured")
        return
    zones = zones_from_geojson(BUNDLED_ZONES.read_text(encoding="utf-8"))
    table: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        ours, base = start_server(workdir)
        peer = peer_base = None
        try:
            try:
                import pygeoapi  # noqa: F401

                peer, peer_base = start_pygeoapi(zones, workdir)
            except (ImportError, RuntimeError, subprocess.CalledProcessError) as exc:
                print(f"bench_ogc: pygeoapi not available ({exc}); install the bench extra for the comparison")
            for label, path, fresh in rows(zones):
                get(base + path)  # the first request of a data version encodes the layer
                if peer_base:
                    assert same_features(get(base + path), get(peer_base + path)), path
                script = None
                if fresh:
                    script = workdir / "fresh.lua"
                    script.write_text(FRESH_SCRIPT.format(path=path))
                mine, theirs = [], []
                for _ in range(ROUNDS):
                    # 30 s timeout: pygeoapi takes over a second for a large page.
                    mine.append(run_wrk(base + ("/" if fresh else path), script, timeout=30)[0])
                    if peer_base:
                        theirs.append(run_wrk(peer_base + ("/" if fresh else path), script, timeout=30)[0])
                a = statistics.median(mine)
                b = statistics.median(theirs) if theirs else float("nan")
                table.append((label, f"{a:,.0f}", f"{b:,.0f}" if theirs else "—", f"{a / b:.1f}×" if theirs else "—"))
            cql = "/collections/collaboration/items?f=json&filter=issued_on%20%3E%3D%20DATE('2021-01-01')"
            filtered = statistics.median(run_wrk(base + cql, None, timeout=30)[0] for _ in range(ROUNDS))
            table.append(("CQL2-filtered page (collaboration, zoning only)", f"{filtered:,.0f}", "—", "—"))
            if peer:
                peer.terminate()
                peer.wait(timeout=20)
                peer = None
            extra = check_under_load(base, workdir, zones)
        finally:
            for process in (ours, peer):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=20)
    print("| request (wrk, 8 connections, 5 s, median of 3 alternating rounds) | zoning req/s | pygeoapi 0.21 req/s "
          "| zoning ÷ pygeoapi |")
    print("| --- | --- | --- | --- |")
    for row in table:
        print("| " + " | ".join(row) + " |")
    print()
    print("| `/v1/check` under OGC load | figure |")
    print("| --- | --- |")
    for label, figure in extra:
        print(f"| {label} | {figure} |")


if __name__ == "__main__":
    main()
