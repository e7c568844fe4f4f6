"""Siting: greedy vs exact vs bound, agreement with spopt, constraints honoured on a street network."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pulp
import pytest
import shapely
from scipy import sparse
from scipy.spatial.distance import cdist

from sanigrid.geo.siting import lscp, mclp_exact, mclp_greedy, reduce_instance, suggest_sites

CRS = "EPSG:4548"


def instance(seed: int, nd: int = 60, nc: int = 15, r: float = 22.0):
    rng = np.random.default_rng(seed)
    D, C = rng.uniform(0, 100, (nd, 2)), rng.uniform(0, 100, (nc, 2))
    w = rng.integers(1, 20, nd).astype(float)
    dm = cdist(D, C)
    return dm, sparse.csc_matrix(dm <= r), w


def brute_force(A, w, p):
    from itertools import combinations

    A = A.toarray().astype(bool)
    return max(w[A[:, list(S)].any(axis=1)].sum() for S in combinations(range(A.shape[1]), p))


def test_greedy_equals_optimum_on_disjoint_sets():
    # disjoint coverage sets: greedy is optimal, and the bound proves it
    A = sparse.block_diag([np.ones((3, 1)), np.ones((2, 1)), np.ones((4, 1)), np.ones((1, 1))]).tocsc()
    w = np.array([1, 1, 1, 5, 5, 1, 1, 1, 1, 2.0])
    g = mclp_greedy(A, w, 2)
    assert g.objective == 14 and g.gap == 0 and g.status == "optimal"
    assert list(g.selected) == [1, 2] and list(g.gains) == [10, 4]


@pytest.mark.parametrize("seed", range(6))
def test_greedy_within_its_bound_and_exact_is_optimal(seed):
    _, A, w = instance(seed, nd=50, nc=10)
    p = 3
    best = brute_force(A, w, p)
    g, e = mclp_greedy(A, w, p), mclp_exact(A, w, p)
    assert e.objective == pytest.approx(best)
    assert g.objective <= best + 1e-9 <= g.bound + 1e-6
    assert e.bound == pytest.approx(best)
    # the marginal gains add up to the objective
    assert g.gains.sum() == pytest.approx(g.objective)


def test_reduction_keeps_the_optimum():
    _, A, w = instance(3, nd=80, nc=12)
    A2, w2, rows, cols = reduce_instance(A, w)
    assert A2.shape[0] < A.shape[0] and w2.sum() == pytest.approx(w[np.diff(A.tocsr().indptr) > 0].sum())
    assert brute_force(A2, w2, 3) == pytest.approx(brute_force(A, w, 3))


@pytest.mark.parametrize("seed", [0, 1])
def test_exact_agrees_with_spopt(seed):
    from spopt.locate import LSCP, MCLP

    dm, A, w = instance(seed)
    r, p = 22.0, 4
    m = MCLP.from_cost_matrix(dm, w, r, p_facilities=p).solve(pulp.PULP_CBC_CMD(msg=False))
    assert mclp_exact(A, w, p).objective == pytest.approx(m.problem.objective.value())
    cov = np.asarray(A.sum(axis=1)).ravel() > 0
    ls = LSCP.from_cost_matrix(dm[cov], r).solve(pulp.PULP_CBC_CMD(msg=False))
    ours, unreachable = lscp(A)
    assert ours.objective == pytest.approx(ls.problem.objective.value())
    assert ours.bound == ours.objective and ours.status == "optimal"
    assert unreachable.sum() == (~cov).sum()
    # the LSCP sites really serve every coverable demand point
    assert (np.asarray(A[:, ours.selected].sum(axis=1)).ravel() > 0)[cov].all()


def test_time_limit_returns_a_solution_with_its_bound():
    _, A, w = instance(5, nd=400, nc=60, r=15)
    s = mclp_exact(A, w, 8, time_limit_s=0.001)
    assert len(s.selected) == 8 and s.objective <= s.bound


def street(length=2000.0):
    return gpd.GeoDataFrame({"name": ["长街"]}, geometry=[shapely.LineString([(0, 0), (length, 0)])], crs=CRS)


def pts(*xy, **cols):
    return gpd.GeoDataFrame(cols or None, geometry=[shapely.Point(p) for p in xy], crs=CRS)


def test_sites_fill_the_uncovered_street():
    # existing toilet at 0 serves 0 … 300 m; one new site (r = 300) best serves 600 m of the rest
    res = suggest_sites(pts((0, 0)), street(1000), kind="toilets", radius_m=300, new=1, candidate_spacing_m=10)
    site = res.sites.geometry.iloc[0]
    assert 600 <= site.x <= 700 + 1e-6
    assert res.solution.objective == pytest.approx(600, abs=10)
    assert res.summary["demand_open"] == pytest.approx(700, abs=1)


def test_existing_distance_and_exclusion_zones_are_honoured():
    ex = gpd.GeoDataFrame(geometry=[shapely.box(500, -50, 800, 50)], crs=CRS)
    res = suggest_sites(pts((0, 0)), street(1000), kind="toilets", radius_m=300, new=2, candidate_spacing_m=10,
                        exclusion=ex, min_distance_to_existing_m=450)
    x = res.sites.geometry.x.to_numpy()
    assert ((x < 500) | (x > 800)).all() and (x >= 450).all()
    assert (res.candidates["excluded"] != "").sum() > 0


def test_households_and_lscp_with_unreachable_demand():
    residents = pts((500, 20), (900, 20), (1500, 20), (1000, 5000), households=[100, 50, 30, 70], name=list("abcd"))
    res = suggest_sites(pts((0, 0)), street(), kind="toilets", radius_m=300, new=1, residents=residents,
                        candidate_spacing_m=50, with_lscp=True, exact=True)
    assert res.sites["households"].iloc[0] == 150  # one site between a and b serves both
    assert res.summary["lscp_sites"] == 2
    assert list(res.unreachable["name"]) == ["d"]
    assert "200" in res.unreachable["reason"].iloc[0]


def test_run_siting_writes_sites_and_xlsx(project):
    import pandas as pd

    from sanigrid.scripts.coverage import run_siting

    st = project.store
    st.write("streets", gpd.GeoDataFrame({"name": ["东西路"]}, crs=4326,
                                         geometry=[shapely.LineString([(117.20, 28.30), (117.24, 28.30)])]))
    st.write("toilets", gpd.GeoDataFrame({"name": ["公厕1"]}, geometry=[shapely.Point(117.2001, 28.3001)], crs=4326))
    out = run_siting(project, "toilets", new=2, lscp=True)
    sites = st.read("suggested_sites")
    assert len(sites) == 2 and list(sites["rank"]) == [1, 2]
    # two sites × 600 m of street, up to the 50 m discretisation of demand at each end
    assert 1200 - 4 * 50 <= out["newly_served"] <= 1200 + 50
    assert out["lscp_sites"] >= 2 and out["lscp_status"] == "optimal"
    assert st.meta("suggested_sites")["params"]["toilets"]["new"] == 2
    assert "建议新址" in pd.ExcelFile(out["xlsx"]).sheet_names


@pytest.mark.parametrize("seed", range(5))
def test_lscp_reductions_keep_the_optimum(seed):
    from sanigrid.geo.siting import _lscp_model, _solve

    _, A, _ = instance(seed, nd=120, nc=30, r=20)
    cov = np.asarray(A.sum(axis=1)).ravel() > 0
    plain = _solve(*_lscp_model(A[cov].tocsc()))[1]  # the integer program without any reduction
    ours, _ = lscp(A)
    assert ours.objective == pytest.approx(plain) and ours.status == "optimal"
    assert (np.asarray(A[:, ours.selected].sum(axis=1)).ravel() > 0)[cov].all()
