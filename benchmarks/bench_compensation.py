"""Speed of the compensation calculator on a realistic and a large month.

A 密云 month is 39 sections × 2 samples; the figure that matters is a district uploading a whole year
of daily samples (39 × 12 × 28 rows, 11 months ignored) or a large user-defined table. The baseline, in
the same run, is reading the same CSV with the standard library's csv module alone — the floor any
CSV-driven calculator pays — so the ratio shows what validation and exact decimals cost.

    python -m benchmarks.run compensation
"""

from __future__ import annotations

import csv
import io
import random

from benchmarks.timing import best_seconds
from geo.compensation.calculate import calculate_from_csv


def samples(days_per_month: int, months: int = 12) -> str:
    rng = random.Random(17)
    rows = ["section_id,date,CODMn,COD,NH3N,TP,TN,dry"]
    for n in range(1, 40):
        for m in range(1, months + 1):
            for d in range(1, days_per_month + 1):
                day = 1 + (d - 1) * 28 // days_per_month
                rows.append(f"S{n:02d},2021-{m:02d}-{day:02d},{rng.uniform(1, 8):.2f},{rng.uniform(10, 40):.1f},"
                            f"{rng.uniform(0.1, 2.5):.3f},{rng.uniform(0.02, 0.4):.3f},{rng.uniform(0.5, 3):.2f},"
                            f"{'true' if rng.random() < 0.05 else 'false'}")
    return "\n".join(rows) + "\n"


def main() -> None:
    for label, text in (("one month, twice-monthly", samples(2, months=1)),
                        ("a year of near-daily samples", samples(28, months=12))):
        rows = text.count("\n") - 1
        label = f"{label} ({rows:,} rows)"
        calc = best_seconds(lambda text=text: calculate_from_csv("110118", "2021-07", text))
        base = best_seconds(lambda text=text: list(csv.DictReader(io.StringIO(text))))
        print(f"compensation, {label}: calculate {calc * 1000:.1f} ms ({rows / calc:,.0f} rows/s); "
              f"csv.DictReader alone {base * 1000:.2f} ms; ratio {calc / base:.0f}×")


if __name__ == "__main__":
    main()
