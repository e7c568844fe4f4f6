"""Typed store filters: each backend answers as pandas does on the whole layer, and no value or
field name can change the query."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import TOWN_LAT, TOWN_LON

from sanigrid.layers._errors import StoreError
from sanigrid.layers.filters import Where, between, eq, ne, one_of


@pytest.fixture
def problems() -> gpd.GeoDataFrame:
    rng = np.random.default_rng(7)
    n = 60
    return gpd.GeoDataFrame({
        "problem_id": np.arange(1, n + 1),
        "category": rng.choice(["暴露垃圾", "乱堆物料", "O'Brien \"x\""], n),
        "status": rng.choice(["立案", "派遣", "结案"], n),
        "grid_code": [None if i % 7 == 0 else f"G{i % 4:02d}" for i in range(n)],
        "reported_at": pd.Timestamp("2026-03-01") + pd.to_timedelta(rng.integers(0, 30 * 24, n), unit="h"),
    }, geometry=[shapely.Point(TOWN_LON + 0.0005 * (i % 10), TOWN_LAT + 0.0005 * (i // 10)) for i in range(n)],
        crs=4326)


def _ids(frame: pd.DataFrame) -> list[int]:
    return sorted(int(v) for v in frame["problem_id"])


def test_filters_match_pandas(any_store, problems):
    any_store.write("problems", problems)
    full = any_store.read("problems")
    cases: list[tuple[Where, pd.Series]] = [
        (eq("status", "结案"), full["status"] == "结案"),
        (ne("status", "结案"), full["status"] != "结案"),
        (eq("grid_code", None), full["grid_code"].isna()),
        (ne("grid_code", "G01"), full["grid_code"].ne("G01") | full["grid_code"].isna()),
        (one_of("grid_code", ["G01", "G03"]), full["grid_code"].isin(["G01", "G03"])),
        (one_of("grid_code", []), full["grid_code"].isin([])),
        (eq("problem_id", np.int64(17)), full["problem_id"] == 17),
        (between("problem_id", lo=10, hi=20), full["problem_id"].between(10, 20)),
        (between("reported_at", lo=pd.Timestamp("2026-03-10")), full["reported_at"] >= "2026-03-10"),
        (between("reported_at", hi=pd.Timestamp("2026-03-10 12:00")), full["reported_at"] <= "2026-03-10 12:00"),
        (eq("category", "O'Brien \"x\"") & ne("status", "立案"),
         (full["category"] == "O'Brien \"x\"") & (full["status"] != "立案")),
    ]
    for where, mask in cases:
        assert _ids(any_store.read("problems", where=where)) == _ids(full[mask.fillna(False)]), where
    assert mask.sum() > 0  # the quoted category is there and was found


def test_filter_with_bbox_and_columns(any_store, problems):
    any_store.write("problems", problems)
    full = any_store.read("problems")
    x0, y0, x1, y1 = full.total_bounds
    box = (x0 - 1, y0 - 1, (x0 + x1) / 2, (y0 + y1) / 2)
    inside = full.intersects(shapely.box(*box))
    got = any_store.read("problems", bbox=box, where=ne("status", "结案"), columns=["problem_id"])
    assert _ids(got) == _ids(full[inside & (full["status"] != "结案")])
    assert list(got.columns) == ["problem_id", "geometry"]
    assert any_store.read("problems", bbox=box, where=one_of("status", [])).empty


def test_values_and_names_cannot_change_the_query(any_store, problems):
    any_store.write("problems", problems)
    for evil in ["x' OR '1'='1", "'; DROP TABLE problems; --", "%s %(x)s ?"]:
        assert any_store.read("problems", where=eq("status", evil)).empty
    assert len(any_store.read("problems", where=ne("status", "' OR 1=1 --"))) == len(problems)
    with pytest.raises(StoreError, match="no field"):
        any_store.read("problems", where=eq('status" = "status" OR "1', 1))
    with pytest.raises(StoreError, match="typed filter"):
        any_store.read("problems", where="1 = 1")  # type: ignore[arg-type]
    assert len(any_store.read("problems")) == len(problems)


def test_bad_filters_are_refused():
    with pytest.raises(StoreError, match="lo, hi"):
        between("reported_at")
    with pytest.raises(StoreError, match="cannot be listed"):
        one_of("grid_code", ["G01", None])
    with pytest.raises(StoreError, match="not list"):
        eq("status", ["a"])
