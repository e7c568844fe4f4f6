"""Tables out to Excel: Chinese headers from the catalogue, one sheet per part, frozen header row.

Planners live in Excel; every table sanigrid writes goes through :func:`write_xlsx` so that all
exports look alike (bold header, widths fitted, coordinates in WGS84 columns 经度/纬度).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import pandas as pd

from layers.catalogue import CATALOGUE

_MAX_SHEET_NAME = 31
_BAD_SHEET_CHARS = str.maketrans({c: "_" for c in "[]:*?/\\"})


def zh_headers(kind: str | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Column name → Chinese header: the catalogue's names for ``kind`` plus ``extra``."""
    out: dict[str, str] = {}
    if kind is not None and kind in CATALOGUE:
        out.update({f.name: f.zh for f in CATALOGUE[kind].fields})
    out.update(extra or {})
    return out


def table_with_lonlat(frame: gpd.GeoDataFrame | pd.DataFrame) -> pd.DataFrame:
    """Drop the geometry; points (or centroids) become WGS84 columns 经度 and 纬度."""
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame.columns:
        return pd.DataFrame(frame)
    out = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    if len(frame) and frame.crs is not None:
        pts = frame.geometry.representative_point().to_crs(4326)
        out["经度"] = pts.x.round(6).to_numpy()
        out["纬度"] = pts.y.round(6).to_numpy()
    return out


def sheet_name(name: str) -> str:
    """A legal, unique-enough Excel sheet name (≤ 31 characters, no []:*?/\\)."""
    return str(name).translate(_BAD_SHEET_CHARS)[:_MAX_SHEET_NAME] or "Sheet"


def write_xlsx(
    sheets: Mapping[str, pd.DataFrame],
    target: str | Path | io.BytesIO,
    *,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Write frames to an .xlsx file (or buffer), one sheet each, with Chinese headers.

    Datetimes are written without timezone; column widths fit the content; the header row is
    frozen so it stays visible when scrolling.
    """
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    headers = dict(headers or {})
    if isinstance(target, str | Path):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    with pd.ExcelWriter(target, engine="openpyxl") as writer:
        used: set[str] = set()
        for raw_name, frame in sheets.items():
            name = sheet_name(raw_name)
            while name in used:
                name = sheet_name(name[:-2] + f"_{len(used)}")
            used.add(name)
            table = table_with_lonlat(frame).rename(columns=headers)
            for col in table.columns:
                if isinstance(table[col].dtype, pd.DatetimeTZDtype):
                    table[col] = table[col].dt.tz_localize(None)
            table.to_excel(writer, sheet_name=name, index=False)
            ws = writer.sheets[name]
            ws.freeze_panes = "A2"
            for cell in ws[1]:
                cell.font = Font(bold=True)
            for i, col in enumerate(table.columns, start=1):
                values = [str(col)] + [str(v) for v in table[col].head(200).tolist()]
                width = max(len(v.encode("gbk", errors="replace")) for v in values)
                ws.column_dimensions[get_column_letter(i)].width = min(max(8, width + 2), 60)
