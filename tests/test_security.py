"""Issue 11 §2–§10 with FastAPI's TestClient: control characters and formulas in downloads, sessions that
follow the account, throttled logins, the accounts file, times, one read rule, Origin checks, uploads."""

from __future__ import annotations

import io
import os
import sqlite3
import stat
import time
import warnings

import openpyxl
import pandas as pd
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from webproject import synthetic_project

from sanigrid.web.app import create_app
from sanigrid.web.auth import ACCOUNTS_FILE, USERS_TABLE, add_user, hash_password, list_users

PW = "pw-安全-long-1"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    project = synthetic_project(tmp_path_factory.mktemp("sec") / "town", n_problems=60)
    codes = sorted(project.store.read("grids")["code"])
    tokens = {
        "office": add_user(project, "office", role="office", password=PW),
        "head": add_user(project, "head", role="grid_head", grid_code=codes[0], password=PW),
        "head2": add_user(project, "head2", role="grid_head", grid_code=codes[1], password=PW),
        "viewer": add_user(project, "viewer", role="viewer", password=PW),
    }
    client = TestClient(create_app(project, warm=False))
    return {"project": project, "client": client, "tokens": tokens, "codes": codes}


def auth(env, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {env['tokens'][who]}"}


def lonlat(env, code: str) -> tuple[float, float]:
    g = env["project"].store.read("grids")
    p = g[g["code"] == code].to_crs(4326).geometry.iloc[0].representative_point()
    return p.x, p.y


def report(env, code: str, **extra) -> dict:
    lon, lat = lonlat(env, code)
    r = env["client"].post("/api/problems", json={"category": "暴露垃圾", "lon": lon, "lat": lat, **extra},
                           headers=auth(env, "office"))
    assert r.status_code == 201, r.text
    return r.json()


def cells(content: bytes) -> list:
    wb = openpyxl.load_workbook(io.BytesIO(content))
    return [c for ws in wb.worksheets for row in ws.iter_rows() for c in row]


# ---------------------------------------------------------------- §2 control characters, §3 formulas
def test_control_characters_are_cleaned_on_intake_and_downloads_work(env):
    c, code = env["client"], env["codes"][0]
    got = report(env, code, description="垃圾\x07满溢\x1b[0m 在\x00路口")
    assert got["description"] == "垃圾满溢[0m 在路口"  # the 201 echoes what was stored
    stored = env["project"].store.read("problems")
    assert stored.loc[stored["problem_id"] == got["problem_id"], "description"].iloc[0] == "垃圾满溢[0m 在路口"
    for path in ("/api/layers/problems/xlsx", f"/grids/{code}/responsibility.xlsx",
                 "/api/downloads/responsibility.xlsx"):
        r = c.get(path, headers=auth(env, "office"))
        assert r.status_code == 200, (path, r.text[:200])
        assert any(cell.value == "垃圾满溢[0m 在路口" for cell in cells(r.content))


def test_formula_descriptions_download_as_text(env):
    text = '=HYPERLINK("http://x.invalid","点我")'
    report(env, env["codes"][0], description=text)
    r = env["client"].get("/api/layers/problems/xlsx", headers=auth(env, "office"))
    hits = [cell for cell in cells(r.content) if cell.value == text]
    assert hits and all(cell.data_type == "s" for cell in hits)


def test_control_characters_are_cleaned_on_import(project, tmp_path):
    from sanigrid.layers.importers import read_file

    csv = tmp_path / "公厕.csv"
    csv.write_text("名称,经度,纬度\n东门\x07公厕,117.22,28.30\n西门\x1b公厕,117.221,28.301\n", encoding="utf-8")
    raw = read_file(csv, kind="toilets")
    assert raw.frame["name"].tolist() == ["东门公厕", "西门公厕"]
    assert any("control characters" in n and "2 cell(s) of 'name'" in n for n in raw.notes)


# ---------------------------------------------------------------- §4 sessions follow the account
def test_a_changed_account_ends_its_logins(env):
    project, c = env["project"], env["client"]
    add_user(project, "boss", role="office", password=PW)
    tok = c.post("/api/auth/token", data={"username": "boss", "password": PW}).json()["access_token"]
    h = {"Authorization": f"Bearer {tok}"}
    assert c.get("/api/auth/me", headers=h).json()["role"] == "office"
    add_user(project, "boss", role="viewer", password=PW, replace=True)  # a demotion (`user add --replace`)
    assert c.get("/api/auth/me", headers=h).status_code == 401
    tok = c.post("/api/auth/token", data={"username": "boss", "password": PW}).json()["access_token"]
    assert c.get("/api/auth/me", headers={"Authorization": f"Bearer {tok}"}).json()["role"] == "viewer"


def test_each_request_reads_the_account_as_it_is_now(env):
    """Even with the sessions file left as it was, a login carries its account's stamp, not its rights."""
    project, c = env["project"], env["client"]
    add_user(project, "mover", role="grid_head", grid_code=env["codes"][0], password=PW)
    tok = c.post("/api/auth/token", data={"username": "mover", "password": PW}).json()["access_token"]
    con = sqlite3.connect(project.root / ACCOUNTS_FILE)
    with con:
        con.execute("UPDATE accounts SET grid_code = ?, stamp = 'moved' WHERE name = 'mover'", (env["codes"][3],))
    con.close()
    assert c.get("/api/auth/me", headers={"Authorization": f"Bearer {tok}"}).status_code == 401


# ---------------------------------------------------------------- §5 logins
def test_logins_are_throttled_per_account_with_retry_after(tmp_path):
    project = synthetic_project(tmp_path / "t", n_problems=0)
    project.settings.web.login_max_failures = 3
    add_user(project, "a", role="viewer", password=PW)
    c = TestClient(create_app(project, warm=False))
    for _ in range(3):
        assert c.post("/api/auth/token", data={"username": "a", "password": "wrong-guess"}).status_code == 401
    r = c.post("/api/auth/token", data={"username": "a", "password": PW})  # even the right one waits
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 800
    r = c.post("/login", data={"username": "a", "password": "x", "next": "/"}, follow_redirects=False)
    assert r.status_code == 429 and "retry-after" in r.headers


def test_logins_are_throttled_per_address(tmp_path):
    project = synthetic_project(tmp_path / "t", n_problems=0)
    project.settings.web.login_max_failures_per_address = 4
    c = TestClient(create_app(project, warm=False))
    codes = [c.post("/api/auth/token", data={"username": f"u{i}", "password": "guess-guess"}).status_code
             for i in range(6)]
    assert codes == [401] * 4 + [429] * 2


def test_unknown_and_known_names_take_about_the_same_time(env):
    from sanigrid.web._errors import Unauthorized
    from sanigrid.web.auth import check_password

    def took(name: str) -> float:
        t = time.perf_counter()
        with pytest.raises(Unauthorized):
            check_password(env["project"], name, "wrong-password")
        return time.perf_counter() - t

    took("nobody")  # the dummy hash is made once
    pairs = [(took("viewer"), took("nobody-at-all")) for _ in range(5)]  # interleaved: load hits both alike
    known, unknown = min(p[0] for p in pairs), min(p[1] for p in pairs)
    assert unknown > 0.5 * known  # was 16 ms vs 148 ms: both now pay for one scrypt


def test_short_passwords_are_refused(env):
    from sanigrid.web._errors import Invalid

    with pytest.raises(Invalid, match="至少 10"):
        add_user(env["project"], "short", role="viewer", password="123456789")
    assert "short" not in [u.name for u in list_users(env["project"])]


def test_accounts_live_outside_the_geopackage_in_a_private_file(tmp_path):
    project = synthetic_project(tmp_path / "t", n_problems=0)
    # an account as an older version kept it, inside the GeoPackage
    project.store.write_table(USERS_TABLE, pd.DataFrame([{
        "name": "old", "role": "office", "grid_code": "", "password_hash": hash_password(PW),
        "token_hash": "", "created_at": "2026-01-01T00:00:00"}]))
    c = TestClient(create_app(project, warm=False))
    assert c.post("/api/auth/token", data={"username": "old", "password": PW}).status_code == 200
    path = project.root / ACCOUNTS_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(project.root / "sessions.sqlite").st_mode) == 0o600
    con = sqlite3.connect(project.store.location)
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    con.close()
    assert USERS_TABLE not in names
    raw = (project.root / "sanigrid.gpkg").read_bytes()
    assert b"scrypt$" not in raw


