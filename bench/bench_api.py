"""Benchmark: the web's layer list and search box, ours against the old way, in one run on one store.

    .venv/bin/python bench/bench_api.py                       # synthetic town, 10^4 problems
    .venv/bin/python bench/bench_api.py --problems 100000
    .venv/bin/python bench/bench_api.py --project demo        # an existing project (e.g. after `sanigrid analyse`)

Ours: ``GET /api/layers`` (counts, extents and CRS from the GeoPackage's own tables) and
``GET /api/search`` (an index built once per store version), through the app in-process
(FastAPI's TestClient: routing, auth, validation and JSON included, no socket). The old way, as
the code was before issue 12, timed on the same store: ``pyogrio.read_info`` per layer, and a
search that reads every small layer and scans it. Targets (issue 12): p95 < 100 ms for both. The
floor of any authenticated call (``/api/auth/me``: routing and the session check, no data) is
printed beside them.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from webproject import synthetic_project

from sanigrid.layers.catalogue import CATALOGUE
from sanigrid.layers.project import open_project
from sanigrid.web.app import create_app
from sanigrid.web.auth import add_user

PW = "bench-password-123"


def old_info(store):
    out = []
    for kind in [k for k in CATALOGUE if store.has(k)]:
        i = pyogrio.read_info(store.path, layer=kind)
        m = store.meta(kind)
        out.append((kind, int(i["features"]), i.get("crs"), i.get("total_bounds"), m.get("updated_at")))
    return out


def old_search(store, q):
    hits = []
    for kind, count, *_ in old_info(store):
        s = CATALOGUE[kind]
        if s.big or count == 0:
            continue
        cols = [c for c in dict.fromkeys(x for x in (s.label_field, "name", "code") if x) if c in s.field_names]
        if not cols:
            continue
        frame = store.read(kind, columns=cols)
        match = pd.Series(False, index=frame.index)
        for c in cols:
            match |= frame[c].astype("string").str.contains(q, regex=False, na=False)
        found = frame[match].to_crs(4326)
        for label, part in found.groupby(found[cols[0]].astype("string").fillna("")):
            hits.append((kind, label, part.total_bounds))
    return hits


def pct(ts):
    a = np.array(ts) * 1000
    return f"p50 {np.percentile(a, 50):7.1f} ms  p95 {np.percentile(a, 95):7.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", default=None)
    ap.add_argument("--problems", type=int, default=10_000)
    ap.add_argument("--calls", type=int, default=40)
    a = ap.parse_args()
    from fastapi.testclient import TestClient

    with tempfile.TemporaryDirectory() as tmp:
        if a.project:  # a copy: the bench adds an account
            shutil.copytree(a.project, Path(tmp) / "project")
            project = open_project(Path(tmp) / "project")
            where = a.project
        else:
            project = synthetic_project(Path(tmp) / "town", n_problems=a.problems)
            where = f"synthetic town, {a.problems:,} problems"
        add_user(project.store, "bench-viewer", role="viewer", password=PW)
        client = TestClient(create_app(project))
        # a login session, as the browser has (an API token is checked against the store on every call)
        r = client.post("/api/auth/token", data={"username": "bench-viewer", "password": PW})
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        grids = project.store.read("grids", columns=["code"])
        code = str(sorted(grids["code"])[len(grids) // 2])
        streets = project.store.read("streets", columns=["name"])["name"].dropna()
        street = str(streets.iloc[len(streets) // 2])
        queries = [code, street, "17", street[:1], "不存在的地名"]
        assert client.get("/api/layers", headers=headers).status_code == 200, "log in failed"

        def timed(fn, n):
            ts = []
            for _ in range(n):
                t = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t)
            return ts

        n_layers = len(project.store.info())
        print(f"web API on {where}: {n_layers} layers; {a.calls} calls each (in-process, TestClient)")
        t_layers = timed(lambda: client.get("/api/layers", headers=headers).raise_for_status(), a.calls)
        t_old_layers = timed(lambda: old_info(project.store), max(5, a.calls // 4))
        print(f"  /api/layers  ours {pct(t_layers)}   old read_info per layer {pct(t_old_layers)}"
              f"   ratio (p50) {statistics.median(t_old_layers) / statistics.median(t_layers):6.1f}×")
        t_me = timed(lambda: client.get("/api/auth/me", headers=headers).raise_for_status(), a.calls)
        t_info = timed(project.store.info, a.calls)
        print(f"  floor: /api/auth/me (routing + authentication, no data) {pct(t_me)};"
              f" Store.info() alone {pct(t_info)}")
        t0 = time.perf_counter()
        client.get("/api/search", params={"q": code}, headers=headers).raise_for_status()
        cold = time.perf_counter() - t0
        t_search = timed(lambda: [client.get("/api/search", params={"q": q}, headers=headers).raise_for_status()
                                  for q in queries], a.calls)
        t_search = [t / len(queries) for t in t_search]
        t_old = timed(lambda: [old_search(project.store, q) for q in queries], max(3, a.calls // 10))
        t_old = [t / len(queries) for t in t_old]
        print(f"  /api/search  ours {pct(t_search)}   old read every layer {pct(t_old)}"
              f"   ratio (p50) {statistics.median(t_old) / statistics.median(t_search):6.1f}×")
        print(f"  /api/search  first call after a write (index built): {cold * 1000:.0f} ms"
              f"  (queries: {', '.join(queries)})")
        # a web report changes the problems only: the search rebuilds that layer's part, the rest is kept
        from sanigrid.web import search as ws

        pid = int(project.store.max_value("problems", "problem_id"))
        after = []
        for i in range(3):
            project.store.update("problems", "problem_id", {pid: {"description": f"bench {i}"}})
            t0 = time.perf_counter()
            client.get("/api/search", params={"q": street}, headers=headers).raise_for_status()
            after.append(time.perf_counter() - t0)
        ws.wait_for_rebuilds()
        ws._PARTS.clear()
        project.store.update("problems", "problem_id", {pid: {"description": "bench"}})
        t0 = time.perf_counter()
        client.get("/api/search", params={"q": street}, headers=headers).raise_for_status()
        whole = time.perf_counter() - t0
        print(f"  /api/search  first call after a change to the problems: {statistics.median(after) * 1000:.0f} ms"
              f" (median of 3; the problems' part rebuilt in the background, the case found by its number)"
              f"  vs every layer rebuilt before answering: {whole * 1000:.0f} ms")


if __name__ == "__main__":
    main()
