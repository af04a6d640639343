"""Start-up: imports and Numba compiles per family, wrapper and learner, cold and warm.

Each row runs in fresh interpreters, three times:

- **cold**: Numba's cache pointed at an empty temporary folder (``NUMBA_CACHE_DIR``), as
  after an install or an edit of a kernel module: every kernel is compiled;
- **warm**: a second fresh interpreter on the same folder, as a user's second run;
- **after warmup**: another empty folder, filled by ``metaenvs warmup IDS`` (timed, in
  its own interpreter), then the row's run: what a first run costs after the warm-up.

A row's run imports what it needs (timed apart: ``import``), then runs its work twice in
the same process: the first time pays the compiles or cache loads, the second does not, so
``start-up`` = import + (first - second).  ``compile`` is the time Numba spent compiling
(its compile events), ``kernels`` the number of kernel signatures compiled; after the
warm-up both should be zero.

- family rows (``matrix`` ... ``skirmish``): ``metaenvs.warmup.warmup([ID], plugins=False)``,
  every keyword variant of the id at B = 1 and B = 1024;
- wrapper rows (``comm``, ``peers``): the wrappers' warm-up tasks (``meta_wrappers.warmup``);
- learner rows: a learner built with a tiny budget, one training iteration and one
  evaluation through its experiment's hooks (:class:`baselines.experiment.Experiment`),
  every method of the learner in turn; ``ipd_focal``: PPO for one rollout.

This is a measurement, not a test: nothing asserts on time.  The machine's load changes
every number; the table says how many CPUs were busy when it started.

Usage::

    python benchmarks/bench_startup.py                      # every row (~20 min when loaded)
    python benchmarks/bench_startup.py --rows matrix peers  # some rows
    python benchmarks/bench_startup.py --child ROW          # one run (what the rows call)
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"

FAMILIES = {
    "matrix": "ipd",
    "navigation": "navigation_N3_l3",
    "predator_prey": "predator_prey_N3_M1_l3",
    "push": "push_N3",
    "skirmish": "skirmish_3m",
}
"""Family rows: the id each is warmed with (every id of a family shares its kernels)."""

WRAPPERS = {"comm": "navigation_N3_l3", "peers": "ipd"}
"""Wrapper rows: the id whose wrapper tasks run."""

LEARNERS = {
    "peers": ["ipd"],
    "comm_navigation": ["navigation_N3_l3"],
    "comm_predator_prey": ["predator_prey_N3_M1_l3"],
    "mnmpg": ["skirmish_3m"],
    "ipd_focal": ["ipd"],
}
"""Learner rows: the ids ``metaenvs warmup`` is given before them (what their runner warms)."""

ROWS = [*FAMILIES, *(f"{w}_wrapper" for w in WRAPPERS), *LEARNERS]


# -- the child: one row's run in this interpreter -----------------------------------------
def family_work(row: str) -> tuple[Callable[[], None], str]:
    def work() -> None:
        from metaenvs.warmup import warmup

        warmup([FAMILIES[row]], plugins=False)

    return work, "import metaenvs.warmup"


def wrapper_work(row: str) -> tuple[Callable[[], None], str]:
    name = row.removesuffix("_wrapper")

    def work() -> None:
        import metaenvs
        from meta_wrappers.warmup import tasks

        for task in tasks([metaenvs.spec(WRAPPERS[name])]):
            task.run()

    return work, "import metaenvs.warmup, meta_wrappers.warmup"


def experiment_work(module: str, args_list: list[Any]) -> Callable[[], None]:
    """Build each args' learner, train one iteration, evaluate once (the experiment's hooks)."""
    import importlib

    exp = importlib.import_module(module).EXPERIMENT

    def work() -> None:
        for args in args_list:
            args = exp.resolve(args) if exp.resolve is not None else args
            learner = exp.make_learner(args)
            exp.train(learner)
            exp.evaluate(learner, args, 1)

    return work


def learner_work(row: str) -> tuple[Callable[[], None], str]:
    if row == "peers":
        from baselines.peers.learner import PeerArgs

        tiny = {"k": 2, "horizon": 4, "length": 1, "chains": 2, "eval_chains": 2, "hidden": 8}
        methods = ("meta_mapg", "meta_pg", "lola_dice", "reinforce")
        runs = [PeerArgs(method=m, **tiny) for m in methods]
        return experiment_work("baselines.peers.experiment", runs), "baselines.peers"
    if row.startswith("comm_"):
        from baselines.comm.learner import METHODS, CommArgs

        env = LEARNERS[row][0]
        tiny = dict(
            envs=2,
            episodes=64,
            warmup_episodes=2,
            batch_size=16,
            hidden=16,
            meta_k=1,
            eval_episodes=2,
            buffer_size=1000,
        )
        runs = [CommArgs(method=m, env=env, **tiny) for m in METHODS]
        return experiment_work("baselines.comm.experiment", runs), "baselines.comm"
    if row == "mnmpg":
        from baselines.mnmpg.learner import METHODS, MixArgs

        tiny = dict(
            n_envs=2,
            batch_size=2,
            meta_interval=1,
            eval_episodes=2,
            map_name="3m",
            hidden=16,
            embed=8,
        )
        runs = [MixArgs(method=m, **tiny) for m in METHODS]
        return experiment_work("baselines.mnmpg.experiment", runs), "baselines.mnmpg"
    if row == "ipd_focal":
        from baselines.ipd_focal import Args, train

        def work() -> None:
            with tempfile.TemporaryDirectory() as out:
                args = Args(out=out, peers=("tit_for_tat",), timesteps=1, horizon=4, n_envs=2)
                train(dataclasses.replace(args, eval_episodes=1))

        return work, "baselines.ipd_focal, stable_baselines3"
    raise ValueError(f"unknown row {row!r}; rows: {', '.join(ROWS)}")


def child(row: str) -> dict[str, Any]:
    """One row's run in this interpreter: import, then the work twice."""
    import logging

    start = time.perf_counter()
    if row in FAMILIES:
        import metaenvs.warmup  # noqa: F401

        make = family_work
    elif row.endswith("_wrapper"):
        import meta_wrappers.warmup  # noqa: F401

        make = wrapper_work
    else:
        import torch

        torch.set_num_threads(1)
        make = learner_work
    import numba

    from metaenvs.warmup import compile_log

    numba.set_num_threads(1)  # as the learners' runs (one thread per run)
    logging.getLogger("metaenvs").setLevel(logging.ERROR)
    work, imports = make(row)  # imports the learner's modules
    import_s = time.perf_counter() - start
    tick = time.perf_counter()
    with compile_log() as log:
        work()
    first_s = time.perf_counter() - tick
    tick = time.perf_counter()
    work()
    second_s = time.perf_counter() - tick
    return {
        "row": row,
        "imports": imports,
        "import_s": import_s,
        "first_s": first_s,
        "second_s": second_s,
        "startup_s": import_s + max(first_s - second_s, 0.0),
        "compile_s": log.seconds,
        "compiled": log.signatures,
        "dynamo_imported": "torch._dynamo" in sys.modules,
    }


