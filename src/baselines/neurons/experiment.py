"""Neurons as agents as an experiment: a learned rule against SGD, NP and WP (neurons-as-agents).

``metaenvs train neurons --env neurons_teacher --methods ppo sgd np wp none --seeds 0 1 2
--iterations 300`` trains one run per (method, seed) of
:class:`~baselines.neurons.ppo.NeuronLearner` with :mod:`baselines.experiment` into
``OUT/<env>/<method>/seed<S>/``.  ``ppo`` meta-trains the shared rule; the reference rules
(``sgd``, ``np``, ``wp``) and ``none`` (zero actions) do not train, their iterations only
count, so that every method is evaluated at the same iterations.  ``metrics.csv``: the
iteration and the inner updates of meta-training done, the PPO metrics since the previous
evaluation, and the evaluation on ``eval_networks`` held-out inner runs of ``horizon``
updates (teachers and initial weights from seeds ``EVAL_SEED + seed``, disjoint from
training; on digits the held-out test split): the final held-out loss, the mean minibatch
loss over the run (and the held-out accuracy on digits).  The score is minus the held-out
loss (higher is better).  A finished run writes ``loss_curve.csv``: its final rule's
held-out and minibatch loss after every inner update on the same held-out runs.
``metaenvs compare neurons OUT/<env>`` writes the generic ``summary.md`` and
``curves.png``, ``updates.png`` (held-out loss against inner updates, every method) and
``rules.md`` (the final held-out loss with its 95% interval over seeds).
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import metaenvs
from baselines._runs import figure, mean_ci95, write_rows
from baselines.experiment import Experiment, RunContext
from baselines.experiment import main as experiment_main
from baselines.experiment.report import RunResult, plus_minus
from baselines.neurons.ppo import EVAL_SEED, METHODS, NeuronArgs, NeuronLearner

FINAL_ROWS = 1
"""The final score of a seed is its last evaluation (the same held-out runs every row)."""
TRAIN_COLUMNS = ("train_loss", "train_test_loss", "log_std", "approx_kl", "clip_fraction",
                 "value_loss", "explained_variance", "init_fit")  # fmt: skip
"""PPO's iteration metrics kept in ``metrics.csv`` (NaN for the reference rules;
``init_fit``: the R^2 of ``--init np``'s fit to node perturbation, NaN without it)."""
CURVE_COLUMNS = ("update", "test_loss", "test_loss_sd", "loss", "loss_sd")
"""Columns of ``loss_curve.csv`` (means and standard deviations over held-out runs)."""


def eval_seed(args: NeuronArgs) -> int:
    """Seed of the run's held-out networks: the same at every row and for every method of
    one seed (paired comparisons), another for each seed."""
    return EVAL_SEED + args.seed


@functools.cache
def _classifies(env: str) -> bool:
    return metaenvs.make_core(env).config.task == "digits"


def eval_columns(args: NeuronArgs) -> tuple[str, ...]:
    """What :meth:`NeuronLearner.evaluate` returns on this env, in ``metrics.csv`` order."""
    accuracy = ("eval_test_accuracy",) if _classifies(args.env) else ()
    return ("eval_test_loss", "eval_mean_loss", *accuracy, "eval_score")


def evaluate(learner: NeuronLearner, args: NeuronArgs, row: int) -> dict[str, float]:
    """The rule on the run's held-out networks (every row the same ones)."""
    return learner.evaluate(args.eval_networks, eval_seed(args))


def write_curve(context: RunContext) -> None:
    """``loss_curve.csv``: the final rule's losses after every inner update."""
    args = context.args
    curve = context.learner.loss_curve(args.eval_networks, eval_seed(args))
    rows = [
        {
            "update": t,
            "test_loss": float(curve["test_loss"][t].mean()),
            "test_loss_sd": float(curve["test_loss"][t].std()),
            "loss": float(curve["loss"][t].mean()),
            "loss_sd": float(curve["loss"][t].std()),
        }
        for t in range(len(curve["loss"]))
    ]
    write_rows(context.run_dir / "loss_curve.csv", rows, CURVE_COLUMNS)


def read_curve(seed_dir: Path) -> dict[str, np.ndarray] | None:
    """A run's ``loss_curve.csv`` as arrays, or None if it has none."""
    path = seed_dir / "loss_curve.csv"
    if not path.exists():
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {c: np.array([float(r[c]) for r in rows]) for c in CURVE_COLUMNS}


