"""The demo's issue-14 material: departments that rank far apart (planned toilets and the 暗访 report
are checked here too as they arrive)."""

from __future__ import annotations

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
