"""One case read through every surface at one instant: the same overdue flag and the same days everywhere.

Issue 9 §2: the map popup and ``/api/layers/problems`` counted overdue at today's date while the grid
page, ``/api/grids/{code}/open``, the 责任清单 and the CLI counted it at the instant recorded with the
data (46.1 days in one place, 30.3 in another; "其中逾期 2 件" with 3 cases past their deadline). Every
surface now asks ``layers.cases``; this test reads the same cases through all of them and checks the
values against an oracle computed here from the raw layer with pandas.
"""

from __future__ import annotations

import io
import re
import warnings
from datetime import datetime

import numpy as np
import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from webproject import synthetic_project

from sanigrid.geo.problems import RESPONSIBILITY_HEADERS
from sanigrid.layers import cases
from sanigrid.layers.filters import eq
from sanigrid.scripts.cli import app as cli
from sanigrid.web.app import create_app
from sanigrid.web.auth import add_user

AS_OF = datetime(2026, 11, 23, 9, 0)  # the instant recorded with the data (after every event in them)
LATER = datetime(2026, 12, 8, 14, 30)  # "now", once the desk has recorded a step after the snapshot


@pytest.fixture(scope="module")
def town(tmp_path_factory):
    project = synthetic_project(tmp_path_factory.mktemp("surfaces") / "town", n_problems=300)
    frame = project.store.read("problems")
    frame.loc[frame.index[:40:3], cases.PRIORITY] = True
    project.store.write("problems", frame, params={"as_of": AS_OF.isoformat()}, synthetic=True)
    project.settings.web.map_max_points = 10**6  # the map feed sends points (not clusters) for the grid
    token = add_user(project.store, "office", role="office")
    head_grid = sorted(project.store.read("grids")["code"])[0]
    tokens = {"office": token, "head": add_user(project.store, "head", role="grid_head", grid_code=head_grid),
              "inspector": add_user(project.store, "inspector", role="inspector"),
              "viewer": add_user(project.store, "viewer", role="viewer")}
    return {"project": project, "client": TestClient(create_app(project, warm=False)), "token": token,
            "tokens": tokens, "head_grid": head_grid}


def _oracle(frame: pd.DataFrame, at: datetime) -> pd.DataFrame:
    """Open and overdue at ``at`` written out independently of layers.cases."""
    t = pd.Timestamp(at)
    rep, dl = pd.to_datetime(frame["reported_at"]), pd.to_datetime(frame["deadline"])
    closed = pd.to_datetime(frame["closed_at"])
    open_ = (rep <= t) & ~((closed <= t) | (closed.isna() & (frame["status"] == "结案")))
    late = open_ & (dl < t)
    days = np.where(late, np.round((t - dl).dt.total_seconds() / 86400, 1), 0.0)
    return pd.DataFrame({"problem_id": frame["problem_id"].astype(int), "grid_code": frame["grid_code"],
                         "open": open_, "overdue": late, "days": days})


def _busiest_grid(oracle: pd.DataFrame) -> str:
    late = oracle[oracle["overdue"]]
    return str(late["grid_code"].value_counts().idxmax())


def _xlsx_rows(data: bytes | str, sheet: str) -> dict[int, dict[str, object]]:
    wb = openpyxl.load_workbook(io.BytesIO(data) if isinstance(data, bytes) else data, read_only=True)
    ws = wb[sheet]
    rows = list(ws.iter_rows(values_only=True))
    head = list(rows[0])
    out = {}
    for r in rows[1:]:
        rec = dict(zip(head, r, strict=False))
        out[int(rec[RESPONSIBILITY_HEADERS["problem_id"]])] = rec
    return out


