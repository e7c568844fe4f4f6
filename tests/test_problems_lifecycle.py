"""Problem lifecycle: legal and illegal transitions, deadlines across weekends and holidays, overdue."""

from __future__ import annotations

from datetime import date, datetime

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from sanigrid.geo.problems import (
    IllegalTransition,
    assign,
    check_transition,
    closed_on_time,
    days_overdue,
    deadline_for,
    deadlines,
    history_record,
    is_overdue,
    workday,
)
from sanigrid.layers.settings import ProblemCategory, Settings


@pytest.fixture
def settings() -> Settings:
    s = Settings()
    s.problems.categories = [
        ProblemCategory(name="暴露垃圾", deadline=4, unit="hours"),
        ProblemCategory(name="私搭乱建", deadline=3, unit="workdays", route_to="县城管局"),
        ProblemCategory(name="乱堆物料", deadline=1, unit="workdays"),
    ]
    # 2026-10-01 (Thu) and 10-02 (Fri) are holidays; Sunday 2026-09-27 is worked (调休)
    s.problems.holidays = [date(2026, 10, 1), date(2026, 10, 2)]
    s.problems.workdays_extra = [date(2026, 9, 27)]
    return s


@pytest.mark.parametrize("path", [
    ["立案", "派遣", "处置", "核查", "结案"],
    ["立案", "派遣", "处置", "核查", "返工", "处置", "核查", "结案"],
])
def test_legal_paths(path):
    for a, b in zip(path, path[1:], strict=False):
        check_transition(a, b)


@pytest.mark.parametrize("a,b", [("立案", "结案"), ("派遣", "核查"), ("结案", "处置"), ("处置", "返工"),
                                 ("立案", "立案"), ("处置", "完成")])
def test_illegal_transitions_refused_with_reason(a, b):
    with pytest.raises(IllegalTransition, match=a if b != "完成" else "未知状态"):
        check_transition(a, b)


def test_history_record_keeps_time_and_actor():
    row = history_record(7, "核查", "返工", at=datetime(2026, 10, 9, 9, 30), actor="王五", note="仍有垃圾")
    assert row == {"problem_id": 7, "from_status": "核查", "to_status": "返工",
                   "at": pd.Timestamp("2026-10-09 09:30"), "actor": "王五", "note": "仍有垃圾"}


def test_hour_deadline_is_clock_hours(settings):
    assert deadline_for("暴露垃圾", datetime(2026, 9, 25, 22, 0), settings=settings) == datetime(2026, 9, 26, 2, 0)


def test_workday_deadline_skips_weekend(settings):
    # Friday 2026-09-18 10:00 + 1 working day → Monday 09-21 10:00
    assert deadline_for("乱堆物料", datetime(2026, 9, 18, 10), settings=settings) == datetime(2026, 9, 21, 10)


def test_workday_deadline_skips_holidays_and_counts_adjusted_sunday(settings):
    # Friday 09-25 + 3 working days: Sun 09-27 is worked (1), Mon 09-28 (2), Tue 09-29 (3)
    assert deadline_for("私搭乱建", datetime(2026, 9, 25, 15), settings=settings) == datetime(2026, 9, 29, 15)
    # Wednesday 09-30 + 1: Thu/Fri are holidays, Sat/Sun rest → Monday 10-05
    assert deadline_for("乱堆物料", datetime(2026, 9, 30, 9), settings=settings) == datetime(2026, 10, 5, 9)


def test_report_on_rest_day_starts_next_working_day(settings):
    # Saturday 09-19 16:00 → starts Mon 09-21 00:00 → +1 working day = Tue 09-22 00:00
    assert deadline_for("乱堆物料", datetime(2026, 9, 19, 16), settings=settings) == datetime(2026, 9, 22)
    assert not workday(date(2026, 10, 1), settings=settings)
    assert workday(date(2026, 9, 27), settings=settings)


def test_vectorised_equals_scalar(settings):
    cats = ["暴露垃圾", "私搭乱建", "乱堆物料"] * 20
    starts = pd.date_range("2026-09-20 07:00", periods=60, freq="17h")
    vec = deadlines(cats, starts, settings=settings)
    one = [deadline_for(c, t.to_pydatetime(), settings=settings) for c, t in zip(cats, starts, strict=True)]
    assert list(vec) == [pd.Timestamp(x) for x in one]


def test_unknown_category_named(settings):
    with pytest.raises(ValueError, match="乱吐"):
        deadlines(["乱吐"], [datetime(2026, 9, 1)], settings=settings)


def test_overdue_at_any_date():
    p = pd.DataFrame({
        "status": ["结案", "处置", "结案"],
        "reported_at": pd.to_datetime(["2026-09-01", "2026-09-01", "2026-09-01"]),
        "deadline": pd.to_datetime(["2026-09-02", "2026-09-02", "2026-09-02"]),
        "closed_at": pd.to_datetime(["2026-09-05 00:00", None, "2026-09-01 12:00"]),
    })
    assert is_overdue(p, as_of=datetime(2026, 9, 4)).tolist() == [True, True, False]
    assert is_overdue(p, as_of=datetime(2026, 9, 6)).tolist() == [False, True, False]
    assert is_overdue(p, as_of=datetime(2026, 9, 1, 18)).tolist() == [False, False, False]
    assert days_overdue(p, as_of=datetime(2026, 9, 4)).tolist() == [2.0, 2.0, 0.0]
    assert closed_on_time(p).tolist() == [False, pd.NA, True]


def test_assign_routes_category_or_grid_lead_unit(settings):
    grids = gpd.GeoDataFrame({"code": ["A", "B"], "lead_unit": ["县卫健委", "县教育局"]},
                             geometry=[shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)], crs=4548)
    probs = gpd.GeoDataFrame({"category": ["暴露垃圾", "私搭乱建", "乱堆物料"]},
                             geometry=[shapely.Point(5, 5), shapely.Point(15, 5), shapely.Point(50, 50)], crs=4548)
    out = assign(probs, grids, settings=settings)
    assert out["grid_code"].tolist() == ["A", "B", None]
    assert out["unit"].tolist() == ["县卫健委", "县城管局", None]
    assert "grid_code" not in probs.columns  # input untouched


def test_as_of_recorded_with_the_data_wins():
    from sanigrid.geo.problems import as_of_default

    p = pd.DataFrame({"reported_at": pd.to_datetime(["2020-01-01 08:00", "2020-03-01 09:00"])})
    assert as_of_default(p, recorded="2020-02-15T00:00:00") == datetime(2020, 2, 15)
    assert as_of_default(p) == datetime(2020, 3, 2)  # old data: the day after the last report
    assert as_of_default(p, recorded="not a date") == datetime(2020, 3, 2)
