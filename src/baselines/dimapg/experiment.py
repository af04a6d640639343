"""DiMA-PG and its baselines as an experiment (dima-pg-distributed).

``metaenvs train dimapg --env navigation_dimapg_N3 --methods dimapg finetune --seeds 0 1 2
--iterations 50`` trains one run per (method, seed) of
:class:`~baselines.dimapg.learner.DimaLearner` with :mod:`baselines.experiment` into
``OUT/<env>/<method>/seed<S>/`` (``metrics.csv``: iterations, episodes and env steps
done, the train metrics since the previous evaluation, and the evaluation: the minimum
over agents of the episode reward with theta and after the k-step adaptation, the mean
over agents, and per population when there are several; ``reward.png``).  Every
:class:`~baselines.dimapg.learner.DimaArgs` field is a flag (``--inner-steps 1``).
``metaenvs compare dimapg OUT/<env>`` writes the generic ``summary.md`` and
``curves.png``, and the paper's Table 1 beside ours (``table1.md``) and
``adaptation.png`` (theta and theta_n per method); on Survival also its Table 2
(``table2.md``: food left, survivors, reward per agent).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import metaenvs
from baselines._runs import figure, mean_ci95
from baselines.dimapg.learner import METHODS, DimaArgs, DimaLearner, population_of
from baselines.experiment import Experiment, RunContext
from baselines.experiment import main as experiment_main
from baselines.experiment.report import RunResult, plus_minus, read_metrics

EVAL_SEED0 = 10_000
"""Evaluation ``i`` (row ``i`` of ``metrics.csv``) uses seed ``EVAL_SEED0 + i`` in every run."""
FINAL_ROWS = 3
"""The final numbers of a seed are the mean of its last ``FINAL_ROWS`` evaluations."""
TRAIN_COLUMNS = (
    "train_focal_pre",
    "train_focal_post",
    "train_min_reward",
    "train_mean_reward",
    "train_central_kl",
    "train_backtracks",
    "train_surrogate_gain",
)
"""Iteration metrics kept in ``metrics.csv`` (NaN for a method that does not report one)."""
PAPER_TABLE1 = {
    "navigation_dimapg_N3": {"theta": -34.8, "adapted": -37.19, "finetune": -44.17},
    "navigation_dimapg_N10": {"theta": -8.0, "adapted": -8.5, "finetune": -56.3},
}
"""Table 1 of the paper: min. reward across all agents after training (100 episodes)."""
PAPER_TABLE2 = {
    "survival_N230": {"food_left": 0, "survivors": 227, "average_reward": 946},
    "survival_N630": {"food_left": 0, "survivors": 490, "average_reward": 674},
}
"""Table 2 of the paper: DiMA-PG on Survival after training (100 games); its "average
reward" is not defined in the paper (see docs/envs/survival.md)."""


@functools.cache
def populations(env: str, how: str) -> tuple[str, ...]:
    """The env's population names (one central policy each)."""
    return tuple(population_of(metaenvs.make_core(env).agent_names, how)[0])


@functools.cache
def episode_info(env: str) -> tuple[str, ...]:
    """The env's per-episode end counts (:attr:`~metaenvs.core.BatchedCore.episode_info`)."""
    return tuple(metaenvs.make_core(env).episode_info)


def eval_columns(args: DimaArgs) -> tuple[str, ...]:
    """What :meth:`DimaLearner.evaluate` returns for these args, in ``metrics.csv`` order."""
    pops = populations(args.env, args.populations)
    per_pop = [f"eval_{p}_{{}}" for p in pops] if len(pops) > 1 else []
    cols = []
    for label in ("theta", "adapted"):
        cols += [f"eval_min_{label}", f"eval_mean_{label}"] + [c.format(label) for c in per_pop]
        cols += [f"eval_{key}_{label}" for key in episode_info(args.env)]
    return tuple(cols)


def evaluate(learner: DimaLearner, args: DimaArgs, row: int) -> dict[str, float]:
    """``args.eval_episodes`` episodes, seeded by the row."""
    return learner.evaluate(args.eval_episodes, EVAL_SEED0 + row)


def plot_run(context: RunContext) -> None:
    """``reward.png``: min reward over agents with theta and with theta_n."""
    m, args = read_metrics(context.run_dir / "metrics.csv"), context.args
    fig = figure(6.4, 4.0)
    ax = fig.subplots()
    ax.plot(m["env_steps"] / 1e6, m["eval_min_theta"], "o-", ms=3, label="with theta")
    if np.isfinite(m["eval_min_adapted"]).any():
        ax.plot(m["env_steps"] / 1e6, m["eval_min_adapted"], "s--", ms=3, label="with theta_n")
    ax.set(xlabel=r"environment steps ($\times 10^6$)", ylabel="min reward over agents",
           title=f"{args.env}: {args.method}, seed {args.seed}")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(context.run_dir / "reward.png", dpi=120)


def final(seeds: list[RunResult], column: str) -> tuple[float, float]:
    """Mean and 95% half-width over seeds of each seed's last ``FINAL_ROWS`` values."""
    values = [float(np.mean(r.metrics[column][-FINAL_ROWS:])) for r in seeds]
    mean, ci = mean_ci95(values)
    return float(mean), float(ci)


