"""The case desk without a browser: the list's filters, sort, pages and export against a pandas oracle, the
read rule on the list and the case page, the next steps each role is offered, photos before/after, 督办."""

from __future__ import annotations

import io
import re
import warnings

import pandas as pd
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from webproject import synthetic_project

from sanigrid.layers import cases
from sanigrid.web.app import create_app
from sanigrid.web.auth import add_user

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    project = synthetic_project(tmp_path_factory.mktemp("desk") / "town", n_problems=160)
    codes = sorted(project.store.read("grids")["code"])
    # the grid head's grid holds a case in every status (the role tests need them)
    frame = project.store.read("problems")
    own = str(frame["grid_code"].value_counts().index[0])
    other = next(c for c in codes if c != own)
    mine = frame.loc[frame["grid_code"] == own, ["problem_id", "reported_at"]].head(len(cases.STATUSES))
    assert len(mine) == len(cases.STATUSES)
    project.store.update("problems", "problem_id", {
        int(pid): {"status": st, "closed_at": pd.Timestamp(at) + pd.Timedelta(hours=1) if st == "结案" else pd.NaT}
        for (pid, at), st in zip(mine.itertuples(index=False), cases.STATUSES, strict=True)})
    tokens = {"office": add_user(project.store, "office", role="office"),
              "head": add_user(project.store, "head", role="grid_head", grid_code=own),
              "inspector": add_user(project.store, "insp", role="inspector"),
              "viewer": add_user(project.store, "viewer", role="viewer")}
    return {"project": project, "client": TestClient(create_app(project, warm=False)), "codes": codes,
            "tokens": tokens, "own": own, "other": other}


def _get(site, url: str, who: str = "office", **headers: str):
    return site["client"].get(url, headers={"Authorization": f"Bearer {site['tokens'][who]}", **HTML, **headers})


