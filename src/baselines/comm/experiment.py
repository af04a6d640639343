"""The communication-topology learners as an experiment (comm-topology-meta-gradient).

``metaenvs train comm --env navigation_N3_l3 --methods meta none full --seeds 0 1 2``
trains one run per (method, seed) of :class:`~baselines.comm.learner.CommLearner` with
:mod:`baselines.experiment` into ``OUT/<env>/<method>/seed<S>/`` (``metrics.csv``: episodes
and env steps done, the eval reward and messages per agent per step of the policy without
exploration noise, the train reward and messages since the previous evaluation;
``reward.png``).  Every :class:`~baselines.comm.learner.CommArgs` field is a flag
(``--updates-per-episode 0.5``).  ``metaenvs compare comm OUT/<env>`` writes the generic
``summary.md`` and ``curves.png``, and the paper's ``compare.png`` and ``bandwidth.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from baselines._runs import figure, write_rows
from baselines.comm.learner import METHODS, CommArgs, CommLearner
from baselines.experiment import Experiment, RunContext
from baselines.experiment import main as experiment_main
from baselines.experiment.report import RunResult, read_metrics

EVAL_SEED0 = 10_000
"""Evaluation ``i`` (row ``i`` of ``metrics.csv``) uses seed ``EVAL_SEED0 + i`` in every run."""
FINAL_ROWS = 3
"""The final eval reward of a seed is the mean of its last ``FINAL_ROWS`` evaluations."""
TRAIN_COLUMNS = ("train_reward", "messages")
"""The learner's iteration metrics kept in ``metrics.csv`` (all go to TensorBoard)."""
BANDWIDTH_COLUMNS = ("method", "seeds", "final_eval_reward_mean", "final_eval_reward_std",
                     "final_messages", "wall_min", "env_steps_per_s", "env_steps")  # fmt: skip
"""Columns of ``bandwidth.csv``, the table of the docs (docs/wrappers/comm.md)."""


def evaluate(learner: CommLearner, args: CommArgs, row: int) -> dict[str, float]:
    """``args.eval_episodes`` episodes without exploration noise, seeded by the row."""
    return learner.evaluate(args.eval_episodes, EVAL_SEED0 + row)


def plot_run(context: RunContext) -> None:
    """``reward.png``: eval reward and the mean train reward between evaluations."""
    m, args = read_metrics(context.run_dir / "metrics.csv"), context.args
    fig = figure(6.4, 4.0)
    ax = fig.subplots()
    ax.plot(m["env_steps"] / 1e6, m["eval_reward"], "o-", ms=3, label="eval reward")
    ax.plot(m["env_steps"] / 1e6, m["train_reward"], "-", alpha=0.7, label="train reward")
    ax.set(xlabel=r"environment steps ($\times 10^6$)", ylabel="episodic reward",
           title=f"{args.env}: {args.method}, seed {args.seed}")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(context.run_dir / "reward.png", dpi=120)


def report(exp_dir: Path, runs: dict[str, list[RunResult]]) -> list[Path]:
    """The paper's figure and table: ``compare.png`` and ``bandwidth.csv`` / ``.md``."""
    paths = [exp_dir / "compare.png", exp_dir / "bandwidth.csv", exp_dir / "bandwidth.md"]
    plot_compare(runs, paths[0], exp_dir.name)
    table = [bandwidth(label, [r.metrics for r in seeds]) for label, seeds in runs.items()]
    write_rows(paths[1], table, BANDWIDTH_COLUMNS)
    paths[2].write_text(bandwidth_markdown(table))
    return paths


