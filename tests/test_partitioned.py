"""Spatial partitions with a halo (geo/partitioned.py): grids, counties, piles, DBSCAN clusters and rebounds
equal the single-frame functions, clusters that straddle a partition edge included."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from sanigrid.geo.grids import assign_grid
from sanigrid.geo.hotspots import dbscan_labels
from sanigrid.geo.partitioned import (
    GeoParquetSource,
    ParquetPartitions,
    analyse_frame,
    analyse_partitioned,
    hilbert_cell,
    hilbert_keys,
    write_partitioned,
)
from sanigrid.geo.rebound import rebound_pairs
from sanigrid.layers.piles import find_piles
from sanigrid.layers.settings import Settings

AS_OF = pd.Timestamp("2026-11-01")
X0, Y0 = 500_000.0, 3_100_000.0


@pytest.fixture(scope="module")
def reports() -> gpd.GeoDataFrame:
    """Background reports, 18 dense blobs (DBSCAN clusters), two default-geocode piles (one exact, one
    spread over the tolerance) and a chain of rebounds, over 2.4 × 1.6 km."""
    rng = np.random.default_rng(11)
    x, y = rng.uniform(0, 2400, 1500), rng.uniform(0, 1600, 1500)
    centres = np.column_stack([rng.uniform(150, 2250, 18), rng.uniform(150, 1450, 18)])
    k = np.repeat(np.arange(18), 60)
    bx, by = centres[k, 0] + rng.normal(0, 30, len(k)), centres[k, 1] + rng.normal(0, 30, len(k))
    px, py = np.r_[np.full(30, 1200.0), 700 + rng.uniform(-0.4, 0.4, 25)], np.r_[np.full(30, 800.0),
                                                                              400 + rng.uniform(-0.4, 0.4, 25)]
    xs, ys = np.r_[x, bx, px] + X0, np.r_[y, by, py] + Y0
    n = len(xs)
    rep = pd.Timestamp("2026-05-01") + pd.to_timedelta(rng.uniform(0, 180, n), unit="D")
    closed = pd.Series(rep + pd.to_timedelta(rng.uniform(0.5, 10, n), unit="D")).where(rng.random(n) < 0.7)
    cats = rng.choice(["暴露垃圾", "乱堆乱放", "道路破损"], n)
    ids = rng.permutation(n) + 1  # ids in no spatial order
    return gpd.GeoDataFrame({"problem_id": ids, "category": cats, "reported_at": rep, "closed_at": closed},
                            geometry=gpd.points_from_xy(xs, ys), crs=4548)


@pytest.fixture(scope="module")
def grids() -> gpd.GeoDataFrame:
    """Two counties' grids (codes start with the county code), 4 × 2 cells."""
    cells, codes = [], []
    for i in range(4):
        for j in range(2):
            cells.append(shapely.box(X0 + 600 * i, Y0 + 800 * j, X0 + 600 * (i + 1), Y0 + 800 * (j + 1)))
            codes.append(f"{'360101' if i < 2 else '360102'}00100{i}0{j}")
    return gpd.GeoDataFrame({"code": codes}, geometry=cells, crs=4548)


@pytest.fixture(scope="module")
def both(reports: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, tmp_path_factory):
    s = Settings()
    one = analyse_frame(reports, settings=s, grids=grids, as_of=AS_OF)
    parts = write_partitioned(reports, tmp_path_factory.mktemp("parts"), npartitions=6)
    return s, one, analyse_partitioned(parts, settings=s, grids=grids, as_of=AS_OF)


def _sets(labels: pd.Series) -> set[frozenset]:
    return {frozenset(g.index) for k, g in labels.groupby(labels) if k >= 0}


