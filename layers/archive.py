"""The evidence archive (创卫档案资料): the registry of its files, filled by scanning a folder or by uploads.

The archive is a folder (``[archive] folder``, beside the settings unless absolute) with one subfolder
per **holder**, named as the sample point (a place's name) or the department (e.g. ``县创卫办``), and the
files below it, in any further subfolders::

    档案/
      县创卫办/2026年第三季度创卫工作会议纪要.pdf
      老王家常菜/卫生许可证_2024-05-06.jpg
      老王家常菜/健康证/张三健康证明20260301.pdf

Each file is registered once in the store table :data:`ARCHIVE_TABLE` with its holder, the document it
is (the catalogue entry of ``[archive] documents`` whose keyword is the longest found in its name or
its folders' names below the holder; blank if none), its date (written in the name as 2026-03-01,
2026.3.1, 20260301 or 2026年3月1日, else the day the file was last changed), its SHA-256, size and, for
PDFs, the text of its first pages (for near duplicates). A rescan reads only new or changed files
(path, size and modification time), keeps what an upload recorded and drops files that are gone.
Which documents are missing or expired is :mod:`geo.archive`'s business.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import pandas as pd

from sanigrid.layers._errors import SanigridError

if TYPE_CHECKING:
    from sanigrid.layers.project import Project
    from sanigrid.layers.settings import ArchiveSettings
    from sanigrid.layers.store import Store

log = logging.getLogger(__name__)

ARCHIVE_TABLE = "archive_files"
SCANNED, UPLOADED = "扫描", "上传"
#: the registry's columns and their Chinese headers (the order of the 登记表 sheet)
REGISTRY_HEADERS: dict[str, str] = {
    "file_id": "文件编号", "holder": "所属单位/地点", "document": "档案类型", "doc_date": "文件日期",
    "file_name": "文件名", "path": "路径", "sha256": "SHA-256", "size_bytes": "大小(字节)",
    "source": "登记方式", "registered_by": "登记人", "registered_at": "登记时间", "mtime": "修改时间戳",
    "text": "正文摘录",
}
COLUMNS = tuple(REGISTRY_HEADERS)
_TEXT_MAX = 4000  # characters of PDF text kept per file
_CHUNK = 1 << 20
_SKIP = re.compile(r"^(\.|~\$|Thumbs\.db$|desktop\.ini$)", re.IGNORECASE)  # hidden, Office lock files
_DATE_PATTERNS = (
    re.compile(r"(?<!\d)(20\d{2}|19\d{2})\s*[-._/年]\s*(\d{1,2})\s*[-._/月]\s*(\d{1,2})(?!\d)"),
    re.compile(r"(?<!\d)(20\d{2}|19\d{2})(\d{2})(\d{2})(?!\d)"),
    re.compile(r"(?<!\d)(20\d{2}|19\d{2})\s*年\s*(\d{1,2})\s*月"),
)


class ArchiveError(SanigridError):
    """A file that cannot be registered (bad holder, bad name, unreadable)."""


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex), read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def date_in_name(name: str) -> date | None:
    """The date written in a file name (2026-03-01, 2026.3.1, 20260301, 2026年3月1日; 2026年3月 is the 1st),
    or ``None``. A pattern that is not a real date (20261399) is skipped."""
    for pattern in _DATE_PATTERNS:
        for m in pattern.finditer(name):
            parts = [int(g) for g in m.groups()] + [1] * (3 - len(m.groups()))
            try:
                return date(parts[0], parts[1], parts[2])
            except ValueError:
                continue
    return None


def document_of(names: Iterable[str], settings: ArchiveSettings) -> str:
    """The catalogue document whose keyword is the longest found in ``names`` (a file's name and its folders'
    below the holder), the first listed among equals; ``""`` when no keyword is found."""
    text = " ".join(names)
    best, best_len = "", 0
    for d in settings.documents:
        for word in d.words:
            if word and word in text and len(word) > best_len:
                best, best_len = d.name, len(word)
    return best


def pdf_text(path: str | Path, *, pages: int) -> str:
    """The text of a PDF's first ``pages`` pages, whitespace removed, at most a few thousand characters;
    ``""`` for a scan without text or a file pypdf cannot read (logged, never an error)."""
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError:  # pragma: no cover - a core dependency
        log.warning("pypdf is not installed (pip install pypdf): PDF text is not compared")
        return ""
    try:
        reader = PdfReader(str(path))
        parts = [reader.pages[i].extract_text() or "" for i in range(min(pages, len(reader.pages)))]
    except (PyPdfError, OSError, ValueError, KeyError, TypeError) as e:
        log.info("%s: no text read from the PDF (%s)", path, e)
        return ""
    return re.sub(r"\s+", "", "".join(parts))[:_TEXT_MAX]


def archive_folder(project: Project) -> Path:
    """The project's archive folder (``[archive] folder``, relative to the project folder unless absolute)."""
    folder = Path(project.settings.archive.folder)
    return folder if folder.is_absolute() else project.root / folder


