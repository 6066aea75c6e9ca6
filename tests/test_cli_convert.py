"""`zoning convert`: CSV lon/lat between coordinate systems, extra columns kept."""

from __future__ import annotations

import csv
import io
import sys

import pytest
from typer.testing import CliRunner

from api import cli
from geo import crs

runner = CliRunner()

# Tiananmen in WGS84 and the same place in GCJ-02 and BD-09 (computed by geo.crs,
# which tests/test_crs.py checks against prcoords).
WGS = (116.3975, 39.9087)
GCJ = tuple(float(v) for v in crs.wgs84_to_gcj02(*WGS))
BD = tuple(float(v) for v in crs.wgs84_to_bd09(*WGS))


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def run_main(monkeypatch, capsys, args, stdin=""):
    """Run the real console entry point; returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["zoning", *args])
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
        raise SystemExit(0)
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def test_convert_gcj02_to_wgs84_keeps_extra_columns_and_their_order():
    stdin = f"id,name,lat,lon,note\n7,天安门,{GCJ[1]!r},{GCJ[0]!r},\"a, b\"\n"
    result = runner.invoke(cli.app, ["convert", "--from", "gcj02", "--to", "wgs84"], input=stdin)
    assert result.exit_code == 0, result.output
    header, line = result.stdout.splitlines()
    assert header == "id,name,lat,lon,note"
    assert line == f'7,天安门,{WGS[1]:.8f},{WGS[0]:.8f},"a, b"'


def test_convert_from_baidu_alias_and_outside_china_unchanged():
    stdin = f"lon,lat\n{BD[0]!r},{BD[1]!r}\n2.35,48.85\n"
    result = runner.invoke(cli.app, ["convert", "--from", "baidu", "--to", "wgs84"], input=stdin)
    assert result.exit_code == 0, result.output
    rows = rows_of(result.stdout)
    assert (rows[0]["lon"], rows[0]["lat"]) == (f"{WGS[0]:.8f}", f"{WGS[1]:.8f}")
    assert (rows[1]["lon"], rows[1]["lat"]) == ("2.35000000", "48.85000000")


def test_convert_files_to_gauss_kruger_and_back(tmp_path):
    src, gk, back = tmp_path / "in.csv", tmp_path / "gk.csv", tmp_path / "back.csv"
    src.write_text(f"lon,lat,site\n{WGS[0]},{WGS[1]},A\n", encoding="utf-8")
    result = runner.invoke(cli.app, ["convert", "--from", "wgs84", "--to", "EPSG:4548",
                                     "--in", str(src), "--out", str(gk)])
    assert result.exit_code == 0 and result.stdout == ""
    row = rows_of(gk.read_text(encoding="utf-8"))[0]
    assert 400_000 < float(row["lon"]) < 500_000 and 4_400_000 < float(row["lat"]) < 4_500_000
    runner.invoke(cli.app, ["convert", "--from", "EPSG:4548", "--to", "gcj02", "--in", str(gk), "--out", str(back)])
    row = rows_of(back.read_text(encoding="utf-8"))[0]
    assert (row["lon"], row["lat"], row["site"]) == (f"{GCJ[0]:.8f}", f"{GCJ[1]:.8f}", "A")


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["--from", "gcj02", "--to", "wgs84"], "id,x,y\n1,116.4,39.9\n", "needs lon and lat columns"),
    (["--from", "gcj02", "--to", "wgs84"], "lon,lat\n116.4,39.9\n116.4,abc\n", "line 3: lat 'abc' is not a number"),
    (["--from", "gcj02", "--to", "wgs84"], "lon,lat\n116.4,39.9\n,39.9\n", "line 3: lon '' is not a number"),
    (["--from", "gcj02", "--to", "wgs84"], "lon,lat\n116.4,39.9\n39.9,116.4\n", "did you swap lon and lat"),
    (["--from", "wgs84", "--to", "bd09"], "lon,lat\n116.4,nan\n", "line 2: lat[0]=nan is not a finite number"),
    (["--from", "mercator", "--to", "wgs84"], "lon,lat\n116.4,39.9\n", "unknown CRS 'mercator'"),
    (["--from", "wgs84", "--to", "EPSG:0"], "lon,lat\n116.4,39.9\n", "unknown CRS 'EPSG:0'"),
])
def test_convert_errors_exit_2_with_one_line(monkeypatch, capsys, args, stdin, message):
    code, out, err = run_main(monkeypatch, capsys, ["convert", *args], stdin)
    assert code == 2
    assert out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_failed_convert_leaves_the_output_file_untouched(monkeypatch, capsys, tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("previous\n", encoding="utf-8")
    code, _, _ = run_main(monkeypatch, capsys,
                          ["convert", "--from", "wgs84", "--to", "gcj02", "--out", str(target)],
                          "lon,lat\n116.4,39.9\n999,39.9\n")
    assert code == 2
    assert target.read_text(encoding="utf-8") == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
