"""Spatial partitions with a halo (geo/partitioned.py): grids, counties, piles, DBSCAN clusters and rebounds
equal the single-frame functions, clusters that straddle a partition edge included."""

from __future__ import annotations

import os
import uuid

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from sanigrid.geo.grids import assign_grid
from sanigrid.geo.hotspots import dbscan_labels
from sanigrid.geo.partitioned import (
    GeoParquetSource,
    PartitionedResult,
    PostGISPartitions,
    analyse_frame,
    analyse_partitioned,
    hilbert_cell,
    hilbert_keys,
    partitions_frame,
    write_partitioned,
)
from sanigrid.geo.rebound import rebound_pairs
from sanigrid.layers.piles import find_piles
from sanigrid.layers.settings import Settings

AS_OF = pd.Timestamp("2026-11-01")
PG_URL = os.environ.get("SANIGRID_TEST_PG", "")
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
    rep = (pd.Timestamp("2026-05-01") + pd.to_timedelta(rng.uniform(0, 180, n), unit="D")).floor("s")
    closed = pd.Series(rep + pd.to_timedelta(rng.uniform(0.5, 10, n), unit="D")).dt.floor("s").where(
        rng.random(n) < 0.7)  # whole seconds: PostgreSQL keeps microseconds
    cats = rng.choice(["暴露垃圾", "乱堆乱放", "道路破损"], n)
    ids = rng.permutation(n) + 1  # ids in no spatial order
    return gpd.GeoDataFrame({"problem_id": ids, "category": cats, "reported_at": rep, "closed_at": closed},
                            geometry=gpd.points_from_xy(xs, ys), crs=4548)


@pytest.fixture(scope="module")
def grids() -> gpd.GeoDataFrame:
    return _grids()


def _grids() -> gpd.GeoDataFrame:
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
    got = part.rebound_table()
    assert part.partitions["rebounds"].sum() == len(got) == len(one.rebounds)
    pd.testing.assert_frame_equal(one.rebounds[cols], got[cols], check_dtype=False)  # dask: Arrow strings
    np.testing.assert_allclose(one.rebounds["distance_m"], got["distance_m"], atol=1e-6)
    assert shapely.equals_exact(one.rebounds.geometry.to_numpy(), got.geometry.to_numpy(), tolerance=1e-9).all()


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


def _same(a: PartitionedResult, b: PartitionedResult) -> None:
    ta, tb = a.report_table(), b.report_table()
    pd.testing.assert_frame_equal(ta, tb)
    pd.testing.assert_frame_equal(pd.DataFrame(a.clusters.drop(columns="geometry")),
                                  pd.DataFrame(b.clusters.drop(columns="geometry")))
    assert shapely.equals_exact(a.clusters.geometry.to_numpy(), b.clusters.geometry.to_numpy(), tolerance=1e-9).all()
    assert a.piles["count"].tolist() == b.piles["count"].tolist()
    cols = ["closed_id", "new_id", "category", "grid_code", "closed_at", "reported_at"]
    pd.testing.assert_frame_equal(a.rebound_table()[cols], b.rebound_table()[cols], check_dtype=False)


def test_hilbert_keys_are_a_curve_and_the_plan_cuts_ranges_of_equal_counts(reports, tmp_path) -> None:
    ix, iy = (a.ravel() for a in np.meshgrid(np.arange(16), np.arange(16)))
    d = hilbert_keys(ix, iy, 4)
    assert sorted(d.tolist()) == list(range(256))
    assert all(hilbert_cell(int(k), 4) == (int(a), int(b)) for k, a, b in zip(d, ix, iy, strict=True))
    step = np.abs(np.diff(np.column_stack([ix, iy])[np.argsort(d)], axis=0)).sum(axis=1)
    assert (step == 1).all()  # consecutive keys are neighbouring cells
    parts = write_partitioned(reports, tmp_path, npartitions=6)
    plan = parts.plan.with_regions()
    assert sum(plan.counts) == len(reports) and max(plan.counts) < 1.3 * len(reports) / 6
    xy = np.column_stack([reports.geometry.x, reports.geometry.y])
    part = plan.partition_of(xy[:, 0], xy[:, 1])
    assert np.bincount(part, minlength=6).tolist() == list(plan.counts)
    for i in range(6):  # each region holds its own reports and no other partition's
        inside = shapely.contains_xy(plan.regions[i], xy[:, 0], xy[:, 1])
        assert inside[part == i].all()
        assert not shapely.contains_xy(shapely.buffer(plan.regions[i], -0.01), xy[part != i, 0],
                                       xy[part != i, 1]).any()
        f = gpd.read_parquet(tmp_path / f"part-{i:05d}.parquet")  # GeoParquet: readable as such
        assert len(f) == plan.counts[i] and f.crs.to_epsg() == 4548 and f["hkey"].is_monotonic_increasing


def test_a_geoparquet_source_in_chunks_gives_the_same_dataset(reports, both, tmp_path) -> None:
    s, _, part = both
    reports.to_parquet(tmp_path / "in.parquet")
    parts = write_partitioned(GeoParquetSource(tmp_path / "in.parquet", batch_rows=500), tmp_path / "out",
                              npartitions=6)
    assert parts.plan == write_partitioned(reports, tmp_path / "frame", npartitions=6).plan
    _same(part, analyse_partitioned(parts, settings=s, grids=_grids(), as_of=AS_OF))


@pytest.mark.skipif(not PG_URL, reason="SANIGRID_TEST_PG is not set (bash scripts/postgis_test_server.sh | tail -1)")
def test_postgis_table_in_the_same_partitions_gives_the_same_results(reports, both, tmp_path) -> None:
    psycopg = pytest.importorskip("psycopg")
    from sanigrid.layers.postgis import PostGISStore

    s, _, part = both
    schema = f"test_{uuid.uuid4().hex[:10]}"
    try:
        PostGISStore(PG_URL, schema=schema, crs="EPSG:4548").write("problems", reports)
        pg = PostGISPartitions(PG_URL, schema=schema, table="problems", npartitions=6)
        assert pg.plan == write_partitioned(reports, tmp_path, npartitions=6).plan  # the same partitions
        _same(part, analyse_partitioned(pg, settings=s, grids=_grids(), as_of=AS_OF))
    finally:
        with psycopg.connect(PG_URL) as con:
            con.execute(psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(psycopg.sql.Identifier(schema)))


def test_partitions_frame_is_a_dask_geopandas_frame_by_key_range(reports, tmp_path) -> None:
    parts = write_partitioned(reports, tmp_path, npartitions=6)
    ddf = partitions_frame(parts)
    assert ddf.npartitions == 6 and len(ddf.spatial_partitions) == 6
    sizes = ddf.map_partitions(len).compute().tolist()
    assert sizes == list(parts.plan.counts)
    got = ddf.compute().sort_values("problem_id")
    want = reports.sort_values("problem_id")
    assert got["problem_id"].tolist() == want["problem_id"].tolist()
    np.testing.assert_array_equal(got.geometry.x.to_numpy(), want.geometry.x.to_numpy())
    assert ddf.spatial_partitions.contains(ddf.partitions[2].compute().geometry.union_all()).iloc[2]