def _surfaces(town, code: str) -> dict[str, dict[int, tuple[bool, float | None]]]:
    """``{surface: {problem_id: (overdue, days or None when the surface shows no days)}}`` for a grid."""
    project, c = town["project"], town["client"]
    h = {"Authorization": f"Bearer {town['token']}"}
    out: dict[str, dict[int, tuple[bool, float | None]]] = {}

    def put(name: str, pid: int, flag: bool, days: float | None) -> None:
        out.setdefault(name, {})[pid] = (bool(flag), None if days is None else float(days))

    # the command line: `sanigrid problems` and its 责任清单 workbook
    r = CliRunner().invoke(cli, ["problems", "--project", str(project.root)])
    assert r.exit_code == 0, r.output
    path = sorted((project.root / "outputs").glob("责任清单_*.xlsx"))[-1]
    for pid, rec in _xlsx_rows(str(path), f"网格{code}").items():
        put("cli 责任清单.xlsx", pid, rec[RESPONSIBILITY_HEADERS["overdue"]] == "是",
            rec[RESPONSIBILITY_HEADERS["days_overdue"]])
    # the API layer feed (all of the grid's cases, open or not)
    fc = c.get(f"/api/layers/problems?grid={code}&limit=10000", headers=h).json()
    for f in fc["features"]:
        p = f["properties"]
        put("api layer feed", p["problem_id"], p["overdue"], p["days_overdue"])
    fc = c.get(f"/api/layers/problems?grid={code}&open=1&limit=10000", headers=h).json()
    for f in fc["features"]:
        p = f["properties"]
        put("api layer feed open=1", p["problem_id"], p["overdue"], p["days_overdue"])
    # the grid's open list
    for p in c.get(f"/api/grids/{code}/open", headers=h).json():
        put("api grid open list", p["problem_id"], p["overdue"], p["days_overdue"])
    # the grid page: one row per open case, class 'late' when overdue, days in the last-but-one cell
    page = c.get(f"/grids/{code}", headers=h).text
    for m in re.finditer(r'<tr id="case-(\d+)"( class="late")?>.*?<td [^>]*class="days">([\d.]*)</td>', page, re.S):
        put("grid page", int(m.group(1)), bool(m.group(2)), float(m.group(3)) if m.group(3) else 0.0)
    head = re.search(r'未结案问题 (\d+) 件, 其中逾期 <span class="sg-late">(\d+)</span> 件', page)
    out["grid page heading"] = {-1: (True, float(head.group(2))), -2: (True, float(head.group(1)))}
    # the 责任清单 downloads of the web (one grid, and the county)
    for name, url, sheet in (("web grid 责任清单.xlsx", f"/grids/{code}/responsibility.xlsx", f"网格{code}"),
                             ("web county 责任清单.xlsx", "/api/downloads/responsibility.xlsx", f"网格{code}")):
        resp = c.get(url, headers=h)
        assert resp.status_code == 200, resp.text
        for pid, rec in _xlsx_rows(resp.content, sheet).items():
            put(name, pid, rec[RESPONSIBILITY_HEADERS["overdue"]] == "是", rec[RESPONSIBILITY_HEADERS["days_overdue"]])
    # the map: the grid's open points as drawn (flag only), and each popup (fetched by key)
    fc = c.get(f"/api/map/problems?grid={code}&open=1&zoom=19", headers=h).json()
    assert not fc.get("clustered")
    for f in fc["features"]:
        pid = f["properties"]["problem_id"]
        put("map feed", pid, f["properties"]["overdue"], None)
        pop = c.get(f"/api/layers/problems/features/{pid}", headers=h).json()["properties"]
        put("map popup", pid, pop["overdue"], pop["days_overdue"])
    # the clusters' overdue count over the grid (the map zoomed out)
    project.settings.web.map_max_points = 1
    try:
        cl = c.get(f"/api/map/problems?grid={code}&open=1&zoom=3", headers=h).json()
    finally:
        project.settings.web.map_max_points = 10**6
    assert cl["clustered"]
    out["map clusters"] = {-1: (True, float(sum(f["properties"]["_overdue"] for f in cl["features"]))),
                           -2: (True, float(sum(f["properties"]["_count"] for f in cl["features"])))}
    return out


