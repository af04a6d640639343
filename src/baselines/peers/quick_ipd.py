"""Main job: a small-budget IPD comparison of meta-agents against learning peers.

Meta-MAPG, Meta-PG, LOLA-DiCE and REINFORCE (:mod:`baselines.peers.learner`) are
meta-trained against peers drawn from the IPD persona population's train split, the
best iteration by validation AUC is kept, and each is meta-tested on every persona of
the test split.  The budget is cut from the paper's (K = 64, H = 150, L = 7, many
thousands of iterations) to K = 8, H = 50, L = 4 and 150 iterations, with outer learning
rates of 1e-3 (the paper's 1e-4 for the policy, 1.5e-4 for the value function), so the
four runs finish in a few minutes on 2 cores.
The paper's full settings are the defaults of ``metaenvs train peers``.

Run::

    python -m baselines.peers.quick_ipd --out runs/peers_ipd

It writes ``runs/peers_ipd/ipd/<method>/seed0/`` (metrics, checkpoints, plots, test
results) and ``runs/peers_ipd/ipd/{adaptation.png,dynamics.png,summary.md,summary.csv}``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

METHODS = ("meta_mapg", "meta_pg", "lola_dice", "reinforce")
SETTINGS = {
    "game": "ipd",
    "k": 8,
    "horizon": 50,
    "length": 4,
    "actor_lr": 1e-3,
    "critic_lr": 1e-3,
}
"""The small budget's PeerArgs (everything else is the paper's)."""


def _one_thread() -> None:
    """Worker initializer: one core per worker (set before torch and Numba start threads).

    Only the workers' environment changes: the calling process keeps its own (Numba
    refuses a thread count that changes after its threads started).
    """
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[key] = "1"


def train_one(
    method: str, out: str, iterations: int, eval_every: int, seed: int, overrides: dict
) -> str:
    """Train and test one method (run in a worker process with one thread)."""
    from baselines.peers.learner import PeerArgs
    from baselines.peers.runner import run

    args = PeerArgs(method=method, seed=seed, **{**SETTINGS, **overrides})
    return str(run(args, out, iterations, eval_every, name="ipd", progress=False))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/peers_ipd", help="root of the run directories")
    parser.add_argument(
        "--iterations", type=int, default=150, help="meta-training iterations per method"
    )
    parser.add_argument("--eval-every", type=int, default=25, help="iterations between validations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workers", type=int, default=2, help="methods trained at once (one core each)"
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="override PeerArgs fields (tests)"
    )
    ns = parser.parse_args(argv)
    from baselines.peers.learner import PeerArgs
    from baselines.peers.runner import compare, parse_overrides

    overrides = parse_overrides(PeerArgs(**SETTINGS), ns.set)
    jobs = [(m, ns.out, ns.iterations, ns.eval_every, ns.seed, overrides) for m in ns.methods]
    context = get_context("spawn")
    with ProcessPoolExecutor(ns.workers, mp_context=context, initializer=_one_thread) as pool:
        for run_dir in pool.map(train_one, *zip(*jobs)):
            print(f"done: {run_dir}")
    paths = compare(Path(ns.out) / "ipd", ns.methods)
    print((Path(ns.out) / "ipd" / "summary.md").read_text())
    print("wrote", *paths, sep="\n  ")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
