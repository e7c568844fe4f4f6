"""Benchmark of the one workbook writer (:func:`sanigrid.layers.workbook.write_xlsx`).

Ours writes SpreadsheetML column by column with numpy and one shared string table; the old way is
the writer it replaced, kept here as the reference: openpyxl in write-only mode, one Python value and
one ``WriteOnlyCell`` per text cell (what the demo's ``analyse`` spent about half its time in). Both
write the same frames in the same run; each is timed (best of ``--reps``) and its peak Python memory
(tracemalloc, numpy included) measured in a separate pass. Both files are read back with openpyxl
and compared value by value (ours rounds decimals to at most 2, so the comparison allows for that).

Tables: a 责任清单-like problem table (text, codes, dates, yes/no, decimals) and a 排名-like table
with rates, as ``analyse`` writes them.

Run:  .venv/bin/python bench/bench_xlsx.py            (20,000 problem rows)
      .venv/bin/python bench/bench_xlsx.py --rows 150000
"""

from __future__ import annotations

import argparse
import io
import math
import tracemalloc
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from _timing import best_of

from sanigrid.layers import workbook


def old_write(sheets: Mapping[str, pd.DataFrame], target: Any, headers: Mapping[str, str], max_rows: int) -> None:
    """The writer before this change: openpyxl write-only, cell by cell."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    from sanigrid.layers.text import clean_text

    wb = Workbook(write_only=True)
    bold = Font(bold=True)
    for name, table in workbook._tables(sheets, headers, max_rows):
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
                value = workbook._cell_value(v)
                if isinstance(value, str):
                    cell = WriteOnlyCell(ws, value=None)
                    cell._value, cell.data_type = value, "s"
                    if workbook.looks_like_formula(value):
                        cell.quotePrefix = True
                    out.append(cell)
                else:
                    out.append(value)
            ws.append(out)
    wb.save(target)


def tables(n: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    cats = np.array(["暴露垃圾", "占道经营", "店外经营", "非法小广告", "乱堆物料",
                     "机动车乱停放", "公厕脏乱"])
    streets = np.array([f"街道{i}号路" for i in range(170)])
    reported = pd.Timestamp("2026-05-16") + pd.to_timedelta(rng.integers(0, 180 * 86400, n), unit="s")
    problems = pd.DataFrame({
        "编号": np.arange(1, n + 1),
        "督办": rng.random(n) < 0.02,
        "问题类别": cats[rng.integers(0, len(cats), n)],
        "问题描述": [f"{s}附近{c}" for s, c in
                 zip(streets[rng.integers(0, 170, n)], cats[rng.integers(0, 7, n)], strict=True)],
        "状态": np.array(["派遣", "处置", "核查", "结案"])[rng.integers(0, 4, n)],
        "上报时间": reported,
        "处置时限": reported + pd.Timedelta(hours=4),
        "是否逾期": rng.random(n) < 0.3,
        "逾期天数": np.round(rng.random(n) * 180, 1),
        "网格编码": (36068100100101 + rng.integers(0, 52, n)).astype(str),
        "责任单位": np.array(["县城管局", "县住建局", "县市场监管局"])[rng.integers(0, 3, n)],
        "经度": 117.2 + rng.random(n) * 0.05,
        "纬度": 28.28 + rng.random(n) * 0.03,
    })
    grids = pd.DataFrame({
        "排名": np.arange(1, 53), "网格编码": (36068100100101 + np.arange(52)).astype(str),
        "综合得分": rng.random(52) * 100, "按期结案率(%)": rng.random(52) * 100, "反弹率": rng.random(52),
    })
    return {"问题": problems, "排名通报": grids}


def peak_mb(fn: Any) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def compare(ours: bytes, old: bytes) -> int:
    """Cells compared; raises if a value differs beyond the rounding ours applies."""
    import openpyxl

    a = openpyxl.load_workbook(io.BytesIO(ours), read_only=True)
    b = openpyxl.load_workbook(io.BytesIO(old), read_only=True)
    n = 0
    for wa, wb in zip(a.worksheets, b.worksheets, strict=True):
        heads = None
        for ra, rb in zip(wa.iter_rows(values_only=True), wb.iter_rows(values_only=True), strict=True):
            heads = heads or ra
            for h, x, y in zip(heads, ra, rb, strict=True):
                n += 1
                if isinstance(y, bool):
                    y = "是" if y else "否"
                if isinstance(y, float) and isinstance(x, float):
                    assert math.isclose(x, y, abs_tol=0.051 if str(h).endswith("(%)") else 0.006), (h, x, y)
                elif hasattr(y, "year"):
                    assert abs((x - y).total_seconds()) < 1, (h, x, y)
                else:
                    assert x == y, (h, x, y)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    sheets = tables(args.rows)
    cells = sum(t.size for t in sheets.values())
    frame_mb = sum(t.memory_usage(deep=True).sum() for t in sheets.values()) / 2**20
    print(f"{args.rows:,} problem rows + a 52-row ranking, {cells:,} cells ({frame_mb:.1f} MB as frames)")

    def ours() -> bytes:
        buf = io.BytesIO()
        workbook.write_xlsx(sheets, buf)
        return buf.getvalue()

    def old() -> bytes:
        buf = io.BytesIO()
        old_write(sheets, buf, {}, workbook.EXCEL_MAX_ROWS)
        return buf.getvalue()

    t_ours, a = best_of(ours, args.reps)
    t_old, b = best_of(old, args.reps)
    m_ours, m_old = peak_mb(ours), peak_mb(old)
    checked = compare(a, b)
    print(f"{'writer':<34}{'wall':>9}{'cells/s':>12}{'peak MB':>10}{'file KB':>10}")
    for label, t, m, data in (("ours (column-wise SpreadsheetML)", t_ours, m_ours, a),
                              ("old (openpyxl write-only, by cell)", t_old, m_old, b)):
        print(f"{label:<34}{t:>8.2f}s{cells / t:>12,.0f}{m:>10.1f}{len(data) / 1024:>10.0f}")
    print(f"ours is {t_old / t_ours:.1f}× faster, peak memory {m_ours / m_old:.2f}× the old; "
          f"{checked:,} cells read back equal (within ours' rounding)")


if __name__ == "__main__":
    main()
