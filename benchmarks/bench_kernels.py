"""Serial kernel speed: this checkout's step kernels against an older commit's, one thread.

For each task this times ``core.step_validated`` (validation is not the kernels' work)
on one thread (``make_core(..., threads=1)``) at B = 1024, in fresh one-thread
interpreters, the two trees taking turns ``--rounds`` times so that load drifting over
the run hits both alike.  Actions are random (16 batches drawn up front and validated;
Skirmish's drawn within the action masks before each step, untimed).  Each interpreter first
steps untimed (compiled kernels come from each tree's own cache), then keeps the best
of ``--repeats`` timings of ``--steps`` steps.  The table gives copy-steps/s of both
trees (best over rounds) and the speed-up; JSON goes to ``benchmarks/results/``.  A
measurement, not a test: nothing asserts on time.

Usage::

    python benchmarks/bench_kernels.py                     # baseline ae295c8
    python benchmarks/bench_kernels.py --tasks navigation_N3_l3 --rounds 5
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _tree_timing import RESULTS_DIR, ROOT, export, time_tree

from metaenvs import bench

TASKS = ("navigation_N3_l3", "navigation_N6_l6", "predator_prey_N3_M1_l3", "push_N3", "skirmish_3m")

TIMER = """
import json, sys, time
import numpy as np, metaenvs
from metaenvs.core import within_mask
env_id, batch, steps, repeats = json.loads(sys.argv[1])
core = metaenvs.make_core(env_id, threads=1)
state = core.reset(batch, seed=0)
rng = np.random.default_rng(0)
pre = [core.validate_actions(batch, core.sample_actions(batch, rng)) for _ in range(16)]
def actions(k):
    a = pre[k % 16]
    if core.masked_actions:
        a = core.validate_actions(batch, within_mask(core.action_mask(state), a))
    return a
for k in range(30):
    core.step_validated(state, actions(k))
best = 0.0
for _ in range(repeats):
    spent = 0.0
    for k in range(steps):
        a = actions(k)  # masks change every step: drawn untimed
        tick = time.perf_counter()
        core.step_validated(state, a)
        spent += time.perf_counter() - tick
    best = max(best, steps * batch / spent)
print(json.dumps(best))
"""


def time_kernels(src: Path, env_id: str, batch: int, steps: int, repeats: int) -> float:
    """Best copy-steps/s of ``env_id`` on the tree ``src`` (a fresh one-thread interpreter)."""
    return float(time_tree(src, TIMER, [env_id, batch, steps, repeats]))


def main(argv: list[str] | None = None) -> None:
    """Time every task on both trees, print the table and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="ae295c8", help="git ref (default ae295c8)")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="steps per timing")
    parser.add_argument("--repeats", type=int, default=20, help="timings per interpreter")
    ns = parser.parse_args(argv)
    rates: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"baseline": export(ns.baseline, Path(tmp)), "this tree": ROOT / "src"}
        for env_id in ns.tasks:
            for src in trees.values():  # compile into each tree's cache, untimed
                time_kernels(src, env_id, 8, 1, 1)
            got = rates.setdefault(env_id, {name: [] for name in trees})
            for _ in range(ns.rounds):
                for name, src in trees.items():
                    got[name].append(time_kernels(src, env_id, ns.batch, ns.steps, ns.repeats))
            print(f"{env_id}: done", flush=True)
    print(f"serial copy-steps/s at B = {ns.batch} (best of {ns.rounds} rounds; ns/copy-step)")
    print(f"{'task':>24} {'baseline':>16} {'this tree':>16} {'speed-up':>9}")
    rows = []
    for env_id, got in rates.items():
        old, new = max(got["baseline"]), max(got["this tree"])
        rows.append({"task": env_id, "baseline": old, "this tree": new, "speedup": new / old})
        print(
            f"{env_id:>24} {old / 1e6:>7.3f}M ({1e9 / old:>5.0f}) {new / 1e6:>7.3f}M "
            f"({1e9 / new:>5.0f}) {new / old:>8.2f}x"
        )
    results = {"rows": rows, "rates": rates, "args": vars(ns), "machine": bench.machine_info()}
    print("wrote", bench.write_results(results, RESULTS_DIR, "kernels"))


if __name__ == "__main__":
    main()