# ---------------------------------------------------------------- §9 times
@pytest.mark.parametrize("when", ["9999-12-31T23:59:59", "1999-12-31T23:59:59", "2200-01-01T00:00:00"])
def test_reported_at_out_of_range_is_422(env, when):
    lon, lat = lonlat(env, env["codes"][0])
    r = env["client"].post("/api/problems", json={"category": "暴露垃圾", "lon": lon, "lat": lat, "reported_at": when},
                           headers=auth(env, "office"))
    assert r.status_code == 422 and "reported_at" in r.json()["detail"]


def test_offsets_are_converted_to_the_project_time_zone(env):
    got = report(env, env["codes"][0], reported_at="2026-03-01T10:00:00-05:00")
    assert got["reported_at"] == "2026-03-01 23:00:00"  # Asia/Shanghai is UTC+8
    got = report(env, env["codes"][0], reported_at="2026-03-01T10:00:00Z")
    assert got["reported_at"] == "2026-03-01 18:00:00"


# ---------------------------------------------------------------- §6 one read rule
def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (30, 120, 200)).save(buf, format="PNG")
    return buf.getvalue()


def _text_of(r) -> str:
    """Everything a response says, workbooks opened cell by cell."""
    if r.content[:2] == b"PK":
        try:
            return " ".join(str(c.value) for c in cells(r.content) if c.value is not None)
        except Exception:
            return r.content.decode("latin-1")
    text = r.content.decode("utf-8", errors="replace")
    if "json" in r.headers.get("content-type", ""):
        import json

        text = json.dumps(json.loads(text), ensure_ascii=False)  # \uXXXX escapes read as the characters
    return text


