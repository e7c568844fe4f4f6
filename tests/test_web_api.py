"""The web API with FastAPI's TestClient: every endpoint, every 4xx path, authorization, concurrency."""

from __future__ import annotations

import io
import re
import threading
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from webproject import synthetic_project

from sanigrid.geo.grids import assign_grid
from sanigrid.layers.cases import HISTORY_TABLE, deadline_for
from sanigrid.layers.catalogue import RANK_RAMP
from sanigrid.layers.crs import gcj02_to_wgs84, wgs84_to_gcj02
from sanigrid.layers.filters import eq
from sanigrid.web.app import create_app
from sanigrid.web.auth import add_user, hash_password, verify_password
from sanigrid.web.intake import PHOTO_TABLE

PW = "pw-测试-long-1"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A synthetic town (16 grids, 300 problems), one account per role, a client."""
    project = synthetic_project(tmp_path_factory.mktemp("web") / "town", n_problems=300)
    grids = project.store.read("grids")
    codes = sorted(grids["code"])
    tokens = {
        "office": add_user(project.store, "office", role="office", password=PW),
        "head": add_user(project.store, "head", role="grid_head", grid_code=codes[0], password=PW),
        "viewer": add_user(project.store, "viewer", role="viewer", password=PW),
        "inspector": add_user(project.store, "inspector", role="inspector", password=PW),
    }
    client = TestClient(create_app(project))
    return {"project": project, "client": client, "tokens": tokens, "codes": codes, "grids": grids}


def expected_overdue(project) -> tuple[pd.Series, pd.Series]:
    """Known answer for every problem, by id: overdue (open and past its deadline at the instant counted) and
    the days past the deadline (0 when not overdue), computed here from the stored columns."""
    allp = project.store.read("problems").set_index("problem_id")
    from sanigrid.layers.cases import store_as_of

    as_of = pd.Timestamp(store_as_of(project.store, settings=project.settings))
    deadline = pd.to_datetime(allp["deadline"])
    flag = (allp["status"] != "结案") & (deadline < as_of)
    days = ((as_of - deadline) / pd.Timedelta(days=1)).where(flag, 0.0)
    return flag, days


def auth(env, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {env['tokens'][who]}"}


def centre_lonlat(env, code: str) -> tuple[float, float]:
    g = env["grids"][env["grids"]["code"] == code]
    p = g.to_crs(4326).geometry.iloc[0].representative_point()
    return p.x, p.y


# ---------------------------------------------------------------- authentication
GET_PATHS = ["/api/layers", "/api/layers/problems", "/api/layers/grids/xlsx", "/api/map/problems",
             "/api/search?q=路", "/api/problems/1", "/api/problems/1/history", "/api/auth/me",
             "/api/downloads/responsibility.xlsx", "/api/downloads/sample_points.xlsx", "/api/downloads/scorecard.xlsx"]


@pytest.mark.parametrize("path", GET_PATHS)
def test_every_api_read_needs_a_token(env, path):
    r = env["client"].get(path)
    assert r.status_code == 401
    assert "登录" in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"
    r = env["client"].get(path, headers={"Authorization": "Bearer sg_not-a-token"})
    assert r.status_code == 401


@pytest.mark.parametrize("path,body", [("/api/problems", {"category": "暴露垃圾", "lon": 117.22, "lat": 28.3}),
                                       ("/api/problems/1/transitions", {"to_status": "派遣"})])
def test_every_write_needs_a_token(env, path, body):
    assert env["client"].post(path, json=body).status_code == 401


def test_patch_needs_a_token(env):
    assert env["client"].patch("/api/problems/1", json={"description": "x"}).status_code == 401


def test_pages_redirect_to_login_without_a_token(env):
    c = env["client"]
    code = env["codes"][0]
    for path in ("/", f"/grids/{code}"):
        r = c.get(path, headers={"Accept": "text/html"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    assert "登录" in c.get("/login").text


def test_password_login_gives_a_bearer_token(env):
    c = env["client"]
    r = c.post("/api/auth/token", data={"username": "head", "password": PW})
    assert r.status_code == 200, r.text
    tok = r.json()["access_token"]
    me = c.get("/api/auth/me", headers={"Authorization": f"Bearer {tok}"}).json()
    assert me == {"name": "head", "role": "grid_head", "role_zh": "网格长", "grid_code": env["codes"][0]}
    assert c.post("/api/auth/token", data={"username": "head", "password": "wrong"}).status_code == 401
    assert c.post("/api/auth/token", data={"username": "nobody", "password": PW}).status_code == 401


def test_browser_login_sets_a_cookie_and_logout_revokes_it():
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        project = synthetic_project(Path(d) / "t", n_problems=0)
        add_user(project, "a", role="viewer", password="x-long-pw-1")
        c = TestClient(create_app(project))
        r = c.post("/login", data={"username": "a", "password": "bad", "next": "/"}, follow_redirects=False)
        assert r.status_code == 401 and "账号或密码错误" in r.text
        r = c.post("/login", data={"username": "a", "password": "x-long-pw-1", "next": "//evil.example/"},
                   follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
        assert c.get("/api/auth/me").json()["name"] == "a"
        c.get("/logout", follow_redirects=False)
        assert c.get("/api/auth/me").status_code == 401


def test_passwords_are_salted_scrypt_hashes():
    h1, h2 = hash_password("secret"), hash_password("secret")
    assert h1 != h2 and h1.startswith("scrypt$") and "secret" not in h1
    assert verify_password("secret", h1) and not verify_password("Secret", h1)
    assert not verify_password("secret", "") and not verify_password("secret", None)


# ---------------------------------------------------------------- layers
def test_layer_list_and_geojson_in_wgs84(env):
    c, project = env["client"], env["project"]
    kinds = {x["kind"]: x for x in c.get("/api/layers", headers=auth(env, "viewer")).json()}
    assert {"grids", "streets", "alleys", "toilets", "markets", "problems"} <= set(kinds)
    assert kinds["grids"]["title"] == "网格" and kinds["problems"]["big"]
    fc = c.get("/api/layers/grids", headers=auth(env, "viewer")).json()
    assert fc["type"] == "FeatureCollection" and fc["numberMatched"] == 16
    got = gpd.GeoDataFrame.from_features(fc["features"], crs=4326)
    want = project.store.read("grids").to_crs(4326).sort_values("code")
    assert list(got["code"]) == list(want["code"])
    assert shapely.equals_exact(got.geometry.values, want.geometry.values, tolerance=2e-6).all()


def test_unknown_and_missing_layers_are_404(env):
    c = env["client"]
    r = c.get("/api/layers/nope", headers=auth(env, "viewer"))
    assert r.status_code == 404 and "unknown layer kind" in r.json()["detail"]
    r = c.get("/api/layers/scorecard", headers=auth(env, "viewer"))
    assert r.status_code == 404 and "sanigrid analyse" in r.json()["detail"]
    assert c.get("/api/downloads/scorecard.xlsx", headers=auth(env, "viewer")).status_code == 404


def test_problem_filters_and_paging(env):
    c, project = env["client"], env["project"]
    h = auth(env, "viewer")
    allp = project.store.read("problems")
    code = env["codes"][3]
    fc = c.get("/api/layers/problems", params={"grid": code, "limit": 10000}, headers=h).json()
    assert fc["numberMatched"] == int((allp["grid_code"] == code).sum())
    flag, _ = expected_overdue(project)  # the flag's value, for open (overdue) and closed (not) cases alike
    got = {f["properties"]["problem_id"]: f["properties"]["overdue"] for f in fc["features"]}
    assert got == {k: bool(flag[k]) for k in got} and 0 < sum(got.values()) < len(got)
    fc = c.get("/api/layers/problems", params={"category": "暴露垃圾", "status": "结案"}, headers=h).json()
    assert fc["numberMatched"] == int(((allp["category"] == "暴露垃圾") & (allp["status"] == "结案")).sum())
    fc = c.get("/api/layers/problems", params={"date_from": "2026-11-01", "date_to": "2026-11-10T23:59:59"},
               headers=h).json()
    rep = pd.to_datetime(allp["reported_at"])
    assert fc["numberMatched"] == int(((rep >= "2026-11-01") & (rep <= "2026-11-10 23:59:59")).sum())
    fc = c.get("/api/layers/problems", params={"open": True, "limit": 10000}, headers=h).json()
    assert fc["numberMatched"] == int((allp["status"] != "结案").sum())
    flag, _ = expected_overdue(project)
    got = {f["properties"]["problem_id"]: f["properties"]["overdue"] for f in fc["features"]}
    assert len(got) == fc["numberMatched"] and got == {k: bool(flag[k]) for k in got}
    # paging: pages of 70 cover every problem exactly once, in id order
    ids, offset = [], 0
    while offset is not None:
        page = c.get("/api/layers/problems", params={"limit": 70, "offset": offset}, headers=h).json()
        ids += [f["properties"]["problem_id"] for f in page["features"]]
        offset = page["next_offset"]
    assert ids == sorted(allp["problem_id"].astype(int))


def test_bbox_filter_matches_a_geometric_oracle(env):
    c, project = env["client"], env["project"]
    pts = project.store.read("problems").to_crs(4326)
    w, s, e, n = pts.total_bounds
    box = tuple(round(v, 6) for v in (w + 0.001, s + 0.001, (w + e) / 2, (s + n) / 2))
    fc = c.get("/api/layers/problems", params={"bbox": ",".join(map(str, box)), "limit": 10000},
               headers=auth(env, "viewer")).json()
    want = set(pts.loc[pts.intersects(shapely.box(*box)), "problem_id"].astype(int))
    assert {f["properties"]["problem_id"] for f in fc["features"]} == want


@pytest.mark.parametrize("params,needle", [
    ({"bbox": "1,2,3"}, "bbox"), ({"bbox": "a,b,c,d"}, "bbox"), ({"bbox": "118,28,117,29"}, "bbox"),
    ({"category": "不存在的类别"}, "未知类别"), ({"status": "完成"}, "未知状态"),
    ({"limit": 0}, "limit"),
])
def test_bad_filters_are_422(env, params, needle):
    r = env["client"].get("/api/layers/problems", params=params, headers=auth(env, "viewer"))
    assert r.status_code == 422 and needle in r.json()["detail"]


@pytest.mark.parametrize("grid", ["x' OR 1=1", "x' OR '1'='1", '" OR ""="', "%s"])
def test_injected_grid_codes_match_nothing(env, grid):
    """Filter values are query parameters: SQL in a grid code is just a code no grid has."""
    c = env["client"]
    every = c.get("/api/layers/problems", params={"limit": 1}, headers=auth(env, "viewer")).json()
    assert every["numberMatched"] > 0
    r = c.get("/api/layers/problems", params={"grid": grid}, headers=auth(env, "viewer"))
    assert r.status_code == 200 and r.json()["numberMatched"] == 0


def test_filter_on_a_layer_without_that_field_is_422(env):
    r = env["client"].get("/api/layers/toilets", params={"status": "结案"}, headers=auth(env, "viewer"))
    assert r.status_code == 422


def test_layer_xlsx_has_chinese_headers(env):
    from openpyxl import load_workbook

    r = env["client"].get("/api/layers/toilets/xlsx", headers=auth(env, "viewer"))
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.content)).active
    header = [c.value for c in ws[1]]
    assert "名称" in header and "类别" in header and "经度" in header
    assert ws.max_row == 1 + len(env["project"].store.read("toilets"))


# ---------------------------------------------------------------- the map feed and search
def test_map_feed_clusters_when_many_points_are_in_view(env):
    c, project = env["client"], env["project"]
    pts = project.store.read("problems").to_crs(4326)
    w, s, e, n = pts.total_bounds
    bbox = f"{w - 0.01},{s - 0.01},{e + 0.01},{n + 0.01}"
    old = project.settings.web.map_max_points
    project.settings.web.map_max_points = 100
    try:
        fc = c.get("/api/map/problems", params={"bbox": bbox, "zoom": 13}, headers=auth(env, "viewer")).json()
    finally:
        project.settings.web.map_max_points = old
    assert fc["clustered"]
    counts = [f["properties"]["_count"] for f in fc["features"]]
    assert sum(counts) == len(pts) and len(counts) < len(pts)
    assert sum(f["properties"]["_open"] for f in fc["features"]) == int((pts["status"] != "结案").sum())
    # zoomed in, few points: the points themselves with their popup fields
    fc = c.get("/api/map/problems", params={"bbox": bbox, "zoom": 17}, headers=auth(env, "viewer")).json()
    assert not fc.get("clustered") and len(fc["features"]) == len(pts)
    props = fc["features"][0]["properties"]
    assert {"problem_id", "status", "overdue"} <= set(props) and "unit" not in props  # popups come by key
    one = c.get(f"/api/layers/problems/features/{props['problem_id']}", headers=auth(env, "viewer")).json()
    assert one["type"] == "Feature" and one["properties"]["problem_id"] == props["problem_id"]
    flag, days = expected_overdue(project)
    pid = props["problem_id"]
    assert props["overdue"] == bool(flag[pid]) == one["properties"]["overdue"]
    assert one["properties"]["days_overdue"] == pytest.approx(days[pid], abs=0.051)
    assert {"category", "unit", "deadline"} <= set(one["properties"])
    assert c.get("/api/layers/problems/features/99999999", headers=auth(env, "viewer")).status_code == 404
    assert c.get("/api/layers/problems/features/abc", headers=auth(env, "viewer")).status_code == 404
    assert c.get("/api/layers/toilets/features/1", headers=auth(env, "viewer")).status_code == 404


def test_map_feed_shifts_to_gcj02_for_such_basemaps(env):
    c = env["client"]
    w = c.get("/api/map/toilets", headers=auth(env, "viewer")).json()["features"][0]["geometry"]["coordinates"]
    g = c.get("/api/map/toilets", params={"coords": "gcj02"}, headers=auth(env, "viewer")).json()
    gx, gy = g["features"][0]["geometry"]["coordinates"]
    ex, ey = wgs84_to_gcj02(w[0], w[1])
    assert (gx, gy) == pytest.approx((float(ex), float(ey)), abs=2e-6)
    assert abs(gx - w[0]) > 1e-3  # a real shift of hundreds of metres


def test_search_finds_grid_codes_and_street_names(env):
    c = env["client"]
    code = env["codes"][5]
    hits = c.get("/api/search", params={"q": code}, headers=auth(env, "viewer")).json()
    assert hits[0]["layer"] == "grids" and hits[0]["href"] == f"/grids/{code}"
    w, s, e, n = hits[0]["bounds"]
    assert w < e and s < n
    hits = c.get("/api/search", params={"q": "解放路"}, headers=auth(env, "viewer")).json()
    assert any(h["layer"] == "streets" and h["label"] == "解放路" for h in hits)
    assert c.get("/api/search", params={"q": "不存在的地名"}, headers=auth(env, "viewer")).json() == []
    assert c.get("/api/search", params={"q": ""}, headers=auth(env, "viewer")).status_code == 422


# ---------------------------------------------------------------- intake
def test_intake_assigns_grid_deadline_and_history(env):
    c, project = env["client"], env["project"]
    code = env["codes"][7]
    lon, lat = centre_lonlat(env, code)
    r = c.post("/api/problems", json={"category": "乱堆物料", "description": "楼道口堆放建材", "lon": lon, "lat": lat,
                                      "source": "巡查", "reported_at": "2026-11-27T09:30:00"},
               headers=auth(env, "office"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["grid_code"] == code and body["status"] == "立案"
    want = deadline_for("乱堆物料", pd.Timestamp("2026-11-27 09:30").to_pydatetime(), settings=project.settings)
    assert pd.Timestamp(body["deadline"]) == pd.Timestamp(want)
    row = project.store.read("problems", where=eq("problem_id", body['problem_id']))
    assert row["grid_code"].iloc[0] == code and row["unit"].iloc[0] == body["unit"]
    hist = project.store.read_table(HISTORY_TABLE)
    assert (pd.to_numeric(hist["problem_id"]) == body["problem_id"]).sum() == 1
    detail = c.get(f"/api/problems/{body['problem_id']}", headers=auth(env, "viewer")).json()
    assert detail["description"] == "楼道口堆放建材" and detail["history"][0]["to_status"] == "立案"


def test_intake_converts_gcj02_coordinates(env):
    c, project = env["client"], env["project"]
    code = env["codes"][8]
    lon, lat = centre_lonlat(env, code)
    glon, glat = (float(v) for v in wgs84_to_gcj02(lon, lat))
    r = c.post("/api/problems", json={"category": "其他", "lon": glon, "lat": glat, "coords": "gcj02"},
               headers=auth(env, "office"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["lon"], body["lat"]) == pytest.approx((lon, lat), abs=1e-6)
    back = gcj02_to_wgs84(glon, glat)
    assert (body["lon"], body["lat"]) == pytest.approx((float(back[0]), float(back[1])), abs=1e-6)
    pt = project.store.read("problems", where=eq("problem_id", body['problem_id']))
    assert assign_grid(pt, env["grids"]).iloc[0] == code


def test_intake_flags_possible_duplicates(env):
    c = env["client"]
    lon, lat = centre_lonlat(env, env["codes"][9])
    body = {"category": "暴露垃圾", "lon": lon, "lat": lat}
    first = c.post("/api/problems", json=body, headers=auth(env, "office")).json()
    second = c.post("/api/problems", json={**body, "lon": lon + 0.00003}, headers=auth(env, "office")).json()
    assert first["problem_id"] in second["possible_duplicates"]
    other = c.post("/api/problems", json={**body, "category": "沿街晾挂"}, headers=auth(env, "office")).json()
    assert first["problem_id"] not in other["possible_duplicates"]
    far = c.post("/api/problems", json={**body, "lon": lon + 0.001}, headers=auth(env, "office")).json()
    assert far["possible_duplicates"] == []


@pytest.mark.parametrize("body,status,needle", [
    ({"category": "暴露垃圾", "lon": 117.22, "lat": 28.90}, 422, "不在本县"),  # 60 km north
    ({"category": "暴露垃圾", "lon": 0.0, "lat": 0.0}, 422, "不在本县"),
    ({"category": "外星人", "lon": 117.22, "lat": 28.30}, 422, "未知问题类别"),
    ({"category": "暴露垃圾", "lon": 200.0, "lat": 28.30}, 422, "lon"),
    ({"category": "暴露垃圾", "lon": 117.22, "lat": -95}, 422, "lat"),
    ({"category": "暴露垃圾", "lon": "东经117", "lat": 28.3}, 422, "lon"),
    ({"category": "暴露垃圾", "lon": 117.22, "lat": 28.30, "coords": "utm"}, 422, "coords"),
    ({"category": "暴露垃圾", "lon": 117.22, "lat": 28.30, "source": "微博"}, 422, "source"),
    ({"lon": 117.22, "lat": 28.30}, 422, "category"),
])
def test_intake_refusals_are_clear_422(env, body, status, needle):
    r = env["client"].post("/api/problems", json=body, headers=auth(env, "office"))
    assert r.status_code == status, r.text
    assert needle in r.json()["detail"]


def test_intake_authorization(env):
    c = env["client"]
    own, other = env["codes"][0], env["codes"][1]
    lon, lat = centre_lonlat(env, own)
    olon, olat = centre_lonlat(env, other)
    assert c.post("/api/problems", json={"category": "其他", "lon": lon, "lat": lat},
                  headers=auth(env, "viewer")).status_code == 403
    r = c.post("/api/problems", json={"category": "其他", "lon": olon, "lat": olat}, headers=auth(env, "head"))
    assert r.status_code == 403 and "本网格" in r.json()["detail"]
    r = c.post("/api/problems", json={"category": "其他", "lon": lon, "lat": lat}, headers=auth(env, "head"))
    assert r.status_code == 201 and r.json()["grid_code"] == own


# ---------------------------------------------------------------- transitions
def _real_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (30, 120, 200)).save(buf, format="PNG")
    return buf.getvalue()


PNG = _real_png()


def _photo(env, pid: int, who: str):
    return env["client"].post(f"/api/problems/{pid}/photos", files={"photo": ("p.png", PNG, "image/png")},
                              headers=auth(env, who))


def _new_problem(env, code: str) -> int:
    lon, lat = centre_lonlat(env, code)
    r = env["client"].post("/api/problems", json={"category": "道路破损", "lon": lon + 0.0004, "lat": lat},
                           headers=auth(env, "office"))
    assert r.status_code == 201, r.text
    return r.json()["problem_id"]


def test_legal_transitions_are_recorded_with_note_and_actor(env):
    c, project = env["client"], env["project"]
    pid = _new_problem(env, env["codes"][0])
    for to, who in (("派遣", "office"), ("处置", "head"), ("核查", "head"), ("返工", "inspector"), ("处置", "head"),
                    ("核查", "head"), ("结案", "inspector")):
        if to == "核查":  # handing in needs a photo taken after handling began ([problems] after_photo_required)
            assert _photo(env, pid, "head").status_code == 201
        r = c.post(f"/api/problems/{pid}/transitions", json={"to_status": to, "note": f"到{to}", "actor": "李四"},
                   headers=auth(env, who))
        assert r.status_code == 201, r.text
    hist = c.get(f"/api/problems/{pid}/history", headers=auth(env, "viewer")).json()
    assert [h["to_status"] for h in hist] == ["立案", "派遣", "处置", "核查", "返工", "处置", "核查", "结案"]
    assert hist[2]["actor"] == "李四 (head)" and hist[2]["note"] == "到处置"
    row = project.store.read("problems", where=eq("problem_id", pid))
    assert row["status"].iloc[0] == "结案" and pd.notna(row["closed_at"].iloc[0])


def test_illegal_transition_is_409_and_changes_nothing(env):
    c, project = env["client"], env["project"]
    pid = _new_problem(env, env["codes"][2])
    n_hist = len(project.store.read_table(HISTORY_TABLE))
    r = c.post(f"/api/problems/{pid}/transitions", json={"to_status": "结案"}, headers=auth(env, "office"))
    assert r.status_code == 409 and "不能从「立案」变为「结案」" in r.json()["detail"]
    assert project.store.read("problems", where=eq("problem_id", pid))["status"].iloc[0] == "立案"
    assert len(project.store.read_table(HISTORY_TABLE)) == n_hist


def test_transition_authorization_and_unknowns(env):
    c = env["client"]
    pid_other = _new_problem(env, env["codes"][4])
    r = c.post(f"/api/problems/{pid_other}/transitions", json={"to_status": "派遣"}, headers=auth(env, "head"))
    assert r.status_code == 403
    r = c.post(f"/api/problems/{pid_other}/transitions", json={"to_status": "派遣"}, headers=auth(env, "viewer"))
    assert r.status_code == 403
    r = c.post("/api/problems/999999/transitions", json={"to_status": "派遣"}, headers=auth(env, "office"))
    assert r.status_code == 404
    r = c.post(f"/api/problems/{pid_other}/transitions", json={"to_status": "完成"}, headers=auth(env, "office"))
    assert r.status_code == 422
    assert c.get("/api/problems/999999", headers=auth(env, "viewer")).status_code == 404


def test_concurrent_writers_lose_nothing(env):
    c, project = env["client"], env["project"]
    before = set(project.store.read("problems", columns=["problem_id"])["problem_id"].astype(int))
    codes = env["codes"][10:14]
    results, errors = [], []

    def worker(k: int) -> None:
        lon, lat = centre_lonlat(env, codes[k % len(codes)])
        for j in range(2):
            r = c.post("/api/problems", json={"category": "其他", "description": f"并发{k}-{j}",
                                              "lon": lon + 0.0001 * j, "lat": lat}, headers=auth(env, "office"))
            (results if r.status_code == 201 else errors).append(r.json())

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 10
    ids = [r["problem_id"] for r in results]
    assert len(set(ids)) == 10
    after = project.store.read("problems", columns=["problem_id", "description"])
    assert set(ids) <= set(after["problem_id"].astype(int)) and before <= set(after["problem_id"].astype(int))
    assert sorted(after.loc[after["problem_id"].isin(ids), "description"]) == sorted(
        f"并发{k}-{j}" for k in range(5) for j in range(2))
    hist = project.store.read_table(HISTORY_TABLE)
    assert set(ids) <= set(pd.to_numeric(hist["problem_id"]).astype(int))


def test_photo_upload_is_stored_beside_the_project(env):
    c, project = env["client"], env["project"]
    pid = _new_problem(env, env["codes"][0])
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, format="PNG")
    png = buf.getvalue()
    r = c.post(f"/api/problems/{pid}/photos", files={"photo": ("p.png", png, "image/png")}, headers=auth(env, "head"))
    assert r.status_code == 201, r.text
    path = project.root / r.json()["path"]
    assert path.read_bytes() == png and path.parent.name == "photos"
    assert c.get(f"/api/problems/{pid}", headers=auth(env, "viewer")).json()["photos"] == [r.json()["path"]]
    assert len(project.store.read_table(PHOTO_TABLE)) >= 1
    r = c.post(f"/api/problems/{pid}/photos", files={"photo": ("p.txt", b"hi", "text/plain")},
               headers=auth(env, "office"))
    assert r.status_code == 422
    other = _new_problem(env, env["codes"][6])
    r = c.post(f"/api/problems/{other}/photos", files={"photo": ("p.png", png, "image/png")}, headers=auth(env, "head"))
    assert r.status_code == 403


# ---------------------------------------------------------------- pages and downloads
def _external_urls(html: str) -> list[str]:
    return re.findall(r"https?://[^\s\"'<>)]+", html)


def test_county_map_page_is_catalogue_driven_and_local(env):
    c, project = env["client"], env["project"]
    r = c.get("/", headers=auth(env, "viewer"))
    assert r.status_code == 200
    html = r.text
    assert _external_urls(html) == []
    srcs = re.findall(r"<(?:script|link)[^>]+(?:src|href)=\"([^\"]+)\"", html)
    assert srcs and all(s.startswith("/static/") for s in srcs)
    for s in srcs:  # every asset the page names is served by the app
        assert c.get(s).status_code == 200, s
    from sanigrid.layers.catalogue import CATALOGUE

    for info in project.store.info():
        assert f'"title": "{CATALOGUE[info.kind].zh}' in html  # a layer, or its parts (问题 · 未结案 …)
    assert '"url": "/api/map/problems?open=1"' in html  # the big layer is never inlined
    assert html.count('"problem_id"') < 5
    assert 'lang="zh-CN"' in html


def test_map_page_in_english_when_configured(env):
    project = env["project"]
    project.settings.project.language = "en"
    code = env["codes"][0]
    try:
        html = env["client"].get("/", headers=auth(env, "viewer")).text
        page = env["client"].get(f"/grids/{code}", headers=auth(env, "office")).text
    finally:
        project.settings.project.language = "zh"
    assert '"title": "Public toilets"' in html and '"legend": "Legend"' in html
    assert "(viewer)" in html
    # the grid head's side panel follows the setting too: headings, field names, role
    assert "Downloads" in page and "Lead unit" in page and "<th>Reported at</th>" in page
    assert "(campaign office)" in page and "下载" not in page


def test_grid_page_lists_open_problems_most_overdue_first(env):
    c, project = env["client"], env["project"]
    probs = project.store.read("problems")
    code = probs.loc[probs["status"] != "结案", "grid_code"].value_counts().index[0]
    r = c.get(f"/grids/{code}", headers=auth(env, "office"))
    assert r.status_code == 200 and _external_urls(r.text) == []
    assert f"网格 {code}" in r.text and "责任清单" in r.text
    rows = c.get(f"/api/grids/{code}/open", headers=auth(env, "viewer")).json()
    assert len(rows) == int(((probs["grid_code"] == code) & (probs["status"] != "结案")).sum())
    days = [r["days_overdue"] for r in rows]
    assert days == sorted(days, reverse=True)
    flag, want = expected_overdue(project)
    assert [r["overdue"] for r in rows] == [bool(flag[r["problem_id"]]) for r in rows]
    assert days == pytest.approx([want[r["problem_id"]] for r in rows], abs=0.051)  # rounded to 0.1 day
    n_late = sum(r["overdue"] for r in rows)
    assert f'其中逾期 <span class="sg-late">{n_late}</span> 件' in r.text  # the page's count is the list's
    ids_in_page = [int(x) for x in re.findall(r'<tr id="case-(\d+)"', r.text)]
    assert ids_in_page == [r["problem_id"] for r in rows][:300]


def test_grid_page_authorization(env):
    c = env["client"]
    own, other = env["codes"][0], env["codes"][1]
    assert c.get(f"/grids/{own}", headers=auth(env, "head")).status_code == 200
    assert c.get(f"/grids/{other}", headers=auth(env, "head")).status_code == 403
    assert c.get(f"/grids/{other}/responsibility.xlsx", headers=auth(env, "head")).status_code == 403
    assert c.get(f"/grids/{other}", headers=auth(env, "viewer")).status_code == 200
    assert c.get("/grids/999", headers=auth(env, "office")).status_code == 404


def test_grid_downloads(env):
    from openpyxl import load_workbook

    c = env["client"]
    code = env["codes"][0]
    r = c.get(f"/grids/{code}/responsibility.xlsx", headers=auth(env, "head"))
    assert r.status_code == 200
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames and wb.active.max_row >= 1
    r = c.get(f"/grids/{code}/map.png", params={"paper": "A4"}, headers=auth(env, "head"))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB")).astype(int)
    assert img.shape[:2] == pytest.approx((1240, 1754), abs=1)  # A4 landscape at 150 dpi
    # the grid's own boundary is drawn on top, in the plain line colour (#3388ff) of a layer outside the catalogue
    blue = (np.abs(img - np.array([0x33, 0x88, 0xFF])).max(axis=2) < 30).sum()
    assert blue > 500
    assert c.get(f"/grids/{code}/map.png", params={"paper": "B5"}, headers=auth(env, "head")).status_code == 422
    r = c.get("/api/downloads/responsibility.xlsx", params={"grid": code}, headers=auth(env, "viewer"))
    assert r.status_code == 200
    assert c.get("/api/downloads/sample_points.xlsx", headers=auth(env, "viewer")).status_code == 404


def test_openapi_docs_are_served_locally(env):
    c = env["client"]
    r = c.get("/docs")
    assert r.status_code == 200 and _external_urls(r.text) == []
    for s in re.findall(r"(?:src|href)=['\"](/static/[^'\"]+)", r.text):
        assert c.get(s).status_code == 200
    paths = c.get("/openapi.json").json()["paths"]
    assert {"/api/problems", "/api/problems/{problem_id}/transitions", "/api/layers/{kind}", "/grids/{code}"} <= set(
        paths)


# ---------------------------------------------------------------- the command line
def test_user_commands_and_demo_accounts(tmp_path):
    from typer.testing import CliRunner

    from sanigrid.scripts.cli import app
    from sanigrid.scripts.web import demo_accounts

    project = synthetic_project(tmp_path / "t", n_problems=0)
    code = sorted(project.store.read("grids")["code"])[2]
    run = CliRunner().invoke
    r = run(app, ["user", "add", "王五", "--role", "grid_head", "--grid", code, "--password", "x1-long-enough",
                  "--project", str(project.root)])
    assert r.exit_code == 0, r.output
    token = re.search(r"sg_[\w-]+", r.output).group(0)
    r = run(app, ["user", "list", "--project", str(project.root)])
    assert "王五" in r.output and code in r.output
    c = TestClient(create_app(project))
    assert c.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).json()["grid_code"] == code
    r = run(app, ["user", "add", "x", "--role", "grid_head", "--project", str(project.root)])
    assert r.exit_code != 0
    # no --password: one is made and printed once, and it logs in; --api-only has none
    r = run(app, ["user", "add", "赵六", "--role", "viewer", "--project", str(project.root)])
    made = re.search(r"password \(只显示这一次, 请转告本人\): (\S+)", r.output).group(1)
    assert c.post("/api/auth/token", data={"username": "赵六", "password": made}).status_code == 200
    r = run(app, ["user", "add", "接口", "--role", "viewer", "--api-only", "--project", str(project.root)])
    assert r.exit_code == 0 and "password" not in r.output
    for name in ("赵六", "接口"):
        assert run(app, ["user", "remove", name, "--project", str(project.root)]).exit_code == 0
    r = run(app, ["user", "remove", "王五", "--project", str(project.root)])
    assert r.exit_code == 0
    assert c.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    accounts = demo_accounts(project)
    assert [a[1].split()[0] for a in accounts] == ["office", "grid_head", "inspector", "viewer"]
    for name, _, password in accounts:
        assert c.post("/api/auth/token", data={"username": name, "password": password}).status_code == 200
    assert len(demo_accounts(project)) == 4  # run again: replaced, not duplicated
    from sanigrid.web.auth import list_users

    assert sorted(u.name for u in list_users(project.store)) == ["demo-grid", "demo-inspector", "demo-office",
                                                                 "demo-viewer"]


def test_cluster_counts_match_numpy_histogram():
    """Server-side clusters against an independent binning (numpy.histogram2d on the same lattice)."""
    from sanigrid.web.features import PointIndex, clusters

    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(117.20, 117.24, 5000), rng.uniform(28.28, 28.31, 5000)
    idx = PointIndex(lon, lat, rng.random(5000) < 0.3, rng.random(5000) < 0.1, np.full(5000, None, object), None)
    import json

    fc = json.loads(clusters(idx, np.ones(5000, bool), zoom=14, cell_px=64, layer="problems"))
    cell = 64 * 360.0 / (256 * 2**14)
    ex = np.arange(np.floor(lon.min() / cell), np.floor(lon.max() / cell) + 2) * cell
    ey = np.arange(np.floor(lat.min() / cell), np.floor(lat.max() / cell) + 2) * cell
    hist, _, _ = np.histogram2d(lon, lat, bins=[ex, ey])
    assert sorted(f["properties"]["_count"] for f in fc["features"]) == sorted(hist[hist > 0].astype(int))
    assert sum(f["properties"]["_open"] for f in fc["features"]) == int(idx.open.sum())


def test_scorecard_download_rank_on_grid_page_and_rank_shading(tmp_path):
    from openpyxl import load_workbook

    project = synthetic_project(tmp_path / "t", n_problems=0)
    grids = project.store.read("grids").sort_values("code").reset_index(drop=True)
    sc = grids[["code", "name", "lead_unit", "geometry"]].assign(rank=range(len(grids), 0, -1),
                                                                 score=np.linspace(50, 95, len(grids)))
    project.store.write("scorecard", gpd.GeoDataFrame(sc, geometry="geometry", crs=grids.crs))
    token = add_user(project, "o", role="office")
    c = TestClient(create_app(project, warm=False))
    h = {"Authorization": f"Bearer {token}"}
    r = c.get("/api/downloads/scorecard.xlsx", headers=h)
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.content)).active
    header = [x.value for x in ws[1]]
    assert "排名" in header and ws.cell(2, header.index("排名") + 1).value == 1  # sorted by rank
    code = grids["code"].iloc[0]
    page = c.get(f"/grids/{code}", headers=h).text
    assert f'<span class="sg-rank">{len(grids)}</span> / {len(grids)}' in page
    assert f'"domain": [1, {len(grids)}]' in page  # the rank colours span every grid, not only those in view
    html = c.get("/", headers=h).text
    assert '"kind": "scorecard"' in html and f'"ramp": ["{RANK_RAMP[0]}"' in html  # shaded by rank, shown at start


def test_edit_and_reroute_a_problem(env):
    c, project = env["client"], env["project"]
    own, other = env["codes"][0], env["codes"][1]
    pid = _new_problem(env, own)
    r = c.patch(f"/api/problems/{pid}", json={"description": "路面坑洼", "category": "乱堆物料"},
                headers=auth(env, "head"))
    assert r.status_code == 200, r.text
    row = project.store.read("problems", where=eq("problem_id", pid)).iloc[0]
    assert row["description"] == "路面坑洼" and row["category"] == "乱堆物料"
    assert pd.Timestamp(row["deadline"]) == pd.Timestamp(deadline_for(
        "乱堆物料", pd.Timestamp(row["reported_at"]).to_pydatetime(), settings=project.settings))
    # a grid head cannot move a problem out of their grid; the office can
    r = c.patch(f"/api/problems/{pid}", json={"grid_code": other}, headers=auth(env, "head"))
    assert r.status_code == 403 and "移出本网格" in r.json()["detail"]
    assert c.patch(f"/api/problems/{pid}", json={"grid_code": "nope"}, headers=auth(env, "office")).status_code == 422
    assert c.patch(f"/api/problems/{pid}", json={"grid_code": other}, headers=auth(env, "office")).status_code == 200
    assert project.store.read("problems", where=eq("problem_id", pid))["grid_code"].iloc[0] == other
    # now in another grid: the first grid's head can no longer touch it
    r = c.patch(f"/api/problems/{pid}", json={"description": "x"}, headers=auth(env, "head"))
    assert r.status_code == 403
    assert c.patch(f"/api/problems/{pid}", json={}, headers=auth(env, "office")).status_code == 422
    assert c.patch(f"/api/problems/{pid}", json={"category": "外星人"}, headers=auth(env, "office")).status_code == 422
    assert c.patch(f"/api/problems/{pid}", json={"unit": "县城管局"}, headers=auth(env, "viewer")).status_code == 403
    notes = [h["note"] for h in c.get(f"/api/problems/{pid}/history", headers=auth(env, "viewer")).json()]
    assert any("grid_code" in n and other in n for n in notes)


def test_gcj02_basemap_shifts_the_page_data(tmp_path):
    from sanigrid.layers.settings import save_settings

    project = synthetic_project(tmp_path / "t", n_problems=0)
    project.settings.basemap.url = "https://t{s}.tianditu.gov.cn/vec_w/wmts?tk={tk}&x={x}&y={y}&l={z}"
    project.settings.basemap.tk = "KEY123"
    project.settings.basemap.subdomains = "01234567"
    project.settings.basemap.coords = "gcj02"
    save_settings(project.settings, project.settings_path)
    token = add_user(project, "v", role="viewer")
    c = TestClient(create_app(project.root, warm=False))
    html = c.get("/", headers={"Authorization": f"Bearer {token}"}).text
    assert "tk=KEY123" in html and "{tk}" not in html  # the configured basemap (the one allowed outside request)
    assert '"coords": "gcj02"' in html
    toilet = project.store.read("toilets").to_crs(4326).geometry.iloc[0]
    gx, gy = (float(v) for v in wgs84_to_gcj02(toilet.x, toilet.y))
    assert f"[{round(gx, 6)},{round(gy, 6)}]" in html.replace(" ", "")


def test_static_assets_are_cached_by_the_browser(env):
    """A slow intranet PC fetches the libraries once a day; our own files revalidate (304 when unchanged)."""
    c = env["client"]
    r = c.get("/static/vendor/leaflet/leaflet.js")
    assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=86400"
    r = c.get("/static/sanigrid/sanigrid.js")
    assert r.headers["cache-control"] == "no-cache"
    again = c.get("/static/sanigrid/sanigrid.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304


def test_grid_page_report_form_and_next_status_buttons_only_for_writers(env):
    from sanigrid.layers.cases import TRANSITIONS

    c, project, code = env["client"], env["project"], env["codes"][0]
    office = c.get(f"/grids/{code}", headers=auth(env, "office")).text
    head = c.get(f"/grids/{code}", headers=auth(env, "head")).text
    viewer = c.get(f"/grids/{code}", headers=auth(env, "viewer")).text
    for page in (office, head):
        assert 'id="sg-report"' in page and "上报问题" in page
        cats = re.findall(r'<option value="([^"]*)">', page.split('name="category"')[1].split("</select>")[0])
        assert cats == [k.name for k in project.settings.problems.categories]
    assert 'id="sg-report"' not in viewer and 'class="sg-step"' not in viewer and "上报问题" not in viewer
    # one button per next status the account may take (layers.cases.PERMISSIONS), on every open row
    rows = c.get(f"/api/grids/{code}/open", headers=auth(env, "viewer")).json()
    assert rows
    inspector = c.get(f"/grids/{code}", headers=auth(env, "inspector")).text
    verify = {("核查", "结案"), ("核查", "返工")}
    for r in rows:
        got = re.findall(rf'data-id="{r["problem_id"]}" data-to="([^"]*)"', head)
        assert got == [s for s in TRANSITIONS[r["status"]] if (r["status"], s) not in verify]
        got = re.findall(rf'data-id="{r["problem_id"]}" data-to="([^"]*)"', inspector)
        assert got == [s for s in TRANSITIONS[r["status"]] if (r["status"], s) in verify]
        got = re.findall(rf'data-id="{r["problem_id"]}" data-to="([^"]*)"', office)
        assert got == list(TRANSITIONS[r["status"]])
    assert "核查" in {r["status"] for r in rows}  # rows for the inspector and for the grid head were seen
    project.settings.project.language = "en"
    try:
        en = c.get(f"/grids/{code}", headers=auth(env, "head")).text
    finally:
        project.settings.project.language = "zh"
    assert "Report a problem" in en and "上报问题" not in en and "Pick on the map" in en


def test_logins_survive_a_restart_and_end_with_logout_or_removal(tmp_path):
    """Password logins are kept (hashed) beside the project: a new app (a restarted server) honours them."""
    from typer.testing import CliRunner

    from sanigrid.scripts.cli import app
    from sanigrid.web.auth import SESSIONS_FILE

    project = synthetic_project(tmp_path / "t", n_problems=0)
    add_user(project, "甲", role="viewer", password=PW)
    add_user(project, "乙", role="viewer", password=PW)
    first = TestClient(create_app(project))
    tokens = {n: first.post("/api/auth/token", data={"username": n, "password": PW}).json()["access_token"]
              for n in ("甲", "乙")}
    restarted = TestClient(create_app(project))
    for name, token in tokens.items():
        me = restarted.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["name"] == name
    assert tokens["甲"].encode() not in (project.root / SESSIONS_FILE).read_bytes()  # only hashes are kept
    restarted.get("/logout", headers={"Authorization": f"Bearer {tokens['甲']}"}, follow_redirects=False)
    assert first.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens['甲']}"}).status_code == 401
    r = CliRunner().invoke(app, ["user", "remove", "乙", "--project", str(project.root)])
    assert r.exit_code == 0
    assert first.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens['乙']}"}).status_code == 401
