"""Benchmark: `sanigrid sample` and `sanigrid analyse` on the demo, against the old behaviour in the same run.

    .venv/bin/sanigrid demo -p /tmp/demo --no-analyses      # once
    .venv/bin/python bench/bench_commands.py /tmp/demo [--rounds 3]

Each round copies the project and runs, in fresh processes: `sanigrid sample` (maps on request
since issue 12) against `sanigrid sample --maps` (what `sample` did before: 12 A4 maps), and
`sanigrid analyse` (every step). Medians are printed with the figures of issue 12, measured on a
quiet machine before the change (`time sanigrid sample -p demo`: 5.5 s; `time sanigrid analyse
-p demo`: ~11 s). Targets: sample < 1 s, analyse < 4 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SANIGRID = str(Path(sys.executable).parent / "sanigrid")
BEFORE = {"sample": 5.5, "analyse": 11.0}


def run(args: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run([SANIGRID, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("project", help="a demo project (sanigrid demo -p DIR)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-analyse", action="store_true")
    a = ap.parse_args()
    times: dict[str, list[float]] = {"sample": [], "sample --maps (old default)": [], "analyse": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.rounds):
            p = Path(tmp) / f"p{i}"
            shutil.copytree(a.project, p)
            if not a.skip_analyse:
                times["analyse"].append(run(["analyse", "-p", str(p)]))
            times["sample"].append(run(["sample", "-p", str(p)]))
            times["sample --maps (old default)"].append(run(["sample", "--maps", "-p", str(p)]))
    print(f"commands on {a.project}, median of {a.rounds} rounds (fresh process each, start-up included):")
    for k, ts in times.items():
        if not ts:
            continue
        m = statistics.median(ts)
        base = BEFORE.get(k)
        extra = f"   issue 12 before: {base:.1f} s quiet" if base else ""
        print(f"  sanigrid {k:30s} {m:6.2f} s{extra}")
    if times["sample"]:
        r = statistics.median(times["sample --maps (old default)"]) / statistics.median(times["sample"])
        print(f"  sample vs sample --maps in this run: {r:.1f}×")


if __name__ == "__main__":
    main()
