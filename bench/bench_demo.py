"""Benchmark of the demo county build (`sanigrid demo`).

1. ``make_demo_layers``: every layer on the real Guixi streets (layers/data/guixi-center.osm,
   © OpenStreetMap contributors, ODbL) with n problem reports, then the store write
   (``build_demo``: one GeoPackage transaction).
2. The lifecycle history of the problems: the vectorised builder of the demo against the
   reference path, a Python loop of :func:`geo.problems.history_record` (which checks every
   transition), on the same events; both must give the same rows.

Run:  .venv/bin/python bench/bench_demo.py          (quick: 5,000 reports)
      .venv/bin/python bench/bench_demo.py --full   (also 20,000 and 100,000 reports)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sanigrid.layers.cases import history_record
from sanigrid.scripts.demo import build_demo, demo_settings, make_demo_layers
from sanigrid.scripts.demo import problems as dp


def _loop_history(problems: pd.DataFrame, hist: pd.DataFrame) -> pd.DataFrame:
    """The same history, one checked transition at a time (the reference path)."""
    rows = []
    for pid, g in hist.groupby("problem_id", sort=True):
        current = None
        for to, at, actor, note in zip(g["to_status"], g["at"], g["actor"], g["note"], strict=True):
            if current is None:
                rows.append({"problem_id": int(pid), "from_status": None, "to_status": to, "at": at,
                             "actor": actor, "note": note})
            else:
                rows.append(history_record(pid, current, to, at=at, actor=actor, note=note))
            current = to
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--full", action="store_true", help="also 20,000 and 100,000 reports")
    args = ap.parse_args()
    sizes = [5000] + ([20_000, 100_000] if args.full else [])
    s = demo_settings()
    print(f"{'reports':>8} {'generate s':>11} {'build+write s':>14} {'features':>9} {'history rows':>13}")
    for n in sizes:
        t0 = time.perf_counter()
        data = make_demo_layers(s, seed=2026, n_problems=n)
        t_gen = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            build_demo(Path(tmp) / "demo", seed=2026, n_problems=n)
            t_build = time.perf_counter() - t0
        feats = sum(len(f) for f in data.layers.values())
        print(f"{n:>8} {t_gen:>11.2f} {t_build:>14.2f} {feats:>9} {len(data.tables['problem_history']):>13}")
    # history: vectorised (inside make_demo_layers) against the checked loop
    data = make_demo_layers(s, seed=2026, n_problems=5000)
    hist = data.tables["problem_history"]

    p = data.layers["problems"]
    ids = p["problem_id"].to_numpy()
    # rebuild the event arrays from the history to time the vectorised builder on equal input
    wide = {key: np.full(len(ids), np.datetime64("NaT", "ms")) for _, _, key in dp._SEQ}
    order = {i: k for k, i in enumerate(ids)}
    seen: dict[tuple[int, str], int] = {}
    for pid, frm, to, at in zip(hist["problem_id"], hist["from_status"], hist["to_status"], hist["at"], strict=True):
        if frm is None:
            continue
        n_seen = seen.get((pid, to), 0)
        seen[(pid, to)] = n_seen + 1
        key = {"处置": "处置2" if n_seen else "处置", "核查": "核查2" if n_seen else "核查"}.get(to, to)
        wide[key][order[pid]] = np.datetime64(at, "ms")
    t0 = time.perf_counter()
    _, _, vec = dp.status_and_history(ids, p["reported_at"].to_numpy().astype("datetime64[ms]"),
                                       p["source"].to_numpy(), wide)
    t_vec = time.perf_counter() - t0
    t0 = time.perf_counter()
    loop = _loop_history(p, hist)
    t_loop = time.perf_counter() - t0
    same = (len(vec) == len(loop)
            and (vec["to_status"].to_numpy() == loop["to_status"].to_numpy()).all()
            and (pd.to_datetime(vec["at"]).to_numpy() == pd.to_datetime(loop["at"]).to_numpy()).all())
    print(f"history of 5,000 reports ({len(vec)} rows): vectorised {t_vec * 1000:.1f} ms, "
          f"checked loop {t_loop * 1000:.0f} ms, ratio {t_loop / t_vec:.0f}×, same rows: {same}")


if __name__ == "__main__":
    main()
