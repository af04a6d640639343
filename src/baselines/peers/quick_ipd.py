"""Main job: a small-budget IPD comparison of meta-agents against learning peers.

Meta-MAPG, Meta-PG, LOLA-DiCE and REINFORCE (:mod:`baselines.peers.learner`) are
meta-trained against peers drawn from the IPD persona population's train split, the
best iteration by validation AUC is kept, and each is meta-tested on every persona of
the test split.  The budget is cut from the paper's (K = 64, H = 150, L = 7, many
thousands of iterations) to K = 8, H = 50, L = 4 and 150 iterations, with outer learning
rates of 1e-3 (the paper's 1e-4 for the policy, 1.5e-4 for the value function), so the
four runs finish in a few minutes on 2 cores; the outer optimiser is PyTorch's Adam, as
in the README's table that the job reruns (:data:`SETTINGS`).  One seed by default: the
summary says it allows no claim; ``--seeds 0 1 2 3 4`` gives 95% intervals.
The paper's full settings are the defaults of ``metaenvs train peers``
(:mod:`baselines.peers.experiment`).

Run::

    python -m baselines.peers.quick_ipd --out runs/peers_ipd
    python -m baselines.peers.quick_ipd --smoke --out runs/smoke   # under a minute

It prints a line per method and validation with an estimate of the time left, writes
``runs/peers_ipd/ipd/<method>/seed<S>/`` (metrics, checkpoints, plots, test results) and
``runs/peers_ipd/ipd/`` (``test_summary.md``/``.csv`` on the test AUC, which it prints,
``adaptation.png``, ``dynamics.png``, and the framework's ``summary.md``/``.csv`` and
``curves.png`` on the validation AUC).  Rerunning resumes from the checkpoints.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import Manager, get_context
from pathlib import Path
from queue import Empty
from typing import Any

METHODS = ("meta_mapg", "meta_pg", "lola_dice", "reinforce")
SETTINGS = {
    "game": "ipd",
    "k": 8,
    "horizon": 50,
    "length": 4,
    "actor_lr": 1e-3,
    "critic_lr": 1e-3,
    "outer_optimizer": "adam",
}
"""The small budget's PeerArgs (everything else is the paper's).  ``outer_optimizer``:
PyTorch's Adam, which made the README's CPU-budget table whose IPD rows the job reruns
(``--set outer_optimizer=shared_adam`` for the authors' optimiser, the learner's default)."""
SMOKE = {"iterations": 2, "eval_every": 1, "set": {"k": 2, "horizon": 4, "length": 1, "chains": 2}}
"""``--smoke``: every step of the job at a toy budget (for CI and a first check)."""
OWN_OPTIONS = ("game", "method", "seed", "iterations", "eval_every")
"""PeerArgs fields the job sets itself (``--seeds``, ``--iterations`` ...), not ``--set``."""


def _one_thread() -> None:
    """Worker initializer: one core per worker (set before torch and Numba start threads).

    Only the workers' environment changes: the calling process keeps its own (Numba
    refuses a thread count that changes after its threads started).
    """
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[key] = "1"


def train_one(
    method: str,
    out: str,
    iterations: int,
    eval_every: int,
    seed: int,
    overrides: dict,
    queue: Any = None,
) -> str:
    """Train and test one method (run in a worker process with one thread).

    Every validation is put on ``queue`` (a dict: the row of ``metrics.csv`` and more, see
    :func:`baselines.experiment.run`).
    """
    from baselines.peers.experiment import EXPERIMENT
    from baselines.peers.learner import PeerArgs

    args = PeerArgs(method=method, seed=seed, iterations=iterations, eval_every=eval_every,
                    **{**SETTINGS, **overrides})  # fmt: skip
    report = None if queue is None else queue.put
    return str(EXPERIMENT.run(args, out, progress=False, report=report))


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``{field: value}`` from ``key=value`` strings, each parsed by its PeerArgs field's type.

    Raises
    ------
    ValueError
        A malformed item, an unknown field (the message lists the valid ones), or a field
        the job sets itself (:data:`OWN_OPTIONS`).
    """
    from baselines.experiment.cli import parse_field
    from baselines.peers.learner import PeerArgs

    fields = {f.name: f for f in dataclasses.fields(PeerArgs)}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise ValueError(f"--set expects key=value, got {item!r}")
        if key in OWN_OPTIONS:
            raise ValueError(f"{key} is set by the job (--seeds, --iterations, ...), not --set")
        if key not in fields:
            valid = ", ".join(n for n in fields if n not in OWN_OPTIONS)
            raise ValueError(f"unknown field {key!r} in --set; valid fields: {valid}")
        out[key] = parse_field(PeerArgs, fields[key], text)
    return out


