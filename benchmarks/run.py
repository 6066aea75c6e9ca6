"""Run every benchmark (each ``benchmarks/bench_*.py`` module's ``main()``) and print its figures.

    python -m benchmarks.run              every benchmark, in name order
    python -m benchmarks.run lookup crs   only bench_lookup.py and bench_crs.py
    python benchmarks/run.py              the same

The machine comes first (CPU, cores, memory, load), since every figure depends on it.
A benchmark that fails is reported and the others still run; the exit code is 1 then.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")))
        memory = f", {kb / 1024 ** 2:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    load = ", load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()) if hasattr(os, "getloadavg") else ""
    return (f"{cpu}, {os.cpu_count()} cores{memory}{load}; {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def modules(names: list[str]) -> list[Path]:
    found = sorted(HERE.glob("bench_*.py"))
    if not names:
        return found
    wanted = [p for p in found if p.stem.removeprefix("bench_") in names or p.stem in names]
    missing = set(names) - {p.stem.removeprefix("bench_") for p in wanted} - {p.stem for p in wanted}
    if missing:
        raise SystemExit(f"no benchmark {', '.join(sorted(missing))}; there are "
                         f"{', '.join(p.stem.removeprefix('bench_') for p in found)}")
    return wanted


def run(path: Path) -> bool:
    spec = importlib.util.spec_from_file_location(f"benchmarks.{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        module.main()
        return True
    except Exception:  # noqa: BLE001 - report and go on with the other benchmarks
        traceback.print_exc()
        return False


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(REPO))
    paths = modules(sys.argv[1:] if argv is None else argv)
    print(f"machine: {machine()}")
    failed = []
    for path in paths:
        print(f"\n== {path.name} ==", flush=True)
        start = time.perf_counter()
        ok = run(path)
        print(f"({'done' if ok else 'FAILED'} in {time.perf_counter() - start:.0f} s)", flush=True)
        if not ok:
            failed.append(path.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
