"""The demo's issue-14 material: departments that rank far apart (planned toilets and the 暗访 report
are checked here too as they arrive)."""

from __future__ import annotations

import pandas as pd
import pytest

from sanigrid.geo.scorecard import unit_scorecard
from sanigrid.scripts.demo import demo_settings, make_demo_layers
from sanigrid.scripts.demo.county import DemoData
from sanigrid.scripts.demo.facts import AS_OF, UNIT_PACE


@pytest.fixture(scope="module")
def data() -> DemoData:
    return make_demo_layers(demo_settings(), seed=2026, n_problems=5000)


def test_two_departments_rank_far_apart(data: DemoData) -> None:
    res = unit_scorecard(data.layers["problems"], settings=demo_settings(), as_of=AS_OF)
    t = res.units.set_index("unit")
    fast, slow = min(UNIT_PACE, key=UNIT_PACE.get), max(UNIT_PACE, key=UNIT_PACE.get)
    assert t.loc[fast, "rank"] == 1 and t.loc[slow, "rank"] == len(t)
    assert t.loc[fast, "score"] - t.loc[slow, "score"] > 20
    assert t.loc[fast, "on_time_rate"] > t["on_time_rate"].median() > t.loc[slow, "on_time_rate"]


def test_five_planned_toilets_one_late_in_the_gaps(data: DemoData) -> None:
    from sanigrid.geo.projects import planned_coverage
    from sanigrid.layers import projects

    t = data.layers["toilets"]
    plist = projects.project_list({"toilets": t}, as_of=AS_OF)
    assert len(plist) == 5 and int(plist["late"].sum()) == 1
    assert plist.iloc[0]["build_status"] == "在建" and plist.iloc[0]["days_late"] == 16
    s = demo_settings()
    res = planned_coverage(t, data.layers["streets"], data.layers["alleys"], kind="toilets",
                           radius_m=s.facilities["toilets"].radius_m, as_of=AS_OF,
                           residents=data.layers["residents"], grids=data.layers["grids"])
    # each project fills part of an under-served district: every one adds street and households
    assert (res.projects["new_street_m"] > 100).all() and (res.projects["new_households"] > 0).sum() >= 4
    assert res.summary["coverage_pct_done"] > res.summary["coverage_pct_now"]
    assert res.summary["new_street_km"] <= res.projects["new_street_m"].sum() / 1000 + 1e-6
    # each project's gain equals a coverage run with that project built (the oracle), for two of them
    from sanigrid.geo.coverage import coverage

    base = projects.built(t)
    pending = t[projects.is_pending(t).to_numpy()]
    now_m = res.now.segments.loc[res.now.segments["covered"], "length_m"].sum()
    now_hh = res.now.demand.loc[res.now.demand["covered"], "households"].sum()
    gains = res.projects.set_index("name")
    for i in (0, 3):
        one = coverage(pd.concat([base, pending.iloc[[i]]]), data.layers["streets"], data.layers["alleys"],
                       kind="toilets", radius_m=s.facilities["toilets"].radius_m,
                       residents=data.layers["residents"], grids=data.layers["grids"])
        name = pending.iloc[i]["name"]
        covered = one.segments.loc[one.segments["covered"], "length_m"].sum()
        assert gains.loc[name, "new_street_m"] == pytest.approx(covered - now_m, abs=0.5)
        assert gains.loc[name, "new_households"] == one.demand.loc[one.demand["covered"], "households"].sum() - now_hh


def test_inspection_report_of_60_items(data: DemoData) -> None:
    from sanigrid.geo.problems import inspection_progress
    from sanigrid.layers.cases import fill_deadlines
    from sanigrid.scripts.demo.facts import INSPECTION_NAME

    p = data.layers["problems"].copy()
    batch = p[p["batch"] == INSPECTION_NAME]
    assert len(batch) == 60 and (batch["source"] == "暗访").all()
    assert batch["measure"].notna().all() and batch["owner"].notna().all()
    assert p.loc[p["batch"].isna(), "measure"].isna().all()
    p["deadline"] = fill_deadlines(p, settings=demo_settings())
    prog = inspection_progress(p, as_of=AS_OF, settings=demo_settings())
    r = prog.set_index("batch").loc[INSPECTION_NAME]
    assert r["items"] == 60 and r["closed_items"] + r["open_items"] == 60
    assert r["closed_items"] > 30 and r["open_items"] > 0
    assert r["line"].startswith(f"{INSPECTION_NAME} (2026-10-08): 60 项, 已销号 {r['closed_items']}")
