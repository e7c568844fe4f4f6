"""Load test: the web desk with N concurrent writers (reports posted) and M readers, on loopback.

Builds the synthetic town with ``--problems`` reports (10⁵ by default: a county's year), starts the
server in a child process on 127.0.0.1, then for ``--seconds`` (or until ``--max-posts``) runs
``--writers`` threads posting reports (POST /api/problems) and ``--readers`` threads reading one
case each (GET /api/layers/problems/features/{id}). It prints p50/p95/p99 and throughput for both,
and checks the store afterwards: lost writes (a 201 whose row is missing) and duplicated ones (an
id given twice, or a row written twice) must both be 0. Bounded in count and time; stops by itself.

Run:  .venv/bin/python bench/bench_load.py                          (8 writers, 8 readers, 15 s)
      .venv/bin/python bench/bench_load.py --writers 100 --readers 8  (writers must not starve readers)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from webproject import free_port, synthetic_project

from sanigrid.layers.project import open_project
from sanigrid.web.auth import add_user

SERVER = """
import sys, uvicorn
from sanigrid.web.app import create_app
uvicorn.run(create_app(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=100_000)
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--readers", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--max-posts", type=int, default=20_000)
    args = ap.parse_args()
    import httpx

    tmp = tempfile.TemporaryDirectory()
    root = Path(tmp.name) / "county"
    t = time.perf_counter()
    project = synthetic_project(root, n_problems=args.problems)
    token = add_user(project.store, "office", role="office", password="load-bench-password")
    grids = project.store.read("grids").to_crs(4326)
    x0, y0, x1, y1 = grids.total_bounds
    print(f"project: {args.problems:,} problems in {time.perf_counter() - t:.1f} s "
          f"({project.store.path.stat().st_size / 1e6:.0f} MB)")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(root), str(port)],
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/api/layers", headers=headers, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise SystemExit("the server did not start")
        # warm up (the app builds its map and search caches after it starts): one read and one write
        for _ in range(3):
            httpx.get(f"{url}/api/layers/problems/features/1", headers=headers, timeout=300)
        warm = httpx.post(f"{url}/api/problems", headers=headers, timeout=300, json={
            "category": project.settings.problem_categories[0], "description": "load-warm",
            "lon": float((x0 + x1) / 2), "lat": float((y0 + y1) / 2)})
        warm_posts = [(warm.json()["problem_id"], "load-warm")] if warm.status_code == 201 else []
        stop = time.monotonic() + args.seconds
        lock = threading.Lock()
        posted: list[tuple[int, str]] = list(warm_posts)  # (problem_id, description) of every 201
        w_lat: list[float] = []
        r_lat: list[float] = []
        failures: list[str] = []
        count = [0]

        def writer(w: int) -> None:
            rng = np.random.default_rng(w)
            with httpx.Client(base_url=url, headers=headers, timeout=120) as c:
                i = 0
                while time.monotonic() < stop:
                    with lock:
                        if count[0] >= args.max_posts:
                            return
                        count[0] += 1
                    desc = f"load-{w}-{i}"
                    body = {"category": project.settings.problem_categories[0], "description": desc,
                            "lon": float(rng.uniform(x0 + 1e-4, x1 - 1e-4)),
                            "lat": float(rng.uniform(y0 + 1e-4, y1 - 1e-4))}
                    t0 = time.perf_counter()
                    r = c.post("/api/problems", json=body)
                    dt = time.perf_counter() - t0
                    with lock:
                        if r.status_code == 201:
                            posted.append((r.json()["problem_id"], desc))
                            w_lat.append(dt)
                        else:
                            failures.append(f"POST {r.status_code} {r.text[:200]}")
                    i += 1

        def reader(k: int) -> None:
            rng = np.random.default_rng(1000 + k)
            with httpx.Client(base_url=url, headers=headers, timeout=120) as c:
                while time.monotonic() < stop:
                    pid = int(rng.integers(1, args.problems + 1))
                    t0 = time.perf_counter()
                    r = c.get(f"/api/layers/problems/features/{pid}")
                    dt = time.perf_counter() - t0
                    with lock:
                        if r.status_code == 200:
                            r_lat.append(dt)
                        else:
                            failures.append(f"GET {r.status_code} {r.text[:200]}")

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(args.writers)]
        threads += [threading.Thread(target=reader, args=(k,)) for k in range(args.readers)]
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t0
    finally:
        server.terminate()
        server.wait(timeout=30)
    back = open_project(root).store.read("problems", columns=["problem_id", "description"])
    ids = back["problem_id"].astype(int)
    desc = dict(zip(ids, back["description"], strict=True))
    lost = sum(1 for pid, d in posted if desc.get(pid) != d)
    dup_ids = int(ids.duplicated().sum())
    load_rows = back["description"].astype(str).str.startswith("load-")
    dup_rows = int(load_rows.sum()) - len(posted)
    print(f"{args.writers} writers, {args.readers} readers, {wall:.1f} s on 127.0.0.1 "
          f"(store: {args.problems:,} problems + {len(posted):,} posted)")
    print(f"{'':<10}{'n':>8}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'per s':>10}")
    for label, lat in (("writes", w_lat), ("reads", r_lat)):
        print(f"{label:<10}{len(lat):>8}{pct(lat, 50):>10.1f}{pct(lat, 95):>10.1f}{pct(lat, 99):>10.1f}"
              f"{len(lat) / wall:>10.1f}")
    print(f"lost writes: {lost}   duplicated ids: {dup_ids}   extra rows: {dup_rows}   "
          f"failed requests: {len(failures)}")
    for f in failures[:5]:
        print("  ", f)
    tmp.cleanup()
    if lost or dup_ids or dup_rows:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
