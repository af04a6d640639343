"""Communication-topology learner: training env steps per second, this tree against an older one.

Times ``CommLearner.train_iteration`` on ``navigation_N3_l3`` (8 episodes in parallel per
iteration, one critic and policy update per episode, the paper's network sizes and
batch of 256) on one core (torch, Numba and BLAS threads 1), for the learner of this
checkout and of an older commit (``--baseline``, default the commit before issue 18's
work) exported with ``git archive``.  Each measurement runs in a fresh interpreter: the
warm-up episodes and two untimed iterations (Numba cache load, torch warm-up), then
``--iterations`` timed ones; the two trees alternate ``--rounds`` times so that load
drifting over the run hits both alike.  The table shows training env steps per second of
the best round (as ``timeit`` advises) and the median; the JSON in
``benchmarks/results/`` keeps every timing.  A measurement, not a test.

The two trees do not do the same work for ``meta`` and ``reinforce``: the baseline takes
one communication update per iteration of 8 episodes, this tree one per episode
(Algorithm 1), 8 times as many.

Usage::

    python benchmarks/bench_comm_learner.py                        # about 2 minutes
    python benchmarks/bench_comm_learner.py --methods meta none --env navigation_N6_l6
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from _tree_timing import (
    RESULTS_DIR,
    ROOT,
    alternate,
    export,
    learner_parser,
    print_table,
    timer_script,
)

from metaenvs.bench import machine_info, write_results

BASELINE = "021f949"
"""The last commit before issue 18's learner changes."""
TIMER = timer_script(
    "from baselines.comm.learner import CommArgs, CommLearner",
    "CommLearner(CommArgs(warmup_episodes=8, **settings))",
    warmup=2,
)


def main() -> None:
    parser = learner_parser(__doc__, BASELINE, ["meta", "reinforce", "none"], 8)
    parser.add_argument("--env", default="navigation_N3_l3")
    ns = parser.parse_args()
    rows = []
    steps = 8 * 25  # env steps of one iteration: 8 episodes of 25 steps
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"baseline": export(ns.baseline, Path(tmp)), "this tree": ROOT / "src"}
        for method in ns.methods:
            settings = {"env": ns.env, "method": method, "iterations": ns.iterations}
            times = alternate(trees, TIMER, settings, ns.rounds)
            best = {name: steps / min(t) for name, t in times.items()}
            median = {name: steps / statistics.median(t) for name, t in times.items()}
            speedup = best["this tree"] / best["baseline"]
            rows.append(
                {"method": method, "times": times, "best_steps_per_s": best,
                 "median_steps_per_s": median, "speedup_best": speedup}
            )  # fmt: skip
    title = f"{ns.env}, 8 episodes per iteration, one core: training env steps per second"
    print_table(title, rows, "best_steps_per_s", "median_steps_per_s", ",.0f")
    results = {
        "benchmark": "bench_comm_learner",
        "machine": machine_info(),
        "baseline": ns.baseline,
        "settings": {"env": ns.env, "envs": 8, "updates_per_episode": 1.0},
        "rows": rows,
    }
    out = write_results(results, RESULTS_DIR, "bench_comm_learner")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
