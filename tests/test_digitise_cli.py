"""The digitising CLI end to end: users, georef, trace, publish (a draft), review, audit —
the store part on the GeoPackage and on the PostGIS store."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import shapely

from geo.paths import BUNDLED_ZONES
from tests.conftest import REPO
from tests.store_backends import BACKENDS, new_location
from tests.synthetic_sheet import ZONE_COLOUR, make_sheet

ZONE = "mtg-jyq-ztsk-1"


def run(*args, token: str | None = None, store=None):
    env = {**os.environ, "ZONING_SEED": str(BUNDLED_ZONES)}
    env.pop("ZONING_TOKEN", None)
    if token:
        env["ZONING_TOKEN"] = token
    extra = ["--store", str(store)] if store is not None else []
    return subprocess.run([sys.executable, "-m", "api.cli", *args, *extra], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env=env)


def token_of(result) -> str:
    assert result.returncode == 0, result.stderr
    return re.search(r"(zt_[A-Za-z0-9_-]+)", result.stdout).group(1)


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    """The sheet georeferenced and traced from the command line (checked here, once):
    (sheet, image file, georef file, zone GeoJSON file, traced geometry)."""
    tmp_path = tmp_path_factory.mktemp("cli-trace")
    sheet = make_sheet()
    image = tmp_path / "附图1.jpg"
    image.write_bytes(sheet.jpeg)
    gcps = [f"--gcp={p.px},{p.py},{p.x + 39_000_000},{p.y}" for p in sheet.gcps]
    out = tmp_path / "sheet.georef.json"
    fitted = run("georef", str(image), *gcps, "--crs", "gk", "--transform", "affine", "--out", str(out))
    assert fitted.returncode == 0, fitted.stderr
    assert "RMS" in fitted.stdout and "EPSG:4527" in fitted.stdout
    assert json.loads(out.read_text())["crs_resolved"] == "EPSG:4527"
    too_few = run("georef", str(image), *gcps[:2], "--out", str(tmp_path / "x.json"))
    assert too_few.returncode == 2 and "at least 3" in " ".join(too_few.stderr.split()) and not (tmp_path / "x.json").exists()
    line = [f"--gcp={i * 10},{i * 10},{400000 + i * 10},{4400000 - i * 10}" for i in range(4)]
    degenerate = run("georef", str(image), *line, "--out", str(tmp_path / "x.json"))
    assert degenerate.returncode == 2 and "degenerate" in " ".join(degenerate.stderr.split())

    zone_file = tmp_path / "zone.geojson"
    result = run("trace", str(image), "--georef", str(out), "--colour", ZONE_COLOUR, "--min-area-m2", "50000",
                 "--simplify-m", "2", "--line-width-px", "3", "--clip-district", "110109", "--out", str(zone_file))
    assert result.returncode == 0, result.stderr
    geom = shapely.geometry.shape(json.loads(zone_file.read_text())["features"][0]["geometry"])
    assert geom.intersection(sheet.zone_wgs84).area / geom.union(sheet.zone_wgs84).area > 0.95
    bad_colour = run("trace", str(image), "--georef", str(out), "--colour", "red", "--out", str(tmp_path / "y.json"))
    assert bad_colour.returncode == 2 and "#RRGGBB" in bad_colour.stderr
    return sheet, image, out, zone_file, geom


def test_georef_and_trace_from_the_command_line(traced):
    sheet, _, out, _, geom = traced
    assert json.loads(out.read_text())["points"] and geom.is_valid


@pytest.mark.parametrize("backend", BACKENDS)
def test_publish_review_users_and_audit_from_the_command_line(traced, backend, tmp_path, request):
    if backend == "postgis":
        request.applymarker(pytest.mark.postgis)
    _, image, out, zone_file, geom = traced
    store = new_location(backend, tmp_path, request)
    editor = token_of(run("users", "add", "ed", "--role", "editor", store=store))
    reviewer = token_of(run("users", "add", "rita", "--role", "reviewer", store=store))
    listed = run("users", "list", "--json", store=store)
    assert {u["name"]: u["role"] for u in json.loads(listed.stdout)} == {"ed": "editor", "rita": "reviewer"}

    publish = ["publish", str(zone_file), "--zone", ZONE, "--sheet", str(image), "--georef", str(out)]
    assert run(*publish, store=store).returncode == 2  # no token: who is it?
    assert run(*publish, token=reviewer, store=store).returncode == 2  # reviewers do not draft
    drafted = run(*publish, token=editor, store=store)
    assert drafted.returncode == 0, drafted.stderr
    said = " ".join(drafted.stdout.split())  # rich wraps long lines
    assert "draft 1" in said and "OUTSIDE ±5 %" in said

    own = run("review", "1", "--approve", token=editor, store=store)
    assert own.returncode == 2 and "may not" in " ".join(own.stderr.split())
    approved = run("review", "1", "--approve", token=reviewer, store=store)
    assert approved.returncode == 0, approved.stderr
    assert "published" in approved.stdout

    check = run("check", str(geom.representative_point().x), str(geom.representative_point().y), "--json",
                store=store)
    answer = json.loads(check.stdout)
    assert any(z["zone_id"] == ZONE and z["accuracy"] == "traced" for z in answer["inside"])
    audit = json.loads(run("audit", "--json", store=store).stdout)
    actions = [(e["actor"], e["action"]) for e in audit]
    assert ("rita", "publish") in actions and ("ed", "draft.save") in actions and ("ed", "sheet.upload") in actions
    assert sum(a == "user.add" for _, a in actions) == 2
    assert run("users", "disable", "ed", store=store).returncode == 0
    assert run(*publish, token=editor, store=store).returncode == 2  # a disabled user's token stops working
