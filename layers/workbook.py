"""The one workbook writer: every .xlsx sanigrid makes goes through :func:`write_xlsx`.

What it guarantees, whatever the data:

- **Text stays text.** A text cell is written as a string cell, never as a formula, so a
  description such as ``=HYPERLINK(...)`` or one starting with ``+ - @``, a tab or CR is shown as
  typed (with Excel's quote prefix, so editing the cell does not turn it into a formula either).
  Numbers, negative ones included, stay numbers.
- **No control characters.** They are removed (:mod:`sanigrid.layers.text`); XML cannot hold them
  and openpyxl would refuse the whole workbook.
- **No size crash.** A table longer than Excel's 1,048,576 rows continues on numbered sheets
  (``问题``, ``问题 (2)`` …), each with the header row.
- **A failure never spoils a good file.** A file target is written to a temporary file in the same
  folder and renamed over the old one only once complete. :class:`StagedWorkbook` keeps the rename
  for later, so a caller can write the workbook, then commit the store, then publish the file: an
  analysis whose report fails leaves the store as it was.

Layout as before: Chinese headers, WGS84 经度/纬度 columns for geometries, bold frozen header
row, widths fitted to the first 200 rows.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from datetime import date, datetime, time, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd

from sanigrid.layers.text import CONTROL_RE, clean_text

#: rows in one Excel sheet, header included (Excel 2007+ specification and limits)
EXCEL_MAX_ROWS = 1_048_576
_MAX_SHEET_NAME = 31
_BAD_SHEET_CHARS = str.maketrans({c: "_" for c in "[]:*?/\\"})
#: first characters that a spreadsheet may read as the start of a formula (OWASP "CSV injection")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def sheet_name(name: str) -> str:
    """A legal, unique-enough Excel sheet name (≤ 31 characters, no []:*?/\\, no control characters)."""
    return clean_text(str(name)).translate(_BAD_SHEET_CHARS)[:_MAX_SHEET_NAME] or "Sheet"


def looks_like_formula(text: str) -> bool:
    """Whether a spreadsheet could take ``text`` for a formula (it starts with = + - @, tab or CR)."""
    return text.startswith(FORMULA_START)


def _cell_value(v: Any) -> Any:
    """A Python value openpyxl writes as it is: None for missing, naive datetimes, plain numbers."""
    if v is None or v is pd.NaT:
        return None
    if isinstance(v, str):
        return CONTROL_RE.sub("", v)
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        f = float(v)
        return None if math.isnan(f) else (str(f) if math.isinf(f) else f)
    if isinstance(v, pd.Timestamp):
        return v.tz_localize(None).to_pydatetime() if v.tzinfo is not None else v.to_pydatetime()
    if isinstance(v, datetime):
        return v.replace(tzinfo=None)
    if isinstance(v, date | time | timedelta):
        return v
    if isinstance(v, pd.Timedelta):
        return v.to_pytimedelta()
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return CONTROL_RE.sub("", str(v))


def _tables(sheets: Mapping[str, pd.DataFrame], headers: Mapping[str, str],
            max_rows: int) -> Iterator[tuple[str, pd.DataFrame]]:
    """(unique legal sheet name, part of a table) in order; long tables cut into numbered parts."""
    from sanigrid.layers.export import table_with_lonlat

    used: set[str] = set()
    per_sheet = max_rows - 1
    for raw_name, frame in sheets.items():
        table = table_with_lonlat(frame).rename(columns=dict(headers))
        base = sheet_name(raw_name)
        parts = max(1, math.ceil(len(table) / per_sheet))
        for k in range(parts):
            suffix = f" ({k + 1})" if k else ""
            name = base[:_MAX_SHEET_NAME - len(suffix)] + suffix
            n = 2
            while name in used:
                tag = f"_{n}"
                name = base[:_MAX_SHEET_NAME - len(suffix) - len(tag)] + tag + suffix
                n += 1
            used.add(name)
            yield name, table.iloc[k * per_sheet:(k + 1) * per_sheet]


def _write(sheets: Mapping[str, pd.DataFrame], target: Any, headers: Mapping[str, str], max_rows: int) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    bold = Font(bold=True)
    wrote = False
    for name, table in _tables(sheets, headers, max_rows):
        ws = wb.create_sheet(title=name)
        cols = [clean_text(str(c)) for c in table.columns]
        for i, head in enumerate(cols, start=1):
            values = [head] + [str(v) for v in table.iloc[:200, i - 1].tolist()]
            width = max(len(v.encode("gbk", errors="replace")) for v in values)
            ws.column_dimensions[get_column_letter(i)].width = min(max(8, width + 2), 60)
        ws.freeze_panes = "A2"
        header = []
        for c in cols:
            cell = WriteOnlyCell(ws, value=None)
            cell.value, cell.data_type, cell.font = c, "s", bold
            header.append(cell)
        ws.append(header)
        for row in table.itertuples(index=False, name=None):
            out: list[Any] = []
            for v in row:
                value = _cell_value(v)
                if isinstance(value, str):
                    cell = WriteOnlyCell(ws, value=None)
                    cell._value, cell.data_type = value, "s"  # a string cell: never parsed as a formula
                    if looks_like_formula(value):
                        cell.quotePrefix = True
                    out.append(cell)
                else:
                    out.append(value)
            ws.append(out)
        wrote = True
    if not wrote:
        wb.create_sheet(title="Sheet")
    wb.save(target)


class StagedWorkbook:
    """A workbook written in full to a temporary file beside ``path``, published by :meth:`publish`.

    Used as a context manager it publishes on a normal exit and removes the temporary file on an
    error, so the old file at ``path`` (if any) stays as it was::

        with StagedWorkbook(sheets, path, headers=h):
            with store.transaction() as tx:   # the store commits only once the report is written
                tx.write(...)
    """

    def __init__(self, sheets: Mapping[str, pd.DataFrame], path: str | Path, *,
                 headers: Mapping[str, str] | None = None, max_rows: int = EXCEL_MAX_ROWS) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".xlsx.part", dir=self.path.parent)
        os.close(fd)
        self._tmp: Path | None = Path(tmp)
        try:
            _write(sheets, self._tmp, dict(headers or {}), max_rows)
        except BaseException:
            self.discard()
            raise

    def publish(self) -> Path:
        """Rename the finished workbook over ``path`` (atomic on one file system)."""
        if self._tmp is None:
            raise RuntimeError(f"{self.path}: this workbook was already published or discarded")
        os.replace(self._tmp, self.path)
        self._tmp = None
        return self.path

    def discard(self) -> None:
        """Remove the temporary file; ``path`` is left as it was."""
        if self._tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()
            self._tmp = None

    def __enter__(self) -> StagedWorkbook:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.publish()
        else:
            self.discard()


def write_xlsx(
    sheets: Mapping[str, pd.DataFrame],
    target: str | Path | io.BytesIO,
    *,
    headers: Mapping[str, str] | None = None,
    max_rows: int = EXCEL_MAX_ROWS,
) -> None:
    """Write frames to an .xlsx file (or buffer), one sheet each (more past ``max_rows``), with
    Chinese headers; see the module docstring for what is guaranteed. A file is replaced only
    once the new one is complete."""
    if isinstance(target, str | Path):
        StagedWorkbook(sheets, target, headers=headers, max_rows=max_rows).publish()
    else:
        _write(sheets, target, dict(headers or {}), max_rows)


def safe_csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy for CSV output: control characters removed and text that a spreadsheet would read as a
    formula prefixed with ``'`` (CSV has no cell types; numbers are left alone)."""
    from sanigrid.layers.text import clean_text_columns

    out, _ = clean_text_columns(frame)
    for i in range(out.shape[1]):
        s = out.iloc[:, i]
        if not pd.api.types.is_object_dtype(s.dtype) and not pd.api.types.is_string_dtype(s.dtype):
            continue
        values = s.to_numpy(dtype=object, copy=True)
        risky = np.fromiter((isinstance(v, str) and looks_like_formula(v) for v in values), bool, len(values))
        if risky.any():
            values[risky] = ["'" + v for v in values[risky]]
            out.isetitem(i, pd.Series(values, index=s.index, name=s.name))
    return out
