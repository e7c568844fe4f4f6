"""Benchmark: `sanigrid analyse` (step by step) and `sanigrid sample` on the demo, against the old code in the same run.

    .venv/bin/sanigrid demo -p /tmp/demo --no-analyses      # once
    .venv/bin/python bench/bench_commands.py /tmp/demo [--rounds 3] [--baseline be96c34] [--now COMMIT]

Each round copies the project and runs, each in a fresh process (start-up included), interleaved:

* ``sanigrid analyse`` of this tree, and of ``--baseline`` (a commit of this repository, default
  ``be96c34``: the code before `analyse` read each layer once and shared results; it is checked out
  into a temporary worktree and imported instead of this tree; ``--now`` does the same for the other
  side, so the tree can change while the bench runs). Both print one line per step with its
  seconds; the table gives the median per step.
* ``sanigrid sample`` (on the analysed copy) of this tree and of the baseline, and ``sample --maps``
  (12 A4 maps: what `sample` did before maps were made on request).

Every run also gives its CPU seconds (user + system) and peak resident memory (``wait4``). The
machine is shared: CPU seconds vary less than wall time under load. Issue 12's figures, measured
on a quiet machine before any of this: `sample` 5.5 s, `analyse` ~11 s; README (0f71afa): `analyse`
22 s on 2 cores. Targets: analyse < 4 s, sample < 1 s.

Each round also runs ``analyse`` again on the analysed copy (a planner's next run: the archive scan reads
only new or changed files) and ``python -c 'import numpy'`` (the start-up reference: every CPU figure is
also given as a multiple of it, which a loaded machine moves less than seconds).

Last run (c01e983 against 46f1957, 3 rounds, load average 7.4 on 2 CPUs with the test suite running in the
last round, so wall times are 3–4× CPU; CPU medians, min in brackets): analyse 8.2 (7.1) s against 9.3
(9.1) s, 1.1×; analyse again 7.5 (7.1) s against 9.8 (9.6) s, 1.3×; sample 2.7 (2.2) s against 3.1 (2.8) s,
1.1× (1.3× on the minima); peak 288 MB against 281 MB; import numpy 0.19 s, so sample is 15× and analyse
40× of it. Earlier: 2f61f2c against be96c34 (load 7–13): analyse 8.3 s CPU against 15.2 s, sample 2.8 s
against 2.9 s.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("layers", "geo", "web", "scripts")
STEP = re.compile(r"✓ (.+?)\s+([0-9.]+) s\s*$")
_CLI = "import sys; from sanigrid.scripts.cli import main; sys.argv[0] = 'sanigrid'; main()"


def checkout(commit: str, tmp: Path, name: str) -> dict[str, str]:
    """A worktree of ``commit`` and the environment that imports ``sanigrid`` from it."""
    tree = tmp / name
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-q", "--detach", str(tree), commit], check=True)
    shim = tmp / f"{name}-import" / "sanigrid"
    shim.mkdir(parents=True)
    for p in PACKAGES:
        (shim / p).symlink_to(tree / p)
    return {**os.environ, "PYTHONPATH": str(shim.parent)}


def run(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float, dict[str, float]]:
    """Wall s, CPU s, peak RSS MB and the per-step seconds printed by one `sanigrid` process."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**(env or os.environ), "COLUMNS": "200"}, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"sanigrid {' '.join(args)} failed:\n{out[-3000:]}")
    steps = {m.group(1).strip(): float(m.group(2)) for line in out.splitlines() if (m := STEP.search(line))}
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, steps


