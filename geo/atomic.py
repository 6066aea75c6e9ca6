"""Atomic file writes: write beside the target, then rename over it."""

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
