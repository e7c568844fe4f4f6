"""Hotspots: DBSCAN against scikit-learn, Gi* against esda, FDR on a uniform pattern, piles, Mann-Kendall."""

from __future__ import annotations

import warnings

import esda
import geopandas as gpd
import libpysal
import numpy as np
import pandas as pd
import pytest
import shapely
from numpy.testing import assert_allclose
from scipy import sparse, stats
from sklearn.cluster import DBSCAN
from sklearn.metrics import adjusted_rand_score

from sanigrid.geo.hotspots import (
    analyse,
    clusters,
    dbscan_labels,
    emerging_labels,
    find_piles,
    gi_star,
    gi_star_lattice,
    hot_spots,
    lattice_kernel,
    lattice_weights,
    make_fishnet,
    mann_kendall,
    significance,
)
from sanigrid.layers.settings import Settings

CRS = "EPSG:4548"
Z_TOL = 1e-9


def _reports(xy: np.ndarray, *, start: str = "2026-09-01", days: int = 84, seed: int = 0,
             category: str = "暴露垃圾") -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    t = pd.Timestamp(start) + pd.to_timedelta(rng.uniform(0, days, len(xy)), unit="D")
    return gpd.GeoDataFrame({
        "problem_id": np.arange(1, len(xy) + 1), "category": category, "reported_at": t,
        "status": "结案", "closed_at": t + pd.Timedelta(hours=3), "deadline": t + pd.Timedelta(hours=4),
        "grid_code": None,
    }, geometry=shapely.points(xy), crs=CRS)


@pytest.mark.parametrize("seed", [0, 1])
def test_dbscan_equals_sklearn(seed):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 2000, (6, 2))
    xy = np.vstack([rng.uniform(0, 2000, (1500, 2)),
                    centres[rng.integers(0, 6, 1500)] + rng.normal(0, 40, (1500, 2))])
    ours = dbscan_labels(xy, eps_m=25, min_samples=10)
    ref = DBSCAN(eps=25, min_samples=10).fit(xy)
    core = ref.core_sample_indices_
    # core points: the same partition; noise: the same points; border points may differ by DBSCAN's order
    assert adjusted_rand_score(ours[core], ref.labels_[core]) == pytest.approx(1.0)
    assert np.array_equal(ours == -1, ref.labels_ == -1)
    assert adjusted_rand_score(ours, ref.labels_) > 0.999


def test_dbscan_dense_data_uses_count_bounds_and_still_equals_sklearn(monkeypatch):
    from sanigrid.geo import hotspots

    calls = []
    real = hotspots._count_bounds
    monkeypatch.setattr(hotspots, "_count_bounds", lambda *a, **k: calls.append(1) or real(*a, **k))
    rng = np.random.default_rng(5)
    xy = np.vstack([rng.uniform(0, 300, (4000, 2)), rng.normal(150, 20, (2000, 2))])
    ours = hotspots.dbscan_labels(xy, eps_m=6, min_samples=12)
    ref = DBSCAN(eps=6, min_samples=12).fit(xy)
    assert calls, "the lattice bounds were not used"
    core = ref.core_sample_indices_
    assert (ours[core] >= 0).all()
    assert adjusted_rand_score(ours[core], ref.labels_[core]) == pytest.approx(1.0)
    assert np.array_equal(ours == -1, ref.labels_ == -1)


def test_dbscan_duplicates_and_edge_cases():
    xy = np.zeros((30, 2))  # 30 reports on one spot: one cluster
    assert set(dbscan_labels(xy, eps_m=10, min_samples=5)) == {0}
    assert (dbscan_labels(np.array([[0.0, 0.0], [100.0, 0.0]]), eps_m=10, min_samples=2) == -1).all()
    assert len(dbscan_labels(np.zeros((0, 2)), eps_m=10, min_samples=2)) == 0


def test_planted_cluster_found_as_polygon():
    rng = np.random.default_rng(3)
    background = rng.uniform(0, 3000, (400, 2))
    planted = np.array([1500.0, 1200.0]) + rng.normal(0, 15, (60, 2))
    p = _reports(np.vstack([background, planted]))
    p.loc[p.index[-10:], ["status", "closed_at"]] = ["处置", pd.NaT]
    cl = clusters(p, eps_m=30, min_samples=10, as_of=pd.Timestamp("2026-12-31"))
    assert len(cl) >= 1
    top = cl.iloc[0]
    assert top["cluster"] == 1 and 55 <= top["count"] <= 70
    assert top.geometry.contains(shapely.Point(1500, 1200))
    assert top["open_share"] == pytest.approx(10 / top["count"])
    assert top["top_categories"].startswith("暴露垃圾(100%)")
    assert cl.crs == p.crs