def run_python(code: str) -> tuple[float, float, float, dict[str, float]]:
    """Wall s, CPU s and peak RSS MB of ``python -c code`` (the start-up reference)."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code])
    _, status, ru = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"python -c {code!r} failed")
    return time.perf_counter() - t, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("project", help="a demo project (sanigrid demo -p DIR --no-analyses)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline", default="be96c34", help="commit to compare with ('' for none)")
    ap.add_argument("--now", default="", help="commit to measure as 'now' (default: this tree as it is)")
    ap.add_argument("--skip-maps", action="store_true", help="skip `sample --maps`")
    a = ap.parse_args()
    trees = [n for n, c in (("baseline", a.baseline), ("now", a.now)) if c]
    runs: dict[str, list[tuple[float, float, float, dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        old_env = checkout(a.baseline, tmp, "baseline") if a.baseline else None
        now_env = checkout(a.now, tmp, "now") if a.now else None
        try:
            for i in range(a.rounds):
                for who, env in (("now", now_env), ("baseline", old_env)):
                    if who == "baseline" and env is None:
                        continue
                    p = tmp / f"{who}{i}"
                    shutil.copytree(a.project, p, ignore=shutil.ignore_patterns("outputs"))
                    runs.setdefault(f"analyse {who}", []).append(run(["analyse", "-p", str(p)], env))
                    # again on the analysed copy: what a planner's next run costs (the archive scan reads
                    # only changed files, every layer is there)
                    runs.setdefault(f"analyse again {who}", []).append(run(["analyse", "-p", str(p)], env))
                    runs.setdefault(f"sample {who}", []).append(run(["sample", "-p", str(p)], env))
                    if who == "now" and not a.skip_maps:
                        runs.setdefault("sample --maps", []).append(run(["sample", "--maps", "-p", str(p)], env))
                    shutil.rmtree(p)
                runs.setdefault("python -c 'import numpy'", []).append(run_python("import numpy"))
                print(f"round {i + 1}/{a.rounds} done", file=sys.stderr, flush=True)
        finally:
            for name in trees:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tmp / name)], check=False)

    def med(key: str, j: int) -> float:
        return statistics.median(r[j] for r in runs[key])

    def low(key: str, j: int) -> float:
        return min(r[j] for r in runs[key])

    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"sanigrid on {a.project}: median of {a.rounds} rounds, each a fresh process (start-up included); "
          f"load average {' '.join(load)} on {os.cpu_count()} CPUs")
    if "analyse baseline" in runs:
        print(f"\n`sanigrid analyse` per step (s, wall)     {'now':>7} {'baseline ' + a.baseline:>17} {'ratio':>6}")
        steps = list(runs["analyse baseline"][0][3])
        for s in steps:
            now = statistics.median(r[3].get(s, float("nan")) for r in runs["analyse now"])
            old = statistics.median(r[3].get(s, float("nan")) for r in runs["analyse baseline"])
            print(f"  {s:38s} {now:7.2f} {old:17.2f} {old / now:5.1f}×")
        now = statistics.median(sum(r[3].values()) for r in runs["analyse now"])
        old = statistics.median(sum(r[3].values()) for r in runs["analyse baseline"])
        print(f"  {'sum of the steps':38s} {now:7.2f} {old:17.2f} {old / now:5.1f}×")
    ref = "python -c 'import numpy'"
    print(f"\n{'command':38s} {'wall s':>7} {'CPU s':>7} {'min CPU':>7} {'peak MB':>8}   vs baseline (wall, CPU)"
          "   CPU / import numpy")
    for key in runs:
        extra = ""
        base = key.replace(" now", " baseline")
        if key.endswith(" now") and base in runs:
            extra = f"   {med(base, 0) / med(key, 0):4.1f}×, {med(base, 1) / med(key, 1):4.1f}×"
        label = key if key == ref else f"sanigrid {key}"
        print(f"  {label:36s} {med(key, 0):7.2f} {med(key, 1):7.2f} {low(key, 1):7.2f} {med(key, 2):8.0f}{extra:16s}"
              f"   {med(key, 1) / med(ref, 1):6.1f}×")
    print("\ntargets (quiet machine): analyse < 4 s, sample < 1 s; issue 12 before: sample 5.5 s, analyse ~11 s; "
          "README 0f71afa: analyse 22 s")


if __name__ == "__main__":
    main()
