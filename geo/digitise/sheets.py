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

Sheets are kept in the zone store's work tables (``geo.store.work``: ``sheets`` with the
original bytes, ``sheet_pages`` with each page's PNG render), in the GeoPackage file or the
PostGIS database: every replica of a PostGIS deployment serves the same sheets, and one
backup (or ``zoning store copy``) holds them with the drafts that cite them. A sheet, its
pages and its audit entry are written in one transaction, so a listed sheet is complete.
Sheets an earlier release kept in a folder (``<sha>/sheet.json``, ``original.*``,
``page-<n>.png``) are moved into the store the first time they are asked for.
"""

from __future__ import annotations

import contextlib
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

from geo.store import AuditEvent, StoreBackend

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


_SHEET_COLUMNS = ("sha256", "filename", "media_type", "size_bytes", "pages", "uploaded_at", "uploaded_by", "dpi",
                  "extra")


def _sheet(row: dict) -> Sheet:
    return Sheet(**{**row, "pages": json.loads(row["pages"]), "extra": json.loads(row["extra"])})


def _check_sha(sha256: str) -> str:
    if len(sha256) != SHA256_LEN or any(c not in "0123456789abcdef" for c in sha256):
        raise SheetNotFoundError(f"{sha256!r} is not a sheet id (a 64-digit lowercase SHA-256)")
    return sha256


def legacy_folder(store: StoreBackend, configured: str | os.PathLike[str] | None) -> Path | None:
    """Where an earlier release kept this store's sheets: ``configured`` (``ZONING_SHEETS_DIR``),
    else ``sheets`` beside a store file; None for a database store without that setting."""
    if configured:
        return Path(configured)
    path = getattr(store, "path", None)  # a store file (GeoPackage); a database has none
    return Path(path).parent / "sheets" if path is not None else None


class SheetStore:
    """The sheets of one zone store (see the module docstring). ``legacy_dir``: the folder
    an earlier release kept sheets in, read once per sheet and then no more."""

    def __init__(self, store: StoreBackend, limits: SheetLimits = SheetLimits(),
                 legacy_dir: str | os.PathLike[str] | None = None):
        self.tables = store.work()
        self.limits = limits
        self.legacy_dir = Path(legacy_dir) if legacy_dir else None

    def _insert(self, sheet: Sheet, data: bytes, pngs: list[bytes], event: AuditEvent) -> None:
        with self.tables.writing() as tx:
            if tx.execute("SELECT 1 FROM sheets WHERE sha256 = ?", (sheet.sha256,)).fetchone():
                return  # stored meanwhile by another upload of the same bytes
            row = {**sheet.as_dict(), "pages": json.dumps(sheet.pages), "extra": json.dumps(sheet.extra)}
            tx.execute(f"INSERT INTO sheets ({', '.join(_SHEET_COLUMNS)}, original) VALUES "
                       f"({', '.join('?' for _ in _SHEET_COLUMNS)}, ?)", (*(row[c] for c in _SHEET_COLUMNS), data))
            for page, png in enumerate(pngs, start=1):
                tx.execute("INSERT INTO sheet_pages (sha256, page, png) VALUES (?, ?, ?)", (sheet.sha256, page, png))
            tx.audit(event)

    def add(self, data: bytes, filename: str, uploaded_by: str, *, role: str | None = None,
            client: str | None = None) -> Sheet:
        """Store ``data`` (validated and rendered); returns the sheet, also when already stored."""
        sha = hashlib.sha256(data).hexdigest()
        found = self._find(sha)
        if found is not None:
            return found
        pages = render_pages(data, self.limits)
        media_type, _ = sniff(data)
        sheet = Sheet(
            sha256=sha, filename=filename, media_type=media_type, size_bytes=len(data),
            pages=[[im.width, im.height] for im in pages],
            uploaded_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            uploaded_by=uploaded_by, dpi=self.limits.dpi if media_type == "application/pdf" else None)
        self._insert(sheet, data, [_png_bytes(image) for image in pages], AuditEvent(
            actor=uploaded_by, role=role, action="sheet.upload", target=sha, client=client,
            detail={"filename": filename, "media_type": media_type, "size_bytes": len(data),
                    "pages": len(pages)}))
        return self.get(sha)

    def _find(self, sha256: str) -> Sheet | None:
        with self.tables.reading() as tx:
            row = tx and tx.execute(f"SELECT {', '.join(_SHEET_COLUMNS)} FROM sheets WHERE sha256 = ?",
                                    (sha256,)).fetchone()
        return None if row is None else _sheet(row)

    def _adopt(self, sha256: str) -> Sheet | None:
        """A sheet of the earlier release's folder, moved into the store (None if not there)."""
        folder = self.legacy_dir / sha256 if self.legacy_dir else None
        if folder is None or not (folder / "sheet.json").is_file():
            return None
        sheet = Sheet(**json.loads((folder / "sheet.json").read_text(encoding="utf-8")))
        original = next(folder.glob("original.*"))
        pngs = [(folder / f"page-{i}.png").read_bytes() for i in range(1, len(sheet.pages) + 1)]
        self._insert(sheet, original.read_bytes(), pngs, AuditEvent(
            actor="zoning", action="sheet.adopt", target=sha256,
            detail={"filename": sheet.filename, "uploaded_by": sheet.uploaded_by}))
        return self._find(sha256)

    def get(self, sha256: str) -> Sheet:
        sheet = self._find(_check_sha(sha256)) or self._adopt(sha256)
        if sheet is None:
            raise SheetNotFoundError(f"no sheet {sha256[:12]}… is stored; upload it first")
        return sheet

    def list(self) -> list[Sheet]:
        """Every stored sheet, newest first (with those of an earlier release's folder)."""
        if self.legacy_dir is not None and self.legacy_dir.is_dir():
            for meta in self.legacy_dir.glob("*/sheet.json"):
                with contextlib.suppress(SheetNotFoundError):
                    self.get(meta.parent.name)
        with self.tables.reading() as tx:
            rows = [] if tx is None else tx.execute(
                f"SELECT {', '.join(_SHEET_COLUMNS)} FROM sheets ORDER BY uploaded_at DESC, sha256").fetchall()
        return [_sheet(r) for r in rows]

    def page_png(self, sha256: str, page: int = 1) -> bytes:
        """The page's PNG render."""
        sheet = self.get(sha256)
        check_page(page, len(sheet.pages))
        with self.tables.reading() as tx:
            row = tx.execute("SELECT png FROM sheet_pages WHERE sha256 = ? AND page = ?", (sha256, page)).fetchone()
        return bytes(row["png"])

    def page_array(self, sha256: str, page: int = 1) -> np.ndarray:
        """The page render as an (height, width, 3) uint8 array."""
        with Image.open(io.BytesIO(self.page_png(sha256, page))) as image:
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
