"""Dates read a column at a time: the formats people's systems write, tried in order, offsets converted."""

from __future__ import annotations

import pandas as pd
import pytest

from sanigrid.layers.dates import DATE_FORMATS, parse_date_column, parse_datetime
from sanigrid.layers.settings import Settings

T = pd.Timestamp
LABELS = [label for label, _ in DATE_FORMATS]


@pytest.mark.parametrize(("cells", "expected", "label"), [
    (["2026-09-03 14:05:07", "2026-09-03T14:05"], [T("2026-09-03 14:05:07"), T("2026-09-03 14:05")], LABELS[0]),
    (["2026/9/3 14:05:07", "2026/12/31"], [T("2026-09-03 14:05:07"), T("2026-12-31")], LABELS[1]),
    (["2026年9月3日 14时05分", "２０２６年9月3日14时05分30秒"], [T("2026-09-03 14:05"), T("2026-09-03 14:05:30")],
     LABELS[2]),
    (["09/03/2026 02:05:07 PM", "9/3/2026 12:05:07 AM"], [T("2026-09-03 14:05:07"), T("2026-09-03 00:05:07")],
     LABELS[3]),
    (["46268.5", 46268.25], [T("2026-09-03 12:00"), T("2026-09-03 06:00")], LABELS[5]),
])
def test_each_format_is_read_and_reported(cells, expected, label):
    got = parse_date_column(pd.Series(cells, dtype="object"))
    assert got.values.tolist() == expected
    assert list(got.formats) == [label] and got.formats[label] == len(cells)
    assert len(got.bad) == 0 and label in got.describe()


def test_offsets_are_converted_to_the_project_time_zone_not_cut_off():
    cells = pd.Series(["2026-09-03T14:05:07+08:00", "2026-09-03T06:05:07Z", "2026-09-03 01:05:07-05:00",
                       "2026-09-03 14:05:07"], dtype="object")
    got = parse_date_column(cells, time_zone="Asia/Shanghai")
    assert got.values.tolist() == [T("2026-09-03 14:05:07")] * 4  # the naive one is local already
    assert got.converted == 3
    ny = parse_date_column(cells, time_zone="America/New_York")
    assert ny.values.tolist()[:3] == [T("2026-09-03 02:05:07")] * 3
    assert parse_datetime("2026-09-03T06:05:07Z", time_zone="Asia/Urumqi") == T("2026-09-03 12:05:07")


def test_blank_cells_are_nat_and_text_that_is_no_date_is_bad_by_position():
    cells = pd.Series(["09/03/2026 02:05:07 PM", None, "", "  ", "soon", "13/45/2026 01:00:00 PM",
                       "09/04/2026 02:05:07 PM"], dtype="object")
    got = parse_date_column(cells)
    assert got.bad.tolist() == [4, 5]
    assert got.values.isna().tolist() == [False, True, True, True, True, True, False]


def test_mixed_column_tries_formats_in_order_and_counts_each():
    cells = pd.Series(["2026-09-03 14:05:07"] * 5 + ["09/03/2026 02:05:07 PM"] * 3 + ["2026年9月3日 14时05分"],
                      dtype="object")
    got = parse_date_column(cells)
    assert got.formats == {LABELS[0]: 5, LABELS[2]: 1, LABELS[3]: 3}
    assert got.values.iloc[5] == T("2026-09-03 14:05:07")


def test_vectorised_column_agrees_with_the_one_cell_parser():
    rng = pd.Series(pd.date_range("2026-01-01", periods=500, freq="37min"))
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%m/%d/%Y %I:%M:%S %p", "%Y年%m月%d日 %H时%M分"):
        cells = rng.dt.strftime(fmt)
        got = parse_date_column(cells)
        one = [parse_datetime(c) for c in cells]
        assert got.values.tolist() == one


def test_time_zone_setting_is_checked():
    assert Settings().project.time_zone == "Asia/Shanghai"
    with pytest.raises(ValueError, match="IANA"):
        Settings.model_validate({"project": {"time_zone": "Beijing"}})
