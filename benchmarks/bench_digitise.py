"""Time of each digitising step on the synthetic 2000 × 1500 px sheet of the tests.

Prints seconds per step (best of 3) and each step's ratio to decoding the sheet's JPEG
once, the baseline measured in the same run (every step reads the sheet at least that
much): fitting control points (with the leave-one-out refits), warping the overlay with
GDAL, rendering the PDF page with PDFium, and tracing by colour.

    python -m benchmarks.run digitise
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from benchmarks.timing import REPEATS, best_seconds
from geo.digitise import georef, sheets, trace
from tests.synthetic_sheet import ZONE_COLOUR, make_sheet


def main() -> None:
    sheet = make_sheet()
    pdf = sheet.pdf()
    image = np.asarray(Image.open(io.BytesIO(sheet.jpeg)).convert("RGB"))
    fitted = georef.fit(sheet.gcps, "EPSG:4548", "affine", image_size=(2000, 1500))
    params = trace.TraceParams(ZONE_COLOUR, min_area_m2=50_000, simplify_m=2, line_width_px=3, clip_district="110109")
    baseline = best_seconds(lambda: np.asarray(Image.open(io.BytesIO(sheet.jpeg)).convert("RGB")))
    steps = {
        "fit affine, 10 points (+ 10 leave-one-out fits)": lambda: georef.fit(sheet.gcps, "EPSG:4548", "affine"),
        "fit tps, 10 points (GDAL, + 10 leave-one-out fits)": lambda: georef.fit(sheet.gcps, "EPSG:4548", "tps"),
        "warp overlay (GDAL, 1600 px PNG)": lambda: georef.warp_overlay(fitted, image, 1600),
        "render PDF page at 200 dpi (PDFium)": lambda: sheets.render_pages(pdf),
        "colour mask (CIELAB ΔE)": lambda: trace.colour_mask(image, ZONE_COLOUR, 30),
        "trace (mask, closing, vectorise, simplify, clip)": lambda: trace.trace(image, fitted, params),
    }
    print(f"sheet 2000 × 1500 px; baseline: decode its JPEG {baseline * 1000:.0f} ms (best of {REPEATS})")
    for name, fn in steps.items():
        seconds = best_seconds(fn)
        print(f"  {name:<52} {seconds * 1000:8.0f} ms  {seconds / baseline:6.1f} × decode")


if __name__ == "__main__":
    main()
