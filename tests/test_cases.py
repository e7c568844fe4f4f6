"""The case rules (layers.cases): legal steps, who may take each (every role against every step),
the history record, deadlines across weekends and holidays, open/overdue at any instant, the one
"as of" rule."""

from __future__ import annotations

from datetime import date, datetime

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from sanigrid.geo.problems import assign
from sanigrid.layers import cases
from sanigrid.layers._errors import CaseError, IllegalTransition, PhotoRequired, StepForbidden
from sanigrid.layers.cases import (
    check_transition,
    closed_on_time,
    deadline_for,
    deadlines,
    history_record,
    is_overdue,
    workday,
)
from sanigrid.layers.settings import ProblemCategory, Settings


@pytest.fixture
def settings() -> Settings:
    s = Settings()
    s.problems.categories = [
        ProblemCategory(name="暴露垃圾", deadline=4, unit="hours"),
        ProblemCategory(name="私搭乱建", deadline=3, unit="workdays", route_to="县城管局"),
        ProblemCategory(name="乱堆物料", deadline=1, unit="workdays"),
    ]
    # 2026-10-01 (Thu) and 10-02 (Fri) are holidays; Sunday 2026-09-27 is worked (调休)
    s.problems.holidays = [date(2026, 10, 1), date(2026, 10, 2)]
    s.problems.workdays_extra = [date(2026, 9, 27)]
    return s


@pytest.mark.parametrize("path", [
    ["立案", "派遣", "处置", "核查", "结案"],
    ["立案", "派遣", "处置", "核查", "返工", "处置", "核查", "结案"],
])
def test_legal_paths(path):
    for a, b in zip(path, path[1:], strict=False):
        check_transition(a, b)


@pytest.mark.parametrize("a,b", [("立案", "结案"), ("派遣", "核查"), ("结案", "处置"), ("处置", "返工"),
                                 ("立案", "立案"), ("处置", "完成")])
def test_illegal_transitions_refused_with_reason(a, b):
    with pytest.raises(IllegalTransition, match=a if b != "完成" else "未知状态"):
        check_transition(a, b)


def test_history_record_keeps_time_and_actor():
    row = history_record(7, "核查", "返工", at=datetime(2026, 10, 9, 9, 30), actor="王五", note="仍有垃圾")
    assert row == {"problem_id": 7, "from_status": "核查", "to_status": "返工",
                   "at": pd.Timestamp("2026-10-09 09:30"), "actor": "王五", "note": "仍有垃圾"}


def test_hour_deadline_is_clock_hours(settings):
    assert deadline_for("暴露垃圾", datetime(2026, 9, 25, 22, 0), settings=settings) == datetime(2026, 9, 26, 2, 0)


def test_workday_deadline_skips_weekend(settings):
    # Friday 2026-09-18 10:00 + 1 working day → Monday 09-21 10:00
    assert deadline_for("乱堆物料", datetime(2026, 9, 18, 10), settings=settings) == datetime(2026, 9, 21, 10)


def test_workday_deadline_skips_holidays_and_counts_adjusted_sunday(settings):
    # Friday 09-25 + 3 working days: Sun 09-27 is worked (1), Mon 09-28 (2), Tue 09-29 (3)
    assert deadline_for("私搭乱建", datetime(2026, 9, 25, 15), settings=settings) == datetime(2026, 9, 29, 15)
    # Wednesday 09-30 + 1: Thu/Fri are holidays, Sat/Sun rest → Monday 10-05
    assert deadline_for("乱堆物料", datetime(2026, 9, 30, 9), settings=settings) == datetime(2026, 10, 5, 9)


def test_report_on_rest_day_starts_next_working_day(settings):
    # Saturday 09-19 16:00 → starts Mon 09-21 00:00 → +1 working day = Tue 09-22 00:00
    assert deadline_for("乱堆物料", datetime(2026, 9, 19, 16), settings=settings) == datetime(2026, 9, 22)
    assert not workday(date(2026, 10, 1), settings=settings)
    assert workday(date(2026, 9, 27), settings=settings)


def test_vectorised_equals_scalar(settings):
    cats = ["暴露垃圾", "私搭乱建", "乱堆物料"] * 20
    starts = pd.date_range("2026-09-20 07:00", periods=60, freq="17h")
    vec = deadlines(cats, starts, settings=settings)
    one = [deadline_for(c, t.to_pydatetime(), settings=settings) for c, t in zip(cats, starts, strict=True)]
    assert list(vec) == [pd.Timestamp(x) for x in one]


def test_unknown_category_named(settings):
    with pytest.raises(ValueError, match="乱吐"):
        deadlines(["乱吐"], [datetime(2026, 9, 1)], settings=settings)


