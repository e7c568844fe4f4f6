"""Sample points: candidates, readiness reasons, quotas/strata/spacing, seeds, mock spot-check."""

from __future__ import annotations

from datetime import datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.stats import hypergeom

from sanigrid.geo import sampling
from sanigrid.layers.settings import Settings

CRS = "EPSG:4548"  # CGCS2000 GK CM 117E, metres
X0, Y0 = 500_000.0, 3_130_000.0
AS_OF = datetime(2026, 11, 1, 12, 0)


def P(x: float, y: float) -> shapely.Point:
    return shapely.Point(X0 + x, Y0 + y)


def L(*xy: tuple[float, float]) -> shapely.LineString:
    return shapely.LineString([(X0 + x, Y0 + y) for x, y in xy])


def _grids() -> gpd.GeoDataFrame:
    # 2 x 2 grids of 500 m; 东街道 in the east half, 西街道 in the west half
    cells = [(0, 0, "G1", "西街道"), (500, 0, "G2", "东街道"), (0, 500, "G3", "西街道"), (500, 500, "G4", "东街道")]
    return gpd.GeoDataFrame(
        {"code": [c[2] for c in cells], "street_office": [c[3] for c in cells],
         "community": [f"{c[2]}社区" for c in cells]},
        geometry=[shapely.box(X0 + x, Y0 + y, X0 + x + 500, Y0 + y + 500) for x, y, _, _ in cells], crs=CRS)


def _town() -> dict[str, gpd.GeoDataFrame]:
    toilets = gpd.GeoDataFrame(
        {"name": ["T1", "T2", "T3", "T4"], "address": ["一路1号", "", "三路3号", "四路4号"],
         "toilet_class": ["二类", "二类", "三类", "一类"]},
        geometry=[P(100, 100), P(700, 100), P(100, 700), P(700, 700)], crs=CRS)
    markets = gpd.GeoDataFrame({"name": ["M1", "M2"], "address": ["", ""], "standardized": [True, False]},
                               geometry=[P(250, 250), P(800, 800)], crs=CRS)
    alleys = gpd.GeoDataFrame({"name": ["A1", "A2"], "hardened": [False, True], "lit": [True, False]},
                              geometry=[L((300, 50), (450, 50)), L((600, 300), (600, 450))], crs=CRS)
    streets = gpd.GeoDataFrame({"name": ["大道", "小路"], "road_class": ["主干路", "支路"]},
                               geometry=[L((0, 480), (1000, 480)), L((0, 20), (1000, 20))], crs=CRS)
    t = pd.Timestamp(AS_OF)
    problems = gpd.GeoDataFrame(
        {"category": ["占道经营", "占道经营", "暴露垃圾", "暴露垃圾", "乱堆物料"],
         "status": ["派遣", "处置", "立案", "结案", "立案"],
         "reported_at": [t - pd.Timedelta(days=5)] * 4 + [t - pd.Timedelta(days=1)],
         "deadline": [t - pd.Timedelta(days=4), t - pd.Timedelta(days=3), t + pd.Timedelta(hours=3),
                      t - pd.Timedelta(days=4), t + pd.Timedelta(days=1)],
         "closed_at": [pd.NaT, pd.NaT, pd.NaT, t - pd.Timedelta(days=4), pd.NaT]},
        # two overdue 占道经营 at M1; an open, not yet overdue 暴露垃圾 at T2; a closed one at T3;
        # an open 乱堆物料 far from everything
        geometry=[P(260, 250), P(250, 270), P(700, 130), P(110, 700), P(950, 50)], crs=CRS)
    return {"toilets": toilets, "markets": markets, "alleys": alleys, "streets": streets, "problems": problems,
            "grids": _grids()}


@pytest.fixture
def town() -> dict[str, gpd.GeoDataFrame]:
    return _town()


def _ready(town, **kw) -> gpd.GeoDataFrame:
    layers = {k: town[k] for k in ("toilets", "markets", "alleys", "streets")}
    c = sampling.candidates(layers, grids=town["grids"], settings=Settings())
    return sampling.readiness(c, settings=Settings(), as_of=AS_OF, problems=town["problems"], **kw)


