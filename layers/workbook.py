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

**As an office clerk opens it:**

- Chinese headers only: a column the caller left without one takes the catalogue's Chinese field
  name (or :data:`COMMON_HEADERS`); facility kinds and layer names in 设施类型/图层 are Chinese too.
- Yes/no as 是/否, never TRUE/FALSE; an empty text is an empty cell.
- Numbers as numbers, rounded to the decimals they need (at most :data:`MAX_DECIMALS`; whole
  numbers without any). Rates are percentages: a share (0–1) under a 率/占比/比例/概率 header is
  shown as ``0.0%``; a ``(%)`` column holds percentages already (0–100) and keeps them, with one
  decimal.
  P values keep four decimals, 经度/纬度 six. Dates as ``yyyy-mm-dd``, times as
  ``yyyy-mm-dd hh:mm``.
- A bold shaded header row, frozen, with an autofilter; A4 landscape, one page wide, the header
  row repeated on every printed page, the sheet name at the top and "第 N 页，共 M 页" at the foot.
  Widths fitted to the first 200 rows.

**Fast.** The sheets are written as SpreadsheetML column by column with numpy (one shared string
table, blocks of :data:`_BLOCK_ROWS` rows streamed into the zip), not cell by cell:
``bench/bench_xlsx.py`` measures it against the openpyxl write-only writer it replaced.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
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
        table = table_with_lonlat(frame)  # a new frame: its labels can be set in place (rename copies)
        table.columns = pd.Index([headers.get(c, c) for c in table.columns], dtype=object)
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


# ---------------------------------------------------------------------------------------------
# The writer: SpreadsheetML written column by column (numpy), not cell by cell.
#
# Each column is classified once (text, yes/no, whole number, decimal, rate, date, date-time or
# mixed), its number format chosen from its header and values, and turned into the XML of its cells
# for a block of rows at a time; rows are joined and streamed into the zip. Text goes to one shared
# string table (each distinct value once). Only a column of mixed Python objects takes the slow
# path, value by value.
# ---------------------------------------------------------------------------------------------

#: rows turned into XML per block (bounds the memory a big sheet takes while it is written)
_BLOCK_ROWS = 8_192
#: a text column this short is coded value by value in Python (faster than a vectorised call's overhead)
_SHORT_COLUMN = 64
#: the most decimals a number is shown (and stored) with; fewer if the analysis rounded to fewer
MAX_DECIMALS = 2
#: Excel's day zero for serial dates (1900 system, with its leap-year quirk folded in)
_EXCEL_EPOCH = np.datetime64("1899-12-30T00:00:00", "us")

# cell styles (cellXfs index) and their number formats (custom ids from 164)
_S_DEFAULT, _S_HEADER, _S_TEXT_QUOTED = 0, 1, 2
_NUMBER_FORMATS: dict[str, int] = {
    "0": 1, "0.00": 2,  # built in
    "0.0": 164, "0.0000": 165, "0.000000": 166, "0.0%": 167, "yyyy-mm-dd hh:mm": 168, "yyyy-mm-dd": 169,
}
_STYLE_OF_FORMAT = {fmt: 3 + i for i, fmt in enumerate(_NUMBER_FORMATS)}

#: headers whose values are rates: shown as percentages (values 0–1; ``(%)`` columns hold 0–100)
_RATE_RE = re.compile("率|占比|比例|概率")
_NOT_RATE_RE = re.compile("每|问题率")            # 每公里问题数 and its interval are counts per km
_P_VALUE_RE = re.compile(r"P值|p值|^p$|^p_")
_LONLAT = {"经度", "纬度"}
_KIND_COLUMNS = {"设施类型", "图层"}
YES, NO = "是", "否"

_NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_ESCAPE_RE = re.compile(r"_(x[0-9A-Fa-f]{4}_)")   # Excel reads _xHHHH_ as a character: keep it literal


