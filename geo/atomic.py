"""Atomic file writes: write beside the target (fsynced), then rename over it, so a reader sees
the old file or the new one, never half of one, and a failure leaves the old one untouched."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(out: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``out`` (same suffix, for writers that go by it); renamed to ``out`` when the block succeeds, removed
    when it fails, so a reader never sees a half-written file and a failure leaves any
    existing ``out`` untouched."""
    out = Path(out)
    fd, name = tempfile.mkstemp(dir=out.resolve().parent, prefix=f".{out.name}.", suffix=f".tmp{out.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomically(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` atomically and durably (fsync before the rename); the folder must
    exist. ``mode``: the file's permissions (a temporary file is created 0600)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
    return Path(path)
