"""Pages from templates and the one text table: error pages for browsers, JSON for the API, 404 before 403."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from webproject import synthetic_project

from sanigrid.web._errors import Conflict
from sanigrid.web.app import create_app
from sanigrid.web.auth import add_user
from sanigrid.web.texts import TEXTS, texts

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    project = synthetic_project(tmp_path_factory.mktemp("pages") / "town", n_problems=40)
    codes = sorted(project.store.read("grids")["code"])
    tokens = {"office": add_user(project.store, "office", role="office"),
              "head": add_user(project.store, "head", role="grid_head", grid_code=codes[0])}
    return {"project": project, "client": TestClient(create_app(project, warm=False)), "codes": codes,
            "tokens": tokens}


def _as(site, who: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {site['tokens'][who]}", **extra}


def _title(page: str) -> str:
    m = re.search(r"<h1>(.*?)</h1>", page, re.S)
    assert m, page[:300]
    return m.group(1).strip()


def test_a_grid_head_opening_another_grid_gets_a_readable_page_in_the_interface_language(site):
    c, own, other = site["client"], site["codes"][0], site["codes"][1]
    r = c.get(f"/grids/{other}", headers=_as(site, "head", **HTML))
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in r.text and _title(r.text) == "无权访问"
    assert "错误代码 403" in r.text and f"只能查看本网格 {own}" in r.text
    assert f'href="/grids/{own}"' in r.text  # the way to their own page
    assert '{"detail"' not in r.text
    # the API (no Accept: text/html, or any /api/ path) still answers JSON
    r = c.get(f"/grids/{other}", headers=_as(site, "head"))
    assert r.status_code == 403 and r.json()["detail"].startswith("网格长")
    r = c.get(f"/api/downloads/responsibility.xlsx?grid={other}", headers=_as(site, "head", **HTML))
    assert r.status_code == 403 and "detail" in r.json()


def test_an_unknown_grid_is_404_for_every_role_before_any_403(site):
    c = site["client"]
    for who in ("head", "office"):
        for path in ("/grids/36068199999999", "/grids/36068199999999/responsibility.xlsx",
                     "/grids/36068199999999/map.png"):
            r = c.get(path, headers=_as(site, who))
            assert r.status_code == 404, (who, path, r.text[:200])
            assert "没有网格「36068199999999」" in r.json()["detail"]
        r = c.get("/api/downloads/responsibility.xlsx?grid=36068199999999", headers=_as(site, who))
        assert r.status_code == 404
    r = c.get("/grids/36068199999999", headers=_as(site, "head", **HTML))
    assert r.status_code == 404 and _title(r.text) == "没有找到" and "36068199999999" in r.text


def test_error_pages_for_409_422_and_unknown_paths(site):
    c = site["client"]
    r = c.get(f"/grids/{site['codes'][0]}/map.png?paper=B5", headers=_as(site, "office", **HTML))
    assert r.status_code == 422 and _title(r.text) == "请求数据有误" and "paper" in r.text
    r = c.get("/map.pdf?theme=coverage&kind=nonsense", headers=_as(site, "office", **HTML))
    assert r.status_code == 422 and "错误代码 422" in r.text
    r = c.get("/no/such/page", headers=_as(site, "office", **HTML))
    assert r.status_code == 404 and _title(r.text) == "没有找到"
    assert c.get("/no/such/page").json() == {"detail": "Not Found"}  # JSON when no browser asks


def _conflict() -> None:
    raise Conflict("编号 7 已结案, 不能再派遣 (test)")


def test_409_and_401_pages(site):
    c = TestClient(create_app(site["project"], warm=False))
    c.app.add_api_route("/test-conflict", _conflict)  # no page makes a 409 yet (case pages will): a stand-in
    r = c.get("/test-conflict", headers=HTML)
    assert r.status_code == 409 and _title(r.text) == "与当前状态冲突" and "编号 7 已结案" in r.text
    assert c.get("/test-conflict").json()["detail"].startswith("编号 7")
    # 401: a page read redirects to the login; a form posted without a login gets the 401 page
    r = c.get(f"/grids/{site['codes'][0]}", headers=HTML, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    r = c.post("/api/problems", json={}, headers=HTML)
    assert r.status_code == 401 and r.json()["detail"]  # the API stays JSON


def test_english_interface_error_page_and_login(site):
    project, c = site["project"], site["client"]
    project.settings.project.language = "en"
    try:
        r = c.get(f"/grids/{site['codes'][1]}", headers=_as(site, "head", **HTML))
        login = c.get("/login").text
    finally:
        project.settings.project.language = "zh"
    assert r.status_code == 403 and '<html lang="en">' in r.text and _title(r.text) == "Not allowed"
    assert "Error 403" in r.text and "County map" in r.text and "无权访问" not in r.text
    assert "Account" in login and "Password" in login and "账号" not in login


def test_login_page_escapes_what_it_shows(site):
    r = site["client"].post("/login", data={"username": "<b>x</b>", "password": "bad", "next": "/"})
    assert r.status_code == 401 and "&lt;b&gt;x&lt;/b&gt;" in r.text and "<b>x</b>" not in r.text


def test_one_text_table_both_languages_and_one_word_for_overdue():
    zh, en = texts("zh"), texts("en")
    assert set(zh) == set(en) == set(TEXTS)
    assert all(zh[k] and en[k] for k in TEXTS)
    # a text's {slots} are the same in both languages
    slots = {k: (set(re.findall(r"{(\w+)}", zh[k])), set(re.findall(r"{(\w+)}", en[k]))) for k in TEXTS}
    assert {k: v for k, v in slots.items() if v[0] != v[1]} == {}
    # 逾期 is the word for overdue: 超期 appears nowhere in the code, templates or README
    hits = [str(p.relative_to(REPO)) for d in ("layers", "geo", "web", "scripts") for p in (REPO / d).rglob("*")
            if p.suffix in (".py", ".html", ".js", ".toml") and "超期" in p.read_text(encoding="utf-8")]
    assert hits == [] and "超期" not in (REPO / "README.md").read_text(encoding="utf-8")


def test_no_page_markup_left_in_python():
    """Pages are templates: no <html>/<form>/<table> markup is built in the web package's Python."""
    found = {str(p.relative_to(REPO)): tag for p in (REPO / "web").rglob("*.py")
             for tag in ("<!DOCTYPE", "<form", "<table", "<tr") if tag in p.read_text(encoding="utf-8")}
    assert found == {}