@pytest.fixture(scope="module")
def walk(env):
    """Grid B's cases carry a marker in their description; one has a photo."""
    own, other = env["codes"][0], env["codes"][1]
    b_ids = [report(env, other, description=f"机密B{i}号")["problem_id"] for i in range(3)]
    a_id = report(env, own, description="本网格A的问题")["problem_id"]
    r = env["client"].post(f"/api/problems/{b_ids[0]}/photos", files={"photo": ("p.png", _png(), "image/png")},
                           headers=auth(env, "office"))
    assert r.status_code == 201, r.text
    return {"own": own, "other": other, "b_ids": b_ids, "a_id": a_id, "photo": r.json()["path"].split("/")[-1]}


#: pages outside the OpenAPI schema (include_in_schema=False) that show cases, when the app has them
PAGES = ("/cases", "/cases/{problem_id}", "/grids/{code}")


def _requests(env, walk) -> list[tuple[str, str]]:
    """(method, url) for every GET route of the OpenAPI schema and every page, path parameters filled
    with grid B's values and the ``grid`` query parameter set to grid B (and left out)."""
    schema = env["client"].get("/openapi.json").json()
    kinds = [i.kind for i in env["project"].store.info()]
    values = {"kind": kinds, "key": [str(i) for i in walk["b_ids"]], "problem_id": [str(walk["b_ids"][0])],
              "code": [walk["other"]], "fmt": ["png", "pdf"], "name": [walk["photo"]]}
    routes = [(path, {p["name"]: p["in"] for p in op.get("parameters", [])})
              for path, ops in schema["paths"].items() for method, op in ops.items() if method == "get"]
    routes += [(p, {}) for p in PAGES if p not in schema["paths"]]
    out = []
    for path, params in routes:
        paths = [path]
        for n in [n for n, where in params.items() if where == "path"] + [
                n for n in values if "{" + n + "}" in path and n not in params]:
            paths = [p.replace("{" + n + "}", v) for p in paths for v in values[n]]
        q = [f"{k}={v}" for k, v in (("grid", walk["other"]), ("q", "机密B"), ("theme", "problems"))
             if params.get(k) == "query"]
        for p in paths:
            if "/features/" in p and not p.startswith("/api/layers/problems/"):
                continue  # only the case layer has keys that are case ids
            out.append(("GET", p + ("?" + "&".join(q) if q else "")))
            if q:
                out.append(("GET", p))  # and without ?grid: the rule is not the caller's choice
    return out


def test_a_grid_head_reads_nothing_of_another_grids_cases(env, walk):
    c = env["client"]
    reqs = _requests(env, walk)
    seen_by_office = 0
    checked = 0
    slow: list = []
    for method, url in reqs:
        for who in ("head", "office"):
            if who == "office" and ("/map." in url or not any(w in url for w in ("problems", "grids", "download"))):
                continue  # the office's walk is only the oracle for routes that carry cases
            t0 = time.perf_counter()
            r = c.request(method, url, headers={**auth(env, who), "Accept": "text/html"}, follow_redirects=False)
            if r.status_code == 404 and url.startswith("/cases"):
                continue  # a page this version does not have yet
            assert r.status_code < 500, (who, url, r.status_code, r.text[:300])
            text = _text_of(r)
            slow.append((time.perf_counter() - t0, who, url))
            if who == "head":
                assert "机密B" not in text, (url, r.status_code)
                if url.startswith("/api/problems/") or "/features/" in url:
                    assert r.status_code in (403, 404), (url, r.status_code)
            else:
                seen_by_office += "机密B" in text
            checked += 1
    # the oracle: the same walk finds grid B's cases through the office's eyes (so the check can see them)
    assert seen_by_office >= 6
    routes = {u.split("?")[0] for _, u in reqs}
    print(f"read-rule walk: {len(reqs)} requests over {len(routes)} URLs; {checked} route x role checks")
    print(sorted(slow, reverse=True)[:8])
    assert len(reqs) >= 30 and checked >= len(reqs)