def empty_registry() -> pd.DataFrame:
    """A registry with no files (the columns, typed)."""
    frame = pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS})
    frame["file_id"] = frame["file_id"].astype("Int64")
    frame["size_bytes"] = frame["size_bytes"].astype("Int64")
    frame["mtime"] = frame["mtime"].astype("float64")
    return frame


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    out = empty_registry()
    if not len(frame):
        return out
    out = pd.DataFrame({c: frame[c] if c in frame else None for c in COLUMNS})
    out["file_id"] = pd.to_numeric(out["file_id"], errors="coerce").astype("Int64")
    out["size_bytes"] = pd.to_numeric(out["size_bytes"], errors="coerce").astype("Int64")
    out["mtime"] = pd.to_numeric(out["mtime"], errors="coerce").astype("float64")
    out["doc_date"] = pd.to_datetime(out["doc_date"], errors="coerce").dt.date
    out["registered_at"] = pd.to_datetime(out["registered_at"], errors="coerce")
    for c in ("holder", "document", "file_name", "path", "sha256", "source", "registered_by", "text"):
        out[c] = out[c].astype("object").where(out[c].notna(), "").map(str)
    return out.reset_index(drop=True)


def read_registry(store: Store) -> pd.DataFrame | None:
    """The registry from the store, typed; ``None`` when the archive was never scanned or uploaded to."""
    if not store.has(ARCHIVE_TABLE):
        return None
    return _typed(store.read_table(ARCHIVE_TABLE))


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["doc_date"] = out["doc_date"].map(lambda d: d.isoformat() if isinstance(d, date) else None)
    out["registered_at"] = out["registered_at"].map(
        lambda t: t.isoformat(sep=" ", timespec="seconds") if isinstance(t, datetime) and pd.notna(t) else None)
    return out


def write_registry(store: Store, frame: pd.DataFrame) -> None:
    """Replace the registry table (one store transaction)."""
    store.write_table(ARCHIVE_TABLE, _plain(_typed(frame)))


def _relative(path: Path, root: Path) -> str:
    try:
        return PurePosixPath(path.resolve().relative_to(root.resolve())).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def file_row(path: Path, *, folder: Path, root: Path, settings: ArchiveSettings, holder: str | None = None,
             document: str | None = None, doc_date: date | None = None, source: str = SCANNED,
             registered_by: str = "", now: datetime | None = None) -> dict[str, Any]:
    """The registry row of one file (no ``file_id``): holder from its first folder below ``folder`` unless
    given, document and date from its name unless given, SHA-256, size, modification time, PDF text."""
    parts = path.resolve().relative_to(folder.resolve()).parts
    if holder is None:
        holder = parts[0] if len(parts) > 1 else ""
    below = parts[1:] if len(parts) > 1 else parts
    stat = path.stat()
    if document is None:
        document = document_of(below, settings)
    if doc_date is None:
        doc_date = next((d for d in (date_in_name(p) for p in reversed(below)) if d is not None),
                        datetime.fromtimestamp(stat.st_mtime).date())
    text = pdf_text(path, pages=settings.pdf_pages) if path.suffix.lower() == ".pdf" else ""
    return {"holder": holder, "document": document, "doc_date": doc_date, "file_name": path.name,
            "path": _relative(path, root), "sha256": sha256_file(path), "size_bytes": int(stat.st_size),
            "source": source, "registered_by": registered_by,
            "registered_at": (now or datetime.now()).replace(microsecond=0), "mtime": float(stat.st_mtime),
            "text": text}


@dataclass(frozen=True)
class ScanResult:
    """What a scan did: the new registry and the paths added, changed (re-read) and gone."""

    registry: pd.DataFrame
    added: list[str]
    changed: list[str]
    removed: list[str]
    unfiled: list[str]  # files directly in the archive folder, with no holder folder


