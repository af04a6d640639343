"""Time a learner of this checkout against the same learner of an older commit.

Shared by the learner benchmarks (``bench_peer_learner.py``, ``bench_comm_learner.py``):
:func:`export` writes ``src/`` of a commit into a folder with ``git archive``;
:func:`timer_script` writes the script that builds a learner and times its
``train_iteration``; :func:`time_tree` runs such a script in a fresh one-thread
interpreter (torch, Numba and BLAS threads 1) with a ``src/`` first on ``PYTHONPATH``;
:func:`alternate` times every tree ``rounds`` times, alternating, so that load drifting
over the run hits all alike.  Imported as a sibling module (the scripts' folder is on
``sys.path`` when they run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def learner_parser(
    doc: str, baseline: str, methods: list[str], iterations: int
) -> argparse.ArgumentParser:
    """The options every learner benchmark takes: ``--baseline``, ``--methods``,
    ``--rounds`` and ``--iterations``, with the script's defaults."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--baseline", default=baseline, help=f"git ref (default {baseline})")
    parser.add_argument("--methods", nargs="+", default=methods)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=iterations)
    return parser


def export(ref: str, into: Path) -> Path:
    """``src/`` of commit ``ref`` under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def timer_script(imports: str, build: str, warmup: int) -> str:
    """A script that runs ``imports``, builds ``learner = build`` from the JSON settings in
    ``argv[1]`` (``settings``; its ``"iterations"`` popped first), runs ``warmup`` untimed
    iterations, then prints the seconds of each timed one as JSON."""
    return f"""
import json, sys, time, torch
torch.set_num_threads(1)
{imports}
settings = json.loads(sys.argv[1])
n = settings.pop("iterations")
learner = {build}
for _ in range({warmup}):
    learner.train_iteration()
times = []
for _ in range(n):
    tick = time.perf_counter()
    learner.train_iteration()
    times.append(time.perf_counter() - tick)
print(json.dumps(times))
"""


def alternate(
    trees: dict[str, Path], timer: str, settings: dict[str, Any], rounds: int
) -> dict[str, list[float]]:
    """Seconds of every timed iteration of each tree, the trees taking turns ``rounds`` times."""
    times: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(rounds):
        for name, src in trees.items():
            times[name] += time_tree(src, timer, settings)
    return times


def time_tree(src: Path, timer: str, settings: Any) -> Any:
    """What ``timer`` (run as ``python -c timer SETTINGS_JSON``) prints as JSON on its last
    line, run on ``src`` (the learner timers print seconds per iteration)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(src),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMBA_NUM_THREADS": "1",
    }
    out = subprocess.run(
        [sys.executable, "-c", timer, json.dumps(settings)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def print_table(title: str, rows: list[dict[str, Any]], best: str, median: str, fmt: str) -> None:
    """The speed-up table: per row (a method) the baseline's and this tree's ``row[best]``
    and ``row[median]`` (dicts by tree name), formatted with ``fmt``, and the speed-up."""
    print(title)
    print(f"{'method':>10} {'baseline':>10} {'this tree':>10} {'speed-up':>9}  (best; median)")
    for r in rows:
        b, m = r[best], r[median]
        print(
            f"{r['method']:>10} {b['baseline']:>10{fmt}} {b['this tree']:>10{fmt}} "
            f"{r['speedup_best']:>8.2f}x  ({m['baseline']:{fmt}}; {m['this tree']:{fmt}})"
        )
