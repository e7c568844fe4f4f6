"""Rebound (反弹) on a hand-made timeline: which pairs link, rates per grid and category, repeat places."""

from __future__ import annotations

import geopandas as gpd
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
        (3, "暴露垃圾", 25, 5, "2026-10-20 09:00", None, "A"),                 # rebound of 2 (and of 1: 19 d, 25.5 m)
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
    assert got == {(1, 2), (1, 3), (2, 3)}
    row = pairs.set_index(["closed_id", "new_id"]).loc[(1, 2)]
    assert row["days"] == pytest.approx(9 - 2 / 24)
    assert row["distance_m"] == pytest.approx(20.0)
    assert row["grid_code"] == "A"
    assert (pairs.geom_type == "LineString").all() and pairs.crs == CRS
    line = pairs.geometry[(pairs["closed_id"] == 1) & (pairs["new_id"] == 2)].iloc[0]
    assert list(line.coords) == [(0.0, 0.0), (20.0, 0.0)]


def test_window_radius_and_as_of_are_respected():
    p = _timeline()
    assert len(rebound_pairs(p, radius_m=30, window_days=100)) == 4  # now 6 → 7 (74 d) counts
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
    assert place["rebounds"] == 3 and place["problems"] == "1、2、3" and place["grid_code"] == "A"


def test_no_closed_problem_gives_empty_layer():
    p = _timeline()
    p["closed_at"] = pd.NaT
    res = rebounds(p, radius_m=30, window_days=30)
    assert res.pairs.empty and res.places.empty and list(res.pairs.columns)[:3] == ["category", "closed_id", "new_id"]
