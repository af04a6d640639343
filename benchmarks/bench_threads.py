"""Threads under contention: this checkout's pool against an older commit's Numba ``omp``
path, idle and with a busy process competing for a core, in one run.

For each task and batch size this times ``core.step`` (copy-steps/s) in fresh
interpreters, taking turns:

- ``old/1``, ``old/2``: the ``--baseline`` commit with ``numba.set_num_threads(1 | 2)``
  (its kernels ran ``prange`` on Numba's default threading layer from a batch threshold);
- ``new/1``, ``new/2``: this checkout with ``make_core(..., threads=1 | 2)``.

Each configuration runs ``idle`` and ``contended``: in the second mode a busy Python loop
runs in another process for the whole measurement (one competing process on a 2-core
machine: a torch learner, another run, a CI neighbour).  The table gives each rate and
its ratio to the idle serial rate of the same tree (the issue's target: contended >= 0.8),
and the batch from which ``new/2`` beats ``new/1`` idle (the ``min_parallel`` threshold).
Writes JSON to ``benchmarks/results/``.  A measurement, not a test.

Usage::

    python benchmarks/bench_threads.py                 # baseline ff1a737
    python benchmarks/bench_threads.py --quick         # fewer batches, shorter timings
    python benchmarks/bench_threads.py --plot docs/assets/speed/threads.png
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _tree_timing import RESULTS_DIR, ROOT, export

from metaenvs import bench

TASKS = {
    "navigation_N3_l3": (256, 1024, 4096),
    "predator_prey_N3_M1_l3": (256, 1024, 4096),
    "push_N3": (256, 1024, 4096),
    "skirmish_3m": (64, 256, 1024),
}
QUICK = {"navigation_N3_l3": (256, 1024), "skirmish_3m": (64, 256)}

TIMER = """
import json, sys, time
import numpy as np, numba, metaenvs
from metaenvs.core import within_mask
tree, threads, env_id, batches, seconds = json.loads(sys.argv[1])
if tree == "old":
    numba.set_num_threads(threads)
    core = metaenvs.make_core(env_id)
else:
    core = metaenvs.make_core(env_id, threads=threads)
    core.min_parallel = 1  # the pool at every batch (its threshold is what this measures)
rates = {}
for batch in batches:
    state = core.reset(batch, seed=0)
    rng = np.random.default_rng(0)
    pre = [core.sample_actions(batch, rng) for _ in range(16)]
    def act(k):
        a = pre[k % 16]
        return within_mask(core.action_mask(state), a) if core.masked_actions else a
    for k in range(20):
        core.step(state, act(k))
    n, tick = 0, time.perf_counter()
    while time.perf_counter() - tick < seconds:
        core.step(state, act(n))
        n += 1
    rates[batch] = n * batch / (time.perf_counter() - tick)
print(json.dumps(rates))
"""


def time_config(
    src: Path, tree: str, threads: int, env_id: str, batches: tuple, seconds: float
) -> dict[int, float]:
    """Copy-steps/s per batch of one configuration, in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(src), "NUMBA_NUM_THREADS": "2", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", TIMER, json.dumps([tree, threads, env_id, batches, seconds])],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {int(k): v for k, v in json.loads(out.splitlines()[-1]).items()}


def plot(rates: dict[str, dict], path: Path) -> None:
    """Bars of each 2-thread rate over the idle 1-thread rate of its tree, idle and
    contended, per task at its largest batch (the docs' picture)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = {key: {int(b): r for b, r in row.items()} for key, row in rates.items()}  # JSON keys
    tasks = sorted({key.split("|")[0] for key in rates})
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3.6), sharey=True)
    for ax, env_id in zip(np.atleast_1d(axes), tasks, strict=True):
        batch = max(int(b) for b in rates[f"{env_id}|idle|new/1"])
        for k, tree in enumerate(("old", "new")):
            base = rates[f"{env_id}|idle|{tree}/1"][batch]
            for m, mode in enumerate(("idle", "contended")):
                ratio = rates[f"{env_id}|{mode}|{tree}/2"][batch] / base
                bar = ax.bar(k * 2.5 + m, ratio, color=("#4c72b0", "#dd8452")[m])
                ax.bar_label(bar, fmt="%.2f", fontsize=8)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_xticks([0.5, 3.0], ["Numba omp", "metaenvs pool"])
        ax.set_title(f"{env_id}, B = {batch}", fontsize=9)
    np.atleast_1d(axes)[0].set_ylabel("2 threads / idle 1 thread")
    from matplotlib.patches import Patch

    colours = {"idle": "#4c72b0", "contended (a busy process on one core)": "#dd8452"}
    handles = [Patch(color=c, label=label) for label, c in colours.items()]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8)
    fig.subplots_adjust(bottom=0.2)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="ff1a737", help="git ref of the omp path")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--plot", type=Path, help="also draw the ratios into this PNG")
    parser.add_argument("--replot", type=Path, help="only draw --plot from this results JSON")
    ns = parser.parse_args(argv)
    if ns.replot is not None:
        plot(json.loads(ns.replot.read_text())["rates"], ns.plot or Path("threads.png"))
        return
    tasks = QUICK if ns.quick else TASKS
    seconds = 0.2 if ns.quick else ns.seconds
    configs = [("old", 1), ("old", 2), ("new", 1), ("new", 2)]
    rates: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"old": export(ns.baseline, Path(tmp)), "new": ROOT / "src"}
        for env_id, batches in tasks.items():
            for tree in trees.values():  # compile into each tree's cache, untimed
                time_config(tree, "new" if tree == trees["new"] else "old", 1, env_id, (1,), 0.01)
            for mode in ("idle", "contended"):
                for _ in range(ns.rounds):
                    for tree, threads in configs:
                        with bench.busy_process(mode == "contended"):
                            got = time_config(trees[tree], tree, threads, env_id, batches, seconds)
                        key = f"{env_id}|{mode}|{tree}/{threads}"
                        for batch, rate in got.items():
                            best = rates.setdefault(key, {})
                            best[batch] = max(best.get(batch, 0.0), rate)
                print(f"{env_id} {mode}: done", flush=True)
    rows = [["task", "B", "mode", *(f"{t}/{k}" for t, k in configs), "old/2 : old/1 idle",
             "new/2 : new/1 idle"]]  # fmt: skip
    thresholds = {}
    for env_id, batches in tasks.items():
        for batch in batches:
            base = {t: rates[f"{env_id}|idle|{t}/1"][batch] for t in ("old", "new")}
            for mode in ("idle", "contended"):
                row = [rates[f"{env_id}|{mode}|{t}/{k}"][batch] for t, k in configs]
                ratios = [f"{row[1] / base['old']:.2f}", f"{row[3] / base['new']:.2f}"]
                rows.append([env_id, str(batch), mode, *(f"{r / 1e6:.3f}M" for r in row), *ratios])
        one, two = rates[f"{env_id}|idle|new/1"], rates[f"{env_id}|idle|new/2"]
        wins = [b for b in batches if two[b] > 1.1 * one[b]]
        thresholds[env_id] = min(wins) if wins else None
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(f"{c:>{w}}" for c, w in zip(r, widths, strict=True)))
    print("smallest batch where new/2 beats new/1 by 10% idle:", thresholds)
    results = {"rates": rates, "thresholds": thresholds, "args": vars(ns), "quick": ns.quick,
               "machine": bench.machine_info()}  # fmt: skip
    print("wrote", bench.write_results(results, RESULTS_DIR, "threads"))
    if ns.plot is not None:
        plot(rates, ns.plot)


if __name__ == "__main__":
    main()
