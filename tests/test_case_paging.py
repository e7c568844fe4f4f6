"""The case list paged in the store (SQL) against the whole-frame computation on the same store, as an
oracle: the same cases, counts, units, order and page for every filter, sort order, page boundary, the
grid head's read rule and the "as of" instants (recorded, and now once the desk has recorded a step);
and the new store reads (count, count_by, distinct, read_page, read_columns, the new filters) against
pandas on both backends."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from sanigrid.layers import cases
from sanigrid.layers.filters import (
    Elapsed,
    Order,
    bins,
    contains,
    either,
    eq,
    gt,
    lt,
    ne,
    negate,
    not_after,
    one_of,
)
from sanigrid.layers.project import Project
from sanigrid.layers.settings import Settings
from sanigrid.web import casedesk
from sanigrid.web._errors import Forbidden
from sanigrid.web.auth import User
from sanigrid.web.casedesk import CaseQuery

RECORDED = pd.Timestamp("2026-03-20 12:00:00")
GRIDS = ("360681001001101", "360681001001102", "360681001001201")
UNITS = ("县住建局", "县城管局", "街道办")
N = 240


def _problems(seed: int = 11) -> gpd.GeoDataFrame:
    """Cases with every edge the rules have: missing times, 结案 without a closing time, closed before
    the deadline or after, deadlines exactly 72 minutes (half a tenth of a day) off the instant, missing
    grids, units, categories and priorities, repeated sort values."""
    rng = np.random.default_rng(seed)
    cats = np.array(["暴露垃圾", "道路破损", "占道经营", None], dtype=object)
    reported = RECORDED - pd.to_timedelta(rng.integers(0, 40 * 24 * 60, N), unit="min")
    reported = pd.Series(reported).where(rng.random(N) > 0.04)
    deadline = pd.Series(RECORDED - pd.to_timedelta(72 * rng.integers(-60, 300, N), unit="min"))
    deadline = deadline.where(rng.random(N) > 0.06)
    status = rng.choice(np.array(cases.STATUSES, dtype=object), N)
    closed = pd.Series(RECORDED + pd.to_timedelta(rng.integers(-20 * 24, 2 * 24, N), unit="h"))
    closed = closed.where((status == cases.CLOSED) & (rng.random(N) > 0.15))
    closed = closed.where(rng.random(N) > 0.05, RECORDED + pd.Timedelta(days=3))  # closed later than the instant
    frame = gpd.GeoDataFrame({
        "problem_id": np.arange(1, N + 1),
        "category": cats[rng.integers(0, len(cats), N)],
        "description": [None if i % 17 == 0 else f"样例{i} {'乱 堆' if i % 5 == 0 else '问题'}" for i in range(N)],
        "source": rng.choice(np.array(["巡查", "群众举报", "12345"], dtype=object), N),
        "reported_at": reported.astype("datetime64[ms]"),
        "status": status,
        "deadline": deadline.astype("datetime64[ms]"),
        "closed_at": closed.astype("datetime64[ms]"),
        "grid_code": np.array([*GRIDS, None], dtype=object)[rng.integers(0, 4, N)],
        "unit": np.array([*UNITS, None], dtype=object)[rng.integers(0, 4, N)],
        "priority": pd.array(np.array([True, False, None], dtype=object)[rng.integers(0, 3, N)], dtype="boolean"),
    }, geometry=shapely.points(117.2 + rng.random(N) * 0.01, 28.3 + rng.random(N) * 0.01), crs=4326)
    frame.loc[frame.index[:3], "status"] = cases.CLOSED  # 结案 with no closing time: closed at an unknown time
    frame.loc[frame.index[:3], "closed_at"] = pd.NaT
    return frame


@pytest.fixture
def project(any_store, tmp_path) -> Project:
    any_store.write("problems", _problems(), params={"as_of": str(RECORDED)})
    return Project(root=tmp_path, settings=Settings(), store=any_store)


OFFICE = User("office", "office")
HEAD = User("head", "grid_head", GRIDS[0])

QUERIES = [
    CaseQuery(),
    CaseQuery(status=("open",)),
    CaseQuery(status=("结案",)),
    CaseQuery(status=("open", "结案")),
    CaseQuery(status=("立案", "返工")),
    CaseQuery(category="暴露垃圾"),
    CaseQuery(source="群众举报", unit="县城管局"),
    CaseQuery(grid=GRIDS[1]),
    CaseQuery(date_from=date(2026, 3, 1), date_to=date(2026, 3, 10)),
    CaseQuery(date_to=date(2026, 2, 20)),
    CaseQuery(overdue=True),
    CaseQuery(overdue=False),
    CaseQuery(priority=True),
    CaseQuery(priority=False),
    CaseQuery(q="17"),
    CaseQuery(q="＃18"),
    CaseQuery(q="样例1"),
    CaseQuery(q="乱 堆"),              # a space inside a description
    CaseQuery(q="问题 暴露"),           # across the description and the category
    CaseQuery(q="县城管局 3606"),        # across the unit and the grid code
    CaseQuery(q="nothing like it"),
    CaseQuery(status=("open",), overdue=False, priority=False, category="道路破损"),
]


def _same(project: Project, user: User, query: CaseQuery, per: int) -> None:
    page = casedesk.list_page(project, user, query, per_page=per)
    frame = casedesk.list_frame(project, user, query)
    want = casedesk._frame_page(frame, query, per)
    label = f"{user.role} {query.params()}"
    assert (page.n, page.n_late, page.pages, page.query) == (want.n, want.n_late, want.pages, want.query), label
    assert page.units == want.units, label
    assert page.rows["problem_id"].tolist() == want.rows["problem_id"].tolist(), label
    for col in ("overdue", "days_overdue", cases.PRIORITY, "status", "deadline"):
        assert page.rows[col].tolist() == want.rows[col].tolist(), (label, col)
    coords = project.settings.basemap.coords
    assert casedesk.list_rows(page.rows, coords) == casedesk.list_rows(want.rows, coords), label


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: "&".join(f"{k}={v}" for k, v in q.params()) or "all")
def test_filters_match_the_frame(project, query):
    for user in (OFFICE, HEAD):
        if user is HEAD and query.grid and query.grid != HEAD.grid_code:
            continue
        _same(project, user, query, per=9)


def test_every_sort_and_page_boundary_matches_the_frame(project):
    n = len(casedesk.list_frame(project, OFFICE, CaseQuery()))
    per = 7
    last = -(-n // per)
    for key in casedesk.SORTS:
        for sort in (key, "-" + key):
            for page in (1, last - 1, last + 5):  # the last page is short; past it: the last page
                _same(project, OFFICE, CaseQuery(sort=sort, page=page), per=per)
            _same(project, OFFICE, CaseQuery(sort=sort, status=("open",), page=2), per=per)
            _same(project, HEAD, CaseQuery(sort=sort, page=2), per=5)


def test_days_overdue_ties_round_as_the_rules_do(project):
    """Deadlines 72 minutes apart straddle the rounding to a tenth of a day: the order by days overdue
    keeps the rule's rounding (half to even), its ties broken by case number."""
    frame = casedesk.list_frame(project, OFFICE, CaseQuery(sort="-days_overdue"))
    assert frame["days_overdue"].duplicated().any()
    for page in range(1, 6):
        _same(project, OFFICE, CaseQuery(sort="-days_overdue", page=page), per=11)
        _same(project, OFFICE, CaseQuery(sort="days_overdue", page=page, overdue=True), per=11)