def _esda_z(y: np.ndarray, w_sparse) -> np.ndarray:
    w = libpysal.weights.WSP(w_sparse).to_W(silence_warnings=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return esda.G_Local(y, w, star=True, transform="B", permutations=0).Zs


@pytest.mark.parametrize("band_factor", [np.sqrt(2), 2.0, 2.5])
def test_gi_star_equals_esda(band_factor):
    rng = np.random.default_rng(7)
    area = shapely.Polygon([(0, 0), (1200, 0), (1200, 700), (400, 1000), (0, 800)])
    net = make_fishnet(area, cell_m=50)
    counts = rng.poisson(1.5, net.shape).astype(float)
    counts[5:8, 6:9] += 6
    band = 50 * band_factor
    z = gi_star_lattice(counts, net.mask, lattice_kernel(50, band))[net.mask]
    w = lattice_weights(net, band_m=band)
    assert (w.diagonal() == 1).all()
    assert_allclose(z, _esda_z(counts[net.mask], w - sparse.diags(w.diagonal())), atol=Z_TOL, rtol=0)
    # and against esda on libpysal's own distance band over the cell centres
    r, c = np.nonzero(net.mask)
    db = libpysal.weights.DistanceBand(np.column_stack([(c + 0.5) * 50, (r + 0.5) * 50]),
                                       threshold=band * (1 + 1e-9), binary=True, silence_warnings=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = esda.G_Local(counts[net.mask], db, star=True, transform="B", permutations=0).Zs
    assert_allclose(z, ref, atol=Z_TOL, rtol=0)
    assert_allclose(gi_star(counts[net.mask], w), ref, atol=Z_TOL, rtol=0)


def test_uniform_pattern_has_no_significant_cell_after_fdr():
    rng = np.random.default_rng(11)
    p = _reports(rng.uniform(0, 2000, (3000, 2)))
    cells, params = hot_spots(p, cell_size_m=100, weeks=0)
    assert params["cells"] > 300
    assert (cells["label"] == "不显著").all()
    # without FDR some cells pass by chance: the correction is what removes them
    assert (significance(cells["p"].to_numpy(), fdr=False) > 0).any()


def test_planted_hotspot_is_hot_99():
    rng = np.random.default_rng(5)
    xy = np.vstack([rng.uniform(0, 2000, (2000, 2)), np.array([600.0, 1400.0]) + rng.normal(0, 40, (300, 2))])
    cells, _ = hot_spots(_reports(xy), cell_size_m=50, weeks=0)
    hit = cells[cells.contains(shapely.Point(600, 1400))].iloc[0]
    assert hit["label"] == "热点99%" and hit["z"] > 5


def test_fdr_matches_benjamini_hochberg():
    rng = np.random.default_rng(2)
    p = np.concatenate([rng.uniform(0, 1, 500), rng.uniform(0, 0.002, 20)])
    level = significance(p, fdr=True)
    for alpha, lv in ((0.10, 90), (0.05, 95), (0.01, 99)):
        ref = stats.false_discovery_control(p, method="bh") <= alpha
        assert np.array_equal(level >= lv, ref)


def test_pile_detected_and_excluded():
    rng = np.random.default_rng(9)
    xy = np.vstack([rng.uniform(0, 2000, (3000, 2)), np.tile([[1000.0, 1000.0]], (40, 1))])
    p = _reports(xy)
    piles, in_pile = find_piles(p, min_count=20, tolerance_m=1.0)
    assert len(piles) == 1 and piles.iloc[0]["count"] == 40 and in_pile.sum() == 40
    s = Settings()
    s.hotspots.cell_size_m = 100
    s.hotspots.cluster_eps_m = 30
    res = analyse(p, settings=s)
    assert res.params["pile_reports"] == 40
    assert res.clusters.empty or not res.clusters.contains(shapely.Point(1000, 1000)).any()
    assert (res.cells["label"] == "不显著").all()
    s.hotspots.exclude_piles = False  # kept in, the pile fakes a hotspot
    faked = analyse(p, settings=s)
    assert faked.clusters.contains(shapely.Point(1000, 1000)).any()
    assert faked.cells.loc[faked.cells.contains(shapely.Point(1000, 1000)), "label"].iloc[0].startswith("热点")


def test_mann_kendall_against_scipy_kendalltau():
    rng = np.random.default_rng(4)
    x = np.round(rng.normal(0, 1, (50, 12)) + np.linspace(0, 1.5, 12), 1)  # rounding makes ties
    s, var, z, p = mann_kendall(x, continuity=False)
    t = np.arange(12)
    for i in range(50):
        ref = stats.kendalltau(t, x[i], method="asymptotic")
        assert p[i] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12)
    # S by definition
    assert s[0] == sum(np.sign(x[0, j] - x[0, k]) for k in range(12) for j in range(k + 1, 12))


def test_emerging_rules():
    t = 12
    z = np.zeros((6, t))
    lv = np.zeros((6, t), dtype=int)
    z[0] = np.linspace(2, 6, t)                  # hot every week, rising: intensifying
    z[1] = np.linspace(6, 2, t)                  # falling: diminishing
    z[2] = 3 + 0.1 * np.tile([1, -1], t // 2)    # flat: persistent
    lv[:3] = 95
    z[3, -1], lv[3, -1] = 4, 99                  # only the last week: new
    z[4, -3:], lv[4, -3:] = 3, 95                # run at the end: consecutive
    z[5, [2, 6]], lv[5, [2, 6]] = 3, 90          # now and then: sporadic
    label, _, _ = emerging_labels(z, lv)
    assert list(label) == ["加剧热点", "减弱热点", "持续热点", "新热点", "连续热点", "零星热点"]
    cold, _, _ = emerging_labels(-z, lv)
    assert cold[3] == "新冷点" and cold[0] == "加剧冷点"


def test_weekly_trend_labels_new_hotspot():
    rng = np.random.default_rng(9)
    base = _reports(rng.uniform(0, 2000, (3000, 2)), start="2026-09-07", days=84)
    burst_xy = np.array([500.0, 500.0]) + rng.normal(0, 20, (150, 2))
    burst = _reports(burst_xy, start="2026-11-23", days=6, seed=1)
    p = pd.concat([base, burst], ignore_index=True)
    cells, params = hot_spots(p, cell_size_m=100, weeks=12, as_of=pd.Timestamp("2026-11-30"))
    assert params["weeks"] == 12 and params["trend_cell_m"] == 200  # 0.6 reports per cell-week → 2×2 bins
    here = cells[cells.contains(shapely.Point(500, 500))].iloc[0]
    assert here["trend"] == "新热点"
    far = cells.centroid.distance(shapely.Point(500, 500)) > 500
    assert cells.loc[far, "trend"].isin(["", "零星热点", "零星冷点"]).all()


def test_rate_per_km_of_street():
    # reports spread evenly along streets: counts make the street-dense block hot, rates do not
    rng = np.random.default_rng(12)
    streets = [shapely.LineString([(0, y), (2000, y)]) for y in range(100, 2000, 200)]
    streets += [shapely.LineString([(x, 1000), (x, 1600)]) for x in range(1010, 1600, 20)]  # a dense block
    lines = gpd.GeoDataFrame(geometry=streets, crs=CRS)
    per_m = 0.1  # one report per 10 m of street everywhere
    pts = []
    for ln in streets:
        k = rng.poisson(ln.length * per_m)
        pts += [ln.interpolate(d) for d in rng.uniform(0, ln.length, k)]
    p = _reports(shapely.get_coordinates(np.array(pts)))
    by_count, _ = hot_spots(p, cell_size_m=100, weeks=0)
    by_rate, params = hot_spots(p, cell_size_m=100, weeks=0, streets=lines)
    assert params["value"] == "reports per km of street"
    centre = shapely.Point(1350, 1350)
    assert by_count.loc[by_count.contains(centre), "label"].iloc[0] == "热点99%"
    assert by_rate.loc[by_rate.contains(centre), "label"].iloc[0] == "不显著"
    row = by_rate.loc[by_rate.contains(shapely.Point(550, 150))].iloc[0]  # one 100 m street in the cell
    assert row["rate"] == pytest.approx(row["count"] / 0.1)
    # cells without streets are not observations
    assert len(by_rate) < len(by_count)