def test_overdue_at_any_date():
    p = pd.DataFrame({
        "status": ["结案", "处置", "结案"],
        "reported_at": pd.to_datetime(["2026-09-01", "2026-09-01", "2026-09-01"]),
        "deadline": pd.to_datetime(["2026-09-02", "2026-09-02", "2026-09-02"]),
        "closed_at": pd.to_datetime(["2026-09-05 00:00", None, "2026-09-01 12:00"]),
    })
    assert is_overdue(p, as_of=datetime(2026, 9, 4)).tolist() == [True, True, False]
    assert is_overdue(p, as_of=datetime(2026, 9, 6)).tolist() == [False, True, False]
    assert is_overdue(p, as_of=datetime(2026, 9, 1, 18)).tolist() == [False, False, False]
    assert cases.overdue(p, as_of=datetime(2026, 9, 4))["days_overdue"].tolist() == [2.0, 2.0, 0.0]
    assert closed_on_time(p).tolist() == [False, pd.NA, True]


def test_assign_routes_category_or_grid_lead_unit(settings):
    grids = gpd.GeoDataFrame({"code": ["A", "B"], "lead_unit": ["县卫健委", "县教育局"]},
                             geometry=[shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)], crs=4548)
    probs = gpd.GeoDataFrame({"category": ["暴露垃圾", "私搭乱建", "乱堆物料"]},
                             geometry=[shapely.Point(5, 5), shapely.Point(15, 5), shapely.Point(50, 50)], crs=4548)
    out = assign(probs, grids, settings=settings)
    assert out["grid_code"].tolist() == ["A", "B", None]
    assert out["unit"].tolist() == ["县卫健委", "县城管局", None]
    assert "grid_code" not in probs.columns  # input untouched


NOW = datetime(2026, 12, 1, 9, 30)


def test_as_of_given_wins_over_everything():
    assert cases.as_of(given=datetime(2026, 1, 1), recorded="2026-11-15T18:00:00", now_=NOW) == datetime(2026, 1, 1)


def test_as_of_recorded_instant_holds_while_the_desk_records_nothing_after_it():
    assert cases.as_of(recorded="2026-11-15T18:00:00", last_step=pd.Timestamp("2026-11-15 17:59"),
                       now_=NOW) == datetime(2026, 11, 15, 18)
    # report and closing times later than the record are the data's own (a snapshot's quirks), not the desk's
    assert cases.as_of(recorded="2026-11-15T18:00:00", last_event=pd.Timestamp("2026-11-17"),
                       now_=NOW) == datetime(2026, 11, 15, 18)


def test_as_of_is_now_once_the_desk_records_steps_after_the_snapshot():
    # a report or step made on the desk after the recorded instant: the statuses are known up to now
    assert cases.as_of(recorded="2026-11-15T18:00:00", last_step=pd.Timestamp("2026-11-28 10:00"),
                       now_=NOW) == NOW
    assert cases.as_of(recorded=None, last_event=pd.Timestamp("2026-11-30 10:00"), now_=NOW) == NOW


def test_as_of_old_data_without_a_record_stop_at_the_midnight_after_their_last_event():
    s = Settings()
    last = pd.Timestamp("2020-03-01 09:00")
    assert cases.as_of(last_event=last, now_=NOW, settings=s) == datetime(2020, 3, 2)
    assert cases.as_of(recorded="not a date", last_event=last, now_=NOW, settings=s) == datetime(2020, 3, 2)
    assert cases.as_of(last_event=last, last_step=pd.Timestamp("2020-04-01 10:00"), now_=NOW,
                       settings=s) == datetime(2020, 4, 2)
    s.problems.snapshot_after_days = 10_000  # a county that says old data are still live
    assert cases.as_of(last_event=last, now_=NOW, settings=s) == NOW


def test_last_event_reads_reports_and_closures():
    p = pd.DataFrame({"reported_at": pd.to_datetime(["2026-11-01", "2026-11-03"]),
                      "closed_at": pd.to_datetime([None, "2026-11-04 08:00"])})
    assert cases.last_event(p) == pd.Timestamp("2026-11-04 08:00")