def test_as_of_now_once_a_step_is_recorded(project):
    """With a step recorded after the recorded instant the rules count at now: both paths agree again."""
    project.store.write_table(cases.HISTORY_TABLE, pd.DataFrame([cases.edit_record(
        5, "立案", at=RECORDED + pd.Timedelta(days=1), actor="office", note="x")]))
    at = cases.store_as_of(project.store, settings=project.settings)
    assert at > RECORDED + pd.Timedelta(days=1)
    for query in (CaseQuery(), CaseQuery(status=("open",), sort="-days_overdue"), CaseQuery(overdue=True)):
        _same(project, OFFICE, query, per=13)


def test_a_grid_head_reads_only_their_grid(project):
    page = casedesk.list_page(project, HEAD, CaseQuery(), per_page=1000)
    assert page.n and set(page.rows["grid_code"]) == {HEAD.grid_code}
    with pytest.raises(Forbidden):
        casedesk.list_page(project, HEAD, CaseQuery(grid=GRIDS[1]), per_page=10)
    nobody = User("lost", "grid_head", None)
    assert casedesk.list_page(project, nobody, CaseQuery(), per_page=10).n == 0


def test_an_empty_store_has_one_empty_page(any_store, tmp_path):
    project = Project(root=tmp_path, settings=Settings(), store=any_store)
    page = casedesk.list_page(project, OFFICE, CaseQuery(page=3), per_page=10)
    assert (page.n, page.n_late, page.pages, page.query.page, len(page.rows)) == (0, 0, 1, 1, 0)


