"""The package layers: geo imports neither api nor maps; maps does not import api."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = {"geo": {"api", "maps"}, "maps": {"api"}}


def imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_higher_layers(package):
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"{package}/ has no Python files"
    offenders = {
        str(f.relative_to(REPO)): sorted(imported_top_levels(f) & FORBIDDEN[package])
        for f in files
        if imported_top_levels(f) & FORBIDDEN[package]
    }
    assert not offenders, f"layering broken: {offenders}"


def test_checker_detects_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from api.app import create_app\nimport maps.render\n")
    assert imported_top_levels(bad) == {"api", "maps"}