def test_store_as_of_reads_the_store_and_follows_the_desk(project):
    frame = gpd.GeoDataFrame({"problem_id": [1], "category": ["暴露垃圾"], "status": ["处置"],
                              "reported_at": pd.to_datetime(["2026-11-10 08:00"]),
                              "deadline": pd.to_datetime(["2026-11-10 12:00"])},
                             geometry=[shapely.Point(523_000, 3_131_000)], crs=4548)
    with project.store.transaction() as tx:
        tx.write("problems", frame, params={"as_of": "2026-11-15T18:00:00"})
        tx.write_table(cases.HISTORY_TABLE, pd.DataFrame([cases.opening_record(1, at=datetime(2026, 11, 10, 8),
                                                                                actor="x")]))
    s = project.settings
    assert cases.store_as_of(project.store, settings=s, now_=NOW) == datetime(2026, 11, 15, 18)
    project.store.append_table(cases.HISTORY_TABLE, pd.DataFrame([cases.history_record(
        1, "处置", "核查", at=datetime(2026, 11, 30, 9), actor="y")]))
    assert cases.store_as_of(project.store, settings=s, now_=NOW) == NOW
    assert cases.store_as_of(project.store, settings=s, given=datetime(2026, 11, 1)) == datetime(2026, 11, 1)


def test_open_closed_by_status_when_the_closing_time_is_missing():
    p = pd.DataFrame({"status": ["结案", "处置", None], "reported_at": pd.to_datetime(["2026-09-01"] * 3),
                      "deadline": pd.to_datetime(["2026-09-02"] * 3), "closed_at": pd.to_datetime([None] * 3)})
    assert cases.is_open(p, as_of=datetime(2026, 9, 4)).tolist() == [False, True, True]
    od = cases.overdue(p, as_of=datetime(2026, 9, 4, 12))
    assert od["overdue"].tolist() == [False, True, True]
    assert od["days_overdue"].tolist() == [0.0, 2.5, 2.5]


def test_overdue_on_the_input_index_and_rounded_once():
    p = pd.DataFrame({"status": ["处置", "处置"], "reported_at": pd.to_datetime(["2026-09-01"] * 2),
                      "deadline": pd.to_datetime(["2026-09-02 00:00", "2026-09-03 13:13"]),
                      "closed_at": pd.NaT}, index=[40, 7])
    od = cases.overdue(p, as_of=datetime(2026, 9, 4, 2, 0))
    assert od.index.tolist() == [40, 7]
    assert od["days_overdue"].tolist() == [2.1, 0.5]  # 2.083 → 2.1, 0.535 → 0.5 (one decimal, everywhere)
    w = cases.with_overdue(p, as_of=datetime(2026, 9, 4, 2, 0))
    assert "overdue" not in p and w["overdue"].tolist() == [True, True]


def test_deadlines_on_the_input_index(settings):
    cats = pd.Series(["暴露垃圾", "乱堆物料"], index=[11, 5])
    starts = pd.Series(pd.to_datetime(["2026-09-25 22:00", "2026-09-18 10:00"]), index=[11, 5])
    out = deadlines(cats, starts, settings=settings)
    assert out.index.tolist() == [11, 5]
    assert out.loc[5] == pd.Timestamp("2026-09-21 10:00")
    assert out.name == "deadline"


def test_fill_deadlines_keeps_given_ones_and_fills_the_rest(settings):
    p = pd.DataFrame({"category": ["暴露垃圾", "乱堆物料"], "reported_at": pd.to_datetime(["2026-09-25 22:00",
                                                                                    "2026-09-18 10:00"]),
                      "deadline": pd.to_datetime(["2026-10-01 00:00", None])}, index=[3, 9])
    out = cases.fill_deadlines(p, settings=settings)
    assert out.index.tolist() == [3, 9]
    assert out.tolist() == [pd.Timestamp("2026-10-01"), pd.Timestamp("2026-09-21 10:00")]
    assert p["deadline"].isna().sum() == 1  # input untouched


# ---------------------------------------------------------------- who may take each step
# The rule as issue 13 states it, written independently of the table in layers.cases:
# the office takes every step anywhere; the inspector (监督员) verifies: 核查 → 结案 or 返工, anywhere;
# a grid head takes every other step, in its own grid only (it cannot verify or close its own work);
# a viewer takes none; an illegal step is taken by no one.
LEGAL = {("立案", "派遣"), ("派遣", "处置"), ("处置", "核查"), ("核查", "结案"), ("核查", "返工"), ("返工", "处置")}
VERIFY = {("核查", "结案"), ("核查", "返工")}


def expected(role: str, step: tuple[str, str], own: bool) -> bool:
    if step not in LEGAL:
        return False
    return {"office": True, "inspector": step in VERIFY, "grid_head": own and step not in VERIFY,
            "viewer": False}[role]


STEPS = [(a, b) for a in cases.STATUSES for b in cases.STATUSES]