def _minutes(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """Prints one line per validation with an estimate of the time left.

    The estimate: the iterations still to run (over all methods and seeds) times the
    seconds per iteration measured so far, divided by the number of workers.
    """

    def __init__(self, jobs: list[tuple[str, int]], iterations: int, workers: int) -> None:
        self.done = {job: 0 for job in jobs}
        self.wall = {job: 0.0 for job in jobs}
        self.iterations = iterations
        self.workers = min(workers, len(jobs))
        self.start = time.perf_counter()

    def eta(self) -> float | None:
        """Seconds left, or None before any iteration was timed."""
        done = sum(self.done.values())
        if done == 0:
            return None
        per_iteration = sum(self.wall.values()) / done
        left = self.iterations * len(self.done) - done
        return left * per_iteration / self.workers

    def line(self, msg: dict[str, Any]) -> str:
        """Record one validation (a report of :func:`baselines.experiment.run`) and return
        the line to print."""
        job = (msg["method"], msg["seed"])
        iteration = int(msg["iteration"])
        self.done[job], self.wall[job] = iteration, float(msg["wall_s"])
        eta = self.eta()
        left = "estimating" if eta is None else f"~{_minutes(eta)} left"
        return (
            f"[{_minutes(time.perf_counter() - self.start)}] {msg['method']:<10} "
            f"seed {msg['seed']}  iteration {iteration:>4}/{msg['budget']}  "
            f"val AUC {msg['val_auc']:.3f}  (best {msg['best']:.3f} at "
            f"{int(msg['best_x'])})  {left}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Train every method and seed in worker processes, then compare them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/peers_ipd", help="root of the run directories")
    parser.add_argument(
        "--iterations", type=int, default=150, help="meta-training iterations per method"
    )
    parser.add_argument("--eval-every", type=int, default=25, help="iterations between validations")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0], metavar="SEED", help="seeds (default: 0)"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="runs trained at once (one core each)"
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="toy budget (2 iterations, K=2, H=4, L=1): checks the whole job in under a minute",
    )
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="override PeerArgs fields"
    )
    ns = parser.parse_args(argv)
    if ns.smoke:
        ns.iterations, ns.eval_every = SMOKE["iterations"], SMOKE["eval_every"]
        ns.set = [f"{k}={v}" for k, v in SMOKE["set"].items()] + ns.set
    for option, value, low in (
        ("--iterations", ns.iterations, 1),
        ("--eval-every", ns.eval_every, 1),
        ("--workers", ns.workers, 1),
        ("--seeds", min(ns.seeds), 0),
    ):
        if value < low:
            parser.error(f"{option} must be >= {low}, got {value}")
    from baselines.experiment import compare, warm_kernels
    from baselines.peers.experiment import EXPERIMENT
    from baselines.peers.learner import PeerArgs

    try:
        overrides = parse_overrides(ns.set)
        PeerArgs(**{**SETTINGS, **overrides})  # checked before any worker starts
    except ValueError as err:
        parser.error(str(err))
    seeds = list(dict.fromkeys(ns.seeds))
    runs = [(m, s) for s in seeds for m in ns.methods]
    root = Path(ns.out) / "ipd"
    print(
        f"main job: {len(ns.methods)} methods x {len(seeds)} seed(s), {ns.iterations} "
        f"meta-training iterations each, {min(ns.workers, len(runs))} at once; "
        f"writing {root}/",
        flush=True,
    )
    # compiled once here (or loaded from the cache): the workers then load them
    print("compiling the kernels for the workers (the first run after an install)", flush=True)
    warm_kernels(EXPERIMENT, [PeerArgs(**{**SETTINGS, **overrides})])
    print("starting the workers", flush=True)
    progress = Progress(runs, ns.iterations, ns.workers)
    context = get_context("spawn")
    with (
        Manager() as manager,
        ProcessPoolExecutor(ns.workers, mp_context=context, initializer=_one_thread) as pool,
    ):
        queue = manager.Queue()
        futures = [
            pool.submit(train_one, m, ns.out, ns.iterations, ns.eval_every, s, overrides, queue)
            for m, s in runs
        ]
        while not all(f.done() for f in futures) or not queue.empty():
            try:
                print(progress.line(queue.get(timeout=0.5)), flush=True)
            except Empty:
                continue
        for future in futures:
            print(f"done: {future.result()}", flush=True)
    paths = compare(EXPERIMENT, root, ns.methods)
    print((root / "test_summary.md").read_text())
    print(f"total wall-clock {_minutes(time.perf_counter() - progress.start)}")
    print("wrote", *paths, sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