def _ids(page: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr id="case-(\d+)"', page)]


def _found(page: str) -> tuple[int, int]:
    m = re.search(r'<span id="cd-found">共 (\d+) 件, 其中逾期 <span class="sg-late">(\d+)</span> 件', page)
    assert m, page[:500]
    return int(m.group(1)), int(m.group(2))


def _oracle(site) -> pd.DataFrame:
    """The problems with open/overdue worked out here (pandas), at the store's instant."""
    project = site["project"]
    frame = pd.DataFrame(project.store.read("problems").drop(columns="geometry"))
    at = pd.Timestamp(cases.store_as_of(project.store, settings=project.settings))
    closed = pd.to_datetime(frame["closed_at"])
    frame["open"] = ~((closed <= at) | (closed.isna() & (frame["status"] == "结案")))
    frame["late"] = frame["open"] & (pd.to_datetime(frame["deadline"]) < at)
    frame["days"] = ((at - pd.to_datetime(frame["deadline"])) / pd.Timedelta(days=1)).where(frame["late"], 0.0).round(1)
    return frame


def test_filters_match_the_oracle(site):
    o = _oracle(site)
    per = site["project"].settings.web.cases_per_page
    day = pd.to_datetime(o["reported_at"]).dt.normalize()
    d0, d1 = day.quantile(0.25).date(), day.quantile(0.6).date()
    category = o["category"].value_counts().index[0]
    unit = o["unit"].dropna().value_counts().index[0]
    checks = {
        "/cases": o,
        "/cases?status=open": o[o["open"]],
        "/cases?status=派遣&status=返工": o[o["status"].isin(["派遣", "返工"])],
        f"/cases?category={category}&overdue=1": o[(o["category"] == category) & o["late"]],
        f"/cases?overdue=0&grid={site['codes'][3]}": o[~o["late"] & (o["grid_code"] == site["codes"][3])],
        f"/cases?unit={unit}&source=巡查": o[o["unit"] == unit],
        f"/cases?from={d0}&to={d1}": o[(day >= pd.Timestamp(d0)) & (day <= pd.Timestamp(d1))],
        f"/cases?q=%23{int(o['problem_id'].iloc[11])}": o.iloc[[11]],
        "/cases?q=样例12）": o[o["description"].str.contains("样例12）", regex=False)],
        "/cases?overdue=&priority=&from=&to=&status=": o,  # the form's empty choices: no filter
    }
    for url, want in checks.items():
        r = _get(site, url)
        assert r.status_code == 200, (url, r.text[:300])
        assert _found(r.text) == (len(want), int(want["late"].sum())), url
        newest = want.sort_values(["reported_at", "problem_id"], ascending=False)["problem_id"].head(per)
        assert _ids(r.text) == [int(i) for i in newest], url


def test_sort_and_pages_match_the_oracle(site):
    o = _oracle(site)
    per = site["project"].settings.web.cases_per_page
    want = o[o["open"]].sort_values(["days", "problem_id"], ascending=[False, False])["problem_id"].tolist()
    n_pages = -(-len(want) // per)
    assert n_pages >= 2
    pages = [_ids(_get(site, f"/cases?status=open&sort=-days_overdue&page={p}").text) for p in range(1, n_pages + 1)]
    assert sum(pages, []) == [int(i) for i in want]
    assert all(len(p) == per for p in pages[:-1])
    up = _ids(_get(site, "/cases?sort=problem_id").text)
    assert up == sorted(int(i) for i in o["problem_id"])[:per]
    page = _get(site, "/cases?status=open&sort=-days_overdue&page=2").text
    assert 'href="/cases?status=open&amp;sort=-days_overdue"' in page  # the previous page (1) keeps the view
    first = _get(site, "/cases?status=open&sort=-days_overdue").text
    assert 'href="/cases?status=open&amp;sort=-days_overdue&amp;page=2"' in first  # …and so does the next
    # a page past the last shows the last
    assert _ids(_get(site, "/cases?status=open&sort=-days_overdue&page=99").text) == pages[-1]


def test_the_export_is_the_view(site):
    from openpyxl import load_workbook

    o = _oracle(site)
    r = _get(site, "/cases.xlsx?status=open&sort=problem_id")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    ws = load_workbook(io.BytesIO(r.content), read_only=True).worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    head = list(rows[0])
    assert head[0] == "编号" and "状态" in head and "督办" in head and "逾期天数" in head
    assert not any(re.fullmatch(r"[a-z_]+", str(h)) for h in head)  # no internal English names
    ids = [int(row[0]) for row in rows[1:]]
    assert ids == sorted(int(i) for i in o.loc[o["open"], "problem_id"])  # every row, not one page
    days = dict(zip(ids, (row[head.index("逾期天数")] for row in rows[1:]), strict=True))
    for pid, d in o.set_index("problem_id")["days"].items():
        if pid in days:
            assert float(days[pid]) == pytest.approx(d)


def test_a_grid_head_reads_only_their_grid(site):
    o = _oracle(site)
    own, other = site["own"], site["other"]
    r = _get(site, "/cases", "head")
    assert _found(r.text)[0] == int((o["grid_code"] == own).sum())
    assert set(_ids(r.text)) <= set(o.loc[o["grid_code"] == own, "problem_id"])
    r = _get(site, f"/cases?grid={other}", "head")
    assert r.status_code == 403 and "<h1>无权访问</h1>" in r.text and f'href="/grids/{own}"' in r.text
    r = _get(site, f"/cases.xlsx?grid={other}", "head")
    assert r.status_code == 403
    theirs = int(o.loc[o["grid_code"] == other, "problem_id"].iloc[0])
    mine = int(o.loc[o["grid_code"] == own, "problem_id"].iloc[0])
    assert _get(site, f"/cases/{theirs}", "head").status_code == 403
    assert _get(site, f"/cases/{mine}", "head").status_code == 200
    # the viewer reads everything and acts on nothing
    page = _get(site, f"/cases/{theirs}", "viewer").text
    assert 'class="cd-step"' not in page and 'id="cd-act"' not in page and "cd-priority" not in page


def test_unknown_cases_are_404_pages(site):
    for url in ("/cases/999999", "/cases/abc", "/cases/-1"):
        r = _get(site, url)
        assert r.status_code == 404 and "<h1>没有找到</h1>" in r.text, url
    r = site["client"].get("/cases/999999", headers={"Authorization": f"Bearer {site['tokens']['office']}"})
    assert r.status_code == 404 and "detail" in r.json()  # the API's JSON, when no page is asked for
    for url in ("/cases?status=已完成", "/cases?sort=colour", "/cases?overdue=maybe", "/cases?from=2026-13-01",
                "/cases?from=2026-11-10&to=2026-11-01", "/cases?source=微信"):
        r = _get(site, url)
        assert r.status_code == 422 and "<h1>请求数据有误</h1>" in r.text, url


@pytest.mark.parametrize("role", ["office", "head", "inspector", "viewer"])
def test_each_role_is_offered_exactly_its_legal_steps(site, role):
    o = _oracle(site)
    account = {"office": "office", "head": "grid_head", "inspector": "inspector", "viewer": "viewer"}[role]
    own = site["own"]
    seen = 0
    # every status in the account's own grid; in another grid the statuses whose steps depend on the grid
    for status in cases.STATUSES:
        for in_own in ((True, False) if status in (cases.NEW, cases.VERIFYING) else (True,)):
            pick = o[(o["status"] == status) & ((o["grid_code"] == own) == in_own)]
            if pick.empty:
                continue
            pid = int(pick["problem_id"].iloc[0])
            r = _get(site, f"/cases/{pid}", role)
            if role == "head" and not in_own:
                assert r.status_code == 403
                continue
            offered = re.findall(r'class="cd-step" data-to="([^"]+)"', r.text)
            assert offered == list(cases.next_steps(status, role=account, own_grid=in_own)), (role, status, in_own)
            seen += 1
    assert seen >= 6, seen


def test_photos_are_marked_before_and_after_and_priority_shows(site, monkeypatch):
    from datetime import timedelta

    o = _oracle(site)
    clock = [cases.now()]

    def tick():  # each write a minute after the one before (the rule compares whole seconds)
        clock[0] += timedelta(minutes=1)
        return clock[0]

    monkeypatch.setattr(cases, "now", tick)
    c = site["client"]
    auth = {"Authorization": f"Bearer {site['tokens']['office']}"}
    pid = int(o.loc[o["status"] == "派遣", "problem_id"].iloc[0])

    def jpeg(colour: str) -> bytes:
        from PIL import Image

        buf = io.BytesIO()
        Image.new("RGB", (20, 20), colour).save(buf, "JPEG")
        return buf.getvalue()

    assert c.post(f"/api/problems/{pid}/photos", headers=auth,
                  files={"photo": ("a.jpg", jpeg("blue"), "image/jpeg")}).status_code == 201
    assert c.post(f"/api/problems/{pid}/transitions", headers=auth, json={"to_status": "处置"}).status_code == 201
    assert c.post(f"/api/problems/{pid}/photos", headers=auth,
                  files={"photo": ("b.jpg", jpeg("green"), "image/jpeg")}).status_code == 201
    page = _get(site, f"/cases/{pid}").text
    marks = re.findall(r'<span class="cd-badge (cd-before|cd-after)">', page)
    assert marks == ["cd-before", "cd-after"]
    assert page.count("<img src=\"/api/problems/") == 2
    assert re.search(r"<b>office</b>\s*派遣 → 处置", page)  # the step on the timeline, with who
    # 督办: on the case page, the list (badge and filter) and the grid page
    assert c.put(f"/api/problems/{pid}/priority", headers=auth, json={"priority": True}).status_code == 200
    page = _get(site, f"/cases/{pid}").text
    assert '<span class="cd-badge cd-prio">督办</span>' in page and 'data-on="0"' in page
    listed = _get(site, "/cases?priority=1").text
    assert _ids(listed) == [pid] and 'cd-prio">督办</span>' in listed
    grid = o.loc[o["problem_id"] == pid, "grid_code"].iloc[0]
    side = _get(site, f"/grids/{grid}").text
    assert re.search(rf'<a href="/cases/{pid}">{pid}</a> <span class="sg-prio">督办</span>', side)
