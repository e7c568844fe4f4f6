"""Login guesses per second with 8 clients on loopback: without throttling (the old behaviour: limits set
out of reach) and with the default limits, in the same run (issue 11 §5).

A guess counts when the server checked the password (401); a 429 is a refused try, not a guess.
Both sides run for ``--seconds`` each against uvicorn on 127.0.0.1, from 8 threads with keep-alive.

    .venv/bin/python bench/bench_logins.py            # 8 clients, 12 s per side
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from webproject import LiveServer, synthetic_project

from sanigrid.web.app import create_app
from sanigrid.web.auth import add_user


def hammer(url: str, *, clients: int, seconds: float) -> dict[int, int]:
    """Wrong-password logins for one known account from ``clients`` threads: counts by status code."""
    counts: dict[int, int] = {}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
            while time.monotonic() < stop:
                r = c.post("/api/auth/token", data={"username": "office", "password": f"guess-{i}-{time.time()}"})
                with lock:
                    counts[r.status_code] = counts.get(r.status_code, 0) + 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=12.0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        project = synthetic_project(Path(d) / "town", n_problems=0)
        add_user(project, "office", role="office", password="the-real-password-1")
        rates = {}
        for label, limit in (("unthrottled", 10**9), ("throttled (defaults)", None)):
            w = project.settings.web
            app = create_app(project, warm=False)
            if limit is not None:
                app.state.login_throttle.per_account = app.state.login_throttle.per_address = limit
            with LiveServer(app) as url:
                counts = hammer(url, clients=a.clients, seconds=a.seconds)
            guesses = counts.get(401, 0)
            rates[label] = guesses / a.seconds
            print(f"{label:22s} {guesses:5d} passwords checked in {a.seconds:.0f} s = {rates[label]:7.1f} guesses/s; "
                  f"responses {dict(sorted(counts.items()))} (limits: {w.login_max_failures}/account, "
                  f"{w.login_max_failures_per_address}/address per {w.login_window_minutes:g} min"
                  f"{'' if limit is None else ', raised out of reach'})")
        before, after = rates["unthrottled"], rates["throttled (defaults)"]
        w = project.settings.web
        cap = w.login_max_failures / (w.login_window_minutes * 60)
        print(f"ratio unthrottled / throttled over this run: {before / after if after else float('inf'):.1f}x; "
              f"sustained, the throttle allows {cap:.4f} guesses/s per account "
              f"({before / cap:.0f}x fewer than unthrottled)")


if __name__ == "__main__":
    main()