# ---------------------------------------------------------------- the store's new reads against pandas
def test_new_filters_match_pandas(any_store):
    any_store.write("problems", _problems())
    full = any_store.read("problems")
    t = RECORDED
    rep, dl, closed = full["reported_at"], full["deadline"], full["closed_at"]
    text = (full["description"].fillna("") + " " + full["category"].fillna("") + " " + full["unit"].fillna(""))
    checks = [
        (lt("deadline", t), dl < t),
        (gt("closed_at", t), closed > t),
        (either(eq("grid_code", None), eq("unit", "街道办")), full["grid_code"].isna() | (full["unit"] == "街道办")),
        (either(), pd.Series(False, index=full.index)),
        (negate(eq("unit", "街道办")), ~(full["unit"] == "街道办").fillna(False)),
        (negate(lt("deadline", t) & eq("priority", True)), ~((dl < t) & full["priority"].fillna(False))),
        (negate(either(eq("status", "结案"), gt("reported_at", t))), ~((full["status"] == "结案") | (rep > t))),
        (contains(["description", "category", "unit"], "问题 暴露"), text.str.contains("问题 暴露", regex=False)),
        (contains("description", "乱 堆"), full["description"].fillna("").str.contains("乱 堆", regex=False)),
        (not_after("closed_at", "deadline"), closed <= dl),
        (cases.open_where(as_of=t), cases.is_open(full, as_of=t)),
        (cases.overdue_where(as_of=t), cases.is_overdue(full, as_of=t)),
        (negate(cases.overdue_where(as_of=t)), ~cases.is_overdue(full, as_of=t)),
    ]
    for where, mask in checks:
        mask = mask.fillna(False).astype(bool)
        got = any_store.read("problems", where=where)["problem_id"].tolist()
        assert got == full.loc[mask.to_numpy(), "problem_id"].tolist(), where
        assert any_store.count("problems", where=where) == int(mask.sum()), where
        cols = any_store.read_columns("problems", ["problem_id", "deadline"], where=where)
        assert list(cols.columns) == ["problem_id", "deadline"] and "geometry" not in cols
        assert cols["problem_id"].tolist() == got


