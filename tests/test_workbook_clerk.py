"""The workbook as an office clerk opens it: numbers rounded, rates as percentages, 是/否, Chinese
headers only, an autofilter on the header row and A4 landscape with the header row repeated. Every
check reads the file back with openpyxl (an independent reader of SpreadsheetML)."""

from __future__ import annotations

import io
import re
from datetime import datetime

import numpy as np
import openpyxl
import pandas as pd
import pytest

from sanigrid.layers.workbook import write_xlsx

CJK = re.compile("[\u4e00-\u9fff]")


def _book(frames, **kw) -> openpyxl.Workbook:
    buf = io.BytesIO()
    write_xlsx(frames, buf, **kw)
    return openpyxl.load_workbook(io.BytesIO(buf.getvalue()))


def _column(ws, header):
    heads = [c.value for c in ws[1]]
    j = heads.index(header) + 1
    return [ws.cell(row=r, column=j) for r in range(2, ws.max_row + 1)]


@pytest.fixture
def clerk_book():
    frame = pd.DataFrame({
        "编号": [3872, 15, 2 ** 53 + 1],
        "督办": [True, False, True],
        "达标": np.array([True, None, False], dtype=object),
        "在建": pd.array([True, None, False], dtype="boolean"),
        "反弹率": [0.58333333, 0.0, 1.0],
        "按期结案率(%)": [80.0, 73.456, 100.0],
        "每公里问题数": [0.2, 0.5, 0.9],                     # a rate per km, not a share
        "综合得分": [84.93456, 12.1, 7.0],
        "长度(米)": [1139.3, 20.0, 5.25],
        "户数": [1163.0, 806.0, np.nan],
        "P值": [0.000215688, 0.05, 0.5],
        "经度": [117.2414951234, 117.2, 117.3],
        "上报时间": pd.to_datetime(["2026-05-16 14:12:52", "2026-05-17 08:00:00", None]),
        "统计日": pd.to_datetime(["2026-11-01", "2026-11-02", "2026-11-03"]),
        "设施类型": ["toilets", "markets", "其他"],
        "first_closed": pd.to_datetime(["2026-05-18 10:55:00", None, None]),
        "说明": ["", "一行", None],
    })
    return _book({"排名通报": frame, "说明": pd.DataFrame({"项目": ["统计期"], "数值": ["2026-11"]})})


def test_yes_no_not_true_false(clerk_book):
    ws = clerk_book["排名通报"]
    assert [c.value for c in _column(ws, "督办")] == ["是", "否", "是"]
    assert [c.value for c in _column(ws, "达标")] == ["是", None, "否"]
    assert [c.value for c in _column(ws, "在建")] == ["是", None, "否"]
    assert all(c.data_type == "s" for c in _column(ws, "督办"))


def test_rates_are_percentages_and_numbers_rounded(clerk_book):
    ws = clerk_book["排名通报"]
    rate = _column(ws, "反弹率")
    assert [c.value for c in rate] == [0.5833, 0.0, 1.0] and {c.number_format for c in rate} == {"0.0%"}
    pct = _column(ws, "按期结案率(%)")                      # percentages already: kept, one decimal
    assert [c.value for c in pct] == [80.0, 73.5, 100.0] and {c.number_format for c in pct} == {"0.0"}
    per_km = _column(ws, "每公里问题数")
    assert [c.value for c in per_km] == [0.2, 0.5, 0.9] and per_km[0].number_format == "0.0"
    score = _column(ws, "综合得分")
    assert [c.value for c in score] == [84.93, 12.1, 7.0] and score[0].number_format == "0.00"
    length = _column(ws, "长度(米)")                        # the decimals the data needs, at most 2
    assert [c.value for c in length] == [1139.3, 20.0, 5.25] and length[0].number_format == "0.00"
    households = _column(ws, "户数")                        # whole numbers held as floats: no decimals
    assert [c.value for c in households] == [1163, 806, None] and households[0].number_format == "0"
    assert _column(ws, "P值")[0].value == 0.0002 and _column(ws, "P值")[0].number_format == "0.0000"
    assert _column(ws, "经度")[0].value == 117.241495 and _column(ws, "经度")[0].number_format == "0.000000"
    ids = _column(ws, "编号")
    assert [c.value for c in ids] == [3872, 15, 2 ** 53 + 1] and ids[0].number_format == "0"  # exact, no float


