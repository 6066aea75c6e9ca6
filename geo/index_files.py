"""The lookup index saved per data version, so a new process loads it instead of building it.

Layout: ``<index dir>/<data_version>/`` holds one ``.npy`` file per array of
``geo.lookup.build_arrays`` (plus ``zone_records``, the zones' properties as UTF-8 JSON
bytes, ``geo.catalog``) and a ``manifest.json`` naming the format, the grid size, the
zone count, a hash of the zone ids in table order (the index refers to zones by row) and
each file's size and SHA-256. Arrays are memory-mapped read-only: the kernel pages in
what lookups touch, and processes on one machine share the pages.

Writes are atomic: the files go to a temporary sibling directory, are fsynced, and the
directory is renamed into place last; two processes building at once both succeed and
one directory wins. A directory that fails any check (missing or truncated file, wrong
checksum, different zones, other format) is removed and rebuilt — a damaged index never
answers. Measured on the bundled zones (25 zones, 1024² grid, ~10 MB): load and verify
in ~30 ms against ~0.5 s to build (``benchmarks/bench_coldstart.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

# /2: per-zone metric CRS (``zone_crs``), boundary chunks no longer saved (built lazily);
# /3: the zones' properties saved too (``zone_records``, ``geo.catalog``), so a new process
# answers points without loading the zone table. An older directory fails the format check
# and is rebuilt.
FORMAT = "zoning-lookup-index/3"
MANIFEST = "manifest.json"
# Older versions' directories kept besides the current one (a rollback target, or a
# replica still serving the previous version for a moment).
KEEP_VERSIONS = 3

log = logging.getLogger("zoning.index")


class IndexFileError(RuntimeError):
    """A saved index is missing, damaged, or belongs to other zones."""


def zone_ids_hash(zone_ids) -> str:
    return hashlib.sha256("\n".join(map(str, zone_ids)).encode()).hexdigest()


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(directory: Path, arrays: dict[str, np.ndarray], *, zone_ids, grid_size: int) -> Path:
    """Write ``arrays`` as ``directory`` atomically; an existing complete directory is kept."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        files = {}
        for name, array in arrays.items():
            path = tmp / f"{name}.npy"
            np.save(path, np.ascontiguousarray(array), allow_pickle=False)
            _fsync(path)
            files[name] = {"size": path.stat().st_size, "sha256": _sha256(path)}
        manifest = {"format": FORMAT, "grid_size": grid_size, "zone_count": len(zone_ids),
                    "zone_ids_sha256": zone_ids_hash(zone_ids), "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        _fsync(tmp / MANIFEST)
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, directory)
        except OSError:  # another process got there first (rename onto a non-empty directory fails)
            if not (directory / MANIFEST).exists():
                raise
        _fsync(directory.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def load(directory: Path, *, zone_ids) -> dict[str, np.ndarray]:
    """The arrays saved in ``directory`` (memory-mapped), after checking every file against
    the manifest and the manifest against ``zone_ids``; IndexFileError otherwise."""
    directory = Path(directory)
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise IndexFileError(f"{directory}: no readable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexFileError(f"{directory}: not a {FORMAT} index")
    if manifest.get("zone_count") != len(zone_ids) or manifest.get("zone_ids_sha256") != zone_ids_hash(zone_ids):
        raise IndexFileError(f"{directory}: built for other zones")
    arrays = {}
    for name, meta in manifest["files"].items():
        path = directory / f"{name}.npy"
        try:
            if path.stat().st_size != meta["size"]:
                raise IndexFileError(f"{path}: {path.stat().st_size} bytes, the manifest says {meta['size']}")
            if _sha256(path) != meta["sha256"]:
                raise IndexFileError(f"{path}: checksum differs from the manifest")
            arrays[name] = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise IndexFileError(f"{path}: {exc}") from None
    _check_shapes(directory, arrays, manifest["grid_size"], len(zone_ids))
    return arrays


def _check_shapes(directory: Path, a: dict[str, np.ndarray], grid_size: int, n_zones: int) -> None:
    """Cheap consistency checks: what a lookup indexes with must be in range."""
    try:
        ok = (a["xs"].size == a["ys"].size == grid_size + 1
              and a["cell_start"].size == grid_size * grid_size + 1
              and a["entry_zone"].size == a["entry_covered"].size == int(a["cell_start"][-1])
              and a["area_m2"].size == a["zone_crs"].size == n_zones)
    except KeyError as exc:
        raise IndexFileError(f"{directory}: array {exc} is missing") from None
    if not ok:
        raise IndexFileError(f"{directory}: array sizes do not fit together")


def load_or_build(directory: Path, zone_ids, build, *, grid_size: int) -> dict[str, np.ndarray]:
    """The arrays in ``directory`` if it holds a sound index for ``zone_ids``; otherwise
    ``build()``, saved there for the next process (failure to save is logged, not raised:
    the index still answers, the next process builds again)."""
    directory = Path(directory)
    if directory.exists():
        try:
            return load(directory, zone_ids=zone_ids)
        except IndexFileError as exc:
            log.warning("rebuilding the lookup index: %s", exc)
            shutil.rmtree(directory, ignore_errors=True)
    # One builder per version: the workers and replicas that notice a new version together
    # wait for the first one's build and load it instead of each building it.
    with _build_lock(directory):
        if directory.exists():
            with contextlib.suppress(IndexFileError):
                return load(directory, zone_ids=zone_ids)
            shutil.rmtree(directory, ignore_errors=True)
        arrays = build()
        try:
            save(directory, arrays, zone_ids=zone_ids, grid_size=grid_size)
            prune(directory.parent, keep=directory.name)
        except OSError as exc:
            log.warning("could not save the lookup index to %s: %s", directory, exc)
    return arrays


@contextlib.contextmanager
def _build_lock(directory: Path):
    """An exclusive lock on ``.<version>.lock`` beside ``directory`` (none if it cannot be made)."""
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        fh = open(directory.parent / f".{directory.name}.lock", "w")  # noqa: SIM115 - held across the yield
    except OSError:
        yield
        return
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def prune(root: Path, keep: str, n: int = KEEP_VERSIONS) -> None:
    """Remove all but the ``n`` newest version directories under ``root`` (never ``keep``),
    and temporary directories of writers killed over an hour ago."""
    now = time.time()
    for d in [*Path(root).glob(".*.tmp"), *Path(root).glob(".*.lock")]:
        with contextlib.suppress(OSError):
            if now - d.stat().st_mtime > 3600:
                shutil.rmtree(d) if d.is_dir() else d.unlink()
    dirs = [d for d in Path(root).iterdir() if d.is_dir() and not d.name.startswith(".")]
    dirs.sort(key=lambda d: d.stat().st_mtime, reverse=True)
    for d in [d for d in dirs if d.name != keep][max(n - 1, 0):]:
        with contextlib.suppress(OSError):
            shutil.rmtree(d)
            (d.parent / f".{d.name}.lock").unlink(missing_ok=True)


def default_index_dir(store) -> Path | None:
    """Where a store's indexes live: ``<store dir>/index/<store name>/`` for a file store
    (``var/index/zones/`` beside ``var/zones.gpkg``); a store without a file names its own
    (``index_dir`` attribute) or has none (the index is then built in every process)."""
    own = getattr(store, "index_dir", None)
    if own is not None:
        return Path(own)
    path = getattr(store, "path", None)
    return Path(path).parent / "index" / Path(path).stem if path is not None else None
