"""The text of attached documents (PDF, PowerPoint, Word, plain text), for search.

Attachments come from anyone in an organisation, so a document is treated as hostile: it is
read in a child process (`extract_text`) with a hard time limit and a memory ceiling, so a file
built to make a parser spin or swell costs one child, never the worker. Inside, the reading
stops at limits of its own: the bytes read, the pages or slides looked at, the characters kept;
an OOXML file (a zip) is refused before it is opened when its entries would unpack to more than
`max_unpacked_bytes` or compress suspiciously well (a zip bomb). Whatever goes wrong ends as
`DocumentUnreadable` with a sentence for the author, never another exception.

pypdf, python-pptx and python-docx do the reading. Nothing here knows the database.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from media.processes import dies_with_this_process

# The kinds of file whose text is read, by extension.
KINDS = ("pdf", "pptx", "docx", "txt", "md", "csv")


class DocumentUnreadable(Exception):
    """The document's text cannot be read; `detail` says why, for its author."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class DocumentLimits:
    max_bytes: int = 100 * 1024**2  # the file itself
    max_pages: int = 500  # pages of a PDF, slides of a deck; a Word file's paragraphs / 50
    max_chars: int = 200_000  # the text kept
    max_unpacked_bytes: int = 256 * 1024**2  # what an OOXML file's entries unpack to
    max_ratio: int = 200  # unpacked / packed, beyond which a zip entry is a bomb
    timeout_s: float = 60.0
    memory_bytes: int = 1024**3


@dataclass(frozen=True)
class DocumentText:
    text: str
    truncated: bool  # a limit cut it short


def extract_text(path: Path, kind: str, limits: DocumentLimits | None = None) -> DocumentText:
    """The text of the document at `path` (`kind`: its extension), read in a child process.
    Raises DocumentUnreadable."""
    limits = limits or DocumentLimits()
    if kind not in KINDS:
        raise DocumentUnreadable(f"Text is not read from .{kind} files.")
    command = [sys.executable, "-m", "media.documents", str(path), kind, json.dumps(asdict(limits))]
    try:
        done = subprocess.run(  # noqa: S603 - our own module, arguments we built
            command,
            capture_output=True,
            timeout=limits.timeout_s,
            preexec_fn=_child_setup(limits.memory_bytes),
            cwd=Path(__file__).resolve().parent.parent,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        )
    except subprocess.TimeoutExpired:
        raise DocumentUnreadable("Reading the document took too long.") from None
    try:
        answer = json.loads(done.stdout.decode("utf-8"))
    except ValueError:
        # Killed (the memory ceiling) or crashed before it could answer.
        raise DocumentUnreadable("The document could not be read.") from None
    if "error" in answer:
        raise DocumentUnreadable(str(answer["error"]))
    return DocumentText(str(answer["text"]), bool(answer["truncated"]))


def _child_setup(memory_bytes: int) -> Callable[[], None]:
    dies = dies_with_this_process()

    def setup() -> None:
        dies()
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    return setup


# -- inside the child ----------------------------------------------------------------------------


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class _Collector:
    """Text gathered piece by piece, up to `max_chars`, and the time it may take."""

    def __init__(self, limits: DocumentLimits) -> None:
        self.limits = limits
        self.parts: list[str] = []
        self.size = 0
        self.truncated = False
        self.ends = time.monotonic() + limits.timeout_s

    @property
    def full(self) -> bool:
        return self.truncated

    def add(self, text: str) -> None:
        if time.monotonic() > self.ends:
            raise DocumentUnreadable("Reading the document took too long.")
        # NUL and lone surrogates (a PDF's odd font map, UTF-16 read as bytes) cannot be stored.
        text = " ".join(_UNSTORABLE.sub(" ", text).split())
        if not text or self.truncated:
            return
        room = self.limits.max_chars - self.size
        if len(text) + 1 > room:
            text = text[: max(0, room - 1)]
            self.truncated = True
        self.parts.append(text)
        self.size += len(text) + 1

    def result(self) -> DocumentText:
        return DocumentText("\n".join(p for p in self.parts if p), self.truncated)