def _check(town, at: datetime, code: str | None = None) -> None:
    project = town["project"]
    frame = project.store.read("problems")
    oracle = _oracle(frame, at)
    code = code or _busiest_grid(oracle)
    mine = oracle[(oracle["grid_code"] == code)]
    open_ = mine[mine["open"]]
    late = open_[open_["overdue"]]
    assert len(late) >= 3 and (open_["overdue"] == False).any()  # noqa: E712 (both kinds of case are read)
    assert (late["days"] > 1).any()
    want = {int(r.problem_id): (bool(r.overdue), float(r.days)) for r in open_.itertuples()}
    got = _surfaces(town, code)
    for name, values in got.items():
        if name in ("grid page heading", "map clusters"):
            assert values[-1][1] == len(late), (name, values, len(late))  # "其中逾期 N 件": N = cases past deadline
            assert values[-2][1] == len(open_), (name, values, len(open_))
            continue
        if name == "api layer feed":  # every case of the grid: closed ones are never overdue
            assert set(values) == set(mine["problem_id"])
            assert all(not v[0] and v[1] == 0.0 for pid, v in values.items() if pid not in want), name
            values = {pid: v for pid, v in values.items() if pid in want}
        assert set(values) == set(want), (name, sorted(set(values) ^ set(want))[:10])
        for pid, (flag, days) in values.items():
            assert flag == want[pid][0], (name, pid, flag, want[pid])
            if days is not None:
                assert days == pytest.approx(want[pid][1], abs=1e-9), (name, pid, days, want[pid])
    # the instant every surface used is the one rule's
    assert cases.store_as_of(project.store, settings=project.settings) == at


def test_one_case_reads_the_same_everywhere_at_the_recorded_instant(town):
    _check(town, AS_OF)