def table1(env: str, runs: dict[str, list[RunResult]]) -> str:
    """Table 1 as Markdown: our final min reward with theta and theta_n per method, the
    paper's numbers beside them where it has them."""
    paper = PAPER_TABLE1.get(env, {})
    rows = [
        "| method | seeds | min reward, theta | min reward, theta_n | paper |",
        "|:--|--:|--:|--:|:--|",
    ]
    for method, seeds in runs.items():
        cells = []
        for column in ("eval_min_theta", "eval_min_adapted"):
            mean, ci = final(seeds, column)
            cells.append("n/a" if not np.isfinite(mean) else plus_minus(mean, ci, 2))
        note = "n/a"
        if method == "dimapg" and paper:
            note = f"theta {paper['theta']}, theta_n {paper['adapted']}"
        elif method == "finetune" and paper:
            note = f"fine tune {paper['finetune']}"
        rows.append(f"| {method} | {len(seeds)} | {cells[0]} | {cells[1]} | {note} |")
    measure = ("each evaluation is the minimum over agents of the episode reward, averaged "
               "over the evaluation episodes.")  # fmt: skip
    return "\n".join([*rows, "", _footnote(measure, "Table 1")]) + "\n"


def table2(env: str, runs: dict[str, list[RunResult]]) -> str:
    """Table 2 as Markdown: our final food left, survivors and mean episode reward per
    agent with theta, the paper's numbers beside them where it has them."""
    paper = PAPER_TABLE2.get(env)
    rows = [
        "| method | seeds | food left | survivors | reward per agent | paper |",
        "|:--|--:|--:|--:|--:|:--|",
    ]
    for method, seeds in runs.items():
        cells = [plus_minus(*final(seeds, f"eval_{key}_theta"), 2)
                 for key in ("food_left", "survivors", "mean")]  # fmt: skip
        note = "n/a"
        if method == "dimapg" and paper:
            note = (f"food left {paper['food_left']}, survivors {paper['survivors']}, "
                    f"\"average reward\" {paper['average_reward']}")  # fmt: skip
        rows.append(f"| {method} | {len(seeds)} | {' | '.join(cells)} | {note} |")
    measure = ("food left and survivors at each evaluation episode's end, the reward summed "
               "over the episode and averaged over agents.")  # fmt: skip
    return "\n".join([*rows, "", _footnote(measure, "Table 2")]) + "\n"


def _footnote(measure: str, table: str) -> str:
    return (f"Final: per seed the mean of its last {FINAL_ROWS} evaluations, then mean ± 95% "
            f"t half-width over seeds; {measure}  The paper's numbers are after its full "
            f"training (its {table}).")  # fmt: skip


def plot_adaptation(runs: dict[str, list[RunResult]], path: Path, env: str) -> None:
    """Min reward with theta (solid) and theta_n (dashed) against env steps, per method:
    mean over seeds, band min-max over seeds."""
    fig = figure(6.4, 4.4)
    ax = fig.subplots()
    for i, (method, seeds) in enumerate(runs.items()):
        n = min(len(r.metrics["env_steps"]) for r in seeds)
        x = np.mean([r.metrics["env_steps"][:n] for r in seeds], axis=0) / 1e6
        for column, style, what in (("eval_min_theta", "-", "theta"),
                                    ("eval_min_adapted", "--", "theta_n")):  # fmt: skip
            ys = np.array([r.metrics[column][:n] for r in seeds])
            if not np.isfinite(ys).any():
                continue
            ax.plot(x, ys.mean(0), style, color=f"C{i % 10}", label=f"{method}, {what}")
            ax.fill_between(x, ys.min(0), ys.max(0), color=f"C{i % 10}", alpha=0.15, lw=0)
    seeds = max(len(s) for s in runs.values())
    iterations = max(int(r.metrics["iteration"][-1]) for s in runs.values() for r in s)
    steps = max(float(r.metrics["env_steps"][-1]) for s in runs.values() for r in s)
    budget = f"budget per run: up to {iterations} iterations, {steps / 1e6:.1f}M env steps"
    ax.set(xlabel=r"environment steps ($\times 10^6$)", ylabel="min reward over agents",
           title=f"{env}: mean over {seeds} seed(s), band min-max\n{budget}")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=150)


def report(exp_dir: Path, runs: dict[str, list[RunResult]]) -> list[Path]:
    """The paper's Table 1 beside ours (``table1.md``) and ``adaptation.png``."""
    env = exp_dir.name
    for seeds in runs.values():
        env = str(seeds[0].config.get("env", env))
        break
    paths = [exp_dir / "table1.md", exp_dir / "adaptation.png"]
    paths[0].write_text(f"# {env}: Table 1\n\n" + table1(env, runs))
    plot_adaptation(runs, paths[1], env)
    if "food_left" in episode_info(env):
        paths.append(exp_dir / "table2.md")
        paths[-1].write_text(f"# {env}: Table 2\n\n" + table2(env, runs))
    return paths


EXPERIMENT = Experiment(
    name="dimapg",
    description="DiMA-PG: one central policy for many agents (dima-pg-distributed).",
    args_cls=DimaArgs,
    make_learner=DimaLearner,
    methods=METHODS,
    group_field="env",
    budget_field="iterations",
    every_field="eval_every",
    x_column="iteration",
    progress=lambda learner: learner.iteration,
    counters=lambda learner: {
        "iteration": learner.iteration,
        "episodes": learner.episodes,
        "env_steps": learner.env_steps,
    },
    train=lambda learner: learner.train_iteration(),
    evaluate=evaluate,
    train_columns=TRAIN_COLUMNS,
    eval_columns=eval_columns,
    score="eval_min_theta",
    score_label="min reward over agents (theta)",
    env_steps=lambda learner: learner.env_steps,
    cadence="multiples",
    finish=plot_run,
    report_hook=report,
    final_rows=FINAL_ROWS,
    tensorboard_x="env_steps",
    env_ids=lambda args: [args.env],
)


def main(argv: Sequence[str] | None = None) -> int:
    """``metaenvs train dimapg ...`` / ``metaenvs compare dimapg DIR``."""
    return experiment_main(EXPERIMENT, argv)


if __name__ == "__main__":
    raise SystemExit(main())