def test_grid_heads_own_cases_remain_readable(env, walk):
    c, h = env["client"], auth(env, "head")
    assert c.get(f"/api/problems/{walk['a_id']}", headers=h).status_code == 200
    assert any(r["problem_id"] == walk["a_id"] for r in c.get(f"/api/grids/{walk['own']}/open", headers=h).json())
    r = c.get("/api/downloads/responsibility.xlsx", headers=h)
    assert r.status_code == 200 and "本网格A的问题" in _text_of(r)
    fc = c.get("/api/layers/problems?limit=10000", headers=h).json()
    assert fc["features"] and {f["properties"]["grid_code"] for f in fc["features"]} == {walk["own"]}
    assert c.get(f"/api/layers/problems?grid={walk['other']}", headers=h).status_code == 403
    # viewers read everything, as does the office
    assert c.get(f"/api/problems/{walk['b_ids'][0]}", headers=auth(env, "viewer")).status_code == 200


# ---------------------------------------------------------------- §7 cookie-authenticated writes
def test_cookie_writes_from_another_origin_are_refused(env):
    c, code = env["client"], env["codes"][0]
    lon, lat = lonlat(env, code)
    body = {"category": "暴露垃圾", "lon": lon, "lat": lat}
    cookie = c.post("/api/auth/token", data={"username": "office", "password": PW}).json()["access_token"]
    jar = {"sanigrid_token": cookie}
    evil = {"Origin": "http://testserver:8001", "Sec-Fetch-Site": "same-site"}
    c.cookies.clear()
    r = c.post("/api/problems", json=body, headers=evil, cookies=jar)
    assert r.status_code == 403
    r = c.post("/api/problems", json=body, headers={"Origin": "http://evil.example"}, cookies=jar)
    assert r.status_code == 403
    r = c.post("/api/problems", json=body, headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
               cookies=jar)
    assert r.status_code == 201
    # an API token is not a browser's ambient credential: not checked
    r = c.post("/api/problems", json=body, headers={**evil, **auth(env, "office")})
    assert r.status_code == 201
    c.cookies.clear()


# ---------------------------------------------------------------- §8 uploads
def test_photo_type_is_judged_by_content(env, walk):
    c, pid = env["client"], walk["a_id"]
    fake = b"\x89PNG\r\n\x1a\n" + b"<script>alert(1)</script>" * 4
    for data, declared in ((b"<html><script>alert(1)</script></html>", "image/png"), (fake, "image/png"),
                           (_png()[:40], "image/png")):
        r = c.post(f"/api/problems/{pid}/photos", files={"photo": ("p.png", data, declared)}, headers=auth(env, "head"))
        assert r.status_code == 422, r.text
    r = c.post(f"/api/problems/{pid}/photos", files={"photo": ("p.bin", _png(), "application/octet-stream")},
               headers=auth(env, "head"))
    assert r.status_code == 201 and r.json()["path"].endswith(".png")


def test_request_size_is_capped_while_streaming(env, walk):
    from sanigrid.web.limits import BodyLimit

    c, pid = env["client"], walk["a_id"]
    big = b"\xff\xd8\xff" + b"0" * (11 * 1024 * 1024)
    r = c.post(f"/api/problems/{pid}/photos", files={"photo": ("p.jpg", big, "image/jpeg")}, headers=auth(env, "head"))
    assert r.status_code == 413

    # without a Content-Length the body is counted as it arrives and cut off after the limit
    import asyncio

    received = []

    async def app(scope, receive, send):
        while True:
            m = await receive()
            received.append(len(m.get("body", b"")))
            if not m.get("more_body"):
                break

    chunks = [{"type": "http.request", "body": b"x" * 1000, "more_body": True}] * 50

    async def receive():
        return chunks[len(received)]

    async def send(m):
        pass

    from starlette.exceptions import HTTPException

    with pytest.raises(HTTPException) as e:
        asyncio.run(BodyLimit(app, max_bytes=5000)({"type": "http", "headers": []}, receive, send))
    assert e.value.status_code == 413 and sum(received) <= 5000


def test_photos_are_served_only_to_readers_of_the_case(env, walk):
    c = env["client"]
    url = f"/api/problems/{walk['b_ids'][0]}/photos/{walk['photo']}"
    r = c.get(url, headers=auth(env, "office"))
    assert r.status_code == 200 and r.content == _png() and r.headers["content-type"] == "image/png"
    assert c.get(url, headers=auth(env, "viewer")).status_code == 200
    assert c.get(url, headers=auth(env, "head")).status_code == 403
    assert c.get(url, headers=auth(env, "head2")).status_code == 200  # grid B's own head
    assert c.get(f"/api/problems/{walk['b_ids'][0]}/photos/..%2Fsanigrid.toml",
                 headers=auth(env, "office")).status_code == 404
