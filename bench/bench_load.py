"""Load test: the web desk with N concurrent writers (reports posted) and M readers, on loopback.

Builds the synthetic town with ``--problems`` reports (10⁵ by default: a county's year), starts the
server in a child process on 127.0.0.1, then for ``--seconds`` (or until ``--max-posts``) runs
``--writers`` threads posting reports (POST /api/problems) and ``--readers`` threads reading one
case each (GET /api/layers/problems/features/{id}), one read every ``--read-every`` seconds (so a read's
time is its wait behind the writers, not behind the other readers). It prints p50/p95/p99 and
throughput for both,
and checks the store afterwards: lost writes (a 201 whose row is missing) and duplicated ones (an
id given twice, or a row written twice) must both be 0. Bounded in count and time; stops by itself.

Each writer count is run twice on fresh copies of the same store: with the writer lane's group commit
(reports arriving together share one transaction) and, as the baseline in the same run, one
transaction per report (the lane with ``MAX_BATCH = 1``). The older file-copy store's figures are in
issue 12 (about 5 reports/s with 8 writers; a read waited 20.8 s with 100).

Last run (f70c3bc, 2 cores, nothing else running; 4 paced readers, 15 s each, 10⁵ problems):
  8 writers:   223 reports/s (p50 30 ms, p95 66 ms), reads p95 54 ms; per-report commits 132/s; 3.5 ms server CPU
               per request (46f1957, the session before, on a machine at load 6-7: 12.7 reports/s, 24.8 ms CPU)
  100 writers: 353 reports/s (p95 408 ms), reads p95 93 ms; per-report commits 124/s; 2.6 ms server CPU
  lost 0, duplicated 0 in every run

Run:  .venv/bin/python bench/bench_load.py                      (8 and 100 writers, 4 paced readers, 15 s each)
      .venv/bin/python bench/bench_load.py --writers 8 --seconds 5 --problems 20000   (quick)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
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
import sanigrid.web.writes
from sanigrid.web.app import create_app
if sys.argv[3] == "per-report":  # the baseline: the same lane, one transaction per report
    sanigrid.web.writes.MAX_BATCH = 1
uvicorn.run(create_app(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""
WAYS = ("group commit", "per-report")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used by process ``pid`` so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, *, limit_s: float = 120.0) -> None:
    """Wait until process ``pid`` uses under 5 % of a core over half a second (Linux /proc; else 5 s)."""
    def cpu() -> float:
        return cpu_seconds(pid)

    try:
        t0, last = time.monotonic(), cpu()
        while time.monotonic() - t0 < limit_s:
            time.sleep(0.5)
            now = cpu()
            if now - last < 0.025:
                return
            last = now
    except OSError:
        time.sleep(5)


class Http1:
    """A minimal HTTP/1.1 client on one kept connection: POST a JSON body, read a Content-Length answer
    (the load generator's share of the CPU must stay well below the server's)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, token: str):
        self.reader, self.writer, self.token = reader, writer, token

    @classmethod
    async def open(cls, host: str, port: int, token: str) -> Http1:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, token)

    async def post(self, path: str, body: dict) -> tuple[int, bytes]:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.token}\r\n"
                          f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = next(int(v) for k, _, v in (x.partition(":") for x in lines[1:]) if k.lower() == "content-length")
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def run(root: Path, token: str, categories: list[str], bounds: tuple[float, float, float, float], *, way: str,
        writers: int, readers: int, seconds: float, max_posts: int, n_problems: int,
        read_every_s: float = 0.0) -> dict:
    """One load run against a server on ``root``; the store is checked after the server stopped."""
    import httpx

    x0, y0, x1, y1 = bounds
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(root), str(port), way],
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
        # warm up (the app builds its map and search caches after it starts): reads and one write
        for _ in range(3):
            httpx.get(f"{url}/api/layers/problems/features/1", headers=headers, timeout=300)
        warm = httpx.post(f"{url}/api/problems", headers=headers, timeout=300, json={
            "category": categories[0], "description": f"load-warm-{way}",
            "lon": float((x0 + x1) / 2), "lat": float((y0 + y1) / 2)})
        warm_posts = [(warm.json()["problem_id"], f"load-warm-{way}")] if warm.status_code == 201 else []
        wait_idle(server.pid)  # the app's start-up caches (map, search index) are built in a thread
        cpu0, client0 = cpu_seconds(server.pid), time.process_time()
        stop = time.monotonic() + seconds
        lock = threading.Lock()
        posted: list[tuple[int, str]] = list(warm_posts)  # (problem_id, description) of every 201
        w_lat: list[float] = []
        r_lat: list[float] = []
        failures: list[str] = []
        count = [0]

        async def writer(w: int) -> None:
            rng = np.random.default_rng(w)
            i = 0
            conn = await Http1.open("127.0.0.1", port, token)
            try:
                while time.monotonic() < stop:
                    with lock:
                        if count[0] >= max_posts:
                            return
                        count[0] += 1
                    desc = f"load-{way}-{w}-{i}"
                    body = {"category": categories[i % len(categories)], "description": desc,
                            "lon": float(rng.uniform(x0 + 1e-4, x1 - 1e-4)),
                            "lat": float(rng.uniform(y0 + 1e-4, y1 - 1e-4))}
                    t0 = time.perf_counter()
                    try:
                        status, text = await conn.post("/api/problems", body)
                    except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                        with lock:
                            failures.append(f"POST {type(e).__name__}")
                        conn.close()
                        conn = await Http1.open("127.0.0.1", port, token)
                        continue
                    dt = time.perf_counter() - t0
                    with lock:
                        if status == 201:
                            posted.append((json.loads(text)["problem_id"], desc))
                            w_lat.append(dt)
                        else:
                            failures.append(f"POST {status} {text[:200]!r}")
                    i += 1
            finally:
                conn.close()

        def writers_loop() -> None:
            """All writers as tasks of one event loop, each with its own kept connection, through a minimal
            HTTP/1.1 client (httpx spent more CPU per request than the server: with 100 writers the load
            generator, not the server, set the pace, and the server saw batches of two)."""
            async def main() -> None:
                await asyncio.gather(*(writer(w) for w in range(writers)))

            asyncio.run(main())

        def reader(k: int) -> None:
            rng = np.random.default_rng(1000 + k)
            with httpx.Client(base_url=url, headers=headers, timeout=120) as c:
                while time.monotonic() < stop:
                    pid = int(rng.integers(1, n_problems + 1))
                    t0 = time.perf_counter()
                    try:
                        r = c.get(f"/api/layers/problems/features/{pid}")
                    except httpx.HTTPError as e:
                        with lock:
                            failures.append(f"GET {type(e).__name__}")
                        continue
                    dt = time.perf_counter() - t0
                    with lock:
                        if r.status_code == 200:
                            r_lat.append(dt)
                        else:
                            failures.append(f"GET {r.status_code} {r.text[:200]}")
                    time.sleep(max(0.0, read_every_s - dt))  # paced: a desk user's reads, not a flood

        threads = [threading.Thread(target=writers_loop)] if writers else []
        threads += [threading.Thread(target=reader, args=(k,)) for k in range(readers)]
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t0
        client_cpu = time.process_time() - client0  # this process: the load generator
        server_cpu = cpu_seconds(server.pid) - cpu0  # its own CPU: other programs' load hardly moves it
    finally:
        server.terminate()
        server.wait(timeout=60)
    back = open_project(root).store.read("problems", columns=["problem_id", "description"])
    ids = back["problem_id"].astype(int)
    desc = dict(zip(ids, back["description"], strict=True))
    mine = back["description"].astype(str).str.startswith((f"load-{way}-", f"load-warm-{way}"))
    return {"way": way, "writers": writers, "readers": readers, "wall": wall, "w_lat": w_lat, "r_lat": r_lat,
            "posted": len(posted), "lost": sum(1 for pid, d in posted if desc.get(pid) != d),
            "dup_ids": int(ids.duplicated().sum()), "extra_rows": int(mine.sum()) - len(posted),
            "failures": failures, "server_cpu": server_cpu,
            "client_cpu": client_cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=100_000)
    ap.add_argument("--writers", type=int, nargs="+", default=[8, 100], help="writer counts, one run each")
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--read-every", type=float, default=0.25,
                    help="seconds between a reader's reads (0: back to back, readers then queue behind readers)")
    ap.add_argument("--seconds", type=float, default=15.0, help="length of each run")
    ap.add_argument("--max-posts", type=int, default=20_000, help="posts per run at most")
    ap.add_argument("--ways", nargs="+", choices=WAYS, default=list(WAYS))
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory()
    base = Path(tmp.name) / "county"
    t = time.perf_counter()
    project = synthetic_project(base, n_problems=args.problems)
    token = add_user(project.store, "office", role="office", password="load-bench-password")
    grids = project.store.read("grids").to_crs(4326)
    bounds = tuple(float(v) for v in grids.total_bounds)
    categories = list(project.settings.problem_categories)
    print(f"project: {args.problems:,} problems in {time.perf_counter() - t:.1f} s "
          f"({project.store.path.stat().st_size / 1e6:.0f} MB); each run on a fresh copy of it")
    results = []
    for writers in args.writers:
        for way in args.ways:
            root = Path(tmp.name) / f"run-{way.replace(' ', '-')}-{writers}"
            shutil.copytree(base, root)
            results.append(run(root, token, categories, bounds, way=way, writers=writers,  # type: ignore[arg-type]
                               readers=args.readers, seconds=args.seconds, max_posts=args.max_posts,
                               n_problems=args.problems, read_every_s=args.read_every))
            shutil.rmtree(root, ignore_errors=True)
    print(f"{args.readers} readers (GET one case by id, one every {args.read_every:g} s each) in every run, "
          f"{args.seconds:.0f} s each, on 127.0.0.1; "
          f"store: {args.problems:,} problems")
    print(f"{'writers':>7}  {'way':<13}{'':<7}{'n':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'per s':>8}"
          f"{'lost':>6}{'dup':>5}{'fail':>6}")
    bad = False
    for r in results:
        for label, lat in (("writes", r["w_lat"]), ("reads", r["r_lat"])):
            tail = (f"{r['lost']:>6}{r['dup_ids'] + r['extra_rows']:>5}{len(r['failures']):>6}"
                    if label == "writes" else "")
            print(f"{r['writers']:>7}  {r['way']:<13}{label:<7}{len(lat):>7}{pct(lat, 50):>9.1f}{pct(lat, 95):>9.1f}"
                  f"{pct(lat, 99):>9.1f}{len(lat) / r['wall']:>8.1f}{tail}")
        served = len(r["w_lat"]) + len(r["r_lat"])
        print(f"{'':>9}server CPU {r['server_cpu']:.1f} s for {served} requests: "
              f"{r['server_cpu'] / max(served, 1) * 1000:.1f} ms each on average; the load generator "
              f"{r['client_cpu']:.1f} s ({r['client_cpu'] / r['wall'] * 100:.0f} % of a core)")
        for f in r["failures"][:3]:
            print("   ", f)
        bad |= bool(r["lost"] or r["dup_ids"] or r["extra_rows"])
    by = {(r["writers"], r["way"]): r for r in results}
    for writers in args.writers:
        a, b = by.get((writers, "group commit")), by.get((writers, "per-report"))
        if a and b and b["w_lat"]:
            print(f"{writers} writers: group commit / per-report throughput "
                  f"{(len(a['w_lat']) / a['wall']) / (len(b['w_lat']) / b['wall']):.1f}x, "
                  f"read p95 {pct(a['r_lat'], 95):.0f} vs {pct(b['r_lat'], 95):.0f} ms")
    tmp.cleanup()
    if bad:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
