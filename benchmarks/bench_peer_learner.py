"""Learning-peers meta-agent: seconds per meta-training iteration, this tree against an older one.

Times ``PeerMetaLearner.train_iteration`` at the paper's IPD settings (K = 64, H = 150,
L = 7, 5 chains: the authors' 5 processes) on one core (torch, numba and BLAS threads
1), for the learner of this checkout and of an older commit (``--baseline``, default
the commit before issue 17's speed work) exported with ``git archive`` into a temporary
folder.  Each measurement runs in a fresh interpreter: one untimed iteration (Numba
cache load, torch warm-up), then ``--iterations`` timed ones; the two trees alternate
``--rounds`` times so that load drifting over the run hits both alike.  The table shows
the best round of each (as ``timeit`` advises) and the median; the JSON in
``benchmarks/results/`` keeps every timing.  A measurement, not a test.

Usage::

    python benchmarks/bench_peer_learner.py                 # about 3 minutes
    python benchmarks/bench_peer_learner.py --quick         # K 8, H 50, L 4: seconds
    python benchmarks/bench_peer_learner.py --methods meta_mapg meta_pg --rounds 3
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

BASELINE = "ecc330b"
"""The last commit before issue 17's learner changes."""
TIMER = timer_script(
    "from baselines.peers.learner import PeerArgs, PeerMetaLearner",
    'PeerMetaLearner(PeerArgs(game="ipd", **settings))',
    warmup=1,
)


def main() -> None:
    parser = learner_parser(__doc__, BASELINE, ["meta_mapg"], 3)
    parser.add_argument("--quick", action="store_true")
    ns = parser.parse_args()
    size = {"k": 8, "horizon": 50, "length": 4} if ns.quick else {"k": 64, "length": 7}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"baseline": export(ns.baseline, Path(tmp)), "this tree": ROOT / "src"}
        for method in ns.methods:
            settings = {**size, "method": method, "iterations": ns.iterations}
            times = alternate(trees, TIMER, settings, ns.rounds)
            best = {name: min(t) for name, t in times.items()}
            rows.append(
                {
                    "method": method,
                    "times": times,
                    "best": best,
                    "median": {name: statistics.median(t) for name, t in times.items()},
                    "speedup_best": best["baseline"] / best["this tree"],
                }
            )
    shape = "K 8, H 50, L 4" if ns.quick else "K 64, H 150, L 7"
    title = f"IPD, {shape}, 5 chains, one core: seconds per meta-training iteration"
    print_table(title, rows, "best", "median", ".2f")
    results = {
        "benchmark": "bench_peer_learner",
        "quick": ns.quick,
        "machine": machine_info(),
        "baseline": ns.baseline,
        "settings": {**size, "chains": 5},
        "rows": rows,
    }
    out = write_results(results, RESULTS_DIR, "bench_peer_learner")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
