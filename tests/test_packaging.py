"""`pip install .` (not editable) gives a `zoning` that starts and answers from its bundled data.

The tracked files are copied to a temporary folder (what a clean clone holds) and installed
into a fresh venv without dependencies; the venv borrows this interpreter's site-packages for
them through a .pth line, which adds the folder but runs none of its .pth files, so this
checkout's editable install stays invisible. `zoning serve` then runs from another folder
with a fresh data home: the zones, base layers, not_digitised list, templates and vendored
map assets must all come from the installed package. About 30 s (the wheel build fetches
setuptools into pip's isolated build environment, from pip's cache when present).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import sysconfig
import time
import venv
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.packaging


def _tracked_files() -> list[str]:
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=REPO, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"git cannot list the checkout's files: {exc}")
    return [name for name in listed.decode().split("\0") if name and (REPO / name).is_file()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin/ folder of a venv with `pip install .` of a clean copy of the checkout."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    for name in _tracked_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((REPO / name).read_bytes())
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "zoning-test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(source)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return env_dir / "bin"


def test_installed_zoning_serves_its_bundled_data(installed, tmp_path):
    port = _free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ZONING_")},
           "XDG_DATA_HOME": str(tmp_path / "data-home"), "PYTHONPATH": ""}
    server = subprocess.Popen([installed / "zoning", "serve", "--port", str(port)], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                health = httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "zoning serve did not answer within 90 s"
                time.sleep(0.5)
        assert health.status_code == 200 and health.json()["zones"] > 20
        answer = httpx.get(f"{base}/v1/check", params={"lon": 116.10, "lat": 39.95}, timeout=30).json()
        assert answer["inside"] and answer["not_digitised"], "zones and the not-digitised list are installed"
        page = httpx.get(f"{base}/map", timeout=30)
        assert page.status_code == 200 and "static/vendor/leaflet-1.9.4/leaflet.js" in page.text
        assert httpx.get(f"{base}/static/vendor/leaflet-1.9.4/leaflet.js", timeout=10).status_code == 200
        landing = httpx.get(f"{base}/collections", params={"f": "html"}, timeout=10)
        assert landing.status_code == 200 and "<html" in landing.text.lower()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert (tmp_path / "data-home" / "zoning" / "zones.gpkg").exists(), "the store is made in the data home"
    code = subprocess.run([installed / "python", "-c", "import geo.paths as p; print(p.BUNDLED_ZONES)"],
                          cwd=tmp_path, env=env, capture_output=True, text=True).stdout
    assert "site-packages" in code and str(REPO) not in code, code
    assert sys.prefix not in code
