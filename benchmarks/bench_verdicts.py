"""What verdicts, coverage and localised answers cost a single-point check.

Baseline, measured in the same run on the same points: the body of the answer before
verdicts existed — lookup with distances and nearby zones, zone objects, the district's
undrawn zones and the disclaimer. Then ``answers.check_answer`` as served now (coverage,
zones in the reader's language, relevant undrawn zones), without and with one activity,
and the batch verdict column (``answers.batch_verdicts``) for 100 000 points.

    python -m benchmarks.run verdicts
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from api import answers
from geo.catalog import ZoneCatalog
from geo.paths import BUNDLED_ZONES
from geo.store import open_store

AS_OF = "2026-12-01"
PIG = ["livestock_scale_farm_new"]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        snap = ZoneCatalog(open_store(Path(tmp) / "zones.gpkg", BUNDLED_ZONES)).snapshot()
        rng = np.random.default_rng(1)
        # points over the four districts' extent, many outside every zone or outside Beijing
        pts = np.column_stack([rng.uniform(115.5, 117.4, 700), rng.uniform(39.8, 40.6, 700)])

        def baseline(x, y):
            found = answers.look_up(snap, [x], [y], crs="wgs84", as_of=AS_OF, layers=None, near_m=1000)
            result = next(answers.iter_point_results(snap, found))
            missing = answers.not_digitised(snap, lon=found.lon, lat=found.lat)
            answers.disclaimer(result["inside"] + result["nearby"], "zh", len(missing))

        def now(x, y, activities=None):
            answers.check_answer(snap, x, y, crs="wgs84", as_of=AS_OF, layers=None, near_m=1000, lang="zh",
                                 activities=activities)

        cases = {"baseline: lookup + zones + undrawn + disclaimer": baseline,
                 "check_answer, no activity": now,
                 "check_answer, activity=livestock_scale_farm_new": lambda x, y: now(x, y, PIG)}
        for fn in cases.values():  # warm the per-version caches
            fn(*pts[0])
        medians: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(3):  # alternate rounds, so background load hits every case alike
            for name, fn in cases.items():
                times = []
                for x, y in pts:
                    start = time.perf_counter()
                    fn(x, y)
                    times.append(time.perf_counter() - start)
                medians[name].append(statistics.median(times) * 1e6)
        base = statistics.median(medians[next(iter(cases))])
        for name, values in medians.items():
            value = statistics.median(values)
            print(f"{name}: median {value:.0f} µs per point ({value / base:.2f}× baseline)")

        lon, lat = rng.uniform(115.5, 117.4, 100_000), rng.uniform(39.8, 40.6, 100_000)
        found = answers.look_up(snap, lon, lat, crs="wgs84", as_of=AS_OF, layers=None, near_m=0, distances=False)
        start = time.perf_counter()
        answers.look_up(snap, lon, lat, crs="wgs84", as_of=AS_OF, layers=None, near_m=0, distances=False)
        lookup_s = time.perf_counter() - start
        start = time.perf_counter()
        answers.batch_verdicts(snap, found, PIG, AS_OF)
        verdict_s = time.perf_counter() - start
        print(f"batch of 100 000 points: lookup {lookup_s:.2f} s, verdict column {verdict_s:.2f} s "
              f"({verdict_s / lookup_s:.2f}× the lookup)")


if __name__ == "__main__":
    main()
