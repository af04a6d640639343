"""VDN, QMIX and MNMPG on Skirmish maps as an experiment (mnmpg-exercise-moves, Figure 2).

``metaenvs train mnmpg --map 3m --methods vdn qmix mnmpg --seeds 0 1 2 --env-steps 200000``
trains one run per (method, seed) with :mod:`baselines.experiment` into
``OUT/<map>/<label or method>/seed<S>/`` (``metrics.csv``: env steps, episodes, TD steps,
epsilon, env steps and TD steps per second of training, the test win rate, draw rate and
return of the greedy policy on fixed battles, and the training return, win rate, TD loss
and meta-reward since the previous test; ``win_rate.png``);
``metaenvs compare mnmpg OUT/<map>`` tabulates and plots the test win rate over seeds.
An ablation is a run with a ``--label``: ``--label mnmpg_no_grad --td-grad false``.
"""

from __future__ import annotations

from collections.abc import Sequence

from baselines._runs import figure
from baselines.experiment import Experiment, RunContext
from baselines.experiment import main as experiment_main
from baselines.experiment.report import read_metrics
from baselines.mnmpg.learner import METHODS, MixArgs, MixingLearner

EVAL_SEED = 10**9
"""Test battles are seeded from here: every test of every run meets the same battles."""
TRAIN = {"return": "train_return", "win_rate": "train_win_rate", "td_loss": "td_loss",
         "meta_reward": "meta_reward"}  # fmt: skip
"""The learner's iteration metrics and their columns in ``metrics.csv``."""


def train(learner: MixingLearner) -> dict[str, float]:
    """One iteration (a batch of episodes, TD steps, meta-steps when due)."""
    out = learner.iteration()
    return {column: out[key] for key, column in TRAIN.items() if key in out}


def evaluate(learner: MixingLearner, args: MixArgs, row: int) -> dict[str, float]:
    """The greedy policy on ``args.eval_episodes`` fixed battles."""
    test = learner.evaluate(args.eval_episodes, seed=EVAL_SEED)
    return {"test_win_rate": test["win_rate"], "test_draw_rate": test["draw_rate"],
            "test_return": test["return"]}  # fmt: skip


def plot_run(context: RunContext) -> None:
    """``win_rate.png``: the test win rate of one run against env steps."""
    m = read_metrics(context.run_dir / "metrics.csv")
    args = context.args
    fig = figure(5, 3.2)
    ax = fig.add_subplot()
    ax.plot(m["env_steps"], m["test_win_rate"], marker=".")
    ax.set(xlabel="env steps", ylabel="test win rate", ylim=(-0.02, 1.02),
           title=f"{args.map_name} {args.label or args.method}, seed {args.seed}")  # fmt: skip
    fig.tight_layout()
    fig.savefig(context.run_dir / "win_rate.png", dpi=110)


EXPERIMENT = Experiment(
    name="mnmpg",
    description="VDN / QMIX / MNMPG on Skirmish maps (mnmpg-exercise-moves).",
    args_cls=MixArgs,
    make_learner=MixingLearner,
    methods=METHODS,
    group_field="map_name",
    budget_field="env_steps",
    every_field="eval_every",
    x_column="env_steps",
    progress=lambda learner: learner.env_steps,
    counters=lambda learner: {
        "env_steps": learner.env_steps,
        "episodes": learner.episodes_seen,
        "td_steps": learner.td_steps,
        "epsilon": learner.epsilon,
    },
    rates=("td_steps",),
    train=train,
    evaluate=evaluate,
    train_columns=tuple(TRAIN.values()),
    eval_columns=lambda args: ("test_win_rate", "test_draw_rate", "test_return"),
    score="test_win_rate",
    score_label="test win rate",
    env_steps=lambda learner: learner.env_steps,
    cadence="after",
    stop_at_evaluation=True,
    run_label=lambda args: args.label or args.method,
    finish=plot_run,
    aliases={"map_name": ("--map",)},
    score_bounds=(0.0, 1.0),
    env_ids=lambda args: ["skirmish"],  # every map runs the same kernels
)


def main(argv: Sequence[str] | None = None) -> int:
    """``metaenvs train mnmpg ...`` / ``metaenvs compare mnmpg DIR``."""
    return experiment_main(EXPERIMENT, argv)


if __name__ == "__main__":
    raise SystemExit(main())
