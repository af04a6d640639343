"""What a learner module declares to run as an experiment: :class:`Experiment`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

Metrics = dict[str, float]


@dataclasses.dataclass
class RunState:
    """The loop's own counters, saved in the checkpoint beside the learner's state.

    Attributes
    ----------
    wall_s : float
        Seconds of training, evaluation and logging so far (resumes add to it).
    rows : list of dict
        The rows of ``metrics.csv``.
    best : dict or None
        With :attr:`Experiment.best_by`: ``{"x", "value", "learner"}`` of the best row.
    """

    wall_s: float = 0.0
    rows: list[Metrics] = dataclasses.field(default_factory=list)
    best: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What :attr:`Experiment.finish` gets once a run reached its budget."""

    experiment: Experiment
    args: Any
    run_dir: Path
    learner: Any
    state: RunState


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A learner as an experiment of ``metaenvs train NAME`` / ``metaenvs compare NAME``.

    The learner module holds its ``Args`` dataclass (every field a command-line flag whose
    help is the field's docstring), its learner and this declaration;
    :mod:`baselines.experiment` does the rest: the run loop (:func:`~.loop.run`), the
    command line (:func:`~.cli.main`) and the report (:func:`~.report.compare`).

    The learner needs ``state_dict()`` and ``load_state_dict(state)``; the other calls
    go through the hooks below.

    Attributes
    ----------
    name : str
        The experiment's name (its entry point in ``metaenvs.experiments``).
    description : str
        One line for ``--help``.
    args_cls : type
        The Args dataclass; its fields ``method`` and ``seed`` are set by ``--methods`` and
        ``--seeds``, every other field by ``--<field>``.
    make_learner : callable
        ``make_learner(args)``: a fresh learner.
    methods : sequence of str
        The values ``method`` takes, in the order figures and tables list them.
    group_field : str
        Args field naming the experiment's folder under ``--out`` (the env, game or map).
    budget_field : str
        Args field with the budget, in the units of :attr:`progress`.
    every_field : str
        Args field with the evaluation cadence, in the same units.
    x_column : str
        Column of ``metrics.csv`` holding :attr:`progress` (the x axis of the curves).
    progress : callable
        ``progress(learner)``: the budget used so far.
    counters : callable
        ``counters(learner)``: the first columns of a row (where the learner is).
    train : callable
        ``train(learner)``: one training iteration; returns its metrics.
    evaluate : callable
        ``evaluate(learner, args, row)``: the evaluation of row ``row`` of ``metrics.csv``.
    train_columns : sequence of str
        Metrics of :attr:`train` averaged over the iterations since the previous row.
    eval_columns : callable
        ``eval_columns(args)``: the keys :attr:`evaluate` returns.
    score : str
        The evaluation column that the summary and the curves report (higher is better).
    score_label : str
        Its name on the figures and in the tables.
    env_steps : callable, optional
        ``env_steps(learner)``; with it, rows carry ``env_steps_per_s``.
    rates : sequence of str
        Counters (keys of :attr:`counters`) whose rate per second of training since the
        previous row the rows also carry, as ``<counter>_per_s`` (e.g. ``td_steps``).
    cadence : {"multiples", "after"}
        Evaluate when :attr:`progress` crosses a multiple of the cadence, or when it is one
        cadence past the previous row.
    stop_at_evaluation : bool
        Train past the budget up to the next due evaluation (True), or stop at the budget
        and evaluate there (False).
    best_by : str, optional
        Keep the learner state of the row with the highest value of this column.
    run_label : callable
        ``run_label(args)``: the run's folder under the group (the method by default).
    finish : callable, optional
        ``finish(context)``, once a run reached its budget: a final test, per-run figures.
    report_hook : callable, optional
        ``report_hook(exp_dir, runs)`` during ``compare``: the paper's own tables and
        figures; returns the paths it wrote.
    final_rows : int
        The final score of a run is the mean of its last ``final_rows`` rows.
    resolve : callable, optional
        ``resolve(args)``: the args a run uses and saves (``config.json``, the checkpoint's
        stamp), e.g. with defaults that depend on other fields filled in; so two args that
        resolve alike are the same run.
    aliases : mapping
        Extra flags of a field, e.g. ``{"map_name": ("--map",)}``.
    score_bounds : tuple of float, optional
        The range of the score (a win rate: ``(0, 1)``); bands are clipped to it.
    tensorboard_x : {"progress", "env_steps"}
        The x axis of the TensorBoard events: the budget counter, or the env steps.
    env_ids : callable, optional
        ``env_ids(args)``: the registered ids a run plays; the runner compiles their
        kernels (:func:`metaenvs.warmup.warmup`) once before its first run.
    """

    name: str
    description: str
    args_cls: type
    make_learner: Callable[[Any], Any]
    methods: Sequence[str]
    group_field: str
    budget_field: str
    every_field: str
    x_column: str
    progress: Callable[[Any], int]
    counters: Callable[[Any], Metrics]
    train: Callable[[Any], Metrics]
    evaluate: Callable[[Any, Any, int], Metrics]
    train_columns: Sequence[str]
    eval_columns: Callable[[Any], Sequence[str]]
    score: str
    score_label: str
    env_steps: Callable[[Any], int] | None = None
    rates: Sequence[str] = ()
    cadence: str = "multiples"
    stop_at_evaluation: bool = False
    best_by: str | None = None
    run_label: Callable[[Any], str] = lambda args: args.method
    finish: Callable[[RunContext], None] | None = None
    report_hook: Callable[[Path, dict[str, list[Any]]], list[Path]] | None = None
    final_rows: int = 1
    resolve: Callable[[Any], Any] | None = None
    aliases: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    score_bounds: tuple[float, float] | None = None
    tensorboard_x: str = "progress"
    env_ids: Callable[[Any], Sequence[str]] | None = None

    def __post_init__(self) -> None:
        if self.cadence not in ("multiples", "after"):
            raise ValueError(f"cadence must be 'multiples' or 'after', got {self.cadence!r}")
        if self.tensorboard_x not in ("progress", "env_steps"):
            raise ValueError(
                f"tensorboard_x must be 'progress' or 'env_steps', got {self.tensorboard_x!r}"
            )
        names = {f.name for f in dataclasses.fields(self.args_cls)}
        for field in ("method", "seed", self.group_field, self.budget_field, self.every_field):
            if field not in names:
                raise ValueError(f"{self.args_cls.__name__} has no field {field!r}")

    def tb_step(self, learner: Any) -> int:
        """The x of the learner's TensorBoard events (:attr:`tensorboard_x`)."""
        if self.tensorboard_x == "env_steps" and self.env_steps is not None:
            return int(self.env_steps(learner))
        return int(self.progress(learner))

    def run(
        self,
        args: Any,
        out: str | Path,
        name: str | None = None,
        progress: bool = True,
        report: Callable[[Metrics], None] | None = None,
    ) -> Path:
        """Train one run of this experiment (:func:`baselines.experiment.loop.run`)."""
        from baselines.experiment.loop import run

        return run(self, args, out, name=name, progress=progress, report=report)

    def main(self, argv: Sequence[str] | None = None) -> int:
        """This experiment's command line (:func:`baselines.experiment.cli.main`)."""
        from baselines.experiment.cli import main

        return main(self, argv)

    def columns(self, args: Any, learner: Any) -> tuple[str, ...]:
        """The header of ``metrics.csv``."""
        return (
            *self.counters(learner),
            "wall_s",
            "env_steps_per_s",
            *(f"{name}_per_s" for name in self.rates),
            *self.train_columns,
            *self.eval_columns(args),
        )

    def run_directory(self, out: str | Path, args: Any, name: str | None = None) -> Path:
        """``out / (name or group) / run_label / seed<S>``: one run's folder."""
        group = name or str(getattr(args, self.group_field))
        return Path(out) / group / self.run_label(args) / f"seed{args.seed}"