def plot_updates(runs: dict[str, list[RunResult]], path: Path, title: str) -> int:
    """Held-out loss against inner updates of every method's final rule: mean over seeds
    and 95% t band; returns the number of curves drawn."""
    fig = figure(6.4, 4.2)
    ax = fig.subplots()
    drawn = 0
    for method, seeds in runs.items():
        curves = [c for c in (read_curve(r.seed_dir) for r in seeds) if c is not None]
        if not curves:
            continue
        n = min(len(c["update"]) for c in curves)
        mean, ci = mean_ci95([c["test_loss"][:n] for c in curves])
        rank = METHODS.index(method) if method in METHODS else len(METHODS)
        colour = f"C{rank % 10}"
        ax.plot(curves[0]["update"][:n], mean, color=colour,
                label=f"{method} ({len(curves)} seed{'s' if len(curves) > 1 else ''})")  # fmt: skip
        if len(curves) > 1:
            ax.fill_between(curves[0]["update"][:n], mean - ci, mean + ci, color=colour,
                            alpha=0.2, lw=0)  # fmt: skip
        drawn += 1
    ax.set(xlabel="inner updates", ylabel="held-out loss", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    return drawn


def rules_markdown(runs: dict[str, list[RunResult]], env: str) -> str:
    """The final held-out loss and mean loss over the run per method, mean ± 95% t
    half-width over seeds, with the meta-training budget."""
    lines = [
        f"# {env}: the rules on held-out inner runs",
        "",
        "| method | seeds | iterations | held-out loss after the run | mean loss over the run "
        "| wall-clock / run (min) |",
        "|:--|--:|--:|--:|--:|--:|",
    ]
    for method, seeds in runs.items():
        final = mean_ci95([r.metrics["eval_test_loss"][-1] for r in seeds])
        area = mean_ci95([r.metrics["eval_mean_loss"][-1] for r in seeds])
        iterations = int(min(r.metrics["iteration"][-1] for r in seeds))
        wall = np.mean([r.metrics["wall_s"][-1] for r in seeds]) / 60
        lines.append(
            f"| {method} | {len(seeds)} | {iterations} | {plus_minus(*map(float, final))} "
            f"| {plus_minus(*map(float, area))} | {wall:.2f} |"
        )
    lines += ["", "Per seed the last evaluation (its held-out runs: seeds from "
              f"{EVAL_SEED:,} + seed, disjoint from training); mean ± half-width of the 95% t "
              "interval over seeds. The reference rules and none do not train."]  # fmt: skip
    return "\n".join(lines) + "\n"


def report(exp_dir: Path, runs: dict[str, list[RunResult]]) -> list[Path]:
    """``updates.png`` (the four rules' loss against inner updates) and ``rules.md``."""
    env = next(iter(runs.values()))[0].config.get("env", exp_dir.name)
    paths = [exp_dir / "rules.md", exp_dir / "updates.png"]
    paths[0].write_text(rules_markdown(runs, env))
    seeds = max(len(s) for s in runs.values())
    band = "mean and 95% t band over seeds" if seeds > 1 else "one seed"
    plot_updates(runs, paths[1], f"{env}: each run's final rule on held-out runs\n({band})")
    return paths


EXPERIMENT = Experiment(
    name="neurons",
    description="Neurons as agents: a learned rule (PPO) against SGD, node and weight "
    "perturbation (neurons-as-agents).",
    args_cls=NeuronArgs,
    make_learner=NeuronLearner,
    methods=METHODS,
    group_field="env",
    budget_field="iterations",
    every_field="eval_every",
    x_column="iteration",
    progress=lambda learner: learner.iteration,
    counters=lambda learner: {"iteration": learner.iteration, "env_steps": learner.env_steps},
    train=lambda learner: learner.train_iteration(),
    evaluate=evaluate,
    train_columns=TRAIN_COLUMNS,
    eval_columns=eval_columns,
    score="eval_score",
    score_label="minus held-out loss",
    env_steps=lambda learner: learner.env_steps,
    cadence="multiples",
    finish=write_curve,
    report_hook=report,
    final_rows=FINAL_ROWS,
    env_ids=lambda args: [args.env],
)


def main(argv: Sequence[str] | None = None) -> int:
    """``metaenvs train neurons ...`` / ``metaenvs compare neurons DIR``."""
    return experiment_main(EXPERIMENT, argv)


if __name__ == "__main__":
    raise SystemExit(main())
