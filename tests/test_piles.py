"""One linear pile detector for the import check, the hotspots and the rebounds; old settings still load."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from sanigrid.geo.hotspots import find_piles as hotspot_piles
from sanigrid.layers.piles import find_piles
from sanigrid.layers.settings import Settings


def test_a_pile_with_strays_and_a_near_miss():
    rng = np.random.default_rng(5)
    xy = np.vstack([np.full((300, 2), 1000.0),                     # a default geocode
                    1000.0 + rng.uniform(-0.6, 0.6, (10, 2)),       # within 0.85 m: in the pile
                    [[1001.5, 1000.0]],                             # 1.5 m away: not in it
                    2000.0 + rng.uniform(-0.3, 0.3, (25, 2)),       # a second, jittered pile
                    rng.uniform(0, 5000, (2000, 2)), [[np.nan, np.nan]]])
    p = find_piles(xy, min_count=20, tolerance_m=1.0)
    assert p.count.tolist() == [310, 25]
    np.testing.assert_allclose(p.centre[0], [1000.0, 1000.0])
    assert (p.label[:310] == 0).all() and p.label[310] == -1 and (p.label[311:336] == 1).all()
    assert p.label[-1] == -1
    d = np.hypot(*(xy[p.label == 1] - p.centre[1]).T)
    assert (d <= 1.0).all()  # every member within the tolerance of its centre


def test_agrees_with_pairwise_components_on_exact_piles():
    """On piles of identical points among spread-out ones, the old pair-based rule gives the same piles."""
    rng = np.random.default_rng(7)
    spots = rng.uniform(0, 10_000, (40, 2))
    sizes = rng.integers(1, 60, 40)
    xy = np.vstack([np.repeat(spots, sizes, axis=0), rng.uniform(0, 10_000, (3000, 2))])
    pairs = cKDTree(xy).query_pairs(1.0, output_type="ndarray")
    g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(xy), len(xy)))
    _, lab = connected_components(g, directed=False)
    sz = np.bincount(lab)
    old = sorted(sz[sz >= 20].tolist(), reverse=True)
    new = find_piles(xy, min_count=20, tolerance_m=1.0)
    assert new.count.tolist() == old
    assert int(new.in_pile.sum()) == int((sz[lab] >= 20).sum())


def test_tolerance_zero_is_exact_match():
    xy = np.vstack([np.zeros((5, 2)), [[0.001, 0.0]]])
    p = find_piles(xy, min_count=5, tolerance_m=0)
    assert p.count.tolist() == [5] and p.label.tolist() == [0] * 5 + [-1]


def test_hotspots_use_the_same_detector():
    xy = np.vstack([np.full((30, 2), 500.0), np.random.default_rng(1).uniform(0, 3000, (500, 2))])
    frame = gpd.GeoDataFrame({"category": ["暴露垃圾"] * 30 + ["占道经营"] * 500,
                              "reported_at": pd.date_range("2026-01-01", periods=530, freq="h")},
                             geometry=shapely.points(xy), crs="EPSG:4548")
    piles, in_pile = hotspot_piles(frame, min_count=20, tolerance_m=1.0)
    same = find_piles(xy, min_count=20, tolerance_m=1.0)
    assert piles["count"].tolist() == same.count.tolist() == [30]
    assert in_pile.to_numpy().tolist() == same.in_pile.tolist()
    assert piles["categories"].iloc[0] == "暴露垃圾(30)"
    assert piles["first_report"].iloc[0] == pd.Timestamp("2026-01-01")


def test_one_setting_for_both_and_old_files_still_load():
    s = Settings.model_validate({"validation": {"pile_min_count": 7}, "hotspots": {"pile_min_count": 30}})
    assert s.piles.min_count == 30  # the hotspots' value was the one analyses used
    assert not hasattr(s.hotspots, "pile_min_count") and not hasattr(s.validation, "pile_min_count")
    assert Settings.model_validate({"validation": {"pile_tolerance_m": 2.5}}).piles.tolerance_m == 2.5