def test_dates_are_dates_with_a_chinese_office_format(clerk_book):
    ws = clerk_book["排名通报"]
    when = _column(ws, "上报时间")
    assert when[0].value == datetime(2026, 5, 16, 14, 12, 52) and when[0].number_format == "yyyy-mm-dd hh:mm"
    assert when[2].value is None
    day = _column(ws, "统计日")
    assert day[1].value == datetime(2026, 11, 2) and day[1].number_format == "yyyy-mm-dd"


def test_headers_and_values_in_chinese(clerk_book):
    ws = clerk_book["排名通报"]
    heads = [c.value for c in ws[1]]
    assert "first_closed" not in heads and "最早结案" in heads
    assert all(CJK.search(h) for h in heads), heads
    assert [c.value for c in _column(ws, "设施类型")] == ["公厕", "农贸市场", "其他"]
    assert [c.value for c in _column(ws, "说明")] == [None, "一行", None]     # "" is an empty cell
    assert all(c.font.b for c in ws[1])


def test_autofilter_frozen_header_and_a4_landscape_with_repeated_header(clerk_book):
    for ws in clerk_book.worksheets:
        last = openpyxl.utils.get_column_letter(ws.max_column)
        assert ws.auto_filter.ref == f"A1:{last}{ws.max_row}"
        assert ws.freeze_panes == "A2"
        assert ws.print_title_rows == "$1:$1"
        assert ws.page_setup.orientation == "landscape" and int(ws.page_setup.paperSize) == 9   # 9 = A4
        assert ws.sheet_properties.pageSetUpPr.fitToPage and int(ws.page_setup.fitToWidth) == 1
        assert int(ws.page_setup.fitToHeight) == 0                                            # as many pages as needed
    assert clerk_book["排名通报"].column_dimensions["A"].width >= 8


def test_odd_values_survive():
    """Infinity stays visible as text, tz-aware times keep their wall-clock time, Excel's _xHHHH_
    escape in a description is kept literally, quotes in sheet names do not break the print titles."""
    frame = pd.DataFrame({
        "值": [1.5, np.inf, -np.inf],
        "时间": pd.to_datetime(["2026-01-01 08:00"] * 3).tz_localize("Asia/Shanghai"),
        "描述": ["_x0041_ 原样", "a & <b>", "=1+1"],
        "数": pd.array([1, None, 3], dtype="Int64"),
        "分类": pd.Categorical(["甲", "乙", "甲"]),
    })
    wb = _book({"张三's 表": frame})
    ws = wb.worksheets[0]
    assert ws.title == "张三's 表" and ws.print_title_rows == "$1:$1"
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in rows] == [1.5, "inf", "-inf"]
    assert rows[0][1] == datetime(2026, 1, 1, 8, 0)
    assert [r[2] for r in rows] == ["_x0041_ 原样", "a & <b>", "=1+1"]
    assert ws.cell(row=4, column=3).quotePrefix and ws.cell(row=4, column=3).data_type == "s"
    assert [r[3] for r in rows] == [1, None, 3]
    assert [r[4] for r in rows] == ["甲", "乙", "甲"]


def test_same_values_as_pandas_reads_them():
    """A random frame round-trips through openpyxl (pandas.read_excel) with the writer's rounding."""
    rng = np.random.default_rng(7)
    n = 3000
    frame = pd.DataFrame({
        "编号": rng.integers(-10 ** 12, 10 ** 12, n),
        "距离(米)": rng.normal(0, 1000, n),
        "名称": rng.choice(np.array(["甲路", "乙巷", "丙街", "-2+3"]), n),
        "时间": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 10 ** 7, n), unit="s"),
    })
    buf = io.BytesIO()
    write_xlsx({"t": frame}, buf)
    back = pd.read_excel(io.BytesIO(buf.getvalue()), sheet_name="t", engine="openpyxl")
    assert back["编号"].tolist() == frame["编号"].tolist()
    assert np.allclose(back["距离(米)"], frame["距离(米)"].round(2), atol=1e-9)
    assert back["名称"].tolist() == frame["名称"].tolist()
    assert (back["时间"] - frame["时间"]).abs().max() < pd.Timedelta(milliseconds=1)