def scan(folder: str | Path, registry: pd.DataFrame | None, *, root: str | Path, settings: ArchiveSettings,
         now: datetime | None = None) -> ScanResult:
    """Register every file below ``folder`` (see the module docstring); returns the new registry.

    A file already registered with the same size and modification time is kept as it is (its hash is not
    recomputed); a changed one is read again, keeping its ``file_id``, holder, document and date when an
    upload set them; a registered file that is gone is dropped. Paths are relative to ``root`` (the
    project folder). Linear in the number of files; each new or changed file is read once.
    """
    folder, root = Path(folder), Path(root)
    if not folder.is_dir():
        raise ArchiveError(f"{folder}: the archive folder does not exist; make it with one subfolder per "
                           "sample point or department (or set [archive] folder in sanigrid.toml)")
    old = _typed(registry) if registry is not None else empty_registry()
    by_path = {p: i for i, p in enumerate(old["path"])}
    next_id = int(old["file_id"].max()) + 1 if len(old) and old["file_id"].notna().any() else 1
    rows: list[dict[str, Any]] = []
    kept: list[int] = []
    added: list[str] = []
    changed: list[str] = []
    unfiled: list[str] = []
    seen: set[str] = set()
    sizes = old["size_bytes"].fillna(-1).astype("int64").to_numpy()
    mtimes = old["mtime"].to_numpy(dtype="float64")
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel_parts = path.relative_to(folder).parts
        if any(_SKIP.match(part) for part in rel_parts):
            continue
        rel = _relative(path, root)
        seen.add(rel)
        if len(rel_parts) == 1:
            unfiled.append(rel)
        i = by_path.get(rel)
        stat = path.stat()
        if i is not None and sizes[i] == stat.st_size and mtimes[i] == float(stat.st_mtime):
            kept.append(i)  # unchanged: not read again
            continue
        if i is not None:
            prev = old.iloc[i]
            uploaded = prev["source"] == UPLOADED
            row = file_row(path, folder=folder, root=root, settings=settings, now=now,
                           holder=prev["holder"] if uploaded else None,
                           document=prev["document"] if uploaded else None,
                           doc_date=prev["doc_date"] if uploaded else None,
                           source=prev["source"], registered_by=prev["registered_by"])
            row["file_id"] = prev["file_id"]
            changed.append(rel)
        else:
            row = file_row(path, folder=folder, root=root, settings=settings, now=now)
            row["file_id"] = next_id
            next_id += 1
            added.append(rel)
        rows.append(row)
    removed = [p for p in old["path"] if p not in seen]
    new = pd.concat([old.iloc[kept], _typed(pd.DataFrame(rows)) if rows else empty_registry()], ignore_index=True)
    return ScanResult(registry=new.sort_values("file_id").reset_index(drop=True), added=added, changed=changed,
                      removed=removed, unfiled=unfiled)


_BAD_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


def safe_name(name: str, *, what: str) -> str:
    """A file or folder name as given, refused when it could leave its folder or is not a name."""
    name = name.strip()
    if not name or name in (".", "..") or _BAD_NAME.search(name) or name.startswith("."):
        raise ArchiveError(f"{what} '{name}' is not a usable name: no / \\ : * ? \" < > |, not empty, "
                           "not starting with a dot")
    return name


def register_upload(project: Project, *, holder: str, document: str, filename: str, data: bytes,
                    doc_date: date | None = None, registered_by: str = "",
                    known_holders: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Save an uploaded file into the archive folder (``<folder>/<holder>/<filename>``, a ``-2``, ``-3`` …
    before the suffix when the name is taken) and register it with its holder, document and date.

    ``known_holders`` (holder → kind), when given, is the list the holder must be on. The file is written
    to a temporary name and renamed, then the registry row is added in one store transaction; if that
    fails the file is removed again. Returns the registry row.
    """
    holder = safe_name(holder, what="holder")
    filename = safe_name(Path(filename).name, what="file name")
    settings = project.settings.archive
    if known_holders is not None and holder not in known_holders:
        raise ArchiveError(f"'{holder}' is not a sample point or department the archive catalogue asks "
                           "documents of; pick one from the list")
    if document and settings.document(document) is None:
        raise ArchiveError(f"'{document}' is not a document of the catalogue ([archive] documents): "
                           + ", ".join(d.name for d in settings.documents))
    folder = archive_folder(project)
    target_dir = folder / holder
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / filename
    n = 2
    while target.exists():
        target = target_dir / f"{Path(filename).stem}-{n}{Path(filename).suffix}"
        n += 1
    tmp = target.with_name(f".{target.name}.part")
    tmp.write_bytes(data)
    tmp.replace(target)
    try:
        row = file_row(target, folder=folder, root=project.root, settings=settings, holder=holder,
                       document=document or None, doc_date=doc_date, source=UPLOADED, registered_by=registered_by)
        with project.store.transaction() as tx:
            old = read_registry(tx)
            old = old if old is not None else empty_registry()
            row["file_id"] = int(old["file_id"].max()) + 1 if len(old) and old["file_id"].notna().any() else 1
            write_registry(tx, pd.concat([old, _typed(pd.DataFrame([row]))], ignore_index=True))
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return row