@pytest.mark.parametrize("own", [True, False], ids=["own-grid", "other-grid"])
@pytest.mark.parametrize("step", STEPS, ids=[f"{a}-{b}" for a, b in STEPS])
@pytest.mark.parametrize("role", ["office", "grid_head", "inspector", "viewer"])
def test_every_role_against_every_step(role, step, own):
    want = expected(role, step, own)
    assert cases.may_step(role, *step, own_grid=own) is want
    assert (step[1] in cases.next_steps(step[0], role=role, own_grid=own)) is want
    if want:
        cases.check_step(*step, role=role, own_grid=own, has_after_photo=True)
    else:
        kind = IllegalTransition if step not in LEGAL else StepForbidden
        with pytest.raises(kind) as err:
            cases.check_step(*step, role=role, own_grid=own, has_after_photo=True)
        assert isinstance(err.value, CaseError) and isinstance(err.value, ValueError)


def test_the_lifecycle_is_the_table():
    assert set(cases.PERMISSIONS) == LEGAL
    assert {(a, b) for a, nxt in cases.TRANSITIONS.items() for b in nxt} == LEGAL
    assert cases.ROLES == ("office", "grid_head", "inspector", "viewer")
    assert cases.ROLE_NAMES["zh"]["inspector"] == "监督员"


def test_forbidden_step_says_who_may():
    with pytest.raises(StepForbidden, match="监督员") as err:
        cases.check_step("核查", "结案", role="grid_head", own_grid=True)
    assert "网格长" in str(err.value)
    with pytest.raises(StepForbidden, match="不在本网格"):
        cases.check_step("派遣", "处置", role="grid_head", own_grid=False)


@pytest.mark.parametrize("action,office,head_own,head_other,inspector,viewer", [
    ("report", True, True, False, True, False),
    ("edit", True, True, False, False, False),
    ("move", True, False, False, False, False),
    ("photo", True, True, False, True, False),
    ("priority", True, False, False, False, False),
])
def test_actions_per_role(action, office, head_own, head_other, inspector, viewer):
    assert cases.may("office", action, own_grid=False) is office
    assert cases.may("grid_head", action, own_grid=True) is head_own
    assert cases.may("grid_head", action, own_grid=False) is head_other
    assert cases.may("inspector", action, own_grid=False) is inspector
    assert cases.may("viewer", action, own_grid=True) is viewer
    assert cases.can_act("viewer") is False and cases.can_act("inspector") is True


def test_hand_in_needs_an_after_photo_unless_the_setting_says_no():
    s = Settings()
    with pytest.raises(PhotoRequired, match="照片"):
        cases.check_step("处置", "核查", role="grid_head", own_grid=True, has_after_photo=False, settings=s)
    cases.check_step("处置", "核查", role="grid_head", own_grid=True, has_after_photo=True, settings=s)
    s.problems.after_photo_required = False
    cases.check_step("处置", "核查", role="grid_head", own_grid=True, has_after_photo=False, settings=s)
    # only handing in needs it
    cases.check_step("核查", "结案", role="inspector", own_grid=False, has_after_photo=False, settings=Settings())


def test_after_photo_is_one_taken_in_the_current_round_of_handling():
    hist = pd.DataFrame({"problem_id": [1, 1, 1, 1, 1, 1],
                         "from_status": ["", "立案", "派遣", "处置", "核查", "返工"],
                         "to_status": ["立案", "派遣", "处置", "核查", "返工", "处置"],
                         "at": pd.to_datetime(["2026-11-01 08:00", "2026-11-01 09:00", "2026-11-01 10:00",
                                               "2026-11-01 12:00", "2026-11-02 09:00", "2026-11-02 10:00"])})
    since = cases.handling_started(hist).loc[1]
    assert since == pd.Timestamp("2026-11-02 10:00")  # the rework round
    assert not cases.after_photo_taken(["2026-11-01T11:00:00"], since)  # the first round's photo
    assert cases.after_photo_taken(["2026-11-01T11:00:00", "2026-11-02T10:00:00"], since)
    assert not cases.after_photo_taken([], since)


def test_history_rows_checks_every_step_vectorised():
    rows = cases.history_rows([1, 1, 2], ["", "立案", None], ["立案", "派遣", "立案"],
                              pd.to_datetime(["2026-11-01", "2026-11-02", "2026-11-03"]), "系统")
    assert list(rows.columns) == list(cases.HISTORY_COLUMNS)
    assert rows["from_status"].tolist() == ["", "立案", ""]
    with pytest.raises(IllegalTransition, match="1 条.*编号 2"):
        cases.history_rows([1, 2], ["立案", "立案"], ["派遣", "结案"], pd.to_datetime(["2026-11-01"] * 2), "x")
    rec = cases.opening_record(5, at=datetime(2026, 11, 1), actor="张三")
    assert rec["from_status"] == "" and rec["to_status"] == "立案"