def _by_name(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame.set_index("name").loc[name]


# ------------------------------------------------------------------ candidates
def test_candidates_registry(town):
    c = sampling.candidates({k: town[k] for k in ("toilets", "markets", "alleys", "streets")}, grids=town["grids"],
                      settings=Settings())
    assert c.crs == town["grids"].crs
    counts = c["category"].value_counts().to_dict()
    # the 主干路 is cut into one segment per grid it crosses (G1, G2), the 支路 is not sampled
    assert counts == {"公厕": 4, "农贸市场": 2, "背街小巷": 2, "主次干道": 2}
    seg = c[c["category"] == "主次干道"].set_index("grid_code")
    assert sorted(seg.index) == ["G1", "G2"]
    assert seg.geometry.length.to_numpy() == pytest.approx([500, 500])
    t2 = _by_name(c, "T2")
    assert (t2["grid_code"], t2["street_office"], t2["community"]) == ("G2", "东街道", "G2社区")
    assert t2["address"] == "东街道G2社区T2"  # blank address: 街道 + 社区 + name
    assert _by_name(c, "T1")["address"] == "一路1号"
    assert c["candidate_id"].is_unique


def test_listed_sample_points_deduplicated(town):
    sp = gpd.GeoDataFrame({"category": ["公厕", "医院"], "name": ["T1 (listed)", "县医院"]},
                          geometry=[P(105, 100), P(300, 300)], crs=CRS)
    c = sampling.candidates({"toilets": town["toilets"], "sample_points": sp}, grids=town["grids"], settings=Settings())
    assert "T1 (listed)" not in set(c["name"])  # same place as toilet T1 (5 m away)
    assert _by_name(c, "县医院")["category"] == "医院"


# ------------------------------------------------------------------ readiness
def test_readiness_reasons_match_planted_problems(town):
    r = _ready(town)
    m1 = _by_name(r, "M1")
    assert m1["reasons"] == "50米内有2起逾期未结的占道经营"
    assert m1["readiness"] == pytest.approx(100 - 2 * 1.5 * 15)  # 2 overdue × weight 1.5 × 15 points
    assert (m1["n_open"], m1["n_overdue"]) == (2, 2)
    assert not m1["ready"]
    t2 = _by_name(r, "T2")
    assert t2["reasons"] == "50米内有1起未结的暴露垃圾"
    assert t2["readiness"] == pytest.approx(100 - 2 * 5)
    assert _by_name(r, "T1")["reasons"] == ""  # nothing near
    assert _by_name(r, "T3")["reasons"] == "公厕为三类"  # its problem is closed
    assert _by_name(r, "M2")["reasons"] == "农贸市场未达标准化"
    assert _by_name(r, "A1")["reasons"] == "背街小巷未硬化"
    assert _by_name(r, "A2")["reasons"] == "背街小巷无路灯"
    assert r.index.equals(pd.RangeIndex(len(r)))
    assert r["readiness"].between(0, 100).all()


def test_readiness_rebounds_and_coverage_gaps(town):
    gaps = gpd.GeoDataFrame({"facility_kind": ["toilets", "markets"]},
                            geometry=[L((780, 820), (900, 820)), L((80, 110), (80, 300))], crs=CRS)
    # new report 2 rebounds on two closed ones (1 and 3): one rebound at A1; report 5 at A1 is too old
    t = pd.Timestamp(AS_OF)
    rebounds = gpd.GeoDataFrame(
        {"category": ["乱堆物料", "乱堆物料", "暴露垃圾"], "closed_id": [1, 3, 4], "new_id": [2, 2, 5],
         "reported_at": [t - pd.Timedelta(days=10)] * 2 + [t - pd.Timedelta(days=200)]},
        geometry=[L((300, 200), (380, 60)), L((420, 90), (380, 60)), L((420, 90), (400, 55))], crs=CRS)
    r = _ready(town, coverage_gaps=gaps, rebounds=rebounds)
    assert _by_name(r, "M2")["reasons"] == "农贸市场未达标准化; 不在公厕300米服务范围内"
    assert _by_name(r, "T1")["reasons"] == ""  # a market gap does not count against a toilet (gap_kinds)
    a1 = _by_name(r, "A1")
    assert a1["reasons"] == "背街小巷未硬化; 50米内有1起结案后反弹的乱堆物料"
    assert a1["readiness"] == pytest.approx(100 - 25 - 10)
    assert a1["n_rebounds"] == 1


def test_readiness_leaves_input_alone(town):
    c = sampling.candidates({"toilets": town["toilets"]}, grids=town["grids"], settings=Settings())
    before = c.copy()
    sampling.readiness(c, settings=Settings(), as_of=AS_OF, problems=town["problems"])
    pd.testing.assert_frame_equal(pd.DataFrame(c), pd.DataFrame(before))


# ------------------------------------------------------------------ selection
def _field(n_per_stratum: int = 30, *, strata: int = 4, spread_m: float = 1000, seed: int = 1,
           ready_share: float = 0.7, category: str = "公厕") -> gpd.GeoDataFrame:
    """Random candidates in ``strata`` vertical bands (街道 S0, S1, …) of width ``spread_m``."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(strata):
        x = rng.uniform(s * spread_m, (s + 1) * spread_m, n_per_stratum)
        y = rng.uniform(0, spread_m, n_per_stratum)
        score = np.where(rng.random(n_per_stratum) < ready_share, rng.uniform(80, 100, n_per_stratum),
                         rng.uniform(20, 79, n_per_stratum))
        for i in range(n_per_stratum):
            rows.append({"candidate_id": f"c:{s}:{i}", "category": category, "name": f"S{s}-{i}",
                         "street_office": f"S{s}", "grid_code": f"G{s}", "readiness": score[i],
                         "ready": score[i] >= 80, "geometry": P(x[i], y[i])})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS)


def _pairwise_min(picks: gpd.GeoDataFrame) -> float:
    xy = np.column_stack([picks.geometry.x, picks.geometry.y])
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    d[np.diag_indices_from(d)] = np.inf
    return float(d.min())


SEL = {"seed": 7, "min_spacing_m": 150, "pass_score": 80}


def test_quota_met_exactly_with_strata_and_spacing():
    places = _field()
    sel = sampling.select(places, quotas={"公厕": 10}, **SEL)
    assert len(sel.picks) == 10
    rep = sel.report.iloc[0]
    assert (rep["quota"], rep["picked"], rep["shortfall"], rep["reason"]) == (10, 10, 0, "")
    assert _pairwise_min(sel.picks) >= 150
    per = sel.picks["street_office"].value_counts()
    assert len(per) == 4 and per.max() - per.min() <= 1  # 10 over 4 strata: 3,3,2,2
    assert sel.picks["ready"].all()  # enough ready candidates everywhere
    assert list(sel.picks["pick"]) == list(range(1, 11))
    assert sel.picks["reason"].str.contains("达标候选点中随机抽取").all()
    assert sel.picks.crs == places.crs


def test_fewer_picks_than_strata_cover_distinct_strata():
    sel = sampling.select(_field(), quotas={"公厕": 3}, **SEL)
    assert sel.picks["street_office"].nunique() == 3


def test_shortfall_when_too_few_candidates():
    places = _field(1, strata=3)
    sel = sampling.select(places, quotas={"公厕": 5, "医院": 2}, **SEL)
    rep = sel.report.set_index("category")
    assert rep.loc["公厕", ["picked", "shortfall"]].tolist() == [3, 2]
    assert "候选点仅3个" in rep.loc["公厕", "reason"]
    assert rep.loc["医院", ["picked", "shortfall"]].tolist() == [0, 2]
    assert "无医院候选点" in rep.loc["医院", "reason"]


def test_shortfall_when_spacing_blocks():
    # 20 candidates within a 100 m square: with 200 m spacing only one can be picked
    places = _field(20, strata=1, spread_m=100)
    sel = sampling.select(places, quotas={"公厕": 4}, seed=1, min_spacing_m=200, pass_score=80)
    rep = sel.report.iloc[0]
    assert (rep["picked"], rep["shortfall"]) == (1, 3)
    assert "不足200米" in rep["reason"] and "19个" in rep["reason"]


def test_prefers_ready_but_takes_best_unready_to_keep_strata():
    places = _field(10, strata=2, ready_share=0.0)  # nobody ready
    ready = places["street_office"].eq("S0") & (np.arange(len(places)) % 2 == 0)
    places.loc[ready, "readiness"] = 95.0
    places["ready"] = places["readiness"] >= 80
    sel = sampling.select(places, quotas={"公厕": 2}, **SEL)
    by = sel.picks.set_index("street_office")
    assert by.loc["S0", "readiness"] == 95.0
    s1 = places[places["street_office"] == "S1"]
    assert by.loc["S1", "readiness"] == s1["readiness"].max()  # no ready one there: the best
    assert "无可选的达标候选点" in by.loc["S1", "reason"]
    assert sel.report.iloc[0]["not_ready_picked"] == 1


def test_same_seed_same_picks_and_seed_matters():
    places = _field()
    a = sampling.select(places, quotas={"公厕": 8}, **SEL).picks["candidate_id"].tolist()
    b = sampling.select(places.sample(frac=1, random_state=3).sort_index(), quotas={"公厕": 8}, **SEL)
    assert a == b.picks["candidate_id"].tolist()
    c = sampling.select(places, quotas={"公厕": 8}, **{**SEL, "seed": 8}).picks["candidate_id"].tolist()
    assert a != c
    # a category's picks do not depend on the other categories
    both = pd.concat([places, _field(category="医院", seed=2)], ignore_index=True)
    d = sampling.select(both, quotas={"医院": 3, "公厕": 8}, **SEL).picks
    assert d[d["category"] == "公厕"]["candidate_id"].tolist() == a


def test_random_mode():
    places = _field()
    r1 = sampling.select(places, quotas={"公厕": 12}, random_mode=True, **SEL)
    r2 = sampling.select(places, quotas={"公厕": 12}, random_mode=True, **SEL)
    assert len(r1.picks) == 12 and r1.picks["candidate_id"].is_unique
    assert r1.picks["candidate_id"].tolist() == r2.picks["candidate_id"].tolist()
    assert (r1.picks["mode"] == "随机").all()


def test_quota_table_by_population():
    sc = Settings().sampling
    assert sc.quotas_for(300_000)["主次干道"] == 8
    assert sc.quotas_for(1_000_000)["主次干道"] == 12
    assert sc.quotas_for(3_000_000)["社区居委会"] == 4
    sc.quotas = {"公厕": 20}
    assert sc.quotas_for(300_000)["公厕"] == 20


# ------------------------------------------------------------------ mock spot-check
@pytest.mark.parametrize(("n_places", "n_failing", "n_drawn"), [(12, 3, 4), (40, 1, 5), (6, 5, 2), (5, 0, 3)])
def test_exact_probability_matches_scipy(n_places, n_failing, n_drawn):
    expected = 1 - hypergeom(M=n_places, n=n_failing, N=n_drawn).pmf(0)
    assert sampling.p_any_fail(n_places, n_failing, n_drawn) == pytest.approx(expected, abs=1e-12)


def test_simulated_failure_probability_and_loss_match_exact():
    # 12 toilets, 3 failing (readiness 50, 60, 70), inspectors draw 4
    scores = np.array([50, 60, 70] + [90] * 9, dtype=float)
    places = pd.DataFrame({"category": "公厕", "readiness": scores, "name": [f"T{i}" for i in range(12)]})
    s = Settings()
    s.sampling.spot_checks = {"公厕": 4}
    draws = 40_000
    mc = sampling.mock_check(places, settings=s, draws=draws, seed=11)
    row = mc.risk.iloc[0]
    exact = 1 - hypergeom(M=12, n=3, N=4).pmf(0)
    assert row["p_fail_exact"] == pytest.approx(exact)
    se = np.sqrt(exact * (1 - exact) / draws)
    assert abs(row["p_fail"] - exact) < 4 * se
    loss_exact = (0.5 + 0.4 + 0.3) * 4 / 12  # deduction 1 × (1 - r/100), each drawn with prob n/N
    assert row["expected_loss_exact"] == pytest.approx(loss_exact)
    assert row["expected_loss"] == pytest.approx(loss_exact, rel=0.02)
    # repairs: worst place first (equal risk drop within a category, larger loss first)
    assert mc.repairs["name"].tolist() == ["T0", "T1", "T2"]
    assert mc.repairs["total_risk_after"].iloc[-1] == pytest.approx(0, abs=1e-12)
    assert mc.repairs["risk_before"].iloc[0] == pytest.approx(exact)


def test_simulation_distribution_of_failing_count():
    """The hypergeometric shortcut: the number of failing places drawn follows the hypergeometric pmf
    (scipy), and each failing place is drawn with probability n/N."""
    rng = np.random.default_rng(5)
    draws = 60_000
    loss = np.array([1.0, 2.0, 4.0, 8.0])  # the loss of a draw encodes which failing places it holds
    _, lost = sampling.simulate_draws(loss, 15, 5, draws=draws, rng=rng)
    bits = lost.round().astype(int)
    held = (bits[:, None] >> np.arange(4)) & 1
    freq = np.bincount(held.sum(axis=1), minlength=5)[:5] / draws
    pmf = hypergeom(M=15, n=4, N=5).pmf(np.arange(5))
    assert np.all(np.abs(freq - pmf) <= 4 * np.sqrt(pmf * (1 - pmf) / draws) + 1e-9)
    p = 5 / 15
    np.testing.assert_allclose(held.mean(axis=0), p, atol=4 * np.sqrt(p * (1 - p) / draws))


def test_repairs_go_to_riskiest_category_first():
    places = pd.DataFrame({
        "category": ["公厕"] * 10 + ["农贸市场"] * 10,
        "readiness": [50] + [95] * 9 + [50] * 3 + [95] * 7,
        "name": [f"T{i}" for i in range(10)] + [f"M{i}" for i in range(10)]})
    mc = sampling.mock_check(places, settings=Settings(), draws=2000, seed=1)
    # 公厕: 1 of 10 failing, risk 0.3 → 0 on repair; 农贸市场: 3 failing, repairing one: 0.708 → 0.533
    first = mc.repairs.iloc[0]
    assert first["category"] == "公厕" and first["risk_drop"] == pytest.approx(0.3)
    assert (mc.repairs["risk_drop"] >= -1e-12).all()
    assert mc.repairs["total_risk_after"].is_monotonic_decreasing




# ------------------------------------------------------------------ the run, end to end
def test_run_sample_and_mock_check(project, town):
    from sanigrid.scripts.sampling import run_mock_check, run_sample

    with project.store.transaction() as tx:
        for kind, frame in town.items():
            tx.write(kind, frame)
    run = run_sample(project, seed=3, as_of=AS_OF, maps=False)
    assert set(run.missing) == {"rebounds", "coverage_gaps"}
    stored = project.store.read("sample_selection")
    assert len(stored) == len(run.selection.picks) > 0
    assert set(stored.geometry.geom_type) == {"Point"}
    assert project.store.meta("sample_selection")["params"]["seed"] == 3
    assert len(project.store.read("sample_candidates")) == len(run.candidates)
    assert project.output_path("样本点清单.xlsx").exists()
    xl = pd.read_excel(project.output_path("样本点清单.xlsx"), sheet_name=None)
    assert {"样本点清单", "配额与缺口", "分层与随机对比", "候选点"} <= set(xl)
    assert {"类别", "名称", "网格编码", "地址", "经度", "纬度", "准备度", "问题说明"} <= set(xl["样本点清单"].columns)
    again = run_sample(project, seed=3, as_of=AS_OF, maps=False)
    assert again.selection.picks["candidate_id"].tolist() == run.selection.picks["candidate_id"].tolist()
    mc = run_mock_check(project, draws=1000, as_of=AS_OF)
    assert set(mc.result.risk["category"]) == {"公厕", "农贸市场", "背街小巷", "主次干道"}
    assert project.output_path("模拟抽查风险表.xlsx").exists()


def test_cli_sample_and_mock_check(project, town):
    from typer.testing import CliRunner

    from sanigrid.scripts.cli import app

    with project.store.transaction() as tx:
        for kind in ("grids", "toilets", "markets", "problems"):
            tx.write(kind, town[kind])
    runner = CliRunner()
    root = str(project.root)
    res = runner.invoke(app, ["sample", "-p", root, "--seed", "4", "--no-maps", "--as-of", "2026-11-01"])
    assert res.exit_code == 0, res.output
    assert "公厕" in res.output and "样本点清单.xlsx" in res.output
    assert project.store.meta("sample_selection")["params"]["as_of"].startswith("2026-11-01")
    res = runner.invoke(app, ["mock-check", "-p", root, "--draws", "500", "--as-of", "2026-11-01"])
    assert res.exit_code == 0, res.output
    assert "模拟抽查" in res.output and "M1" in res.output  # M1 (two overdue problems) is to be repaired


def test_vectorised_exact_probability():
    f = np.arange(0, 13)
    got = sampling._p_any_fail_many(12, f, 4)
    np.testing.assert_allclose(got, [sampling.p_any_fail(12, int(k), 4) for k in f], atol=1e-12)


def test_repairs_do_not_pass_over_a_category_needing_several():
    # 公厕: 5 of 6 failing, draw 3: risk 1.0 until 3 are repaired, then falls fast (block value 1/5 per
    # repair); 农贸市场: 1 of 20 failing, draw 1: 0.05 per repair. A one-step greedy would start with 农贸市场.
    places = pd.DataFrame({"category": ["公厕"] * 6 + ["农贸市场"] * 20,
                           "readiness": [50.0] * 5 + [95.0] + [50.0] + [95.0] * 19,
                           "name": [f"T{i}" for i in range(6)] + [f"M{i}" for i in range(20)]})
    s = Settings()
    s.sampling.spot_checks = {"公厕": 3, "农贸市场": 1}
    mc = sampling.mock_check(places, settings=s, draws=1000, seed=1)
    assert mc.repairs["category"].tolist()[:5] == ["公厕"] * 5
    assert mc.repairs["total_risk_after"].iloc[4] == pytest.approx(0.05)


def test_grids_spread_within_one_street_office():
    places = _field(40, strata=1, spread_m=1000, ready_share=1.0)
    xy = np.column_stack([places.geometry.x - X0, places.geometry.y - Y0])
    places["grid_code"] = [f"Q{int(x // 500)}{int(y // 500)}" for x, y in xy]  # 4 grids in one 街道
    sel = sampling.select(places, quotas={"公厕": 4}, seed=3, min_spacing_m=0, pass_score=80)
    assert sel.picks["grid_code"].nunique() == 4


@pytest.mark.parametrize("seed", range(5))
def test_strata_balanced_and_spaced_over_seeds(seed):
    places = _field(25, strata=3, seed=seed)
    sel = sampling.select(places, quotas={"公厕": 11}, seed=seed, min_spacing_m=120, pass_score=80)
    per = sel.picks["street_office"].value_counts()
    assert len(sel.picks) == 11 and len(per) == 3 and per.max() - per.min() <= 1
    assert _pairwise_min(sel.picks) >= 120


def test_toilet_class_required_only_on_main_roads_and_at_markets(town):
    toilets = gpd.GeoDataFrame({"name": ["路旁", "背街", "市场旁", "旱厕"],
                                "toilet_class": ["三类", "三类", "三类", "旱厕"]},
                               geometry=[P(300, 490), P(100, 700), P(262, 240), P(900, 900)], crs=CRS)
    c = sampling.candidates({"toilets": toilets}, grids=town["grids"], settings=Settings())
    r = sampling.readiness(c, settings=Settings(), as_of=AS_OF, streets=town["streets"], markets=town["markets"])
    assert _by_name(r, "路旁")["reasons"] == "公厕为三类(主干路/次干路旁, 应不低于二类)"
    assert _by_name(r, "市场旁")["reasons"] == "公厕为三类(农贸市场旁, 应不低于二类)"
    assert _by_name(r, "背街")["reasons"] == ""  # 三类 is allowed on other streets
    assert _by_name(r, "旱厕")["reasons"] == "公厕为旱厕"
    # without the streets every toilet below the class is named
    r2 = sampling.readiness(c, settings=Settings(), as_of=AS_OF)
    assert _by_name(r2, "背街")["reasons"] == "公厕为三类"


def _picked_by_category(places: gpd.GeoDataFrame, picks: list) -> pd.DataFrame:
    """How select() built its picks before: each category's rows with the three columns, concatenated."""
    frames = []
    for idx, reasons, mode in picks:
        frame = places.iloc[idx].copy()
        frame["pick"] = np.arange(1, len(idx) + 1)
        frame["reason"] = reasons
        frame["mode"] = mode
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("with_own_reason", [False, True])
def test_picked_rows_equal_each_categorys_rows_concatenated(town, with_own_reason):
    """One take and the pick columns set once give the frame of the per-category concatenation (values,
    dtypes, geometry, index), with an empty category among them; a 'reason' column of the places is
    replaced as before."""
    places = _ready(town)
    if with_own_reason:
        places = places.assign(reason="旧")
    n = len(places)
    picks = [([3, 0, 5], ["甲", "乙", "丙"], "分层"), ([], [], "分层"), ([n - 1, 1], ["丁", "戊"], "分层")]
    got = sampling._picked_rows(places, picks)
    want = _picked_by_category(places, picks)
    pd.testing.assert_frame_equal(got, want)
    assert list(got.dtypes) == list(want.dtypes) and got["pick"].tolist() == [1, 2, 3, 1, 2]
    sel = sampling.select(places, quotas={"背街小巷": 2, "公厕": 1, "无此类": 1}, seed=3, min_spacing_m=0,
                          pass_score=80)
    assert set(sel.picks.columns) >= {"pick", "reason", "mode"} and sel.picks["mode"].eq("分层").all()


def _compare_by_filtering(stratified, random) -> pd.DataFrame:
    """scripts.sampling.compare as it was: a filtered frame per category."""
    rows = []
    for mode, sel in (("分层", stratified), ("随机", random)):
        rep = sel.report.set_index("category")
        for cat in rep.index:
            p = sel.picks[sel.picks["category"] == cat]
            xy = np.column_stack([p.geometry.x, p.geometry.y])
            d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
            d[np.diag_indices_from(d)] = np.inf
            rows.append({"category": cat, "mode": mode, "picked": len(p),
                         "mean_readiness": round(float(p["readiness"].mean()), 1) if len(p) else float("nan"),
                         "share_ready": round(float(p["ready"].mean()), 3) if len(p) else float("nan"),
                         "strata_covered": int(rep.loc[cat, "strata_covered"]),
                         "strata": int(rep.loc[cat, "strata"]),
                         "min_spacing": round(float(d.min()), 0) if len(p) >= 2 else float("nan")})
    return pd.DataFrame(rows).sort_values(["category", "mode"], kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("seed", [1, 7])
def test_compare_equals_a_filtered_frame_per_category(town, seed):
    from sanigrid.scripts.sampling import compare

    places = _ready(town)
    quotas = {"背街小巷": 3, "公厕": 2, "农贸市场": 1, "主次干道": 2, "无此类": 2}
    sels = [sampling.select(places, quotas=quotas, seed=seed, min_spacing_m=50, pass_score=80, random_mode=m)
            for m in (False, True)]
    got = compare(*sels)
    pd.testing.assert_frame_equal(got, _compare_by_filtering(*sels))
    assert got["picked"].sum() > 0 and got["min_spacing"].notna().any()
