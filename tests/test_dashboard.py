"""The office's dashboard: trends computed with the case rules (checked against a row-by-row oracle),
drawn as SVG whose values are those trends, for the office only, with a working link to every download."""

from __future__ import annotations

import re
import warnings
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from webproject import synthetic_project

from sanigrid.layers import cases
from sanigrid.web import dashboard
from sanigrid.web.app import create_app
from sanigrid.web.auth import add_user

HTML = {"Accept": "text/html"}
AS_OF = datetime(2026, 11, 18, 12, 0)


def _frame(n: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    reported = pd.Timestamp("2026-08-01") + pd.to_timedelta(rng.integers(0, 110 * 86400, n), unit="s")
    deadline = reported + pd.to_timedelta(rng.integers(2, 200, n), unit="h")
    closed = reported + pd.to_timedelta(rng.integers(1, 400, n), unit="h")
    closed = closed.where((rng.random(n) < 0.7) & (closed <= AS_OF), pd.NaT)
    return pd.DataFrame({
        "category": rng.choice(["暴露垃圾", "占道经营", "店外经营", "乱堆物料", "非法小广告", "公厕脏乱", "其他类",
                                "道路破损"], n, p=[.3, .2, .15, .1, .1, .05, .05, .05]),
        "reported_at": reported, "deadline": deadline, "closed_at": closed,
        "status": np.where(pd.isna(closed), "处置", "结案"),
        "grid_code": rng.choice(["G1", "G2", "G3"], n), "unit": rng.choice(["住建局", "城管局"], n)})


def test_trends_against_a_row_by_row_oracle():
    frame = _frame()
    tr = dashboard.trends(frame, as_of=AS_OF, weeks=12)
    assert len(tr.weekly) == 12 and tr.weekly.index[-1] == pd.Timestamp("2026-11-16")   # a Monday
    assert list(tr.weekly.columns[:dashboard.TOP_CATEGORIES]) == \
        frame[frame.reported_at >= tr.weekly.index[0]].category.value_counts().index[:6].tolist()
    for week, row in tr.weekly.iterrows():
        got = {c: int(v) for c, v in row.items()}
        inside = frame[(frame.reported_at >= week) & (frame.reported_at < week + pd.Timedelta(days=7))
                       & (frame.reported_at <= AS_OF)]
        top = list(tr.weekly.columns[:6])
        want = {c: int((inside.category == c).sum()) for c in top}
        want[dashboard.OTHER] = int((~inside.category.isin(top)).sum())
        assert got == want, week
    for end, row in tr.open_over_time.iterrows():                         # open/overdue at each week's end
        t = end.to_pydatetime()
        open_ = [(r.reported_at <= t) and (pd.isna(r.closed_at) or r.closed_at > t) for r in frame.itertuples()]
        late = [o and r.deadline < t for o, r in zip(open_, frame.itertuples(), strict=True)]
        assert (row["open"], row["overdue"]) == (sum(open_), sum(late)), end
    assert tr.open_over_time.index[-1] == pd.Timestamp(AS_OF)
    for by, table in (("unit", tr.by_unit), ("grid_code", tr.by_grid)):
        for key, r in table.iterrows():
            sub = frame[(frame[by] == key) & frame.closed_at.notna()]
            assert r["closed"] == len(sub) and r["on_time"] == int((sub.closed_at <= sub.deadline).sum())
            assert r["rate"] == pytest.approx(r["on_time"] / r["closed"])
        assert table["rate"].is_monotonic_increasing                        # worst first


def test_svg_carries_the_values_it_draws():
    tr = dashboard.trends(_frame(), as_of=AS_OF, weeks=8)
    svg = dashboard.stacked_weeks_svg(tr.weekly, title="t")
    bars = re.findall(r'data-week="([\d-]+)" data-series="([^"]+)" data-value="(\d+)"', svg)
    got = pd.DataFrame(bars, columns=["week", "series", "v"]).astype({"v": int}).pivot_table(
        index="week", columns="series", values="v", aggfunc="sum", fill_value=0)
    want = tr.weekly.loc[:, (tr.weekly != 0).any()]
    want.index = want.index.strftime("%Y-%m-%d")
    pd.testing.assert_frame_equal(got[want.columns], want, check_names=False, check_dtype=False)
    line = dashboard.lines_svg(tr.open_over_time, {"open": "未结案", "overdue": "逾期"}, title="t")
    got = [int(v) for v in re.findall(r'data-series="overdue" data-date="[\d-]+" data-value="(\d+)"', line)]
    assert got == tr.open_over_time["overdue"].tolist()
    bars = dashboard.rate_bars_svg(tr.by_unit, title="t")
    assert [float(v) for v in re.findall(r'data-value="([\d.]+)"', bars)] == pytest.approx(
        tr.by_unit["rate"].round(4).tolist())


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    project = synthetic_project(tmp_path_factory.mktemp("dash") / "town", n_problems=120)
    code = sorted(project.store.read("grids")["code"])[0]
    tokens = {"office": add_user(project.store, "office", role="office"),
              "head": add_user(project.store, "head", role="grid_head", grid_code=code),
              "viewer": add_user(project.store, "viewer", role="viewer")}
    return project, TestClient(create_app(project, warm=False)), tokens


def test_dashboard_for_the_office_only_with_working_download_links(site):
    project, client, tokens = site
    r = client.get("/dashboard", headers={"Authorization": f"Bearer {tokens['office']}", **HTML})
    assert r.status_code == 200, r.text[:400]
    page = r.text
    n = len(project.store.read("problems", columns=["reported_at"]))
    as_of = cases.store_as_of(project.store, settings=project.settings)
    shown = sum(int(v) for v in re.findall(r'data-week="[\d-]+" data-series="[^"]+" data-value="(\d+)"', page))
    frame = project.store.read("problems", columns=["reported_at"])
    first = dashboard.week_starts(pd.Series([pd.Timestamp(as_of)])).iloc[0] - pd.Timedelta(weeks=25)
    assert shown == int(((frame.reported_at >= first) & (frame.reported_at <= as_of)).sum()) and n >= shown > 0
    assert page.count('data-chart="') == 4
    links = re.findall(r'href="(/api/[^"]+)"', page)
    assert "/api/downloads/responsibility.xlsx" in links and "/api/layers/problems/xlsx" in links
    for href in links:
        got = client.get(href.replace("&amp;", "&"), headers={"Authorization": f"Bearer {tokens['office']}"})
        assert got.status_code == 200 and got.headers["content-type"].startswith(
            "application/vnd.openxmlformats-officedocument.spreadsheetml"), href
    assert 'href="/docs"' in page
    for who in ("head", "viewer"):
        r = client.get("/dashboard", headers={"Authorization": f"Bearer {tokens[who]}", **HTML})
        assert r.status_code == 403 and "创卫办" in r.text and '{"detail"' not in r.text


def test_api_docs_link_only_for_the_office(site):
    project, client, tokens = site
    office = client.get("/", headers={"Authorization": f"Bearer {tokens['office']}", **HTML}).text
    head = client.get("/", headers={"Authorization": f"Bearer {tokens['head']}", **HTML}).text
    assert "/docs" in office and "/dashboard" in office
    assert "/docs" not in head and "/dashboard" not in head