def bandwidth(method: str, seeds: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    """One row of :data:`BANDWIDTH_COLUMNS`: the final eval reward (per seed the mean of its
    last ``FINAL_ROWS`` evaluations) as mean and std (ddof 0) over seeds, the messages per
    agent per step of the same evaluations, and per-seed means of wall-clock minutes,
    training env steps/s (evaluations excluded) and final env steps."""
    finals = [float(np.mean(s["eval_reward"][-FINAL_ROWS:])) for s in seeds]
    messages = [float(np.mean(s["eval_messages"][-FINAL_ROWS:])) for s in seeds]
    speeds = [v for v in map(_throughput, seeds) if np.isfinite(v)]
    return {
        "method": method,
        "seeds": len(seeds),
        "final_eval_reward_mean": float(np.mean(finals)),
        "final_eval_reward_std": float(np.std(finals)),
        "final_messages": float(np.mean(messages)),
        "wall_min": float(np.mean([s["wall_s"][-1] / 60 for s in seeds])),
        "env_steps_per_s": float(np.mean(speeds)) if speeds else float("nan"),
        "env_steps": float(np.mean([s["env_steps"][-1] for s in seeds])),
    }


def _throughput(seed: dict[str, np.ndarray]) -> float:
    """Training env steps per second of training time of one seed (rows weighted by steps)."""
    steps, rates = np.diff(seed["env_steps"]), seed["env_steps_per_s"][1:]
    ok = np.isfinite(rates) & (rates > 0) & (steps > 0)
    seconds = float(np.sum(steps[ok] / rates[ok]))
    return float(np.sum(steps[ok]) / seconds) if seconds > 0 else float("nan")


def bandwidth_markdown(table: Sequence[dict[str, Any]]) -> str:
    """The table as Markdown with a one-line legend below it."""
    lines = [
        "| method | seeds | final eval reward | messages / agent / step "
        "| wall-clock / seed (min) | env steps/s | env steps |",
        "|:--|--:|--:|--:|--:|--:|--:|",
    ]
    for s in table:
        lines.append(
            f"| {s['method']} | {s['seeds']} "
            f"| {s['final_eval_reward_mean']:.2f} ± {s['final_eval_reward_std']:.2f} "
            f"| {s['final_messages']:.3f} | {s['wall_min']:.1f} "
            f"| {s['env_steps_per_s']:,.0f} | {s['env_steps']:,.0f} |"
        )
    lines += ["", f"Final eval reward: per seed the mean of its last {FINAL_ROWS} evaluations, "
              "then mean ± std over seeds (summary.md gives the 95% interval); messages from "
              "the same evaluations; env steps/s excludes evaluation time."]  # fmt: skip
    return "\n".join(lines) + "\n"


def plot_compare(runs: dict[str, list[RunResult]], path: Path, env: str) -> None:
    """One line per method against env steps: mean eval reward over seeds, band min-max.

    Seeds are interpolated onto the union of their evaluation steps, cut at the shortest
    one.  A method keeps its colour (its place in ``METHODS``) whichever are plotted.
    """
    fig = figure(6.4, 4.4)
    ax = fig.subplots()
    used: set[int] = set()
    for method, seeds in runs.items():
        x, ys = _align([r.metrics for r in seeds])
        rank = METHODS.index(method) if method in METHODS else len(METHODS)
        while rank in used:  # names outside METHODS share a rank: give each its own colour
            rank += 1
        used.add(rank)
        label = f"{method} ({len(seeds)} seed{'s' if len(seeds) > 1 else ''})"
        ax.plot(x / 1e6, ys.mean(axis=0), color=f"C{rank % 10}", lw=1.8, label=label)
        ax.fill_between(x / 1e6, ys.min(axis=0), ys.max(axis=0), color=f"C{rank % 10}",
                        alpha=0.2, lw=0)  # fmt: skip
    ax.set(xlabel=r"environment steps ($\times 10^6$)", ylabel="evaluation reward",
           title=f"{env}: mean over seeds, band min-max")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=150)


def _align(seeds: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Eval rewards of every seed on the shared env-step grid: ``x`` and ``(seeds, len(x))``."""
    lo = max(s["env_steps"][0] for s in seeds)
    hi = min(s["env_steps"][-1] for s in seeds)
    x = np.unique(np.concatenate([s["env_steps"] for s in seeds]))
    x = x[(x >= lo) & (x <= hi)]
    return x, np.stack([np.interp(x, s["env_steps"], s["eval_reward"]) for s in seeds])


EXPERIMENT = Experiment(
    name="comm",
    description="Learning whom to communicate with on particle tasks "
    "(comm-topology-meta-gradient).",
    args_cls=CommArgs,
    make_learner=CommLearner,
    methods=METHODS,
    group_field="env",
    budget_field="episodes",
    every_field="eval_every",
    x_column="episodes",
    progress=lambda learner: learner.episodes_done,
    counters=lambda learner: {"episodes": learner.episodes_done, "env_steps": learner.env_steps},
    train=lambda learner: learner.train_iteration(),
    evaluate=evaluate,
    train_columns=TRAIN_COLUMNS,
    eval_columns=lambda args: ("eval_reward", "eval_messages"),
    score="eval_reward",
    score_label="eval reward",
    env_steps=lambda learner: learner.env_steps,
    cadence="multiples",
    finish=plot_run,
    report_hook=report,
    final_rows=FINAL_ROWS,
    tensorboard_x="env_steps",  # as the paper's curves
    env_ids=lambda args: [args.env],
)


def main(argv: Sequence[str] | None = None) -> int:
    """``metaenvs train comm ...`` / ``metaenvs compare comm DIR``."""
    return experiment_main(EXPERIMENT, argv)


if __name__ == "__main__":
    raise SystemExit(main())
