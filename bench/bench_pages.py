"""Benchmark: the web desk's main pages and the data calls the county map makes, p50/p95 over HTTP.

    .venv/bin/sanigrid demo --project /tmp/demo                         # the demo county (5,000 problems)
    .venv/bin/sanigrid demo --project /tmp/demo100k --problems 100000   # and at 10^5 problems
    .venv/bin/python bench/bench_pages.py --project /tmp/demo
    .venv/bin/python bench/bench_pages.py --project /tmp/demo100k --calls 15

The project is copied (the bench adds an office account) and served by uvicorn on 127.0.0.1. The pages:
``/`` (the county map), a grid page, ``/cases``, one case, ``/dashboard``; then every ``/api/`` call the
map page makes while it draws in headless Chromium (recorded once, then replayed), the search box and
the layer list. Each is timed ``--calls`` times with one logged-in HTTP client (gzip, as a browser):
first call apart (caches cold after the server starts), then p50/p95 of the rest. The floor of any
authenticated call, ``/api/auth/me``, is printed as the reference in the same run. Target (issue 12):
every page in about a second; the layer list and search p95 < 100 ms.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from webproject import CHROMIUM, CHROMIUM_ARGS, LiveServer

PASSWORD = "bench-password-123"


def map_calls(url: str, token: str) -> list[str]:
    """The /api/ paths (with query) the county map requests until it says it has drawn."""
    from playwright.sync_api import sync_playwright

    seen: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        ctx.add_cookies([{"name": "sanigrid_token", "value": token, "url": url}])
        page = ctx.new_page()
        page.on("request", lambda r: seen.append(r.url) if urlsplit(r.url).path.startswith("/api/") else None)
        page.goto(url + "/", wait_until="domcontentloaded", timeout=180_000)
        page.wait_for_selector("html[data-sg-drawn='1']", timeout=180_000)
        browser.close()
    return [u[len(url):] for u in dict.fromkeys(seen)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", required=True, help="a built project (e.g. `sanigrid demo --project DIR`)")
    ap.add_argument("--calls", type=int, default=20)
    a = ap.parse_args()
    import httpx

    from sanigrid.layers.project import open_project
    from sanigrid.web.app import create_app
    from sanigrid.web.auth import add_user

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        shutil.copytree(a.project, root, ignore=shutil.ignore_patterns("*.lock", "outputs"))
        project = open_project(root)
        add_user(project, "bench-office", role="office", password=PASSWORD)
        con = sqlite3.connect(project.store.path)
        grid = con.execute("SELECT code FROM grids ORDER BY code LIMIT 1 OFFSET 3").fetchone()[0]
        case = con.execute("SELECT problem_id FROM problems ORDER BY problem_id DESC LIMIT 1").fetchone()[0]
        street = con.execute("SELECT name FROM streets WHERE name <> '' LIMIT 1").fetchone()[0]
        n_problems = con.execute("SELECT COUNT(*) FROM problems").fetchone()[0]
        con.close()
        with LiveServer(create_app(project)) as url:
            token = httpx.post(url + "/api/auth/token",
                               data={"username": "bench-office", "password": PASSWORD}).json()["access_token"]
            calls = {"/api/auth/me (floor)": "/api/auth/me", "/ (county map)": "/", f"/grids/{grid}": f"/grids/{grid}",
                     "/cases": "/cases", f"/cases/{case}": f"/cases/{case}", "/dashboard": "/dashboard",
                     "/api/layers": "/api/layers", f"/api/search?q={street}": f"/api/search?q={street}",
                     f"/api/search?q={grid}": f"/api/search?q={grid}"}
            if Path(CHROMIUM).exists():
                for c in map_calls(url, token):
                    calls.setdefault(c if len(c) < 60 else c[:57] + "…", c)
            print(f"{a.project}: {n_problems:,} problems; {a.calls} calls each over HTTP (127.0.0.1, gzip); "
                  "times in ms")
            print(f"  {'call':62s} {'first':>7s} {'p50':>7s} {'p95':>7s} {'max':>7s} {'bytes':>10s}")
            worst = ("", 0.0)
            with httpx.Client(base_url=url, cookies={"sanigrid_token": token}, timeout=120,
                              headers={"Accept-Encoding": "gzip"}) as client:
                for label, path in calls.items():
                    ts = []
                    for _ in range(a.calls + 1):
                        t0 = time.perf_counter()
                        r = client.get(path)
                        ts.append((time.perf_counter() - t0) * 1000)
                        r.raise_for_status()
                    rest = np.array(ts[1:])
                    p95 = float(np.percentile(rest, 95))
                    if not label.endswith("(floor)") and p95 > worst[1]:
                        worst = (label, p95)
                    print(f"  {label:62s} {ts[0]:7.0f} {np.percentile(rest, 50):7.0f} {p95:7.0f} {rest.max():7.0f}"
                          f" {int(r.headers.get('content-length', len(r.content))):>10,}")
            print(f"  slowest p95: {worst[0]} {worst[1]:.0f} ms")


if __name__ == "__main__":
    main()
