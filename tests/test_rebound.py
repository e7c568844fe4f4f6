"""Rebound (反弹) on a hand-made timeline: which pairs link, rates per grid and category, repeat places;
at most one link per new report (checked against a brute-force oracle), piles left out, ``since``."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from sanigrid.geo.rebound import rebound_pairs, rebounds

CRS = "EPSG:4548"
T = pd.Timestamp


def _timeline() -> gpd.GeoDataFrame:
    rows = [
        # id, category, x, y, reported, closed, grid
        (1, "暴露垃圾", 0, 0, "2026-10-01 08:00", "2026-10-01 11:00", "A"),
        (2, "暴露垃圾", 20, 0, "2026-10-10 09:00", "2026-10-10 12:00", "A"),   # 9 d after 1, 20 m: rebound of 1
        (3, "暴露垃圾", 25, 5, "2026-10-20 09:00", None, "A"),                 # rebound of 2 (9.9 d), not of 1 (18.9 d)
        (4, "暴露垃圾", 200, 0, "2026-10-05 09:00", None, "A"),                # too far from everything
        (5, "占道经营", 10, 0, "2026-10-12 09:00", None, "A"),                 # other category: no link
        (6, "暴露垃圾", 1000, 0, "2026-09-01 09:00", "2026-09-02 09:00", "B"),
        (7, "暴露垃圾", 1000, 10, "2026-11-15 09:00", None, "B"),              # 74 d later: outside the window
        (8, "暴露垃圾", 0, 0, "2026-10-01 10:00", None, "A"),                  # before 1 was closed: no link
        (9, "占道经营", 1000, 0, "2026-10-01 09:00", "2026-10-01 10:00", "B"),  # closed, never came back
    ]
    df = pd.DataFrame(rows, columns=["problem_id", "category", "x", "y", "reported_at", "closed_at", "grid_code"])
    df["reported_at"] = pd.to_datetime(df["reported_at"])
    df["closed_at"] = pd.to_datetime(df["closed_at"])
    return gpd.GeoDataFrame(df.drop(columns=["x", "y"]), geometry=shapely.points(df[["x", "y"]].to_numpy()),
                            crs=CRS)


def test_pairs_on_hand_made_timeline():
    pairs = rebound_pairs(_timeline(), radius_m=30, window_days=30)
    got = set(zip(pairs["closed_id"], pairs["new_id"], strict=True))
    assert got == {(1, 2), (2, 3)}  # 3 links to 2, closed most recently before it, not also to 1
    row = pairs.set_index(["closed_id", "new_id"]).loc[(1, 2)]
    assert row["days"] == pytest.approx(9 - 2 / 24)
    assert row["distance_m"] == pytest.approx(20.0)
    assert row["grid_code"] == "A"
    assert (pairs.geom_type == "LineString").all() and pairs.crs == CRS
    line = pairs.geometry[(pairs["closed_id"] == 1) & (pairs["new_id"] == 2)].iloc[0]
    assert list(line.coords) == [(0.0, 0.0), (20.0, 0.0)]


def test_window_radius_and_as_of_are_respected():
    p = _timeline()
    assert len(rebound_pairs(p, radius_m=30, window_days=100)) == 3  # now 6 → 7 (74 d) counts
    assert set(rebound_pairs(p, radius_m=22, window_days=30)["new_id"]) == {2, 3}  # 1→3 is 25.5 m
    assert set(rebound_pairs(p, radius_m=22, window_days=30)["closed_id"]) == {1, 2}
    early = rebound_pairs(p, radius_m=30, window_days=30, as_of=T("2026-10-15"))
    assert set(zip(early["closed_id"], early["new_id"], strict=True)) == {(1, 2)}
    assert p.equals(_timeline())  # input untouched


def test_rates_and_repeat_places():
    res = rebounds(_timeline(), radius_m=30, window_days=30)
    by_grid = res.by_grid.set_index("grid_code")
    assert by_grid.loc["A", "closed"] == 2 and by_grid.loc["A", "rebounded"] == 2
    assert by_grid.loc["B", "closed"] == 2 and by_grid.loc["B", "rebounded"] == 0
    by_cat = res.by_category.set_index("category")
    assert by_cat.loc["暴露垃圾", "rate"] == pytest.approx(2 / 3)
    assert by_cat.loc["占道经营", "rate"] == 0
    assert len(res.places) == 1
    place = res.places.iloc[0]
    assert place["rebounds"] == 2 and place["problems"] == "1、2、3" and place["grid_code"] == "A"


def test_no_closed_problem_gives_empty_layer():
    p = _timeline()
    p["closed_at"] = pd.NaT
    res = rebounds(p, radius_m=30, window_days=30)
    assert res.pairs.empty and res.places.empty and list(res.pairs.columns)[:3] == ["category", "closed_id", "new_id"]


def _oracle(p: gpd.GeoDataFrame, radius_m: float, window_days: float) -> set[tuple[int, int]]:
    """Brute force over every pair: for each new report the closed case nearest in time, then in space."""
    out = set()
    xy = shapely.get_coordinates(p.geometry.to_numpy())
    ids = p["problem_id"].to_numpy()
    cat = p["category"].to_numpy()
    rep = p["reported_at"].to_numpy()
    closed = p["closed_at"].to_numpy()
    for j in range(len(p)):
        gap = (rep[j] - closed) / np.timedelta64(1, "D")  # NaN for open cases
        d = np.hypot(*(xy - xy[j]).T)
        ok = (cat == cat[j]) & (gap > 0) & (gap <= window_days) & (d <= radius_m) & (ids != ids[j])
        cand = sorted(zip(gap[ok], d[ok], ids[ok], strict=True))
        if cand:
            out.add((int(cand[0][2]), int(ids[j])))
    return out


def _random(n: int, seed: int) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    rep = T("2026-01-01") + pd.to_timedelta(rng.integers(0, 120 * 86_400, n), unit="s")
    closed = pd.Series(rep + pd.to_timedelta(rng.integers(3600, 8 * 86_400, n), unit="s"))
    closed[rng.random(n) < 0.3] = pd.NaT
    df = pd.DataFrame({"problem_id": np.arange(1, n + 1), "category": rng.choice(["暴露垃圾", "占道经营"], n),
                       "reported_at": rep, "closed_at": closed, "grid_code": "A"})
    return gpd.GeoDataFrame(df, geometry=shapely.points(rng.uniform(0, 400, (n, 2))), crs=CRS)


@pytest.mark.parametrize("seed", [1, 2])
def test_at_most_one_link_per_report_matches_brute_force(seed):
    p = _random(300, seed)
    pairs = rebound_pairs(p, radius_m=40, window_days=20)
    got = set(zip(pairs["closed_id"], pairs["new_id"], strict=True))
    assert got == _oracle(p, 40, 20)
    assert pairs["new_id"].is_unique and len(pairs) <= len(p)
    assert len(got) > 30  # the case is not trivial


def test_reports_in_a_pile_are_left_out():
    p = _timeline()
    rng = np.random.default_rng(3)
    n = 40  # 40 reports on one default point (5000, 5000): each would rebound the one before it
    rep = T("2026-10-01") + pd.to_timedelta(np.sort(rng.integers(0, 20 * 86_400, n)), unit="s")
    pile = gpd.GeoDataFrame({"problem_id": np.arange(100, 100 + n), "category": "暴露垃圾", "reported_at": rep,
                             "closed_at": rep + pd.Timedelta(hours=1), "grid_code": "C"},
                            geometry=shapely.points(np.full((n, 2), 5000.0)), crs=CRS)
    both = gpd.GeoDataFrame(pd.concat([p, pile], ignore_index=True), crs=CRS)
    assert len(rebound_pairs(both, radius_m=30, window_days=30)) == 2 + (n - 1)
    kept = rebound_pairs(both, radius_m=30, window_days=30, pile_min_count=20)
    assert set(zip(kept["closed_id"], kept["new_id"], strict=True)) == {(1, 2), (2, 3)}
    res = rebounds(both, radius_m=30, window_days=30, pile_min_count=20)
    assert "C" not in set(res.pairs["grid_code"])


def test_since_applies_to_the_links():
    p = _timeline()
    res = rebounds(p, radius_m=30, window_days=30, since=T("2026-10-15"))
    assert set(zip(res.pairs["closed_id"], res.pairs["new_id"], strict=True)) == {(2, 3)}  # 3 came on 10-20
    assert (res.pairs["reported_at"] >= T("2026-10-15")).all()