# -- the parent: cold, warm, after warmup -------------------------------------------------
def child_env(cache: str) -> dict[str, str]:
    """The environment of a child: the cache folder, and the copy of ``src/``
    (:func:`snapshot`) first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    path = [SOURCE[0], env.get("PYTHONPATH", "")] if SOURCE else [env.get("PYTHONPATH", "")]
    return {**env, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": os.pathsep.join(filter(None, path))}


SOURCE: list[str] = []
"""The copy of ``src/`` the children import (set by :func:`snapshot`)."""


def snapshot(into: Path) -> None:
    """Copy ``src/`` (without caches) into ``into`` for the children to import: edits of
    the checkout during the run then change neither the code nor its cache keys."""
    shutil.copytree(
        ROOT / "src", into / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    SOURCE[:] = [str(into / "src")]


def run_python(args: list[str], cache: str, timeout: float, what: str) -> tuple[str, float]:
    """Stdout and seconds of ``python ARGS`` in a fresh interpreter on ``cache``."""
    tick = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=child_env(cache),
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{proc.stderr.strip()[-3000:]}")
    return proc.stdout, time.perf_counter() - tick


def run_child(row: str, cache: str, timeout: float) -> dict[str, Any]:
    """One row's timings in a fresh interpreter on ``cache``."""
    out, seconds = run_python([__file__, "--child", row], cache, timeout, row)
    result = json.loads(out.strip().splitlines()[-1])
    result["process_s"] = seconds
    return result


