"""Neurons as agents: inner updates per second at B = 1 and B = 256, and the rules' loss curves.

Times, for ``neurons_teacher``, ``neurons_digits`` and ``neurons_digits_pca10``:

- the batched core with random actions made in advance (``metaenvs.bench.time_core``):
  inner updates/s = B x steps / s, one update of one network (apply the neurons' weight
  changes, draw a minibatch, the clean forward pass and the loss, the node and the weight
  perturbed passes, every neuron's observation; auto-resets inside the timed loop);
- the same with ``perturb="none"`` (the clean pass only);
- SGD through the env (``baselines.neurons.rules.SGD``: backpropagation, then the step).

The Numba compile (or cache load) of the first step is reported apart.  With ``--plot
PATH`` it also runs SGD, node and weight perturbation on student-teacher (``horizon``
1,000, 32 copies) and digits, and draws the mean minibatch loss against updates with a
band of one standard deviation over copies (the docs' figure).  Writes JSON to
``benchmarks/results/``.  A measurement, not a test: nothing asserts on time.

Usage::

    python benchmarks/bench_neurons.py            # about a minute on 2 idle cores
    python benchmarks/bench_neurons.py --quick
    python benchmarks/bench_neurons.py --plot docs/assets/neurons/rules.png
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

import metaenvs
from metaenvs import bench
from metaenvs.threads import get_num_threads

TASKS = ("neurons_teacher", "neurons_digits", "neurons_digits_pca10")
BATCHES = (1, 256)
PLOT_RATES = {"sgd": 0.1, "np": 0.005, "wp": 0.005}
"""SGD-equivalent rates of the figure (node and weight perturbation diverge above about
0.01 on these tasks; SGD is stable to 1)."""


def time_rule(env_id: str, batch: int, timing: bench.Timing) -> dict[str, Any]:
    """Inner updates/s of SGD acting through the env (gradient kernel + step)."""
    from baselines.neurons.rules import SGD

    core = metaenvs.make_core(env_id)
    state = core.reset(batch, 0)
    rule = SGD(lr=0.05)

    def run(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            core.step(state, rule(core, state))
        return time.perf_counter() - t0

    steps, times = timing.measure(run)
    return {"steps": steps, "updates_per_s": batch * steps / min(times)}


def plot(path: Path, quick: bool) -> dict[str, Any]:
    """Loss against updates for SGD, NP and WP on student-teacher and digits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from baselines.neurons.rules import RULES, run_rule

    horizon, batch = (200, 8) if quick else (1000, 32)
    tasks = {"neurons_teacher": "student-teacher (MSE)", "neurons_digits": "digits (cross-entropy)"}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    summary: dict[str, Any] = {}
    for ax, (env_id, title) in zip(axes, tasks.items()):
        core = metaenvs.make_core(env_id, horizon=horizon)
        for name, lr in PLOT_RATES.items():
            rule = RULES[name](lr=lr)
            out = run_rule(core, rule, batch, seed=0)
            loss = out["loss"][0]  # (T + 1, B)
            mean, std = loss.mean(axis=1), loss.std(axis=1)
            steps = np.arange(len(mean))
            label = f"{name.upper()} (lr {lr})"
            ax.plot(steps, mean, label=label)
            ax.fill_between(steps, np.maximum(mean - std, 1e-4), mean + std, alpha=0.2)
            summary[f"{env_id}/{name}"] = {
                "lr": lr,
                "start_loss": float(mean[0]),
                "final_test_loss": float(out["test_loss"].mean()),
                "final_test_accuracy": float(out["test_accuracy"].mean())
                if "test_accuracy" in out
                else None,
                "clipped_actions": rule.clipped,
            }
        ax.set_yscale("log")
        ax.set_xlabel("inner updates")
        ax.set_ylabel("minibatch loss")
        ax.set_title(f"{title}, {batch} networks")
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short timed runs")
    parser.add_argument("--plot", type=Path, help="draw the rules' loss curves to this PNG")
    parser.add_argument("--no-timing", action="store_true", help="only the plot")
    args = parser.parse_args()
    timing = bench.Timing(seconds=0.05, repeats=2) if args.quick else bench.Timing(repeats=3)
    results: dict[str, Any] = {"machine": bench.machine_info(), "threads": get_num_threads()}
    rows = []
    if not args.no_timing:
        for env_id in TASKS:
            for batch in BATCHES:
                full = bench.time_core(env_id, batch, timing=timing)
                clean = bench.time_core(env_id, batch, timing=timing, perturb="none")
                sgd = time_rule(env_id, batch, timing)
                rows.append(
                    (env_id, batch, full["copy_steps_per_s"], clean["copy_steps_per_s"],
                     sgd["updates_per_s"], full["compile_s"])
                )  # fmt: skip
                results[f"{env_id}/B{batch}"] = {"core": full, "no_perturb": clean, "sgd": sgd}
        print(
            "| id | B | updates/s, random actions | without perturbations | SGD through the env"
            " | first step (compile or cache) |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for env_id, batch, full, clean, sgd, compile_s in rows:
            print(
                f"| {env_id} | {batch} | {bench.format_rate(full)} | {bench.format_rate(clean)} "
                f"| {bench.format_rate(sgd)} | {compile_s:.2f} s |"
            )
    if args.plot:
        results["curves"] = plot(args.plot, args.quick)
        for key, value in results["curves"].items():
            print(key, json.dumps(value))
    name = "bench_neurons" + ("-quick" if args.quick else "")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = Path(__file__).resolve().parent / "results"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}-{stamp}.json").write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
