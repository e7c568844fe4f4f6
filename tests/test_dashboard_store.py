"""The dashboard's trends counted in the store (SQL) against :func:`web.dashboard.trends` on the whole
layer, as an oracle, on both backends: the same frames (values, order, labels, dtypes) and the same
SVG, at a mid-week instant, at a Monday midnight (two week ends at one instant) and on an empty store;
categories tied in count (ordered as value_counts orders them), a real category named 其他, missing
categories, grids, units and times, 结案 without a closing time."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from sanigrid.layers import cases
from sanigrid.web import dashboard

AS_OF = pd.Timestamp("2026-03-18 15:30:00")
CATS = np.array(["暴露垃圾", "道路破损", "占道经营", "乱堆物料", "其他", "私搭乱建", "乱设广告", "店外经营",
                 "非法小广告", None], dtype=object)


def _problems(n: int = 400, seed: int = 5) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    reported = pd.Series(AS_OF - pd.to_timedelta(rng.integers(-3 * 24, 200 * 24, n), unit="h"))
    reported = reported.where(rng.random(n) > 0.03)
    reported.iloc[:4] = [pd.Timestamp("2026-03-16"), pd.Timestamp("2026-03-09"),  # on week starts exactly
                         pd.Timestamp("2025-09-22"), AS_OF]
    status = rng.choice(np.array(cases.STATUSES, dtype=object), n)
    deadline = (reported + pd.to_timedelta(rng.integers(-24, 30 * 24, n), unit="h")).where(rng.random(n) > 0.05)
    closed = (reported + pd.to_timedelta(rng.integers(0, 60 * 24, n), unit="h")).where(
        (status == cases.CLOSED) & (rng.random(n) > 0.1))
    closed.iloc[5:8] = [pd.Timestamp("2026-03-16"), pd.Timestamp("2026-03-09"), AS_OF]  # closed on a week's end
    # open cases due exactly at a week's end: overdue only after it (the deadline strictly before)
    deadline.iloc[8:12] = [pd.Timestamp("2026-03-16"), pd.Timestamp("2026-03-09"), AS_OF, pd.Timestamp("2026-03-02")]
    reported.iloc[8:12] = pd.Timestamp("2026-02-20")
    status[8:12] = cases.HANDLING
    closed.iloc[8:12] = pd.NaT
    return gpd.GeoDataFrame({
        "problem_id": np.arange(1, n + 1),
        "category": CATS[rng.integers(0, len(CATS), n)],
        "reported_at": reported.astype("datetime64[ms]"), "status": status,
        "deadline": deadline.astype("datetime64[ms]"), "closed_at": closed.astype("datetime64[ms]"),
        "grid_code": np.array(["G01", "G02", "G03", None], dtype=object)[rng.integers(0, 4, n)],
        "unit": np.array(["县住建局", "县城管局", None], dtype=object)[rng.integers(0, 3, n)],
    }, geometry=shapely.points(117.2 + rng.random(n) * 0.01, 28.3 + rng.random(n) * 0.01), crs=4326)


def _same(store, as_of, weeks: int = 26) -> dashboard.Trends:
    mine = dashboard.trends_in_store(store, as_of=as_of, weeks=weeks)
    full = store.read("problems")
    want = dashboard.trends(full, as_of=as_of, weeks=weeks)
    for name in ("weekly", "open_over_time", "by_grid", "by_unit"):
        pd.testing.assert_frame_equal(getattr(mine, name), getattr(want, name), obj=name)
    assert mine.as_of == want.as_of
    assert dashboard.stacked_weeks_svg(mine.weekly, title="w") == dashboard.stacked_weeks_svg(want.weekly, title="w")
    labels = {"open": "未结案", "overdue": "逾期"}
    assert dashboard.lines_svg(mine.open_over_time, labels, title="o") == dashboard.lines_svg(
        want.open_over_time, labels, title="o")
    for name in ("by_grid", "by_unit"):
        assert dashboard.rate_bars_svg(getattr(mine, name), title="r") == dashboard.rate_bars_svg(
            getattr(want, name), title="r")
    return mine


@pytest.mark.parametrize("as_of", [AS_OF, pd.Timestamp("2026-03-16 00:00:00"), pd.Timestamp("2026-03-16 00:00:01")])
def test_trends_in_store_equal_the_frame(any_store, as_of):
    any_store.write("problems", _problems())
    tr = _same(any_store, as_of)
    assert tr.weekly.to_numpy().sum() > 100 and tr.open_over_time["overdue"].max() > 0
    assert cases.OPEN_STATUSES and len(tr.by_grid) == 3 and len(tr.by_unit) == 2
    _same(any_store, as_of, weeks=4)


def test_tied_categories_are_ordered_as_value_counts(any_store):
    """Eight categories with the same count: the six drawn are the first seen (value_counts' order)."""
    frame = _problems(n=64, seed=9)
    frame["category"] = np.array([c for c in CATS if c is not None and c != "其他"] * 8, dtype=object)[
        np.random.default_rng(3).permutation(64)]
    frame["reported_at"] = (AS_OF - pd.to_timedelta(np.arange(64), unit="h")).astype("datetime64[ms]")
    any_store.write("problems", frame)
    tr = _same(any_store, AS_OF)
    assert len(tr.weekly.columns) == dashboard.TOP_CATEGORIES + 1 and tr.weekly.columns[-1] == dashboard.OTHER


def test_no_problems_and_no_reports_in_the_window(any_store):
    any_store.write("grids", gpd.GeoDataFrame({"code": ["G01"], "name": ["一"]},
                                              geometry=[shapely.box(117.2, 28.3, 117.21, 28.31)], crs=4326))
    tr = dashboard.trends_in_store(any_store, as_of=AS_OF)
    assert tr.weekly.shape == (26, 0) and tr.open_over_time.to_numpy().sum() == 0 and tr.by_grid.empty
    old = _problems(n=30)
    old["reported_at"] = pd.Timestamp("2024-01-01")
    any_store.write("problems", old)
    _same(any_store, AS_OF)


def test_cases_but_none_closed(any_store):
    frame = _problems(n=40)
    frame["closed_at"] = pd.NaT
    frame["status"] = cases.HANDLING
    any_store.write("problems", frame)
    tr = _same(any_store, AS_OF)
    assert tr.by_grid.empty and tr.by_unit.empty and tr.open_over_time["open"].iloc[-1] > 0
