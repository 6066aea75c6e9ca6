"""Map sheets (附图): uploaded images or PDF pages, stored content-addressed.

A sheet is the bytes a bureau published: a PNG, JPEG or TIFF image, or a PDF whose pages
are rendered with PDFium (pypdfium2). Its SHA-256 is its name, so the same upload is
stored once and a draft can cite exactly the file it was traced from. Next to the bytes
a JSON file records what the upload was (original name, media type, size, pages and
their pixel sizes, who uploaded it and when). Each page is also kept as a PNG render,
which is what the georeferencing, tracing and the browser work on.

Limits: bytes (the service's upload limit) and pixels per page (a decompression bomb of
a 100 000 × 100 000 PNG is refused before it is decoded). Every refusal is a
:class:`SheetError` naming the problem.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from geo.atomic import write_atomically

# Magic numbers of the accepted formats -> (media type, file suffix).
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"II*\x00", "image/tiff", ".tif"),
    (b"MM\x00*", "image/tiff", ".tif"),
    (b"%PDF-", "application/pdf", ".pdf"),
)
DEFAULT_DPI = 200  # A3 at 200 dpi is 3308 × 2339 px: enough to read 0.5 mm lines
SHA256_LEN = 64


class SheetError(ValueError):
    """A sheet that is refused or cannot be read; the message names the problem."""


class SheetTooLargeError(SheetError):
    """Over the byte or pixel limit."""


class SheetNotFoundError(SheetError):
    """No stored sheet (or page) by that name."""


@dataclass(frozen=True)
class SheetLimits:
    max_bytes: int = 50 * 1024 * 1024
    # 60 Mpx: an A0 sheet at 200 dpi is 6622 × 9362 = 62 Mpx; beyond that use a lower dpi.
    max_pixels: int = 64_000_000
    max_pages: int = 200
    dpi: int = DEFAULT_DPI


@dataclass(frozen=True)
class Sheet:
    sha256: str
    filename: str
    media_type: str
    size_bytes: int
    pages: list[list[int]]  # [width, height] in pixels of each page's render
    uploaded_at: str
    uploaded_by: str
    dpi: int | None = None  # PDF render resolution
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    def page_size(self, page: int) -> tuple[int, int]:
        check_page(page, len(self.pages))
        width, height = self.pages[page - 1]
        return width, height


def sniff(data: bytes) -> tuple[str, str]:
    """(media type, suffix) of ``data`` from its first bytes; SheetError for anything else."""
    for magic, media_type, suffix in _MAGIC:
        if data.startswith(magic):
            return media_type, suffix
    raise SheetError("not a PNG, JPEG, TIFF or PDF file (the first bytes match none of them); "
                     "地图文件须为 PNG、JPEG、TIFF 或 PDF")


def check_page(page: int, count: int) -> None:
    if not 1 <= page <= count:
        raise SheetError(f"page {page} does not exist: the sheet has {count} page(s) (pages count from 1)")


def _check_pixels(width: int, height: int, limits: SheetLimits, what: str) -> None:
    if width <= 0 or height <= 0:
        raise SheetError(f"{what} has no pixels ({width} × {height})")
    if width * height > limits.max_pixels:
        raise SheetTooLargeError(
            f"{what} is {width} × {height} = {width * height / 1e6:.0f} Mpx, over the limit of "
            f"{limits.max_pixels / 1e6:.0f} Mpx; 图幅像素超过限制")


def _render_pdf(data: bytes, limits: SheetLimits) -> list[Image.Image]:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise SheetError(f"the PDF cannot be opened ({exc}); PDF 文件无法读取") from None
    try:
        if len(pdf) == 0:
            raise SheetError("the PDF has no pages")
        if len(pdf) > limits.max_pages:
            raise SheetTooLargeError(f"the PDF has {len(pdf)} pages, over the limit of {limits.max_pages}")
        scale = limits.dpi / 72.0
        images = []
        for i in range(len(pdf)):
            page = pdf[i]
            w_pt, h_pt = page.get_size()
            _check_pixels(round(w_pt * scale), round(h_pt * scale), limits, f"PDF page {i + 1} at {limits.dpi} dpi")
            images.append(page.render(scale=scale).to_pil().convert("RGB"))
            page.close()
        return images
    finally:
        pdf.close()


_STRICT = threading.Lock()


@contextmanager
def _strict_decoding():
    """Pillow refuses truncated images while a sheet is decoded. WeasyPrint (the report PDFs)
    sets Pillow's process-wide ``LOAD_TRUNCATED_IMAGES`` on import, which would let a cut
    upload through as an image with a grey band."""
    with _STRICT:
        before, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = before


def _open_image(data: bytes, limits: SheetLimits) -> list[Image.Image]:
    with _strict_decoding():
        return _decode_image(data, limits)


def _decode_image(data: bytes, limits: SheetLimits) -> list[Image.Image]:
    try:
        image = Image.open(io.BytesIO(data))
        # Pillow reads the header only here, so the pixel limit is checked before decoding.
        frames = getattr(image, "n_frames", 1)
        if frames > limits.max_pages:
            raise SheetTooLargeError(f"the image has {frames} frames, over the limit of {limits.max_pages}")
        pages = []
        for i in range(frames):
            image.seek(i)
            _check_pixels(image.width, image.height, limits, f"image page {i + 1}")
            pages.append(image.convert("RGB"))
        return pages
    except SheetError:
        raise
    except Image.DecompressionBombError as exc:
        raise SheetTooLargeError(f"the image is too large to decode safely ({exc}); 图幅像素超过限制") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise SheetError(f"the image cannot be decoded ({exc}); 图像无法读取") from None


def render_pages(data: bytes, limits: SheetLimits = SheetLimits()) -> list[Image.Image]:
    """Every page of a sheet as an RGB image (PDF pages rendered at ``limits.dpi``)."""
    if len(data) > limits.max_bytes:
        raise SheetTooLargeError(f"the sheet is {len(data)} bytes, over the limit of {limits.max_bytes} bytes; "
                                 "地图文件超过大小限制")
    media_type, _ = sniff(data)
    return _render_pdf(data, limits) if media_type == "application/pdf" else _open_image(data, limits)


def _png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False, compress_level=6)
    return out.getvalue()


class SheetStore:
    """Sheets under ``root``: ``<sha>/original<suffix>``, ``<sha>/sheet.json``,
    ``<sha>/page-<n>.png``. Written page renders first and metadata last, so a sheet
    whose ``sheet.json`` exists is complete."""

    def __init__(self, root: str | os.PathLike[str], limits: SheetLimits = SheetLimits()):
        self.root = Path(root)
        self.limits = limits

    def _dir(self, sha256: str) -> Path:
        if len(sha256) != SHA256_LEN or any(c not in "0123456789abcdef" for c in sha256):
            raise SheetNotFoundError(f"{sha256!r} is not a sheet id (a 64-digit lowercase SHA-256)")
        return self.root / sha256

    def add(self, data: bytes, filename: str, uploaded_by: str) -> Sheet:
        """Store ``data`` (validated and rendered); returns the sheet, also when already stored."""
        sha = hashlib.sha256(data).hexdigest()
        if (self._dir(sha) / "sheet.json").exists():
            return self.get(sha)
        pages = render_pages(data, self.limits)
        media_type, suffix = sniff(data)
        folder = self._dir(sha)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomically(folder / f"original{suffix}", data)
        for i, image in enumerate(pages, start=1):
            write_atomically(folder / f"page-{i}.png", _png_bytes(image))
        sheet = Sheet(
            sha256=sha, filename=filename, media_type=media_type, size_bytes=len(data),
            pages=[[im.width, im.height] for im in pages],
            uploaded_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            uploaded_by=uploaded_by, dpi=self.limits.dpi if media_type == "application/pdf" else None)
        write_atomically(folder / "sheet.json", json.dumps(sheet.as_dict(), ensure_ascii=False).encode())
        return sheet

    def get(self, sha256: str) -> Sheet:
        meta = self._dir(sha256) / "sheet.json"
        if not meta.exists():
            raise SheetNotFoundError(f"no sheet {sha256[:12]}… is stored; upload it first")
        return Sheet(**json.loads(meta.read_text(encoding="utf-8")))

    def list(self) -> list[Sheet]:
        if not self.root.exists():
            return []
        return sorted((self.get(p.parent.name) for p in self.root.glob("*/sheet.json")),
                      key=lambda s: s.uploaded_at, reverse=True)

    def page_path(self, sha256: str, page: int = 1) -> Path:
        sheet = self.get(sha256)
        check_page(page, len(sheet.pages))
        return self._dir(sha256) / f"page-{page}.png"

    def page_array(self, sha256: str, page: int = 1) -> np.ndarray:
        """The page render as an (height, width, 3) uint8 array."""
        with Image.open(self.page_path(sha256, page)) as image:
            return np.asarray(image.convert("RGB"))


def page_array_of_file(path: str | os.PathLike[str], page: int = 1,
                       limits: SheetLimits = SheetLimits()) -> np.ndarray:
    """A page of a sheet file on disk (the CLI's IMAGE argument) as an RGB array."""
    path = Path(path)
    if not path.is_file():
        raise SheetError(f"{path} is not a file")
    pages = render_pages(path.read_bytes(), limits)
    check_page(page, len(pages))
    return np.asarray(pages[page - 1])
