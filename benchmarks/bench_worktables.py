"""The workbench's tables (``geo.store.work``) on the PostGIS store against the GeoPackage.

Prints, per operation, the best of 3 rounds of N calls (ms per call) on a GeoPackage store
(the baseline, measured in the same run) and on a throwaway PostGIS server on loopback, and
their ratio:

* ``by_token``: the API-token check every workbench request makes (one read transaction);
* ``session``: the cookie check (sessions joined to users);
* ``start_session``: a login's write (one write transaction under the store's writer lock);
* ``drafts.list``: 20 drafts, newest first;
* ``page_png``: a 2000 × 1500 sheet page render (~1.5 MB PNG) read back;
* ``publish``: a draft approved: a new store version (bundled zones) with the draft marked
  published in the same transaction.

    python benchmarks/bench_worktables.py      (or python -m benchmarks.run worktables)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import shapely  # noqa: E402

from benchmarks.timing import best_seconds  # noqa: E402
from geo.digitise.drafts import Drafts  # noqa: E402
from geo.digitise.sheets import SheetStore  # noqa: E402
from geo.paths import BUNDLED_ZONES  # noqa: E402
from geo.store import open_store  # noqa: E402
from geo.users import Users  # noqa: E402
from tests.postgis_server import postgis_server  # noqa: E402
from tests.synthetic_sheet import make_sheet  # noqa: E402

CALLS = 20
DRAFTS = 20
ZONE = "mtg-jyq-ztsk-1"
SQUARE = shapely.box(115.95, 39.93, 115.97, 39.95)


def measure(location: str, sheet_jpeg: bytes) -> dict[str, float]:
    """ms per call of each operation on the store at ``location``."""
    store = open_store(location, BUNDLED_ZONES)
    users, drafts, sheets = Users(store), Drafts(store), SheetStore(store)
    _, token = users.add("ed", "editor", password="a long password", actor="bench")
    users.add("rita", "reviewer", actor="bench")
    session = users.start_session(users.get("ed"))
    sha = sheets.add(sheet_jpeg, "附图.jpg", uploaded_by="ed").sha256
    for _ in range(DRAFTS):
        drafts.save(ZONE, SQUARE, {}, author="ed", role="editor")
    pending = iter([d.id for d in drafts.list("pending")])

    def repeat(fn, calls=CALLS):
        return lambda: [fn() for _ in range(calls)]

    figures = {
        "by_token": best_seconds(repeat(lambda: users.by_token(token))) / CALLS,
        "session": best_seconds(repeat(lambda: users.session(session.id))) / CALLS,
        "start_session": best_seconds(repeat(lambda: users.start_session(users.get("ed")))) / CALLS,
        "drafts.list": best_seconds(repeat(drafts.list, 5)) / 5,
        "page_png": best_seconds(repeat(lambda: sheets.page_png(sha, 1), 5)) / 5,
        "publish": best_seconds(lambda: drafts.review(next(pending), reviewer="rita", role="reviewer",
                                                      approve=True)),
    }
    return {name: seconds * 1000 for name, seconds in figures.items()}


def main() -> None:
    sheet = make_sheet()
    with tempfile.TemporaryDirectory(prefix="zoning-worktables-") as tmp, postgis_server() as server:
        gpkg = measure(str(Path(tmp) / "zones.gpkg"), sheet.jpeg)
        pg = measure(f"postgresql://postgres@{server.host}:{server.port}/postgres", sheet.jpeg)
    print(f"work tables, ms per call, best of 3 (machine shared: load {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores); baseline: the GeoPackage store in the same run")
    print(f"{'operation':<14} {'GeoPackage':>11} {'PostGIS':>9} {'PostGIS ÷ GeoPackage':>21}")
    for name in gpkg:
        print(f"{name:<14} {gpkg[name]:>11.2f} {pg[name]:>9.2f} {pg[name] / gpkg[name]:>20.2f}×")


if __name__ == "__main__":
    main()
