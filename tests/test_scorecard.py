"""Grid scorecard: shrinkage keeps tiny grids from winning by chance; exposure, periods, changes."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy import stats

from sanigrid.geo.scorecard import (
    period_bounds,
    report_table,
    scorecard,
    shrink_proportion,
    shrink_rate,
)
from sanigrid.layers.settings import Settings

CRS = "EPSG:4548"


def _grids() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({
        "code": ["A", "B", "C"], "name": ["甲", "乙", "丙"], "lead_unit": ["县城管局", "县住建局", "县卫健委"],
        "households": [1000, 1000, 1000],
    }, geometry=[shapely.box(0, 0, 1000, 1000), shapely.box(1000, 0, 2000, 1000), shapely.box(2000, 0, 3000, 1000)],
        crs=CRS)


def _closed(grid_x: float, n: int, on_time: int, *, start: str = "2026-10-05", id0: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(id0)
    rep = pd.Timestamp(start) + pd.to_timedelta(np.arange(n) % 20, unit="D") + pd.Timedelta(hours=9)
    deadline = rep + pd.Timedelta(hours=4)
    closed = np.where(np.arange(n) < on_time, rep + pd.Timedelta(hours=2), rep + pd.Timedelta(hours=30))
    # spread far apart so that no report counts as a rebound of another
    x = grid_x + 20 + (np.arange(n) % 10) * 95 + rng.uniform(0, 1, n)
    y = 20 + (np.arange(n) // 10 % 10) * 95
    return pd.DataFrame({"problem_id": id0 + np.arange(n), "category": "暴露垃圾", "reported_at": rep,
                         "deadline": deadline, "closed_at": pd.to_datetime(closed), "status": "结案",
                         "x": x, "y": y})


def _problems(frames: list[pd.DataFrame]) -> gpd.GeoDataFrame:
    df = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(df.drop(columns=["x", "y"]), geometry=shapely.points(df[["x", "y"]].to_numpy()), crs=CRS)


def _settings(**weights: float) -> Settings:
    s = Settings()
    s.scorecard.weights = weights
    return s


def test_tiny_grid_does_not_win_by_chance():
    # A: 100 closed, 95 on time; B: one case, closed on time (raw 100 %); C: 100 closed, 70 on time
    p = _problems([_closed(0, 100, 95, id0=0), _closed(1000, 1, 1, id0=1000), _closed(2000, 100, 70, id0=2000)])
    res = scorecard(p, _grids(), settings=_settings(on_time_rate=1.0), as_of=pd.Timestamp("2026-11-01"))
    t = res.grids.set_index("code")
    assert t.loc["B", "on_time_rate_raw"] == 1.0
    assert t.loc["A", "rank"] == 1 and t.loc["B", "rank"] == 2 and t.loc["C", "rank"] == 3
    pooled = (95 + 1 + 70) / 201
    assert t.loc["B", "on_time_rate"] == pytest.approx((1 + 20 * pooled) / 21)
    # the interval is shown and is widest where the evidence is thinnest
    width = t["on_time_hi"] - t["on_time_lo"]
    assert width["B"] > width["A"] and width["B"] > width["C"]
    assert ((t["on_time_lo"] <= t["on_time_rate"]) & (t["on_time_rate"] <= t["on_time_hi"])).all()
    # without shrinkage the one-case grid would have won
    raw_rank = t["on_time_rate_raw"].rank(ascending=False, method="min")
    assert raw_rank["B"] == 1


def test_shrinkage_formulas():
    est, lo, hi, pbar = shrink_proportion(np.array([1, 90]), np.array([1, 100]), prior_strength=20)
    assert pbar == pytest.approx(91 / 101)
    a = 1 + 20 * pbar
    b = 0 + 20 * (1 - pbar)
    assert est[0] == pytest.approx(a / (a + b))
    assert lo[0] == pytest.approx(stats.beta.ppf(0.05, a, b))
    est, lo, hi, rbar = shrink_rate(np.array([0, 30]), np.array([1.0, 10.0]), prior_strength=20)
    assert rbar == pytest.approx(30 / 11)
    assert est[0] == pytest.approx(20 / (1 + 20 / rbar))
    assert est[0] < rbar and est[1] > est[0]


def test_exposure_km_of_street_and_problem_rate():
    p = _problems([_closed(0, 40, 40, id0=0), _closed(1000, 40, 40, id0=100), _closed(2000, 40, 40, id0=200)])
    streets = gpd.GeoDataFrame({"name": ["主街", "支路"]}, geometry=[
        shapely.LineString([(0, 500), (3000, 500)]),   # 1 km in each grid
        shapely.LineString([(100, 0), (100, 1000)]),    # 1 more km in A
    ], crs=CRS)
    res = scorecard(p, _grids(), settings=_settings(problems_per_km=1.0), as_of=pd.Timestamp("2026-11-01"),
                    streets=streets)
    t = res.grids.set_index("code")
    assert res.params["exposure"] == "km"
    assert t["exposure"].to_dict() == pytest.approx({"A": 2.0, "B": 1.0, "C": 1.0})
    assert t.loc["A", "problems_per_km_raw"] == pytest.approx(20.0)
    assert t.loc["A", "rank"] == 1  # same count on twice the street length


def test_hardening_and_coverage_enter_the_score():
    p = _problems([_closed(0, 30, 30, id0=0), _closed(1000, 30, 30, id0=100), _closed(2000, 30, 30, id0=200)])
    alleys = gpd.GeoDataFrame({"hardened": [True, False, True]}, geometry=[
        shapely.LineString([(10, 10), (10, 510)]), shapely.LineString([(1010, 10), (1010, 510)]),
        shapely.LineString([(2010, 10), (2010, 510)])], crs=CRS)
    cov = pd.DataFrame({"grid_code": ["A", "B", "C"], "coverage": [0.5, 1.0, 0.9]})
    res = scorecard(p, _grids(), settings=_settings(hardening_rate=1.0, coverage=1.0),
                    as_of=pd.Timestamp("2026-11-01"), alleys=alleys, coverage=cov)
    t = res.grids.set_index("code")
    assert t["hardening_rate"].to_dict() == {"A": 1.0, "B": 0.0, "C": 1.0}
    assert t.loc["C", "rank"] == 1 and t.loc["B", "rank"] == 3
    assert t.loc["C", "score"] == pytest.approx(95.0)


def test_periods_and_change_since_previous():
    nov = pd.Timestamp("2026-11-01")
    assert period_bounds(nov, "month") == (pd.Timestamp("2026-10-01"), nov)
    assert period_bounds(pd.Timestamp("2026-11-18 10:00"), "month")[0] == pd.Timestamp("2026-11-01")
    assert period_bounds(pd.Timestamp("2026-11-18"), "week")[0] == pd.Timestamp("2026-11-16")  # a Monday
    sep = [_closed(0, 50, 10, start="2026-09-03", id0=0), _closed(2000, 50, 50, start="2026-09-03", id0=100)]
    octo = [_closed(0, 50, 50, id0=200), _closed(2000, 50, 10, id0=300), _closed(1000, 50, 30, id0=400)]
    res = scorecard(_problems(sep + octo), _grids(), settings=_settings(on_time_rate=1.0),
                    as_of=pd.Timestamp("2026-11-01"))
    t = res.grids.set_index("code")
    assert t.loc["A", "rank"] == 1 and t.loc["A", "prev_rank"] == 3 and t.loc["A", "rank_change"] == 2
    assert t.loc["C", "rank_change"] == -2
    assert t.loc["A", "score_change"] > 0
    table = report_table(res)
    assert list(table.columns[:5]) == ["排名", "网格编码", "网格名称", "牵头单位", "综合得分"]
    assert table["排名"].tolist() == [1, 2, 3]
    assert res.grids.crs == CRS and res.grids.geom_type.eq("Polygon").all()


def test_coverage_from_gap_lines_averages_facility_kinds():
    p = _problems([_closed(0, 20, 20, id0=0), _closed(1000, 20, 20, id0=100), _closed(2000, 20, 20, id0=200)])
    streets = gpd.GeoDataFrame({"name": ["主街"]}, geometry=[shapely.LineString([(0, 500), (3000, 500)])], crs=CRS)
    gaps = gpd.GeoDataFrame({"facility_kind": ["toilets", "toilets", "markets"]}, geometry=[
        shapely.LineString([(0, 500), (500, 500)]),      # half of A lacks toilets
        shapely.LineString([(1000, 500), (2000, 500)]),  # all of B lacks toilets
        shapely.LineString([(2000, 500), (2250, 500)]),  # a quarter of C lacks a market
    ], crs=CRS)
    res = scorecard(p, _grids(), settings=_settings(coverage=1.0), as_of=pd.Timestamp("2026-11-01"),
                    streets=streets, gaps=gaps)
    t = res.grids.set_index("code")
    assert t["coverage"].to_dict() == pytest.approx({"A": (0.5 + 1) / 2, "B": (0 + 1) / 2, "C": (1 + 0.75) / 2})
    assert t["rank"].to_dict() == {"C": 1, "A": 2, "B": 3}


def test_facade_coverage_and_components_in_good_repair_on_a_hand_made_county():
    from sanigrid.geo.scorecard import components_good, facade_rate, zone_table

    grids = _grids()
    # A: 300 m of facade lines, 200 m painted → 2/3; B: a polygon 100 × 10 (frontage = half perimeter = 110 m)
    # painted, a 90 m line not painted → 110/200; B also has a surveyed facade of 400 m² painted, which weighs
    # by its area, not its length; C: none → NaN (the indicator drops out)
    facades = gpd.GeoDataFrame({
        "painted": [True, True, False, True, False, True],
        "area_m2": [None, None, None, None, None, 400.0],
        "grid_code": [None, None, None, None, None, "B"],
    }, geometry=[
        shapely.LineString([(100, 100), (200, 100)]), shapely.LineString([(100, 200), (200, 200)]),
        shapely.LineString([(100, 300), (200, 300)]),
        shapely.box(1100, 100, 1200, 110), shapely.LineString([(1100, 300), (1190, 300)]),
        shapely.LineString([(2900, 900), (2950, 900)]),  # lies in C but its grid_code says B
    ], crs=CRS)
    rate = facade_rate(grids, facades)
    assert rate.iloc[0] == pytest.approx(200 / 300)
    assert rate.iloc[1] == pytest.approx((110 + 400) / (110 + 90 + 400))
    assert np.isnan(rate.iloc[2])
    comps = gpd.GeoDataFrame({"condition": ["完好", "完好", "破损", "缺失", "完好", "完好"]}, geometry=[
        shapely.Point(10, 10), shapely.Point(20, 10), shapely.Point(30, 10), shapely.Point(40, 10),
        shapely.LineString([(1010, 10), (1090, 10)]), shapely.Point(2500, 500)], crs=CRS)
    good = components_good(grids, comps)
    assert good.tolist() == [0.5, 1.0, 1.0]
    p = _problems([_closed(0, 30, 30, id0=0), _closed(1000, 30, 30, id0=100), _closed(2000, 30, 30, id0=200)])
    res = scorecard(p, grids, settings=_settings(facade_rate=1.0, components_good=1.0),
                    as_of=pd.Timestamp("2026-11-01"), facades=facades, components=comps)
    t = res.grids.set_index("code")
    # the composite is the weighted mean of what each grid has: C has components only
    assert t.loc["A", "score"] == pytest.approx((100 * 2 / 3 + 50) / 2)
    assert t.loc["B", "score"] == pytest.approx((100 * 510 / 600 + 100) / 2)
    assert t.loc["C", "score"] == pytest.approx(100.0)
    table = report_table(res).set_index("网格编码")
    assert table.loc["A", "立面粉刷覆盖率(%)"] == pytest.approx(66.7)
    assert table.loc["A", "部件完好率(%)"] == pytest.approx(50.0)
    # without the layers the columns are left out of the 排名通报, and the score is as before
    plain = scorecard(p, grids, settings=_settings(on_time_rate=1.0), as_of=pd.Timestamp("2026-11-01"))
    assert "立面粉刷覆盖率(%)" not in report_table(plain).columns
    # per 城中村 zone: the zone over grid A's west half holds the three lines and four components
    zones = gpd.GeoDataFrame({"name": ["花园村"], "zone_type": ["城中村"]},
                             geometry=[shapely.box(0, 0, 500, 1000)], crs=CRS)
    z = zone_table(zones, facades, comps).iloc[0]
    assert (z["立面数"], z["立面量"], z["已粉刷量"], z["立面粉刷覆盖率(%)"]) == (3, 300.0, 200.0, 66.7)
    assert (z["部件数"], z["部件完好率(%)"]) == (4, 50.0)
