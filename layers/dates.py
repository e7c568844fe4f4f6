"""Dates and times of a whole column at once, in the formats people's systems really write.

:func:`parse_date_column` reads a column vectorised: each format of :data:`DATE_FORMATS` is tried
in order on the cells not read yet (a format is only tried on the whole rest when it reads one of
a sample of them, so a column costs a few vectorised passes, not one parser call per cell). What
is left is read cell by cell (:func:`parse_datetime`, which knows odd spellings and raises for
text that is no date: those cells become row-level errors). The formats used are reported with
their counts, so a user sees "read as US month/day/year" and can tell a wrong guess.

Time zones: a timestamp with an offset (``+08:00``, ``Z``, ``-05:00``) is converted to the
project's time zone (``[project] time_zone``, default Asia/Shanghai) and stored without the
offset, as every time in the store is local time of the county; one without an offset is taken
as local time already.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_TIME_ZONE = "Asia/Shanghai"

#: (label, strptime formats) tried in this order; "iso" and "excel" are special.
DATE_FORMATS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ISO 8601 (2026-09-03 14:05:07)", ("iso",)),
    ("year/month/day (2026/9/3 14:05:07)", ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d",
                                            "%Y.%m.%d %H:%M:%S", "%Y.%m.%d %H:%M", "%Y.%m.%d",
                                            "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")),
    ("年月日 (2026年9月3日 14时05分)", ("%Y年%m月%d日%H时%M分%S秒", "%Y年%m月%d日%H时%M分", "%Y年%m月%d日%H点%M分",
                                      "%Y年%m月%d日%H:%M:%S", "%Y年%m月%d日%H:%M", "%Y年%m月%d日", "%Y年%m月%d号")),
    ("US month/day/year (09/03/2026 02:05:07 PM)", ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p",
                                                    "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y")),
    ("compact (20260903, 20260903140507)", ("%Y%m%d", "%Y%m%d%H%M%S", "%Y%m%d%H%M")),
    ("Excel serial day number (46268.59)", ("excel",)),
)
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)?$")
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$")
_CJK_SPACE = re.compile(r"\s*([年月日号时点分秒])\s*")
_SAMPLE = 64
_EXCEL_DAY0 = np.datetime64("1899-12-30", "ms")


@dataclass
class DateColumn:
    """The outcome of :func:`parse_date_column`.

    Attributes
    ----------
    values
        ``datetime64[ms]`` on the input's index, local time of the project, NaT for blank and
        unreadable cells.
    bad
        Positions of the non-blank cells that are not a date.
    formats
        Label of each format used → cells read with it (in :data:`DATE_FORMATS` order; "one by
        one" for the cells read by :func:`parse_datetime`).
    converted
        Cells that carried a UTC offset and were converted to the project's time zone.
    """

    values: pd.Series
    bad: np.ndarray
    formats: dict[str, int] = field(default_factory=dict)
    converted: int = 0

    def describe(self) -> str:
        """``"US month/day/year (…) 149,000; one by one 3"`` (empty when nothing was read)."""
        parts = [f"{k} {v:,}" for k, v in self.formats.items()]
        if self.converted:
            parts.append(f"{self.converted:,} with a UTC offset converted to the project's time zone")
        return "; ".join(parts)


def parse_date_column(col: pd.Series, *, time_zone: str = DEFAULT_TIME_ZONE) -> DateColumn:
    """Read a column of dates/times vectorised (see the module docstring).

    Parameters
    ----------
    col
        Cells as read from the file: text, numbers (Excel serials, ``20260903``), datetimes.
    time_zone
        IANA name of the project's time zone; offsets are converted to it.
    """
    n = len(col)
    obj = col.astype("object").to_numpy()
    out = np.full(n, np.datetime64("NaT"), dtype="datetime64[ms]")
    formats: dict[str, int] = {}
    converted = 0
    kind = _kinds(obj)
    # 1: datetime objects (xlsx cells formatted as dates)
    pos = np.flatnonzero(kind == 1)
    if len(pos):
        ts = pd.to_datetime(pd.Series(obj[pos]), utc=True, errors="coerce")
        aware = np.array([getattr(v, "tzinfo", None) is not None for v in obj[pos]])
        local = pd.to_datetime(pd.Series([v if not a else None for v, a in zip(obj[pos], aware, strict=True)],
                                         dtype="object"), errors="coerce")
        conv = ts.dt.tz_convert(time_zone).dt.tz_localize(None)
        vals = np.where(aware, conv.to_numpy("datetime64[ms]"), local.to_numpy("datetime64[ms]"))
        out[pos] = vals
        converted += int(aware.sum())
        formats["date cells"] = len(pos)
    # 2: numbers: Excel serials or 20260903
    pos = np.flatnonzero(kind == 2)
    if len(pos):
        x = np.array([float(v) for v in obj[pos]])
        compact = (x >= 19000101) & (x <= 21001231) & (x == np.floor(x))
        serial = ~compact & (x >= 1) & (x < 80000)
        if compact.any():
            d = pd.to_datetime(pd.Series(x[compact].astype("int64").astype(str)), format="%Y%m%d", errors="coerce")
            out[pos[compact]] = d.to_numpy("datetime64[ms]")
            formats["compact (20260903, 20260903140507)"] = int(d.notna().sum())
        if serial.any():
            out[pos[serial]] = _EXCEL_DAY0 + np.round(x[serial] * 86_400_000).astype("int64").astype("timedelta64[ms]")
            formats["Excel serial day number (46268.59)"] = int(serial.sum())
    # 3: text, format by format
    raised: list[int] = []  # cells that are no date at all
    pos = np.flatnonzero(kind == 3)
    if len(pos):
        text = pd.Series(obj[pos], dtype="object")
        rest = np.ones(len(pos), dtype=bool)
        for cleaned in (False, True):  # as written first; stray spaces and full-width digits only for the rest
            if cleaned:
                if not rest.any():
                    break
                text = text.copy()
                text.iloc[np.flatnonzero(rest)] = _clean(text.iloc[np.flatnonzero(rest)]).to_numpy()
            for label, fmts in DATE_FORMATS:
                for fmt in fmts:
                    if not rest.any():
                        break
                    idx = np.flatnonzero(rest)
                    sub = text.iloc[idx]
                    if not _sample_reads(sub, fmt):
                        continue
                    got, conv = _parse_format(sub, fmt, time_zone)
                    ok = ~np.isnat(got)
                    if ok.any():
                        out[pos[idx[ok]]] = got[ok]
                        rest[idx[ok]] = False
                        formats[label] = formats.get(label, 0) + int(ok.sum())
                        converted += int(conv[ok].sum())
        one = 0
        for i in np.flatnonzero(rest):  # odd spellings, one by one; what fails stays NaT and is bad
            try:
                ts = parse_datetime(obj[pos[i]], time_zone=time_zone)
            except (ValueError, TypeError, OverflowError):
                raised.append(int(pos[i]))
                continue
            if ts is not None:
                out[pos[i]] = np.datetime64(ts.to_datetime64(), "ms")
                rest[i] = False
                one += 1
        if one:
            formats["one by one"] = one
    bad_mask = ((kind == 1) | (kind == 2)) & np.isnat(out)
    bad_mask[np.asarray(raised, dtype="int64")] = True
    bad = np.flatnonzero(bad_mask)
    return DateColumn(values=pd.Series(out, index=col.index), bad=bad, formats=formats, converted=converted)


def _kinds(obj: np.ndarray) -> np.ndarray:
    """:func:`_kind` of every cell; a column of text and blanks (any CSV) without a Python call per cell."""
    if not len(obj):
        return np.zeros(0, dtype="int8")
    if pd.api.types.infer_dtype(obj, skipna=True) in ("string", "empty"):
        # whitespace-only cells are found later among the few cells no format reads
        return np.where(pd.isna(obj), 0, 3).astype("int8")
    return np.array([_kind(v) for v in obj], dtype="int8")


def _kind(v: Any) -> int:
    """0 blank, 1 datetime object, 2 number, 3 text."""
    if v is None or v is pd.NA or v is pd.NaT:
        return 0
    if isinstance(v, pd.Timestamp | datetime | date | np.datetime64):
        return 1
    if isinstance(v, bool | np.bool_):
        return 3
    if isinstance(v, int | float | np.integer | np.floating):
        return 0 if isinstance(v, float | np.floating) and math.isnan(v) else 2
    return 3 if str(v).strip() else 0


def _clean(cells: pd.Series) -> pd.Series:
    """Text stripped, runs of spaces made one; full-width digits and the spaces around 年月日时分 removed."""
    text = cells.map(str) if pd.api.types.infer_dtype(cells.to_numpy(), skipna=True) != "string" else cells
    text = text.str.strip()
    odd = ~text.str.isascii().to_numpy(dtype=bool)
    if odd.any():
        text[odd] = text[odd].map(lambda t: _CJK_SPACE.sub(r"\1", unicodedata.normalize("NFKC", t)))
    wide = text.str.contains(r"\s\s|\t", regex=True).to_numpy(dtype=bool)
    if wide.any():
        text[wide] = text[wide].str.replace(r"\s+", " ", regex=True)
    return text.astype("object")


def _sample_reads(sub: pd.Series, fmt: str) -> bool:
    head = sub.iloc[:_SAMPLE] if len(sub) <= _SAMPLE else sub.iloc[np.linspace(0, len(sub) - 1, _SAMPLE).astype(int)]
    got, _ = _parse_format(head, fmt, DEFAULT_TIME_ZONE)
    return bool((~np.isnat(got)).any())


def _parse_format(sub: pd.Series, fmt: str, time_zone: str) -> tuple[np.ndarray, np.ndarray]:
    """Cells read with one format (NaT where it does not fit) and which carried a UTC offset."""
    none = np.zeros(len(sub), dtype=bool)
    if fmt == "iso":
        iso = sub.str.match(_ISO).fillna(False).to_numpy(dtype=bool)
        out = np.full(len(sub), np.datetime64("NaT"), dtype="datetime64[ms]")
        if not iso.any():
            return out, none
        offset = iso & sub.str.contains(_OFFSET).fillna(False).to_numpy(dtype=bool) & (sub.str.len() > 10).to_numpy()
        plain = iso & ~offset
        if plain.any():
            out[plain] = pd.to_datetime(sub[plain], format="ISO8601", errors="coerce").to_numpy("datetime64[ms]")
        if offset.any():
            aware = pd.to_datetime(sub[offset], format="ISO8601", utc=True, errors="coerce")
            out[offset] = aware.dt.tz_convert(time_zone).dt.tz_localize(None).to_numpy("datetime64[ms]")
        return out, offset
    if fmt == "excel":
        x = pd.to_numeric(sub, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        ok = (x >= 1) & (x < 80000)
        out = np.full(len(sub), np.datetime64("NaT"), dtype="datetime64[ms]")
        out[ok] = _EXCEL_DAY0 + np.round(x[ok] * 86_400_000).astype("int64").astype("timedelta64[ms]")
        return out, none
    got = pd.to_datetime(sub, format=fmt, errors="coerce")
    return got.to_numpy("datetime64[ms]"), none


# ------------------------------------------------------------------ one cell

_DATE_FIXES = ((re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?"), r"\1-\2-\3 "),
               (re.compile(r"(\d{1,2})\s*[时点]\s*(\d{1,2})\s*分?\s*(?:(\d{1,2})\s*秒)?"), r"\1:\2:\3"),
               (re.compile(r"^(\d{4})[./](\d{1,2})[./](\d{1,2})"), r"\1-\2-\3"))


def parse_datetime(v: Any, *, time_zone: str = DEFAULT_TIME_ZONE) -> pd.Timestamp | None:
    """A date/time from one cell: datetimes, ``2026-03-01 08:30``, ``2026/3/1``, ``2026年3月1日 8时30分``,
    ``20260301`` or an Excel serial day number; ``None`` for a blank cell, ``ValueError`` for text that
    is no date. A time with an offset is converted to ``time_zone`` and returned without it."""
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, str) and not v.strip():
        return None
    if isinstance(v, pd.Timestamp | datetime | date | np.datetime64):
        ts = pd.Timestamp(v)
    elif isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool):
        x = float(v)
        if 19000101 <= x <= 21001231 and x == int(x):
            ts = pd.to_datetime(str(int(x)), format="%Y%m%d")
        elif 1 <= x < 80000:
            ts = pd.Timestamp("1899-12-30") + pd.to_timedelta(x, unit="D")
        else:
            raise ValueError(v)
    else:
        t = unicodedata.normalize("NFKC", str(v)).strip()
        for pat, rep in _DATE_FIXES:
            t = pat.sub(rep, t)
        t = re.sub(r":(?=\s|$)", "", t).strip()
        if re.fullmatch(r"\d{8}", t):
            ts = pd.to_datetime(t, format="%Y%m%d")
        else:
            try:
                ts = pd.Timestamp(t)
            except (ValueError, TypeError):
                raise ValueError(v) from None
    if ts is pd.NaT or pd.isna(ts):
        raise ValueError(v)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(time_zone).tz_localize(None)
    return ts