def _check_zip(path: Path, limits: DocumentLimits) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise DocumentUnreadable(
            "The file is damaged: it is not a readable Office document."
        ) from None
    if len(entries) > 10_000:
        raise DocumentUnreadable("The document holds too many parts to be read.")
    unpacked = sum(entry.file_size for entry in entries)
    if unpacked > limits.max_unpacked_bytes:
        raise DocumentUnreadable("The document unpacks to more than can be read.")
    for entry in entries:
        if entry.file_size > 1024**2 and entry.file_size > limits.max_ratio * max(
            entry.compress_size, 1
        ):
            raise DocumentUnreadable("The document looks built to exhaust its reader (a zip bomb).")


def _pdf(path: Path, out: _Collector) -> None:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            # Many PDFs are "encrypted" with an empty password only to forbid editing.
            try:
                opened = bool(reader.decrypt(""))
            except Exception:
                opened = False
            if not opened:
                raise DocumentUnreadable("The PDF is protected by a password.")
        for index, page in enumerate(reader.pages):
            if index >= out.limits.max_pages:
                out.truncated = True
                break
            out.add(page.extract_text() or "")
            if out.full:
                break
    except FileNotDecryptedError:
        raise DocumentUnreadable("The PDF is protected by a password.") from None
    except PdfReadError as exc:
        raise DocumentUnreadable(f"The PDF is damaged: {str(exc)[:200]}") from None


def _pptx(path: Path, out: _Collector) -> None:
    from pptx import Presentation

    deck = Presentation(str(path))
    for index, slide in enumerate(deck.slides):
        if index >= out.limits.max_pages:
            out.truncated = True
            break
        for shape in slide.shapes:
            for text in _shape_texts(shape):
                out.add(text)
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            out.add(slide.notes_slide.notes_text_frame.text)
        if out.full:
            break


def _shape_texts(shape: object) -> Iterator[str]:
    if getattr(shape, "has_text_frame", False):
        yield shape.text_frame.text  # type: ignore[attr-defined]
    if getattr(shape, "has_table", False):
        for row in shape.table.rows:  # type: ignore[attr-defined]
            for cell in row.cells:
                yield cell.text
    for child in getattr(shape, "shapes", ()):  # a group
        yield from _shape_texts(child)


def _docx(path: Path, out: _Collector) -> None:
    from docx import Document

    document = Document(str(path))
    max_paragraphs = out.limits.max_pages * 50
    for index, paragraph in enumerate(document.paragraphs):
        if index >= max_paragraphs:
            out.truncated = True
            break
        out.add(paragraph.text)
        if out.full:
            return
    for table in document.tables:
        for row in table.rows:
            for cell in row.cells:
                out.add(cell.text)
                if out.full:
                    return


def _plain(path: Path, out: _Collector) -> None:
    with path.open("rb") as handle:
        raw = handle.read(out.limits.max_chars * 4)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16", errors="replace")
    else:
        text = raw.decode("utf-8", errors="replace")
    for line in text.splitlines():
        out.add(line)
        if out.full:
            break


_READERS = {"pdf": _pdf, "pptx": _pptx, "docx": _docx, "txt": _plain, "md": _plain, "csv": _plain}


def read(path: Path, kind: str, limits: DocumentLimits) -> DocumentText:
    """The document's text, in this process: what the child runs."""
    try:
        size = path.stat().st_size
    except OSError:
        raise DocumentUnreadable("The file is missing.") from None
    if size == 0:
        raise DocumentUnreadable("The file is empty.")
    if size > limits.max_bytes:
        raise DocumentUnreadable("The file is too large for its text to be read.")
    if kind in ("pptx", "docx"):
        _check_zip(path, limits)
    out = _Collector(limits)
    try:
        _READERS[kind](path, out)
    except DocumentUnreadable:
        raise
    except MemoryError:
        raise DocumentUnreadable("The document needs more memory to read than allowed.") from None
    except Exception as exc:
        # python-pptx and python-docx raise whatever their XML or zip layer raises on a
        # damaged or mislabelled file.
        raise DocumentUnreadable(
            f"The file could not be read as a .{kind} document ({type(exc).__name__})."
        ) from None
    return out.result()


def _main(argv: list[str]) -> int:
    path, kind, raw_limits = argv
    limits = DocumentLimits(**json.loads(raw_limits))
    try:
        found = read(Path(path), kind, limits)
        answer: dict[str, object] = {"text": found.text, "truncated": found.truncated}
    except DocumentUnreadable as exc:
        answer = {"error": exc.detail}
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
