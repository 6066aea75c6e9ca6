import json
import subprocess
import sys

from tests.conftest import REPO


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_info_reports_layers_counts_and_version(tmp_path, sample_zones):
    from geo.store import ZoneStore

    ZoneStore(tmp_path / "z.gpkg").save(sample_zones, action="init")
    result = run_cli("info", "--store", str(tmp_path / "z.gpkg"), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["zones"] == 3 and info["version"] == 1
    assert info["layers"] == {"livestock_ban": 2, "water_source": 1}
    assert info["data_version"].startswith("v1-")


def test_errors_are_one_line_without_traceback(tmp_path):
    broken = tmp_path / "broken.gpkg"
    broken.write_text("not a geopackage")
    result = run_cli("info", "--store", str(broken))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error:")


def test_debug_flag_shows_the_traceback(tmp_path):
    broken = tmp_path / "broken.gpkg"
    broken.write_text("not a geopackage")
    result = run_cli("--debug", "info", "--store", str(broken))
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_readme_test_command_is_what_ci_runs():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    command = next(line.strip() for line in readme.splitlines() if "pip install" in line and "[test]" in line)
    steps = [s.strip() for s in command.split("&&")]
    for step in steps:
        assert step in ci, f"README test step {step!r} is not in .ci/run"



def test_error_messages_quote_user_text_verbatim(tmp_path):
    """Rich would turn ':x:' in a quoted line into an emoji; the CLI prints user text as it is."""
    source = tmp_path / "points.csv"
    source.write_text("root:x:0:0\n1,2\n", encoding="utf-8")
    done = run_cli("check-file", str(source), "--out", str(tmp_path / "out.csv"), "--store", str(tmp_path / "z.gpkg"))
    assert done.returncode == 2 and "root:x:0:0" in done.stderr