def test_count_by_bins_and_distinct_match_pandas(any_store):
    any_store.write("problems", _problems())
    full = any_store.read("problems")
    edges = [RECORDED - pd.Timedelta(days=d) for d in (30, 20, 10, 0)]
    for strict in (False, True):
        got = any_store.count_by("problems", ["unit", bins("reported_at", edges, strict=strict)],
                                 also={"late": cases.overdue_where(as_of=RECORDED)})
        e = np.array(edges, dtype="datetime64[ms]")
        rep = full["reported_at"].to_numpy()
        key = np.searchsorted(e, rep, side="right" if strict else "left").astype(float)
        key[pd.isna(rep)] = np.nan
        want = pd.DataFrame({"unit": full["unit"].astype(object), "reported_at": key,
                             "late": cases.is_overdue(full, as_of=RECORDED).astype(int), "pos": np.arange(len(full))})
        want = want.groupby(["unit", "reported_at"], dropna=False).agg(n=("pos", "size"), late=("late", "sum"),
                                                                          first=("pos", "min")).reset_index()
        have = got.assign(reported_at=got["reported_at"].astype(float),
                          first=got["first"].rank(method="dense").astype(int))
        want = want.assign(first=want["first"].rank(method="dense").astype(int))

        def norm(f: pd.DataFrame) -> list[tuple]:
            cols = f[["unit", "reported_at", "n", "late", "first"]].itertuples(index=False)
            rows = [(None if pd.isna(u) else u, None if pd.isna(k) else k, n, late, first)
                    for u, k, n, late, first in cols]
            return sorted(rows, key=repr)

        assert norm(have) == norm(want)
    one = any_store.count_by("problems", [], where=eq("unit", "街道办"), also={"p": eq("priority", True)})
    street = (full["unit"] == "街道办").fillna(False)
    marked = street & full["priority"].fillna(False)
    assert one[["n", "p"]].values.tolist() == [[int(street.sum()), int(marked.sum())]]
    none = any_store.count_by("problems", ["unit"], where=one_of("problem_id", []))
    assert none.empty and list(none.columns) == ["unit", "n", "first"]
    assert sorted(any_store.distinct("problems", "unit", where=ne("status", "结案"))) == sorted(
        full.loc[full["status"] != "结案", "unit"].dropna().unique())


def test_read_page_sorts_as_pandas(any_store):
    any_store.write("problems", _problems())
    full = any_store.read("problems")
    for key in ("reported_at", "category", "unit", "problem_id", "priority", "deadline"):
        for desc in (False, True):
            order = [Order(key, desc)] + ([Order("problem_id", True)] if key != "problem_id" else [])
            want = full.sort_values([o.field for o in order], ascending=[not o.descending for o in order],
                                    na_position="last", kind="stable")
            for where in (None, ne("status", "结案")):
                w = want if where is None else want[want["status"] != "结案"]
                for offset in (0, 13, len(w) - 5):
                    got = any_store.read_page("problems", order=order, limit=10, offset=offset, where=where)
                    assert got["problem_id"].tolist() == w["problem_id"].iloc[offset:offset + 10].tolist(), \
                        (key, desc, offset, where)
    page = any_store.read_page("problems", order=[Order("problem_id")], limit=3, columns=["problem_id", "status"])
    assert list(page.columns) == ["problem_id", "status", "geometry"] and page.crs == full.crs
    assert replace(Order("x"), descending=True).descending


@pytest.mark.parametrize("shift_min", [0, 36, 72])
def test_elapsed_key_orders_as_rounded_days(any_store, shift_min):
    """The computed key of the days-overdue order (and a plain Elapsed key, negative times included)
    orders the rows as pandas' rounded days do, ties at exact half tenths included."""
    any_store.write("problems", _problems())
    full = any_store.read("problems")
    t = RECORDED + pd.Timedelta(minutes=shift_min)
    od = cases.with_overdue(full, as_of=t)
    for desc in (False, True):
        order = [Order(cases.days_overdue_order(as_of=t), desc), Order("problem_id", True)]
        got = any_store.read_page("problems", order=order, limit=N)["problem_id"].tolist()
        want = od.sort_values(["days_overdue", "problem_id"], ascending=[not desc, False], kind="stable")
        assert got == want["problem_id"].tolist()
        plain = Elapsed("deadline", to=t.to_pydatetime(), step_ms=8_640_000)
        days = ((t - full["deadline"]) / pd.Timedelta(days=1)).round(1)
        assert (days * 10 % 2 == 1).sum() > 0 or shift_min  # exact halves fall on both sides of zero
        got = any_store.read_page("problems", order=[Order(plain, desc), Order("problem_id", True)],
                                  limit=N)["problem_id"].tolist()
        want = full.assign(d=days).sort_values(["d", "problem_id"], ascending=[not desc, False],
                                              na_position="last", kind="stable")
        assert got == want["problem_id"].tolist()
