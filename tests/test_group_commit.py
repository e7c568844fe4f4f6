"""Web reports in the writer lane's group commit: each answered only after its commit (kill -9 of the
server loses no answered report), concurrent writers give exactly their rows with unique ids, a batch
writes what one-by-one intake would, readers see whole commits only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
from webproject import LiveServer, free_port, synthetic_project

from sanigrid.layers.cases import DISPATCHED, HISTORY_TABLE
from sanigrid.layers.project import open_project
from sanigrid.web.app import create_app
from sanigrid.web.auth import User, add_user
from sanigrid.web.intake import Report, intake, intake_many

PW = "group-commit-test-pw"


def _town(root, n: int = 200):
    project = synthetic_project(root, n_problems=n)
    token = add_user(project.store, "office", role="office", password=PW)
    x0, y0, x1, y1 = (float(v) for v in project.store.read("grids").to_crs(4326).total_bounds)
    return project, token, (x0, y0, x1, y1)


def _body(project, bounds, rng, desc: str, k: int = 0) -> dict:
    x0, y0, x1, y1 = bounds
    cats = project.settings.problem_categories
    return {"category": cats[k % len(cats)], "description": desc,
            "lon": float(rng.uniform(x0 + 1e-4, x1 - 1e-4)), "lat": float(rng.uniform(y0 + 1e-4, y1 - 1e-4))}


def test_concurrent_writers_give_exactly_their_rows_with_unique_ids(tmp_path):
    import httpx

    project, token, bounds = _town(tmp_path / "town")
    n0 = len(project.store.read("problems", columns=["problem_id"]))
    h0 = len(project.store.read_table(HISTORY_TABLE))
    writers, each = 8, 12
    answers: list[dict] = []
    errors: list[str] = []
    lock = threading.Lock()
    v0 = int(project.store._project_value("version") or 0)  # one bump per committed transaction
    with LiveServer(create_app(project)) as url:
        go = threading.Barrier(writers)

        def post(w: int) -> None:
            rng = np.random.default_rng(w)
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as c:
                go.wait()
                for i in range(each):
                    r = c.post("/api/problems", json=_body(project, bounds, rng, f"w{w}-{i}", i))
                    with lock:
                        (answers.append(r.json()) if r.status_code == 201 else errors.append(r.text))

        threads = [threading.Thread(target=post, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    back = project.store.read("problems", columns=["problem_id", "description", "grid_code"])
    ids = back["problem_id"].astype(int)
    assert len(back) == n0 + writers * each and ids.is_unique
    assert sorted(ids) == list(range(1, n0 + writers * each + 1))  # none skipped
    got = {a["problem_id"]: a for a in answers}
    assert len(got) == writers * each  # each answer its own id
    desc = dict(zip(ids, back["description"], strict=True))
    grid = dict(zip(ids, back["grid_code"], strict=True))
    assert all(desc[i] == a["description"] and grid[i] == a["grid_code"] for i, a in got.items())
    commits = int(project.store._project_value("version")) - v0
    assert 0 < commits < writers * each  # reports shared transactions
    hist = project.store.read_table(HISTORY_TABLE)
    assert len(hist) == h0 + writers * each  # one opening record per report, none twice
    assert sorted(hist["problem_id"].astype(int).tolist()[h0:]) == sorted(got)


_SERVER = """
import sys, uvicorn
from sanigrid.web.app import create_app
uvicorn.run(create_app(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def test_kill_9_of_the_server_loses_no_answered_report(tmp_path):
    """Reports are posted by 8 writers; the server is killed (SIGKILL) while batches are being written:
    every report answered 201 is in the store with its id, and the store is whole."""
    import httpx

    project, token, bounds = _town(tmp_path / "town")
    n0 = len(project.store.read("problems", columns=["problem_id"]))
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", _SERVER, str(project.root), str(port)],
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    answered: list[tuple[int, str]] = []
    lock = threading.Lock()
    stop = threading.Event()
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/api/layers", headers=headers, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("the server did not start")

        def post(w: int) -> None:
            rng = np.random.default_rng(w)
            with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
                i = 0
                while not stop.is_set():
                    desc = f"k{w}-{i}"
                    try:
                        r = c.post("/api/problems", json=_body(project, bounds, rng, desc, i))
                    except httpx.HTTPError:
                        return  # the server died under this request: not answered
                    if r.status_code == 201:
                        with lock:
                            answered.append((r.json()["problem_id"], desc))
                    i += 1

        threads = [threading.Thread(target=post, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 60:
            with lock:
                if len(answered) >= 40:
                    break
            time.sleep(0.05)
        server.send_signal(signal.SIGKILL)  # mid-stream: batches queued and being written
        server.wait()
        stop.set()
        for t in threads:
            t.join()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert len(answered) >= 40
    store = open_project(project.root).store
    with store._connect() as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    back = store.read("problems", columns=["problem_id", "description"])
    desc = dict(zip(back["problem_id"].astype(int), back["description"], strict=True))
    assert [(i, d) for i, d in answered if desc.get(i) != d] == []  # every answered report is there
    assert back["problem_id"].is_unique
    hist = store.read_table(HISTORY_TABLE)
    new = set(back["problem_id"].astype(int)) - set(range(1, n0 + 1))
    assert set(hist["problem_id"].astype(int)) >= new  # each written report has its history row


def test_a_batch_writes_what_one_by_one_intake_writes(tmp_path):
    """intake_many over n reports = n intake calls: the same ids, rows, history and possible duplicates
    (the batch counts its own earlier reports), and a refused report refuses only itself."""
    a, _, bounds = _town(tmp_path / "a", n=150)
    b, _, _ = _town(tmp_path / "b", n=150)
    office = User("office", "office")
    x0, y0, x1, y1 = bounds
    rng = np.random.default_rng(5)
    cats = a.settings.problem_categories
    reports = [Report(category=cats[i % 2], lon=float(rng.uniform(x0, x1)), lat=float(rng.uniform(y0, y1)),
                      description=f"批{i}", reported_at=pd.Timestamp("2026-11-20 09:00").to_pydatetime(), user=office)
               for i in range(12)]
    reports[3] = Report(category=cats[0], lon=reports[2].lon + 1e-5, lat=reports[2].lat, description="近",
                        reported_at=reports[2].reported_at, user=office)  # next to report 2: a duplicate of it
    reports[7] = Report(category="没有这类", lon=reports[1].lon, lat=reports[1].lat, user=office)
    reports[9] = Report(category=cats[0], lon=x1 + 0.05, lat=y1 + 0.05, user=office)  # outside the county
    many = intake_many(a, reports)
    one: list = []
    for r in reports:
        try:
            one.append(intake(b, category=r.category, lon=r.lon, lat=r.lat, description=r.description,
                              reported_at=r.reported_at, user=office))
        except Exception as e:  # compared below
            one.append(e)
    assert [type(x).__name__ for x in many] == [type(x).__name__ for x in one]
    assert isinstance(many[7], Exception) and isinstance(many[9], Exception)
    assert [x for x in many if not isinstance(x, Exception)] == [x for x in one if not isinstance(x, Exception)]
    assert 150 + 3 in many[3]["possible_duplicates"]  # report 2 got id 153
    from conftest import snapshot

    sa, sb = snapshot(a.store), snapshot(b.store)
    for table in ("problems", HISTORY_TABLE, "rtree_problems_geom", "gpkg_ogr_contents"):
        assert sa[table] == sb[table], table
    extent = {r[0]: r[5:] for r in sa["gpkg_contents"]}  # all but the time of the last change
    assert extent == {r[0]: r[5:] for r in sb["gpkg_contents"]}


def test_readers_see_whole_commits_while_batches_are_written(tmp_path):
    """While batches of 10 reports are committed, every read sees each batch whole or not at all, and the
    problems and their history agree."""
    project, _, bounds = _town(tmp_path / "town", n=100)
    office = User("office", "office")
    x0, y0, x1, y1 = bounds
    cat = project.settings.problem_categories[0]
    done = threading.Event()
    seen: list[str] = []

    def write() -> None:
        try:
            for b in range(12):
                intake_many(project, [Report(category=cat, lon=x0 + (x1 - x0) * (k + 1) / 12, lat=(y0 + y1) / 2,
                                             description=f"b{b}", user=office) for k in range(10)])
        finally:
            done.set()

    def read() -> None:
        while not done.is_set():
            back = project.store.read("problems", columns=["description"])
            counts = back["description"].value_counts()
            batches = counts[counts.index.str.match(r"^b\d+$")]
            if (batches != 10).any():
                seen.append(f"partial batch: {batches.to_dict()}")

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == []
    back = project.store.read("problems", columns=["problem_id"])
    assert len(back) == 100 + 120
    hist = project.store.read_table(HISTORY_TABLE)
    assert sorted(hist.loc[hist["problem_id"] > 100, "problem_id"].astype(int)) == list(range(101, 221))


def test_a_copy_of_the_gpkg_alone_holds_every_answered_write_once_the_lane_is_idle(tmp_path):
    """The server keeps its writing connection (commits sit in the -wal log); when its writes pause it
    folds the log into the file, so a clerk copying sanigrid.gpkg for QGIS gets every answered report."""
    import shutil
    import sqlite3

    from fastapi.testclient import TestClient

    project, token, bounds = _town(tmp_path / "town")
    n0 = len(project.store.read("problems", columns=["problem_id"]))
    rng = np.random.default_rng(5)
    with TestClient(create_app(project)) as c:
        h = {"Authorization": f"Bearer {token}"}
        ids = [c.post("/api/problems", json=_body(project, bounds, rng, f"复制测试{i}", i), headers=h).json()
               for i in range(3)]
        pid = ids[0]["problem_id"]
        r = c.post(f"/api/problems/{pid}/transitions", json={"to_status": DISPATCHED, "note": "派遣"}, headers=h)
        copy = tmp_path / "copy.gpkg"
        deadline = time.monotonic() + 10
        while True:  # folded once the lane has written nothing for IDLE_CHECKPOINT_S
            shutil.copyfile(project.store.path, copy)  # the file alone, not its -wal
            con = sqlite3.connect(copy)
            try:
                n = con.execute("SELECT COUNT(*) FROM problems").fetchone()[0]
                row = con.execute("SELECT status FROM problems WHERE problem_id = ?", (pid,)).fetchone()
                status = row[0] if row else None
            finally:
                con.close()
            if (n, status) == (n0 + 3, DISPATCHED) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert n == n0 + 3
    assert r.status_code == 201 and status == DISPATCHED