def test_oracle_is_the_single_county_functions(reports, grids, both) -> None:
    s, one, _ = both
    p = reports.sort_values("problem_id").reset_index(drop=True)
    p = p[p["reported_at"] <= AS_OF].reset_index(drop=True)
    r = one.report_table().set_index("problem_id").loc[p["problem_id"]]
    assert (r["grid_code"].fillna("").to_numpy() == assign_grid(p, grids).fillna("").to_numpy()).all()
    xy = np.column_stack([p.geometry.x, p.geometry.y])
    piles = find_piles(xy, min_count=s.piles.min_count, tolerance_m=s.piles.tolerance_m)
    assert (r["pile"].to_numpy() == piles.label).all() and len(piles) == 2
    lab = dbscan_labels(xy[~piles.in_pile], eps_m=s.hotspots.cluster_eps_m, min_samples=s.hotspots.cluster_min_size)
    mine = r["cluster"].to_numpy()[~piles.in_pile]
    assert _sets(pd.Series(lab)) == _sets(pd.Series(mine)) and len(set(lab)) - 1 >= 10
    pairs = rebound_pairs(p, radius_m=s.rebound.radius_m, window_days=s.rebound.window_days, as_of=AS_OF,
                          pile_min_count=s.piles.min_count, pile_tolerance_m=s.piles.tolerance_m)
    assert set(zip(pairs["closed_id"], pairs["new_id"], strict=True)) == set(
        zip(one.rebounds["closed_id"], one.rebounds["new_id"], strict=True)) and len(pairs) > 100


def test_partitions_equal_the_single_frame(both) -> None:
    _, one, part = both
    assert len(part.partitions) == 6 and part.partitions["reports"].sum() == len(one.reports)
    a = one.report_table().set_index("problem_id")
    b = part.report_table().set_index("problem_id").loc[a.index]
    assert (a["grid_code"].fillna("") == b["grid_code"].fillna("")).all()
    assert (a["county_code"].fillna("") == b["county_code"].fillna("")).all()
    assert set(b["county_code"].dropna()) == {"360101", "360102"}
    assert (a["pile"] == b["pile"]).all()
    assert _sets(a["cluster"]) == _sets(b["cluster"])
    assert (a["cluster"] == b["cluster"]).all()  # the same numbering: by count, then first report
    pd.testing.assert_frame_equal(pd.DataFrame(one.clusters.drop(columns="geometry")),
                                  pd.DataFrame(part.clusters.drop(columns="geometry")))
    assert shapely.equals_exact(one.clusters.geometry.normalize().to_numpy(),
                                part.clusters.geometry.normalize().to_numpy(), tolerance=1e-6).all()
    np.testing.assert_allclose(one.piles.geometry.x, part.piles.geometry.x)
    assert one.piles["count"].tolist() == part.piles["count"].tolist()
    cols = ["closed_id", "new_id", "category", "grid_code"]
    pd.testing.assert_frame_equal(one.rebounds[cols], part.rebounds[cols])
    np.testing.assert_allclose(one.rebounds["distance_m"], part.rebounds["distance_m"], atol=1e-6)


def test_clusters_straddle_partition_edges(both) -> None:
    _, _, part = both
    r = part.report_table()
    r = r[r["cluster"] >= 0]
    spans = r.groupby("cluster")["partition"].nunique()
    assert (spans >= 2).sum() >= 2  # the halo and the union-find joined them; the equality test checks them
    assert (part.partitions["halo"] > 0).all()


def test_piles_across_an_edge_are_found_whole(tmp_path) -> None:
    """A pile spread over its tolerance whose reports fall into two partitions."""
    s = Settings()
    rng = np.random.default_rng(5)
    n_bg = 400
    x = np.r_[rng.uniform(0, 1000, n_bg), 500 + rng.uniform(-0.45, 0.45, 30)]
    y = np.r_[rng.uniform(0, 1000, n_bg), 500 + rng.uniform(-0.45, 0.45, 30)]
    n = len(x)
    f = gpd.GeoDataFrame({"problem_id": np.arange(1, n + 1), "category": "暴露垃圾",
                          "reported_at": pd.Timestamp("2026-06-01"), "closed_at": pd.NaT},
                         geometry=gpd.points_from_xy(x + X0, y + Y0), crs=4548)
    one = analyse_frame(f, settings=s)
    part = analyse_partitioned(write_partitioned(f, tmp_path, npartitions=4), settings=s)
    assert len(one.piles) == 1 and one.piles["count"].iloc[0] == 30
    want = one.report_table()
    got = part.report_table().set_index("problem_id").loc[want["problem_id"]]
    assert (got["pile"].to_numpy() == want["pile"].to_numpy()).all()
    assert got.loc[got["pile"] >= 0, "partition"].nunique() >= 2