def run_warmup(ids: list[str], cache: str, timeout: float) -> float:
    """Seconds of ``metaenvs warmup IDS`` in a fresh interpreter on ``cache``."""
    code = "import sys; from metaenvs.cli import main; sys.exit(main(sys.argv[1:]))"
    args = ["-c", code, "warmup", *ids]
    return run_python(args, cache, timeout, f"metaenvs warmup {' '.join(ids)}")[1]


def warmup_ids(row: str) -> list[str]:
    if row in FAMILIES:
        return [FAMILIES[row]]
    if row.endswith("_wrapper"):
        return [WRAPPERS[row.removesuffix("_wrapper")]]
    return LEARNERS[row]


def measure(row: str, timeout: float) -> dict[str, Any]:
    out: dict[str, Any] = {"row": row}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as cache:
        out["cold"] = run_child(row, cache, timeout)
        out["warm"] = run_child(row, cache, timeout)
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as cache:
        out["warmup_s"] = run_warmup(warmup_ids(row), cache, timeout)
        out["after_warmup"] = run_child(row, cache, timeout)
    return out


def report_row(r: dict[str, Any]) -> None:
    """A progress line per row (and what compiled after the warm-up, if anything)."""
    cold, warm, after = r["cold"], r["warm"], r["after_warmup"]
    print(
        f"  {r['row']}: cold {cold['startup_s']:.1f} s, warm {warm['startup_s']:.1f} s, "
        f"after warmup {after['startup_s']:.1f} s ({len(after['compiled'])} kernels compiled, "
        f"torch._dynamo {'imported' if after['dynamo_imported'] else 'not imported'})",
        flush=True,
    )
    for signature in after["compiled"]:
        print(f"    compiled after warmup: {signature}", flush=True)


def load_line() -> str:
    """The machine's load when the run starts."""
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load unknown"
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def table(results: list[dict[str, Any]]) -> str:
    """Markdown table of :func:`measure` results."""
    head = (
        "| row | import s | cold: start-up s (compile s, kernels) | warm: start-up s "
        "| `metaenvs warmup` s | after warmup: start-up s (kernels) |"
    )
    lines = [head, "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        c, w, a = r["cold"], r["warm"], r["after_warmup"]
        lines.append(
            f"| {r['row']} | {w['import_s']:.1f} | {c['startup_s']:.1f} ({c['compile_s']:.1f}, "
            f"{len(c['compiled'])}) | {w['startup_s']:.1f} | {r['warmup_s']:.1f} | "
            f"{a['startup_s']:.1f} ({len(a['compiled'])}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows",
        nargs="+",
        default=ROWS,
        choices=ROWS,
        metavar="ROW",
        help=f"rows to run (default all: {' '.join(ROWS)})",
    )
    parser.add_argument("--child", choices=ROWS, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per interpreter")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for the JSON")
    ns = parser.parse_args(argv)
    if ns.child:
        print(json.dumps(child(ns.child)))
        return 0
    load = load_line()
    print(f"bench_startup: {load}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-startup-src-") as tree:
        snapshot(Path(tree))
        for row in ns.rows:
            results.append(measure(row, ns.timeout))
            report_row(results[-1])
    text = table(results)
    print(f"\n{text}\n\nmeasured with {load}")
    ns.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = ns.out / f"bench_startup-{stamp}.json"
    info = {"load": load, "python": sys.version.split()[0], "date": stamp}
    path.write_text(json.dumps({"machine": info, "rows": results}, indent=2) + "\n")
    print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