def _xml_text(text: str) -> str:
    return _ESCAPE_RE.sub(r"_x005F_\1", text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def _col_letter(i: int) -> str:
    """Excel column name of 0-based index ``i`` (0 → A, 26 → AA)."""
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(65 + r) + out
    return out


class _Strings:
    """The workbook's shared string table: each distinct text once."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.count = 0

    def ids(self, uniques: Any) -> np.ndarray:
        index = self.index
        return np.fromiter((index.setdefault(u, len(index)) for u in uniques), np.int64, len(uniques))

    def xml(self) -> bytes:
        items = "".join(f'<si><t xml:space="preserve">{_xml_text(s)}</t></si>' for s in self.index)
        return (f'{_XML_HEAD}<sst xmlns="{_NS_MAIN}" count="{self.count}" uniqueCount="{len(self.index)}">'
                f"{items}</sst>").encode()


def _decimals(values: np.ndarray, most: int) -> int:
    """The fewest decimals (≤ ``most``) that show every finite value as it is."""
    for d in range(most):
        if np.allclose(np.round(values, d), values, rtol=0, atol=1e-9 * 10 ** -d):
            return d
    return most


class _Column:
    """One column, classified once: ``cells(lo, hi, rows)`` gives the XML of rows lo..hi."""

    def __init__(self, header: str, series: pd.Series, strings: _Strings) -> None:
        self.header = header
        self.strings = strings
        self.style = _S_DEFAULT
        self.kind = "empty"
        self.sample: list[str] = []          # first values as shown, for the column width
        dtype = series.dtype
        if isinstance(dtype, pd.CategoricalDtype):  # its values, as objects
            dtype = np.dtype(object)
        if pd.api.types.is_bool_dtype(dtype):
            self._objects(series.to_numpy(dtype=object, na_value=None))          # numpy or nullable bool
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            self._datetime(series)
        elif pd.api.types.is_timedelta64_dtype(dtype):
            self._number(series.dt.total_seconds().to_numpy(dtype=float) / 86400.0)
        elif pd.api.types.is_integer_dtype(dtype):
            present = series.notna().to_numpy()
            ints = series.to_numpy(dtype=np.int64, na_value=0)
            self._number(np.where(present, ints, np.nan).astype(float), exact=ints)
        elif pd.api.types.is_numeric_dtype(dtype):
            self._number(series.to_numpy(dtype=float, na_value=np.nan))
        elif isinstance(dtype, pd.StringDtype) and header not in _KIND_COLUMNS:
            self._string(series)
        else:
            self._objects(series.to_numpy(dtype=object))

    # -- kinds -------------------------------------------------------------------------------
    def _objects(self, values: np.ndarray) -> None:
        missing = pd.isna(values)
        types = {type(v) for v in values[~missing]}
        if not types:
            self.kind = "empty"
        elif types <= {str}:
            self._text(values, quote=True)
        elif types <= {bool, np.bool_}:
            out = np.full(len(values), None, dtype=object)
            present = ~missing
            out[present] = np.where(values[present].astype(bool), YES, NO)
            self._text(out, quote=False)
        else:                                                    # mixed: value by value
            conv = [_cell_value(v) for v in values]
            kinds = {type(v) for v in conv if v is not None}
            if kinds <= {int, float} and kinds:
                self._number(np.array([np.nan if v is None else v for v in conv], dtype=float))
            elif kinds <= {datetime} and kinds:
                self._datetime(pd.Series(pd.to_datetime(conv)))
            else:
                self._text(np.array([None if v is None else (YES if v is True else NO if v is False else str(v))
                                     for v in conv], dtype=object), quote=True)

    def _text(self, values: np.ndarray, *, quote: bool) -> None:
        if len(values):
            values = values.copy()
            values[values == ""] = None                       # "" is an empty cell
        if self.header in _KIND_COLUMNS:                      # facility kinds and layers by their Chinese names
            from sanigrid.layers.catalogue import CATALOGUE
            names = {k: spec.zh for k, spec in CATALOGUE.items()}
            values = np.array([names.get(v, v) if isinstance(v, str) else v for v in values], dtype=object)
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        self._coded(codes, np.asarray(uniques, dtype=object), quote=quote)

    def _string(self, series: pd.Series) -> None:
        """A column of the string dtype: factorized as it is stored (no object array of every value),
        with the codes :meth:`_text` gives (distinct values in order of appearance, "" an empty cell).
        A short column (a grid's sheet of the 责任清单) is coded in Python: the same codes, without the
        ~0.2 ms of an Arrow factorize."""
        if len(series) <= _SHORT_COLUMN:
            index: dict[str, int] = {}
            short = [index.setdefault(v, len(index)) if isinstance(v, str) and v else -1 for v in series.tolist()]
            self._coded(np.array(short, dtype=np.intp), np.array(list(index), dtype=object), quote=True)
            return
        codes, uniques = series.factorize(use_na_sentinel=True)
        uniques = np.asarray(uniques, dtype=object)
        empty = np.flatnonzero(uniques == "")
        if len(empty):
            e = int(empty[0])
            codes = np.where(codes == e, -1, np.where(codes > e, codes - 1, codes))
            uniques = np.delete(uniques, e)
        self._coded(np.asarray(codes), uniques, quote=True)

    def _coded(self, codes: np.ndarray, uniques: np.ndarray, *, quote: bool) -> None:
        if not len(uniques):
            return
        cleaned = [CONTROL_RE.sub("", u) if isinstance(u, str) else str(u) for u in uniques]
        ids = self.strings.ids(cleaned)
        quoted = np.array([quote and looks_like_formula(u) for u in cleaned], dtype=bool)
        self.kind = "text"
        self.codes = codes
        self.ids = ids
        self.quoted = quoted
        self.sample = [cleaned[c] if c >= 0 else "" for c in codes[:200]]
        self.strings.count += int((codes >= 0).sum())

    def _number(self, values: np.ndarray, *, exact: np.ndarray | None = None) -> None:
        """A numeric column; ``exact`` holds the whole numbers themselves when the column is of integers.
        Values are kept as numbers and turned into text a block at a time (:meth:`cells`)."""
        integer = exact is not None
        finite = np.isfinite(values)
        self.kind = "number"
        head = self.header
        fmt: str
        good = values[finite]
        if head in _LONLAT:
            fmt, digits = "0.000000", 6
        elif _P_VALUE_RE.search(head):
            fmt, digits = "0.0000", 4
        elif head.endswith(("(%)", "（%）")):               # already percentages (0–100): one decimal
            fmt, digits = "0.0", 1
        elif (_RATE_RE.search(head) and not _NOT_RATE_RE.search(head) and not integer
              and good.size and good.min() >= 0 and good.max() <= 1):
            fmt, digits = "0.0%", 4
        elif integer or (good.size and np.array_equal(good, np.round(good))):
            fmt, digits = "0", 0
        else:
            digits = _decimals(good, MAX_DECIMALS) if good.size else MAX_DECIMALS
            fmt = {0: "0", 1: "0.0"}.get(digits, "0.00")
        self.style = _STYLE_OF_FORMAT[fmt]
        if exact is not None and fmt == "0":
            kept: np.ndarray = exact
        else:
            shown = np.round(values, digits)
            whole = fmt == "0" and bool(np.all(np.abs(shown[finite]) < 2 ** 53))
            kept = np.where(finite, shown, 0).astype(np.int64) if whole else shown
        self.values = kept
        text = kept[:200].astype(str)
        self.present = finite
        self.inf = np.isinf(values)                            # written as text, as before
        self.sample = [t if ok else "" for t, ok in zip(text.tolist(), finite[:200].tolist(), strict=True)]
        if fmt.endswith("%"):
            self.sample = [s + "00%" if s else s for s in self.sample]
        if self.inf.any():
            self._inf_ids = self.strings.ids([str(float(v)) for v in values[self.inf]])
            self.strings.count += int(self.inf.sum())

    def _datetime(self, series: pd.Series) -> None:
        s = pd.Series(series)
        if getattr(s.dt, "tz", None) is not None:
            s = s.dt.tz_localize(None)
        stamps = s.to_numpy(dtype="datetime64[us]")
        present = ~np.isnat(stamps)
        days = (stamps - _EXCEL_EPOCH) / np.timedelta64(1, "D")
        only_dates = bool(np.all((stamps[present] - stamps[present].astype("datetime64[D]")) == np.timedelta64(0)))
        fmt = "yyyy-mm-dd" if only_dates else "yyyy-mm-dd hh:mm"
        self.kind = "number"
        self.style = _STYLE_OF_FORMAT[fmt]
        self.values = np.round(np.where(present, days, 0), 8)
        self.present = present
        self.inf = np.zeros(len(stamps), dtype=bool)
        self.sample = ["2026-01-01" + ("" if only_dates else " 00:00")] if present.any() else []

    # -- XML ---------------------------------------------------------------------------------
    def cells(self, letter: str, lo: int, hi: int, rows: np.ndarray) -> np.ndarray:
        """The XML of this column's cells for data rows lo..hi (``rows`` are their sheet row numbers)."""
        n = hi - lo
        if self.kind == "empty":
            return np.full(n, "", dtype=object)
        ref = np.char.add(f'<c r="{letter}', rows)
        if self.kind == "text":
            codes = self.codes[lo:hi]
            present = codes >= 0
            safe = np.where(present, codes, 0)
            style = np.where(self.quoted[safe], f'" s="{_S_TEXT_QUOTED}" t="s"><v>', '" t="s"><v>')
            xml = np.char.add(np.char.add(np.char.add(ref, style), self.ids[safe].astype(str)), "</v></c>")
        else:
            present = self.present[lo:hi]
            body = np.char.add(np.char.add(ref, f'" s="{self.style}"><v>'), self.values[lo:hi].astype(str))
            xml = np.char.add(body, "</v></c>")
            inf = self.inf[lo:hi]
            if inf.any():
                ids = np.zeros(n, dtype=np.int64)
                ids[inf] = self._inf_ids[np.cumsum(self.inf)[lo:hi][inf] - 1]
                alt = np.char.add(np.char.add(np.char.add(ref, '" t="s"><v>'), ids.astype(str)), "</v></c>")
                xml = np.where(inf, alt, xml)
                present = present | inf
        return np.where(present, xml, "").astype(object)

    def width(self) -> float:
        values = [self.header] + self.sample
        w = max(len(v.encode("gbk", errors="replace")) for v in values)
        return float(min(max(8, w + 2), 60))


def _sheet_xml(out: Any, name: str, table: pd.DataFrame, strings: _Strings, first: bool) -> str:
    """Stream one worksheet into ``out``; return its used range (e.g. ``A1:M501``), or '' if empty."""
    headers = [clean_text(str(c)) for c in table.columns]
    columns = [_Column(h, col, strings) for h, (_, col) in zip(headers, table.items(), strict=True)]
    letters = [_col_letter(i) for i in range(len(columns))]
    n = len(table)
    last = f"{letters[-1]}{n + 1}" if columns else "A1"
    ref = f"A1:{last}"
    selected = ' tabSelected="1"' if first else ""
    cols = "".join(f'<col min="{i + 1}" max="{i + 1}" width="{c.width():g}" customWidth="1"/>'
                   for i, c in enumerate(columns))
    out.write((
        f'{_XML_HEAD}<worksheet xmlns="{_NS_MAIN}" xmlns:r="{_NS_REL}">'
        '<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr>'
        f'<dimension ref="{ref}"/>'
        f'<sheetViews><sheetView workbookViewId="0"{selected}>'
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
        '<sheetFormatPr defaultRowHeight="15"/>'
        + (f"<cols>{cols}</cols>" if cols else "") + "<sheetData>").encode())
    if columns:
        head_ids = strings.ids(headers)
        strings.count += len(headers)
        head = "".join(f'<c r="{letter}1" s="{_S_HEADER}" t="s"><v>{k}</v></c>'
                       for letter, k in zip(letters, head_ids.tolist(), strict=True))
        out.write(f'<row r="1">{head}</row>'.encode())
        for lo in range(0, n, _BLOCK_ROWS):
            hi = min(n, lo + _BLOCK_ROWS)
            rows = np.arange(lo + 2, hi + 2).astype(str)
            acc = np.char.add(np.char.add('<row r="', rows), '">').astype(object)
            for col, letter in zip(columns, letters, strict=True):
                acc = acc + col.cells(letter, lo, hi, rows)
            out.write(("</row>".join(acc.tolist()) + "</row>").encode())
    out.write((
        "</sheetData>"
        + (f'<autoFilter ref="{ref}"/>' if columns else "")
        + '<printOptions horizontalCentered="1"/>'
        '<pageMargins left="0.4" right="0.4" top="0.6" bottom="0.6" header="0.3" footer="0.3"/>'
        '<pageSetup paperSize="9" orientation="landscape" fitToWidth="1" fitToHeight="0"/>'
        f"<headerFooter><oddHeader>&amp;C{_xml_text(name)}</oddHeader>"
        "<oddFooter>&amp;C第 &amp;P 页，共 &amp;N 页</oddFooter></headerFooter>"
        "</worksheet>").encode())
    return ref if columns else ""


def _styles_xml() -> bytes:
    fmts = "".join(f'<numFmt numFmtId="{i}" formatCode="{f}"/>' for f, i in _NUMBER_FORMATS.items() if i >= 164)
    xfs = ['<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>',
           '<xf numFmtId="0" fontId="1" fillId="2" borderId="1" xfId="0" applyFont="1" applyFill="1" '
           'applyBorder="1" applyAlignment="1"><alignment vertical="center" wrapText="1"/></xf>',
           '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" quotePrefix="1"/>']
    xfs += [f'<xf numFmtId="{i}" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
            for i in _NUMBER_FORMATS.values()]
    return (
        f'{_XML_HEAD}<styleSheet xmlns="{_NS_MAIN}">'
        f'<numFmts count="{fmts.count("<numFmt ")}">{fmts}</numFmts>'
        '<fonts count="2"><font><sz val="11"/><name val="等线"/><family val="2"/><charset val="134"/></font>'
        '<font><b/><sz val="11"/><name val="等线"/><family val="2"/><charset val="134"/></font></fonts>'
        '<fills count="3"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill>'
        '<fill><patternFill patternType="solid"><fgColor rgb="FFE7EEF7"/><bgColor indexed="64"/></patternFill></fill>'
        "</fills>"
        '<borders count="2"><border><left/><right/><top/><bottom/><diagonal/></border>'
        '<border><left/><right/><top/><bottom style="thin"><color rgb="FF7F7F7F"/></bottom><diagonal/></border>'
        "</borders>"
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        f'<cellXfs count="{len(xfs)}">{"".join(xfs)}</cellXfs>'
        '<cellStyles count="1"><cellStyle name="常规" xfId="0" builtinId="0"/></cellStyles>'
        "</styleSheet>").encode()


def _quoted_sheet(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def _write(sheets: Mapping[str, pd.DataFrame], target: Any, headers: Mapping[str, str], max_rows: int) -> None:
    """Write the workbook (see the module docstring): one zip, streamed sheet by sheet."""
    import zipfile

    strings = _Strings()
    names: list[str] = []
    ranges: list[str] = []
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, table in _tables(sheets, _with_fallback_headers(headers), max_rows):
            with zf.open(f"xl/worksheets/sheet{len(names) + 1}.xml", "w", force_zip64=True) as out:
                ranges.append(_sheet_xml(out, name, table, strings, first=not names))
            names.append(name)
        if not names:
            with zf.open("xl/worksheets/sheet1.xml", "w") as out:
                _sheet_xml(out, "Sheet", pd.DataFrame(), strings, first=True)
            names, ranges = ["Sheet"], [""]
        n = len(names)
        zf.writestr("xl/sharedStrings.xml", strings.xml())
        zf.writestr("xl/styles.xml", _styles_xml())
        sheet_list = "".join(
            f'<sheet name="{_xml_text(nm).replace(chr(34), "&quot;")}" sheetId="{i + 1}" r:id="rId{i + 1}"/>'
            for i, nm in enumerate(names))
        defined = []
        for i, (nm, ref) in enumerate(zip(names, ranges, strict=True)):
            if not ref:
                continue
            a, b = ref.split(":")
            absolute = "$" + re.sub(r"(\d+)$", r"$\1", a) + ":$" + re.sub(r"(\d+)$", r"$\1", b)
            q = _xml_text(_quoted_sheet(nm))
            defined.append(f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
                           f"{q}!{absolute}</definedName>")
            defined.append(f'<definedName name="_xlnm.Print_Titles" localSheetId="{i}">{q}!$1:$1</definedName>')
        zf.writestr("xl/workbook.xml", (
            f'{_XML_HEAD}<workbook xmlns="{_NS_MAIN}" xmlns:r="{_NS_REL}">'
            f'<bookViews><workbookView activeTab="0"/></bookViews><sheets>{sheet_list}</sheets>'
            + (f"<definedNames>{''.join(defined)}</definedNames>" if defined else "")
            + "</workbook>").encode())
        rels = "".join(
            f'<Relationship Id="rId{i + 1}" Type="{_NS_REL}/worksheet" Target="worksheets/sheet{i + 1}.xml"/>'
            for i in range(n))
        rels += (f'<Relationship Id="rId{n + 1}" Type="{_NS_REL}/styles" Target="styles.xml"/>'
                 f'<Relationship Id="rId{n + 2}" Type="{_NS_REL}/sharedStrings" Target="sharedStrings.xml"/>')
        zf.writestr("xl/_rels/workbook.xml.rels",
                    f'{_XML_HEAD}<Relationships xmlns="{_NS_PKG_REL}">{rels}</Relationships>')
        zf.writestr("_rels/.rels", (
            f'{_XML_HEAD}<Relationships xmlns="{_NS_PKG_REL}">'
            f'<Relationship Id="rId1" Type="{_NS_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'))
        ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
        overrides = "".join(f'<Override PartName="/xl/worksheets/sheet{i + 1}.xml" ContentType="{ct}.worksheet+xml"/>'
                            for i in range(n))
        zf.writestr("[Content_Types].xml", (
            f'{_XML_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{ct}.sheet.main+xml"/>'
            f'<Override PartName="/xl/styles.xml" ContentType="{ct}.styles+xml"/>'
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{ct}.sharedStrings+xml"/>'
            f"{overrides}</Types>"))


def _with_fallback_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` over the catalogue's Chinese field names and the computed columns' names, so a
    column that a caller left without a header is still shown in Chinese, never as an internal name."""
    from sanigrid.layers.catalogue import CATALOGUE
    from sanigrid.layers.export import OVERDUE_HEADERS

    out: dict[str, str] = {}
    for spec in CATALOGUE.values():
        for f in spec.fields:
            out.setdefault(f.name, f.zh)
    out.update(OVERDUE_HEADERS)
    out.update(COMMON_HEADERS)
    out.update(headers)
    return out


#: Chinese names of computed columns that several analyses write
COMMON_HEADERS: dict[str, str] = {
    "first_closed": "最早结案", "last_report": "最近上报", "first_report": "最早上报",
    "grid_code": "网格编码",
    "count": "数量", "share_open": "未结案占比", "rank": "排名", "score": "得分",
}


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
