"""Site compliance reports: POST /v1/report, its permalink, and `zoning report-site`.

Read back with real tools: poppler's pdftotext (text) and pdftoppm (the rendered page)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from tests.conftest import required_tool, wait_for_data_version
from tests.test_api_check import run_cli

SITE = {"type": "Polygon", "coordinates": [[[116.09, 39.94], [116.11, 39.94], [116.11, 39.96], [116.09, 39.96],
                                            [116.09, 39.94]]]}
PROJECT = "永定河畔养殖场新建项目"
PIG = "livestock_scale_farm_new"


def poppler(name: str) -> str:
    return required_tool(name, "poppler-utils")


def pdf_text(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    text = subprocess.run([poppler("pdftotext"), str(path), "-"], capture_output=True, check=True).stdout
    return " ".join(text.decode("utf-8").split())


@pytest.fixture
def report(client):
    answer = client.post("/v1/report", json={"site": SITE, "project": PROJECT, "activity": PIG})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    return answer


def test_report_pdf_names_every_zone_document_and_the_data_version(client, report, tmp_path):
    site = client.post("/v1/check/site", params={"activity": PIG}, json=SITE).json()
    assert len(site["zones"]) >= 2
    text = pdf_text(report.content, tmp_path)
    compact = text.replace(" ", "")
    for zone in site["zones"]:
        assert zone["name_zh"].replace(" ", "") in compact, zone["name_zh"]
        if zone["source"]["doc_no"]:
            assert zone["source"]["doc_no"].replace(" ", "") in compact, zone["source"]["doc_no"]
    assert site["data_version"] in text and report.headers["x-zoning-data-version"] == site["data_version"]
    assert PROJECT in compact  # a Chinese name survives (fonts embedded)
    assert report.headers["x-zoning-report-id"] in text
    assert "亩" in compact and "EPSG:4548" in text and "Page 1 of" in text
    for entry in site["not_digitised"]:  # the undrawn zones that could govern the activity
        assert entry["name_zh"].replace(" ", "") in compact
        assert (entry["source"]["doc_no"] or "").replace(" ", "") in compact
    [verdict] = site["verdicts"]
    assert f"{verdict['verdict']}" in text and PIG in text  # the verdict on the activity asked about


def test_report_map_image_is_drawn(report, tmp_path):
    path = tmp_path / "report.pdf"
    path.write_bytes(report.content)
    subprocess.run([poppler("pdftoppm"), "-r", "40", "-png", "-f", "1", "-l", "1", str(path), str(tmp_path / "p")],
                   check=True)
    import matplotlib.image

    [page] = list(tmp_path.glob("p*.png"))
    pixels = (matplotlib.image.imread(page)[..., :3] * 255).astype(int)
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 90) & (pixels[..., 2] < 90)  # the site's outline
    assert red.sum() > 100
    colours = np.unique(pixels.reshape(-1, 3) // 16, axis=0)
    assert len(colours) > 40  # zones, borders, text: not a blank box


def test_html_report_has_the_same_content_and_an_inline_map(client):
    answer = client.post("/v1/report", params={"format": "html"}, json={"site": SITE, "project": PROJECT, "lang": "en"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert PROJECT in answer.text and 'src="data:image/png;base64,' in answer.text
    assert "Site compliance report" in answer.text


def test_permalink_reproduces_the_report_at_its_data_version(client, report, tmp_path, bundled_zones):
    link = report.headers["x-zoning-permalink"]
    assert link.startswith("http://testserver/v1/report?site=")
    token = link.split("site=")[1].split("&")[0]
    # printed on the report (pdftotext drops a hyphen where a line breaks after it)
    assert token.replace("-", "") in pdf_text(report.content, tmp_path).replace(" ", "").replace("-", "")
    old_version = report.headers["x-zoning-data-version"]
    # A new data version renames a zone the site overlaps
    from geo.store import ZoneStore

    store = ZoneStore(client.app.state.catalog.store.path)
    zones = store.load().copy()
    hit = zones["zone_id"] == "mtg"
    zones.loc[hit, "name_zh"] = "门头沟区（新名称）"
    info = store.save(zones, action="edit", note="rename for the permalink test")
    wait_for_data_version(client, info.data_version)
    assert client.get("/healthz").json()["data_version"] != old_version
    again = client.get(link.replace("http://testserver", ""))
    assert again.status_code == 200, again.text
    assert again.headers["x-zoning-data-version"] == old_version
    assert "新名称" not in pdf_text(again.content, tmp_path)
    fresh = client.post("/v1/report", json={"site": SITE})
    assert "新名称" in pdf_text(fresh.content, tmp_path)


def test_point_site_and_bad_requests(client, tmp_path):
    answer = client.post("/v1/report", json={"site": {"type": "Point", "coordinates": [116.10, 39.95]}})
    assert answer.status_code == 200
    assert "门头沟区" in pdf_text(answer.content, tmp_path).replace(" ", "")
    bad = client.post("/v1/report", json={"project": "x"})
    assert bad.status_code == 422 and "needs a site" in bad.json()["detail"][0]["msg"]
    bowtie = {"type": "Polygon", "coordinates": [[[116.0, 39.9], [116.1, 40.0], [116.1, 39.9], [116.0, 40.0],
                                                  [116.0, 39.9]]]}
    assert client.post("/v1/report", json={"site": bowtie}).status_code == 422
    assert client.get("/v1/report", params={"site": "not-a-token", "version": 1}).status_code == 422
    assert client.post("/v1/report", params={"format": "docx"}, json={"site": SITE}).status_code == 422


def test_cli_report_site_writes_a_pdf(monkeypatch, capsys, tmp_path):
    import json

    from geo.paths import BUNDLED_ZONES
    from geo.schema import zones_from_geojson
    from geo.store import ZoneStore

    store = tmp_path / "zones.gpkg"
    ZoneStore(store).save(zones_from_geojson(BUNDLED_ZONES.read_text(encoding="utf-8")), action="init")
    site = tmp_path / "site.geojson"
    site.write_text(json.dumps({"type": "Feature", "properties": {}, "geometry": SITE}), encoding="utf-8")
    out = tmp_path / "report.pdf"
    code, stdout, err = run_cli(monkeypatch, capsys, "report-site", str(site), "--activity", PIG,
                                "--project", PROJECT, "--out", str(out), "--store", str(store))
    assert code == 0, err
    assert "report R" in stdout and out.read_bytes().startswith(b"%PDF")
    assert PROJECT in pdf_text(out.read_bytes(), tmp_path).replace(" ", "")
    site.write_text('{"type": "LineString", "coordinates": [[116, 39.9], [116.1, 39.9]]}')
    code, _, err = run_cli(monkeypatch, capsys, "report-site", str(site), "--out", str(out), "--store", str(store))
    assert code == 2 and "site.geojson" in err
