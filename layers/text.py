"""Text as it may safely be stored and written: control characters out.

A report typed on a phone or a row pasted from another system can carry control characters (BEL
``\\x07``, ESC ``\\x1b``, NUL ``\\x00`` …). XML 1.0, and so every .xlsx, cannot hold them (openpyxl
raises ``IllegalCharacterError``); SQLite's C strings and many viewers stop at NUL. They are
removed on intake, on import and on export, by the one pattern here. Tab, line feed and carriage
return are kept (they are ordinary text in a description).
"""

from __future__ import annotations

import re
from typing import TypeVar

import numpy as np
import pandas as pd

#: C0 controls except tab/LF/CR, DEL and the C1 block, lone surrogates and the XML non-characters
F = TypeVar("F", bound=pd.DataFrame)

CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def clean_text(value: str) -> str:
    """``value`` without control characters (tab, LF and CR kept)."""
    return CONTROL_RE.sub("", value)


def clean_text_columns(frame: F) -> tuple[F, dict[str, int]]:
    """A copy of ``frame`` whose text cells have no control characters, and the count of changed
    cells per column (vectorised: one regex pass per text column)."""
    out = frame.copy()
    changed: dict[str, int] = {}
    for col in out.columns:
        s = out[col]
        if not (pd.api.types.is_object_dtype(s.dtype) or pd.api.types.is_string_dtype(s.dtype)):
            continue
        is_str = s.map(type).eq(str) if pd.api.types.is_object_dtype(s.dtype) else s.notna()
        if not is_str.any():
            continue
        text = pd.Series(s[is_str].to_numpy(dtype=object), dtype=object)  # Python re: pyarrow cannot take surrogates
        hit = text.str.contains(CONTROL_RE, regex=True).to_numpy(dtype=bool)
        if hit.any():
            where = np.flatnonzero(is_str.to_numpy(dtype=bool))[hit]
            values = s.to_numpy(dtype=object, copy=True)
            values[where] = text[hit].str.replace(CONTROL_RE, "", regex=True).to_numpy(dtype=object)
            out[col] = pd.Series(values, index=s.index, dtype=s.dtype, name=s.name)
            changed[str(col)] = int(hit.sum())
    return out, changed