def test_one_case_reads_the_same_everywhere_once_the_desk_is_in_use(town, monkeypatch):
    """A step recorded after the snapshot: every surface counts at now (the clock of layers.cases)."""
    monkeypatch.setattr(cases, "now", lambda: LATER)
    project, c = town["project"], town["client"]
    h = {"Authorization": f"Bearer {town['token']}"}
    frame = project.store.read("problems")
    pid = int(frame.loc[frame["status"] == "立案", "problem_id"].iloc[0])
    r = c.post(f"/api/problems/{pid}/transitions", json={"to_status": "派遣"}, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["at"] == LATER.isoformat(sep=" ")
    # a report made now in the busiest grid: open, not yet overdue
    code = _busiest_grid(_oracle(frame, LATER))
    at = frame[frame["grid_code"] == code].to_crs(4326).geometry.iloc[0]
    r = c.post("/api/problems", json={"category": "乱堆物料", "lon": at.x, "lat": at.y}, headers=h)
    assert r.status_code == 201, r.text
    _check(town, LATER, code)


def test_priority_is_shown_on_the_popup_and_the_responsibility_list(town):
    project, c = town["project"], town["client"]
    h = {"Authorization": f"Bearer {town['token']}"}
    frame = project.store.read("problems")
    oracle = _oracle(frame, cases.store_as_of(project.store, settings=project.settings))
    opened = oracle[oracle["open"]].merge(frame[["problem_id", cases.PRIORITY]], on="problem_id")
    marked = opened[opened[cases.PRIORITY].fillna(False).astype(bool)]
    assert len(marked)
    pid, code = int(marked["problem_id"].iloc[0]), str(marked["grid_code"].iloc[0])
    assert c.get(f"/api/layers/problems/features/{pid}", headers=h).json()["properties"]["priority"] is True
    sheet = _xlsx_rows(c.get(f"/grids/{code}/responsibility.xlsx", headers=h).content, f"网格{code}")
    assert sheet[pid][RESPONSIBILITY_HEADERS[cases.PRIORITY]] == "是"
    others = set(sheet) - set(marked["problem_id"])
    assert others and all(sheet[o][RESPONSIBILITY_HEADERS[cases.PRIORITY]] == "否" for o in others)


# ---------------------------------------------------------------- every account against every step, over HTTP
def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


ACCOUNTS = ("office", "head-own", "head-other", "inspector", "viewer")
VERIFY = {("核查", "结案"), ("核查", "返工")}


@pytest.mark.parametrize("who", ACCOUNTS)
@pytest.mark.parametrize("step", list(cases.PERMISSIONS), ids=[f"{a}-{b}" for a, b in cases.PERMISSIONS])
def test_every_account_against_every_step_over_http(town, step, who):
    """The transitions route applies the one table: 201 for the steps the role may take, else 403,
    and a refused step changes nothing."""
    project, c = town["project"], town["client"]
    frame = project.store.read("problems")
    own = frame["grid_code"] == town["head_grid"]
    pool = frame[own if who == "head-own" else ~own]
    pid = int(pool["problem_id"].iloc[(ACCOUNTS.index(who) + 5 * list(cases.PERMISSIONS).index(step)) % len(pool)])
    project.store.update("problems", "problem_id", {pid: {"status": step[0], "closed_at": None}})
    if step == cases.HAND_IN:  # an after-photo is there: only the role decides
        r = c.post(f"/api/problems/{pid}/photos", files={"photo": ("p.png", _png(), "image/png")},
                   headers={"Authorization": f"Bearer {town['tokens']['office']}"})
        assert r.status_code == 201, r.text
    role = {"head-own": "head", "head-other": "head"}.get(who, who)
    r = c.post(f"/api/problems/{pid}/transitions", json={"to_status": step[1]},
               headers={"Authorization": f"Bearer {town['tokens'][role]}"})
    allowed = {"office": True, "head-own": step not in VERIFY, "head-other": False,
               "inspector": step in VERIFY, "viewer": False}[who]
    assert r.status_code == (201 if allowed else 403), r.text
    status = project.store.read("problems", where=eq("problem_id", pid))["status"].iloc[0]
    assert status == (step[1] if allowed else step[0])


def test_hand_in_without_an_after_photo_is_409(town):
    project, c = town["project"], town["client"]
    frame = project.store.read("problems")
    pid = int(frame.loc[frame["grid_code"] == town["head_grid"], "problem_id"].iloc[-1])
    project.store.update("problems", "problem_id", {pid: {"status": "派遣", "closed_at": None}})
    h = {"Authorization": f"Bearer {town['tokens']['head']}"}
    assert c.post(f"/api/problems/{pid}/transitions", json={"to_status": "处置"}, headers=h).status_code == 201
    r = c.post(f"/api/problems/{pid}/transitions", json={"to_status": "核查"}, headers=h)
    assert r.status_code == 409 and "照片" in r.json()["detail"]
    assert project.store.read("problems", where=eq("problem_id", pid))["status"].iloc[0] == "处置"


def test_priority_is_for_the_office_only(town):
    project, c = town["project"], town["client"]
    pid = int(project.store.read("problems")["problem_id"].iloc[-2])
    for who in ("head", "inspector", "viewer"):
        r = c.put(f"/api/problems/{pid}/priority", json={"priority": True},
                  headers={"Authorization": f"Bearer {town['tokens'][who]}"})
        assert r.status_code == 403, (who, r.text)
    r = c.put(f"/api/problems/{pid}/priority", json={"priority": True, "note": "县领导交办"},
              headers={"Authorization": f"Bearer {town['tokens']['office']}"})
    assert r.status_code == 200, r.text
    assert bool(project.store.read("problems", where=eq("problem_id", pid))[cases.PRIORITY].iloc[0]) is True
    hist = project.store.read_table(cases.HISTORY_TABLE)
    assert hist[pd.to_numeric(hist["problem_id"]) == pid]["note"].iloc[-1] == "督办: 县领导交办"


def test_priority_on_a_layer_written_before_the_field_existed(tmp_path):
    from sanigrid.web.auth import User
    from sanigrid.web.intake import set_priority

    project = synthetic_project(tmp_path / "old", n_problems=20)
    con = project.store._connect()  # as a store from before 督办 has it (the GeoPackage trigger functions)
    try:
        con.execute('ALTER TABLE "problems" DROP COLUMN "priority"')
        con.commit()
    finally:
        con.close()
    assert cases.PRIORITY not in project.store.read("problems").columns
    before = project.store.read("problems")
    set_priority(project, 7, priority=True, user=User("o", "office"))
    after = project.store.read("problems")
    assert after[cases.PRIORITY].fillna(False).astype(bool).tolist() == [pid == 7 for pid in after["problem_id"]]
    assert after["status"].tolist() == before["status"].tolist() and len(after) == len(before)
