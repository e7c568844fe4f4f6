"""Benchmark: start-up of the `sanigrid` command against `python -c "import numpy"`, in one run.

    .venv/bin/python bench/bench_startup.py              # 7 rounds, interleaved; medians
    .venv/bin/python bench/bench_startup.py --rounds 15

Each round runs every command once in a fresh interpreter (so load on the machine hits both sides
alike) and the medians are compared. Target (issue 12): `sanigrid --help` ≤ 2× `import numpy`;
`sanigrid layers` on the demo project fast. The reference is what every scientific Python command
pays at least once.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def run(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--project", default=None, help="project for `sanigrid layers` (default: a new empty one)")
    a = ap.parse_args()
    sanigrid = str(BIN / "sanigrid")
    with tempfile.TemporaryDirectory() as tmp:
        project = a.project or tmp
        if a.project is None:
            subprocess.run([sanigrid, "init", "-p", tmp], check=True, stdout=subprocess.DEVNULL)
        cmds = {
            'python -c "import numpy"': [sys.executable, "-c", "import numpy"],
            "python -c pass": [sys.executable, "-c", "pass"],
            "sanigrid --help": [sanigrid, "--help"],
            "sanigrid coverage --help": [sanigrid, "coverage", "--help"],
            f"sanigrid layers -p {'PROJECT' if a.project else '(empty project)'}": [sanigrid, "layers", "-p", project],
        }
        times: dict[str, list[float]] = {k: [] for k in cmds}
        for c in cmds.values():  # warm the file cache once
            run(c)
        for _ in range(a.rounds):
            for k, c in cmds.items():
                times[k].append(run(c))
    ref = statistics.median(times['python -c "import numpy"'])
    print(f"start-up, median of {a.rounds} interleaved rounds (fresh interpreter each):")
    for k, ts in times.items():
        m = statistics.median(ts)
        print(f"  {k:42s} {m:6.3f} s   {m / ref:5.2f}× import numpy")


if __name__ == "__main__":
    main()
