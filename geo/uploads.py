"""Uploaded files, unpacked safely: size, entry count, path and compression-ratio limits.

An import file comes from outside (a district bureau's upload or a file on disk). Before
GDAL sees it, a zip is checked entry by entry and extracted into a fresh folder with the
bytes counted as they are written, so an archive can neither escape that folder nor fill
the disk. Each refusal is its own exception class so the API can answer with the right
status code (413 for too big, 400 for an unsafe path, 422 for a broken archive).
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

_CHUNK = 1 << 20


class UploadError(ValueError):
    """An uploaded file or archive that is refused; the message names the problem."""


class UploadTooLargeError(UploadError):
    """Over a size, entry-count or expansion limit."""


class ZipBombError(UploadTooLargeError):
    """An entry (or the archive) expands far more than real GIS data does."""


class UnsafeArchiveError(UploadError):
    """An entry whose path would land outside the extraction folder, or a link."""


class BadArchiveError(UploadError):
    """Not a readable zip archive (truncated, corrupt, encrypted)."""


@dataclass(frozen=True)
class UploadLimits:
    max_entries: int = 200  # a shapefile is 4-8 files; 200 allows a folder of layers
    max_unpacked_bytes: int = 1024 * 1024 * 1024
    # Text-heavy GIS files (padded DBF, GeoJSON) compress 10-50x; bombs reach 1000x+.
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 1024 * 1024  # small entries may compress as well as they like


def _mb(n: float) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def copy_limited(source: BinaryIO, dest: Path, max_bytes: int) -> int:
    """Copy a stream to ``dest``; refuse (and delete ``dest``) once it passes ``max_bytes``."""
    written = 0
    try:
        with open(dest, "wb") as out:
            while chunk := source.read(_CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise UploadTooLargeError(
                        f"upload is larger than the limit of {max_bytes} bytes ({_mb(max_bytes)}); "
                        "上传文件超过大小限制")
                out.write(chunk)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return written


def _entry_name(info: zipfile.ZipInfo) -> str:
    """The entry name as its author wrote it: Chinese Windows zips store GBK names without
    the UTF-8 flag, which Python decodes as cp437."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gb18030")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def _safe_relative_path(name: str) -> PurePosixPath:
    """The entry's path inside the extraction folder, or UnsafeArchiveError naming it."""
    posix = name.replace("\\", "/")
    path = PurePosixPath(posix)
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise UnsafeArchiveError(f"zip entry {name!r} has an absolute path; refusing the archive "
                                 "(压缩包含绝对路径)")
    if ".." in path.parts:
        raise UnsafeArchiveError(f"zip entry {name!r} points outside the archive folder ('..'); "
                                 "refusing the archive (压缩包路径越界)")
    return path


def check_zip(archive: zipfile.ZipFile, limits: UploadLimits) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Every file entry with its safe relative path, or the first limit it breaks."""
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        raise UploadTooLargeError(f"zip holds {len(infos)} entries, more than the limit of "
                                  f"{limits.max_entries} (压缩包文件数超限)")
    entries = []
    total = compressed = 0
    for info in infos:
        name = _entry_name(info)
        path = _safe_relative_path(name)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UnsafeArchiveError(f"zip entry {name!r} is a symbolic link; refusing the archive")
        if info.flag_bits & 0x1:
            raise BadArchiveError(f"zip entry {name!r} is encrypted; upload an unencrypted archive")
        if info.is_dir():
            continue
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > limits.ratio_floor_bytes and ratio > limits.max_ratio:
            raise ZipBombError(
                f"zip entry {name!r} expands {ratio:.0f}x ({_mb(info.file_size)} from "
                f"{_mb(info.compress_size)}), over the compression-ratio limit of {limits.max_ratio:.0f}x: "
                "refusing a possible zip bomb (疑似压缩炸弹)")
        total += info.file_size
        compressed += info.compress_size
        entries.append((info, path))
    if total > limits.max_unpacked_bytes:
        raise UploadTooLargeError(f"zip unpacks to {_mb(total)}, more than the limit of "
                                  f"{_mb(limits.max_unpacked_bytes)} (解压后超过大小限制)")
    if total > limits.ratio_floor_bytes and total / max(compressed, 1) > limits.max_ratio:
        raise ZipBombError(f"zip expands {total / max(compressed, 1):.0f}x overall, over the "
                           f"compression-ratio limit of {limits.max_ratio:.0f}x: refusing a possible zip bomb")
    return entries


def extract_zip(path: Path, dest: Path, limits: UploadLimits = UploadLimits()) -> list[Path]:
    """Extract a checked zip into the empty folder ``dest``; returns the files written.

    Sizes are counted while writing as well, since an entry header can lie about them.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadArchiveError(f"{path.name} is not a readable zip archive ({exc}); 压缩包无法读取") from None
    written: list[Path] = []
    total = 0
    with archive:
        for info, rel in check_zip(archive, limits):
            target = dest.joinpath(*rel.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(_CHUNK):
                        total += len(chunk)
                        if total > limits.max_unpacked_bytes:
                            raise UploadTooLargeError(
                                f"zip unpacks to more than the limit of {_mb(limits.max_unpacked_bytes)}")
                        out.write(chunk)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError,
                    NotImplementedError) as exc:
                raise BadArchiveError(f"zip entry {rel} cannot be extracted ({exc}); 压缩包已损坏") from None
            written.append(target)
    return written


def safe_filename(name: str | None, default: str = "upload") -> str:
    """The last path component of a client-supplied file name, never '.', '..' or empty."""
    base = os.path.basename((name or "").replace("\\", "/")).strip()
    return base if base not in ("", ".", "..") else default


def files_with_suffix(files: Iterable[Path], suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in files if p.suffix.lower() in suffixes and not p.name.startswith("._"))
