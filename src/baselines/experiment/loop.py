"""The one run loop: seeded runs that evaluate on a cadence, checkpoint and resume exactly.

One run trains one ``(args.method, args.seed)`` and keeps everything in its folder::

    OUT/GROUP/LABEL/seedS/
        config.json             the args, as they read back from JSON
        metrics.csv             one row per evaluation (Experiment.columns)
        checkpoint.pt           learner state, loop counters (and the best state)
        checkpoint.pt.sha256    its SHA-256, checked before a resume loads it (weights-only)
        tb/                     TensorBoard events (train metrics every iteration, rows)

A run that finds a checkpoint resumes from it, so an interrupted run, or one rerun with a
larger budget, continues where it stopped; another config in the same folder is an error.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from baselines._runs import (
    append_row,
    check_saved_config,
    mean_or_nan,
    read_checkpoint,
    save_checkpoint,
    summary_writer,
    write_rows,
)
from baselines.experiment.spec import Experiment, Metrics, RunContext, RunState


def run_config(args: Any) -> dict[str, Any]:
    """``args`` as it reads back from ``config.json`` (tuples as lists)."""
    return json.loads(json.dumps(dataclasses.asdict(args)))


def check_run_config(
    experiment: Experiment, args: Any, out: str | Path, name: str | None = None
) -> tuple[Any, Path]:
    """The resolved args and the run's folder; raise
    :class:`~baselines._runs.ConfigMismatchError` if the folder holds another config (the
    budget aside)."""
    if experiment.resolve is not None:
        args = experiment.resolve(args)
    run_dir = experiment.run_directory(out, args, name)
    check_saved_config(run_dir / "config.json", run_config(args),
                       {experiment.budget_field}, "use another --out or --name")  # fmt: skip
    return args, run_dir


def run(
    experiment: Experiment,
    args: Any,
    out: str | Path,
    name: str | None = None,
    progress: bool = True,
    report: Callable[[Metrics], None] | None = None,
) -> Path:
    """Train one seed to its budget, evaluating, logging and checkpointing; resume if possible.

    Evaluates before training (row 0), when :attr:`Experiment.cadence` says a row is due,
    and at the budget; each evaluation appends a row to ``metrics.csv``, logs it to
    TensorBoard and rewrites ``checkpoint.pt`` atomically.  Then
    :attr:`Experiment.finish` runs (also for a run that had already finished).

    Parameters
    ----------
    experiment : Experiment
        What the learner declares.
    args : dataclass
        One run's args (``experiment.args_cls``).
    out : str or Path
        Root of the run folders (:meth:`Experiment.run_directory`).
    name : str, optional
        The folder under ``out``; the args' group field by default.
    progress : bool
        Show a tqdm bar over the budget with the last score.
    report : callable, optional
        Called with every new row (and ``method``, ``seed``, ``budget``, and with
        :attr:`Experiment.best_by` ``best`` and ``best_x``, the best value so far and its
        row's x): for a caller that shows progress itself.

    Returns
    -------
    Path
        The run folder.

    Raises
    ------
    ConfigMismatchError
        The folder holds a run with another config (the budget aside).
    CheckpointError
        Its ``checkpoint.pt`` fails verification; raised before anything is trained or
        written.

    Notes
    -----
    ``metrics.csv``: the counters, ``wall_s`` (seconds of this run's training, evaluation
    and logging so far; time between resumes does not count), ``env_steps_per_s`` (env
    steps since the previous row per second spent training), the train metrics averaged
    since the previous row (NaN in row 0) and the evaluation.  A killed run loses at most
    the iterations since its last row; TensorBoard events past the checkpoint are purged
    when it resumes.
    """
    args, run_dir = check_run_config(experiment, args, out, name)
    budget = getattr(args, experiment.budget_field)
    every = getattr(args, experiment.every_field)
    if every < 1:
        raise ValueError(f"{experiment.every_field} must be >= 1, got {every}")
    config = run_config(args)
    budget_keys = {experiment.budget_field}
    checkpoint = read_checkpoint(run_dir / "checkpoint.pt", config, budget=budget_keys)
    learner = experiment.make_learner(args)
    state = RunState()
    if checkpoint is not None:
        learner.load_state_dict(checkpoint["learner"])
        saved = checkpoint["runner"]
        state = RunState(float(saved["wall_s"]), list(saved["rows"]), checkpoint.get("best"))
        _check_resumed(experiment, learner, state.rows[-1])
    del checkpoint
    loop = _Loop(experiment, args, run_dir, learner, state, config, report)
    if not loop.done():
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        write_rows(run_dir / "metrics.csv", state.rows, loop.header)
        purge = experiment.tb_step(learner) if state.rows else None
        loop.writer = summary_writer(run_dir / "tb", purge_step=purge)
        loop.bar = _progress_bar(experiment, args, budget, learner, progress)
        try:
            loop.run()
        finally:
            loop.bar.close()
            loop.writer.close()
    if experiment.finish is not None:
        experiment.finish(RunContext(experiment, args, run_dir, learner, state))
    return run_dir


def warm_kernels(
    experiment: Experiment, runs: Sequence[Any], report: Callable[[str], None] | None = print
) -> list[Any]:
    """Compile (or load from Numba's cache) the kernels of every run's ids, once.

    The runner calls this in the parent before its first run (and before it starts any
    worker), so the runs load the kernels from the cache instead of each compiling them,
    and a run's ``wall_s`` does not count compiles.  What is already warm in this process
    is not warmed again.

    Parameters
    ----------
    experiment : Experiment
        Its :attr:`~Experiment.env_ids` names the ids (nothing is done without them).
    runs : sequence of args
        The args of the runs to come.
    report : callable, optional
        Gets a one-line summary.

    Returns
    -------
    list of WarmupResult
        The tasks run (empty when there was nothing to do).
    """
    if experiment.env_ids is None or not runs:
        return []
    from metaenvs.warmup import warmup

    ids = list(dict.fromkeys(i for args in runs for i in experiment.env_ids(args)))
    tick = time.perf_counter()
    try:
        results = warmup(ids, again=False)
    except Exception as err:  # an optimisation only: the runs compile what they need
        warnings.warn(
            f"warming up the kernels of {', '.join(ids)} failed ({type(err).__name__}: "
            f"{err}); the runs compile their kernels themselves",
            RuntimeWarning,
            stacklevel=2,
        )
        return []
    if results and report is not None:
        compiled = sum(len(r.compiled) for r in results)
        how = f"{compiled} kernel signatures compiled" if compiled else "all from the cache"
        report(f"kernels of {', '.join(ids)}: {how} ({time.perf_counter() - tick:.1f} s)")
    return results


@dataclasses.dataclass
class _Loop:
    """Train, and evaluate when due, until the budget."""

    experiment: Experiment
    args: Any
    run_dir: Path
    learner: Any
    state: RunState
    config: dict[str, Any]
    report: Callable[[Metrics], None] | None
    writer: Any = None
    bar: Any = None
    window: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    train_s: float = 0.0

    @property
    def header(self) -> tuple[str, ...]:
        return self.experiment.columns(self.args, self.learner)

    def done(self) -> bool:
        """The budget is reached and evaluated (and, with ``stop_at_evaluation``, the last
        evaluation is at or past it)."""
        rows, exp = self.state.rows, self.experiment
        if not rows:
            return False
        budget = getattr(self.args, exp.budget_field)
        return rows[-1][exp.x_column] >= budget

    def due(self) -> bool:
        exp, at = self.experiment, self.experiment.progress(self.learner)
        last = self.state.rows[-1][exp.x_column]
        every = getattr(self.args, exp.every_field)
        if exp.cadence == "after":
            due = at >= last + every
        else:
            due = at // every > last // every
        if exp.stop_at_evaluation:
            return due
        return due or at >= getattr(self.args, exp.budget_field)

    def run(self) -> None:
        start = time.perf_counter() - self.state.wall_s
        if not self.state.rows:
            self.evaluate(start)
        while not self.done():
            before = self.experiment.progress(self.learner)
            self.train()
            after = self.experiment.progress(self.learner)
            if after <= before:
                raise RuntimeError(f"a training iteration did not advance the progress ({before})")
            budget = getattr(self.args, self.experiment.budget_field)
            self.bar.update(min(after, budget) - min(before, budget))
            if self.due():
                self.evaluate(start)

    def train(self) -> None:
        tick = time.perf_counter()
        metrics = self.experiment.train(self.learner)
        self.train_s += time.perf_counter() - tick
        for key in self.experiment.train_columns:
            self.window.setdefault(key, []).append(float(metrics.get(key, float("nan"))))
        x = self.experiment.tb_step(self.learner)
        for key, value in metrics.items():
            self.writer.add_scalar(f"train/{key}", float(value), x)

    def evaluate(self, start: float) -> None:
        """Evaluate, append the row and log it, then write the checkpoint."""
        exp, learner, state = self.experiment, self.learner, self.state
        result = exp.evaluate(learner, self.args, len(state.rows))
        wall_s = time.perf_counter() - start
        row: Metrics = dict(exp.counters(learner))
        row["wall_s"] = wall_s
        row["env_steps_per_s"] = self._env_steps_per_s()
        for name in exp.rates:
            row[f"{name}_per_s"] = self._rate(name, row[name])
        row.update({k: mean_or_nan(self.window.get(k, [])) for k in exp.train_columns})
        missing = [c for c in exp.eval_columns(self.args) if c not in result]
        if missing:
            raise RuntimeError(f"evaluate returned no {missing}")
        row.update({c: float(result[c]) for c in exp.eval_columns(self.args)})
        state.rows.append(row)
        state.wall_s = wall_s
        self.window, self.train_s = {}, 0.0
        if exp.best_by is not None and (
            state.best is None or row[exp.best_by] > state.best["value"]
        ):
            state.best = {
                "x": row[exp.x_column],
                "value": row[exp.best_by],
                "learner": copy.deepcopy(learner.state_dict()),
            }
        append_row(self.run_dir / "metrics.csv", row, self.header)
        x = exp.tb_step(learner)
        for key, value in row.items():
            self.writer.add_scalar(f"eval/{key}", float(value), x)
        self.writer.flush()
        payload = {
            "learner": learner.state_dict(),
            "runner": {"wall_s": state.wall_s, "rows": list(state.rows)},
            "best": state.best,
        }
        save_checkpoint(self.run_dir / "checkpoint.pt", payload, self.config)
        self.bar.set_postfix({exp.score: f"{row[exp.score]:.4g}"})
        if self.report is not None:
            budget = getattr(self.args, exp.budget_field)
            best = state.best or {}
            self.report({**row, "method": self.args.method, "seed": self.args.seed,
                         "budget": budget, "best": best.get("value"),
                         "best_x": best.get("x")})  # fmt: skip

    def _rate(self, name: str, value: float) -> float:
        """Counter ``name`` at ``value`` less the previous row's, per second of training."""
        if not self.state.rows or self.train_s <= 0:
            return float("nan")
        return (value - self.state.rows[-1][name]) / self.train_s

    def _env_steps_per_s(self) -> float:
        exp, rows = self.experiment, self.state.rows
        if exp.env_steps is None or not rows or "env_steps" not in rows[-1]:
            return float("nan")
        return self._rate("env_steps", exp.env_steps(self.learner))


def _check_resumed(experiment: Experiment, learner: Any, last_row: Metrics) -> None:
    """The loaded learner must be where the checkpoint's last row says it was."""
    at = {experiment.x_column: experiment.progress(learner)}
    if experiment.env_steps is not None and "env_steps" in last_row:
        at["env_steps"] = experiment.env_steps(learner)
    if any(value != last_row[key] for key, value in at.items()):
        raise RuntimeError(f"checkpoint inconsistent: learner at {at}, last row {last_row}")


def _progress_bar(experiment: Experiment, args: Any, budget: int, learner: Any, on: bool) -> Any:
    from tqdm import tqdm

    label = experiment.run_label(args)
    group = getattr(args, experiment.group_field)
    return tqdm(
        total=budget,
        initial=min(experiment.progress(learner), budget),
        unit=experiment.x_column,
        desc=f"{group} {label} seed{args.seed}",
        disable=not on,
        dynamic_ncols=True,
    )
