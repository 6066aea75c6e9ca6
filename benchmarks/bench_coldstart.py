"""Cold start: seconds from launching ``zoning serve`` to its first successful ``/v1/check``.

Each run is a new process (``python -m api.cli serve`` on a free loopback port) polled
every 10 ms until ``/v1/check`` answers 200. Prints, in one run, the median of several
launches of:

* **fresh store**: no store file yet (the store is created from the bundled zones);
* **no saved index**: the store exists, its lookup index directory is removed before each
  launch, so the process builds the index (what every start cost before the index was saved);
* **saved index**: the index a previous process saved is loaded (memory-mapped) with the
  zones' properties, and the first answer is served without the zone table (no pandas,
  geopandas or pyarrow import; ``geo.catalog``);
* **floor, full stack**: a process that only imports geopandas (with pandas, pyarrow, NumPy,
  shapely, pyproj), FastAPI with pydantic, uvicorn and typer and exits — what a start cost at
  the least while the first answer needed the zone table;
* **floor, lookup stack**: the same without geopandas (NumPy, shapely, pyproj instead) — the
  least a start that answers from the saved index can cost on this machine at this moment.

The package's bytecode is compiled first (``compileall``), as ``pip install`` does for an
installed service; a checkout run with ``PYTHONDONTWRITEBYTECODE=1`` would recompile the
package's ~150 modules on every start (~0.3 s).

Wall seconds depend on what else runs on the machine, so the server's own CPU seconds
(user + system, from ``/proc``) at the moment it first answered are printed too, and the
ratio of the saved-index start to the no-saved-index start.

    python benchmarks/bench_coldstart.py      (or python -m benchmarks.run coldstart)
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.browser import free_port  # noqa: E402

LAUNCHES = 5
CHECK = "/v1/check?lon=116.0&lat=39.97"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def first_answer(store: Path, extra_env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, server CPU seconds) from launch to the first 200 from /v1/check."""
    port = free_port()
    env = {**os.environ, **(extra_env or {})}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--store", str(store)],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"zoning serve exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{CHECK}", timeout=30) as response:
                    response.read()
                    if response.status == 200:
                        return time.perf_counter() - start, cpu_seconds(proc.pid)
            except OSError:
                time.sleep(0.01)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


FULL_STACK = "import geopandas, fastapi, pydantic_settings, uvicorn, typer"
LOOKUP_STACK = "import numpy, shapely, pyproj, fastapi, pydantic_settings, uvicorn, typer"


def floor_seconds(imports: str) -> tuple[float, float]:
    """(wall, CPU) seconds from launching a process to the end of its ``imports`` (its exit,
    which frees the modules, is not counted)."""
    start = time.time()
    out = subprocess.run([sys.executable, "-c", f"{imports}; import os, time; t = os.times(); "
                          "print(time.time(), t.user + t.system)"], cwd=REPO, check=True, capture_output=True, text=True)
    done, cpu = map(float, out.stdout.split())
    return done - start, cpu


def median(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main() -> None:
    subprocess.run([sys.executable, "-m", "compileall", "-q", "api", "geo", "maps"], cwd=REPO, check=True)
    workdir = Path(tempfile.mkdtemp(prefix="zoning-coldstart-"))
    try:
        store = workdir / "zones.gpkg"
        index_root = workdir / "index"
        fresh = []
        for _ in range(LAUNCHES):
            for p in workdir.iterdir():
                shutil.rmtree(p) if p.is_dir() else p.unlink()
            fresh.append(first_answer(store))
        unsaved = []
        for _ in range(LAUNCHES):
            shutil.rmtree(index_root, ignore_errors=True)
            unsaved.append(first_answer(store))
        saved, full, lookup = [], [], []
        for _ in range(LAUNCHES):  # interleaved: all see the machine at the same moments
            saved.append(first_answer(store))
            full.append(floor_seconds(FULL_STACK))
            lookup.append(floor_seconds(LOOKUP_STACK))
        rows = [("fresh store (created on start)", median(fresh)),
                ("existing store, no saved index", median(unsaved)),
                ("existing store, saved index", median(saved)),
                ("floor: import the full stack", median(full)),
                ("floor: import the lookup stack", median(lookup))]
        print(f"first /v1/check after `zoning serve` starts, median of {LAUNCHES} launches:")
        print(f"  {'case':34s} {'wall s':>8s} {'server CPU s':>13s}")
        for label, (wall, cpu) in rows:
            print(f"  {label:34s} {wall:8.2f} {cpu:13.2f}")
        (w0, c0), (w1, c1) = rows[1][1], rows[2][1]
        print(f"  saved index / no saved index: wall {w1 / w0:.2f}x, CPU {c1 / c0:.2f}x")
        for label, (wf, cf) in rows[3:]:
            print(f"  saved index vs {label[7:]}: wall {w1 - wf:+.2f} s ({w1 / wf:.2f}x), CPU {c1 - cf:+.2f} s")
        print(f"  load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
