"""Experiment runner of the communication-topology learners (:mod:`baselines.comm.learner`).

One run trains one ``(env, method, seed)`` and keeps everything in its own directory::

    OUT/ENV/METHOD/seedS/
        config.json      the resolved CommArgs
        metrics.csv      one row per evaluation (COLUMNS)
        checkpoint.pt    learner state and runner counters after the last evaluation
        checkpoint.pt.sha256   its SHA-256, checked before a resume loads it (weights-only)
        tb/              TensorBoard events (every iteration's scalars, x = env steps)
        reward.png       eval and train reward against env steps

A run that finds a checkpoint resumes from it, so an interrupted run, or one rerun with a
larger ``episodes`` budget, continues where it stopped.  :func:`compare` then plots every
method of one env on one figure and writes a summary table::

    python -m baselines.comm.runner train --env navigation_N3_l3 --methods meta none full
    python -m baselines.comm.runner compare --env navigation_N3_l3
    metaenvs train comm --env navigation_N3_l3 --method meta --seeds 3   # the same, by plugin
    metaenvs compare comm --env navigation_N3_l3
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from baselines._runs import (
    ConfigMismatchError,
    append_row,
    check_saved_config,
    figure,
    mean_or_nan,
    one_thread_per_run,
    parse_value,
    read_checkpoint,
    save_checkpoint,
    seed_number,
    summary_writer,
    write_rows,
)

COLUMNS = (
    "episodes",
    "env_steps",
    "wall_s",
    "train_reward",
    "messages",
    "eval_reward",
    "eval_messages",
    "env_steps_per_s",
)
"""Columns of ``metrics.csv``, one row per evaluation."""
EVAL_SEED0 = 10_000
"""Evaluation ``i`` (row ``i`` of ``metrics.csv``) uses seed ``EVAL_SEED0 + i`` in every run."""
FINAL_ROWS = 3
"""The final eval reward of a seed is the mean of its last ``FINAL_ROWS`` evaluations."""
SUMMARY_COLUMNS = (
    "method",
    "seeds",
    "final_eval_reward_mean",
    "final_eval_reward_std",
    "final_messages",
    "wall_min",
    "env_steps_per_s",
    "env_steps",
)
_OWN_OPTIONS = {
    "env": "--env",
    "method": "--method/--methods",
    "seed": "--seed0/--seeds",
    "episodes": "--episodes",
    "eval_every": "--eval-every",
}


# -- the learner (imported lazily: it brings torch; tests replace these three) -----------
def make_args() -> Any:
    """The default :class:`~baselines.comm.learner.CommArgs`."""
    from baselines.comm.learner import CommArgs

    return CommArgs()


def make_learner(args: Any) -> Any:
    """A :class:`~baselines.comm.learner.CommLearner` for ``args``."""
    from baselines.comm.learner import CommLearner

    return CommLearner(args)


def known_methods() -> tuple[str, ...]:
    """The learner's ``METHODS``, in the order figures and tables list them."""
    from baselines.comm.learner import METHODS

    return tuple(METHODS)


# -- one run ---------------------------------------------------------------------------
def run_directory(out: str | Path, args: Any) -> Path:
    """``out / env / method / seed{seed}``, the directory of one run."""
    return Path(out) / args.env / args.method / f"seed{args.seed}"


def check_config(run_dir: Path, args: Any) -> None:
    """Raise if ``run_dir/config.json`` exists and differs from ``args`` (``episodes`` aside).

    Raises
    ------
    ConfigMismatchError
        Naming every differing field with its saved and its requested value.
    """
    check_saved_config(
        run_dir / "config.json",
        _config(args),
        budget={"episodes"},
        hint="use another --out or delete the run directory",
    )


def run(args: Any, out: str | Path, progress: bool = True) -> Path:
    """Train one seed, evaluating, logging and checkpointing as it goes; resume if possible.

    Evaluates before training (row 0), every time ``episodes_done`` crosses a multiple of
    ``args.eval_every``, and at the end; writes a row of ``metrics.csv`` and
    ``checkpoint.pt`` after each evaluation.  The learner may overshoot ``args.episodes``
    by less than one iteration's episodes.

    Parameters
    ----------
    args : CommArgs
        Any frozen dataclass with ``env``, ``method``, ``seed``, ``episodes``,
        ``eval_every`` and ``eval_episodes`` works (the learner is :func:`make_learner`'s).
    out : str or Path
        Root of the run directories (see :func:`run_directory`).
    progress : bool
        Show a tqdm bar over episodes with the last eval reward.

    Returns
    -------
    Path
        The run directory.

    Raises
    ------
    ConfigMismatchError
        The run directory already holds a run with another config (``episodes`` aside).
    CheckpointError
        Its ``checkpoint.pt`` fails verification (see :func:`~baselines._runs.read_checkpoint`);
        raised before anything is trained or written.

    Notes
    -----
    ``metrics.csv`` columns: ``episodes`` and ``env_steps`` done; ``wall_s``, seconds of
    this run's training, evaluation and logging so far (resumes add to it, time between
    them does not count); ``train_reward`` and ``messages``, means of the iterations since
    the previous row (NaN in row 0); ``eval_reward`` and ``eval_messages`` of
    ``learner.evaluate(eval_episodes, EVAL_SEED0 + row)``; ``env_steps_per_s``, env steps
    since the previous row per second spent in ``train_iteration``.  A killed run loses at
    most the iterations since its last evaluation; TensorBoard events past the checkpoint
    are purged when it resumes.
    """
    if args.eval_every < 1:
        raise ValueError(f"eval_every must be >= 1, got {args.eval_every}")
    run_dir = run_directory(out, args)
    check_config(run_dir, args)
    checkpoint = read_checkpoint(run_dir / "checkpoint.pt", _config(args), budget={"episodes"})
    rows: list[dict[str, float]] = checkpoint["runner"]["rows"] if checkpoint else []
    if rows and rows[-1]["episodes"] >= args.episodes:
        return run_dir
    learner = make_learner(args)
    wall_s = 0.0
    if checkpoint:
        learner.load_state_dict(checkpoint["learner"])
        wall_s = float(checkpoint["runner"]["wall_s"])
        _check_resumed(learner, rows[-1])
    del checkpoint
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(_config(args), indent=2) + "\n")
    _write_metrics(run_dir / "metrics.csv", rows)
    writer = summary_writer(run_dir / "tb", purge_step=learner.env_steps if rows else None)
    bar = _progress_bar(args, learner.episodes_done, progress, rows)
    try:
        _Loop(learner, args, run_dir, _RunState(wall_s, rows), writer, bar).run()
    finally:
        bar.close()
        writer.close()
    plot_run(rows, run_dir / "reward.png", f"{args.env}: {args.method}, seed {args.seed}")
    return run_dir


@dataclasses.dataclass
class _RunState:
    """The runner's own counters, saved in the checkpoint next to the learner's state."""

    wall_s: float
    rows: list[dict[str, float]]


@dataclasses.dataclass
class _Window:
    """What the iterations since the last evaluation reported."""

    train_rewards: list[float] = dataclasses.field(default_factory=list)
    messages: list[float] = dataclasses.field(default_factory=list)
    train_s: float = 0.0


@dataclasses.dataclass
class _Loop:
    """The loop of :func:`run`: train, and evaluate when due, until ``args.episodes``."""

    learner: Any
    args: Any
    run_dir: Path
    state: _RunState
    writer: Any
    bar: Any
    window: _Window = dataclasses.field(default_factory=_Window)

    def run(self) -> None:
        learner, args = self.learner, self.args
        start = time.perf_counter() - self.state.wall_s
        if not self.state.rows:
            self.evaluate(start)
        while learner.episodes_done < args.episodes:
            before = learner.episodes_done
            self.train_iteration()
            if learner.episodes_done <= before:
                raise RuntimeError("train_iteration did not advance episodes_done")
            self.bar.update(learner.episodes_done - before)
            last = int(self.state.rows[-1]["episodes"])
            due = learner.episodes_done // args.eval_every > last // args.eval_every
            if due or learner.episodes_done >= args.episodes:
                self.evaluate(start)

    def train_iteration(self) -> None:
        tick = time.perf_counter()
        metrics = self.learner.train_iteration()
        self.window.train_s += time.perf_counter() - tick
        self.window.train_rewards.append(float(metrics["train_reward"]))
        self.window.messages.append(float(metrics["messages"]))
        for key, value in metrics.items():
            self.writer.add_scalar(f"train/{key}", float(value), self.learner.env_steps)

    def evaluate(self, start: float) -> None:
        """Evaluate, append the row to ``metrics.csv`` and log it, then write the checkpoint.

        ``wall_s`` of the row counts from ``start`` to the end of this evaluation.
        """
        learner, state, window = self.learner, self.state, self.window
        result = learner.evaluate(self.args.eval_episodes, EVAL_SEED0 + len(state.rows))
        wall_s = time.perf_counter() - start
        steps = learner.env_steps - (int(state.rows[-1]["env_steps"]) if state.rows else 0)
        row = {
            "episodes": int(learner.episodes_done),
            "env_steps": int(learner.env_steps),
            "wall_s": wall_s,
            "train_reward": mean_or_nan(window.train_rewards),
            "messages": mean_or_nan(window.messages),
            "eval_reward": float(result["eval_reward"]),
            "eval_messages": float(result["eval_messages"]),
            "env_steps_per_s": steps / window.train_s if window.train_s > 0 else float("nan"),
        }
        state.rows.append(row)
        state.wall_s = wall_s
        self.window = _Window()
        _append_metrics(self.run_dir / "metrics.csv", row)
        x = learner.env_steps
        for key, value in result.items():
            self.writer.add_scalar(f"eval/{key}", float(value), x)
        self.writer.add_scalar("perf/env_steps_per_s", row["env_steps_per_s"], x)
        self.writer.add_scalar("perf/wall_s", wall_s, x)
        self.writer.flush()
        _write_checkpoint(self.run_dir / "checkpoint.pt", learner, state, self.args)
        self.bar.set_postfix(eval_reward=f"{row['eval_reward']:.4g}")


def _check_resumed(learner: Any, last_row: dict[str, float]) -> None:
    """The loaded learner must be where the checkpoint's last row says it was."""
    if learner.episodes_done != last_row["episodes"] or learner.env_steps != last_row["env_steps"]:
        raise RuntimeError(
            f"checkpoint inconsistent: learner at episode {learner.episodes_done}, "
            f"env step {learner.env_steps}, runner at row {last_row}"
        )


def _config(args: Any) -> dict[str, Any]:
    """``args`` as it reads back from JSON (tuples as lists)."""
    return json.loads(json.dumps(dataclasses.asdict(args)))


# -- files -----------------------------------------------------------------------------
def _write_checkpoint(path: Path, learner: Any, state: _RunState, args: Any) -> None:
    payload = {
        "learner": learner.state_dict(),
        "runner": {"wall_s": state.wall_s, "rows": list(state.rows)},
    }
    save_checkpoint(path, payload, _config(args))


def _write_metrics(path: Path, rows: Sequence[dict[str, float]]) -> None:
    write_rows(path, rows, COLUMNS)


def _append_metrics(path: Path, row: dict[str, float]) -> None:
    append_row(path, row, COLUMNS)


def read_metrics(path: str | Path) -> dict[str, np.ndarray]:
    """The columns of one ``metrics.csv`` as float arrays (empty ones if it has no rows)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {c: np.array([float(r[c]) for r in rows], dtype=float) for c in COLUMNS}


def _progress_bar(args: Any, done: int, progress: bool, rows: list[dict[str, float]]) -> Any:
    from tqdm import tqdm

    bar = tqdm(
        total=args.episodes,
        initial=done,
        unit="ep",
        desc=f"{args.env} {args.method} seed{args.seed}",
        disable=not progress,
        dynamic_ncols=True,
    )
    if rows:
        bar.set_postfix(eval_reward=f"{rows[-1]['eval_reward']:.4g}")
    return bar


# -- figures and tables ----------------------------------------------------------------
def plot_run(rows: Sequence[dict[str, float]], path: Path, title: str) -> None:
    """Eval reward and the mean train reward between evaluations against env steps."""
    steps = np.array([r["env_steps"] for r in rows], dtype=float) / 1e6
    fig = figure(6.4, 4.0)
    ax = fig.subplots()
    ax.plot(steps, [r["eval_reward"] for r in rows], "o-", ms=3, label="eval reward")
    ax.plot(steps, [r["train_reward"] for r in rows], "-", alpha=0.7, label="train reward")
    ax.set_xlabel(r"environment steps ($\times 10^6$)")
    ax.set_ylabel("episodic reward")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def compare(
    out: str | Path,
    env: str,
    methods: Sequence[str] | None = None,
    png: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Plot every method's eval reward over seeds, and tabulate the final results.

    Reads ``out/env/<method>/seed*/metrics.csv``.  The figure shows, per method, the mean
    eval reward over seeds with a min-max band against env steps; seeds are interpolated
    onto the union of their evaluation steps and cut at the shortest seed.

    Parameters
    ----------
    out : str or Path
        The ``out`` the runs were trained with.
    env : str
        The env whose runs are compared.
    methods : sequence of str, optional
        Methods to include, in this order; by default every method directory found, in the
        learner's ``METHODS`` order.  Methods without runs are skipped.
    png : str or Path, optional
        The figure; ``out/env/compare.png`` by default.

    Returns
    -------
    list of dict
        One dict per method with ``SUMMARY_COLUMNS``: seeds; the final eval reward (per
        seed the mean of its last ``FINAL_ROWS`` evaluations) as mean and std (ddof 0) over
        seeds; the final eval messages per agent per step (same rows, mean over seeds);
        wall-clock minutes per seed; training env steps/s; final env steps (means over
        seeds).  Also written to ``out/env/summary.csv`` and ``out/env/summary.md``.

    Raises
    ------
    FileNotFoundError
        No method has a run with at least one evaluation.
    """
    env_dir = Path(out) / env
    runs = _load_runs(env_dir, methods)
    if not runs:
        raise FileNotFoundError(f"no runs with metrics under {env_dir}/<method>/seed*/")
    summary = [_summarize(method, seeds) for method, seeds in runs.items()]
    plot_compare(runs, Path(png) if png is not None else env_dir / "compare.png", env)
    with open(env_dir / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        writer.writerows(summary)
    (env_dir / "summary.md").write_text(summary_markdown(summary))
    return summary


def _method_rank(method: str) -> int:
    """Position of ``method`` in the learner's METHODS (its colour); unknown ones after."""
    try:
        order = list(known_methods())
    except ImportError:  # compare works without the learner's dependencies
        order = []
    return order.index(method) if method in order else len(order)


def _method_order(found: Sequence[str]) -> list[str]:
    """``found`` in the learner's METHODS order, unknown names after, alphabetically."""
    return sorted(found, key=lambda m: (_method_rank(m), m))


def _load_runs(env_dir: Path, methods: Sequence[str] | None) -> dict[str, list[dict]]:
    """``{method: [metrics of each seed]}``; seeds without evaluations are left out."""
    if methods is None:
        found = [p.name for p in env_dir.iterdir() if p.is_dir()] if env_dir.is_dir() else []
        methods = _method_order(found)
    runs: dict[str, list[dict[str, np.ndarray]]] = {}
    for method in methods:
        paths = sorted((env_dir / method).glob("seed*/metrics.csv"), key=seed_number)
        seeds = [m for m in map(read_metrics, paths) if len(m["episodes"])]
        if seeds:
            runs[method] = seeds
    return runs


def _summarize(method: str, seeds: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    finals = [float(np.mean(s["eval_reward"][-FINAL_ROWS:])) for s in seeds]
    messages = [float(np.mean(s["eval_messages"][-FINAL_ROWS:])) for s in seeds]
    return {
        "method": method,
        "seeds": len(seeds),
        "final_eval_reward_mean": float(np.mean(finals)),
        "final_eval_reward_std": float(np.std(finals)),
        "final_messages": float(np.mean(messages)),
        "wall_min": float(np.mean([s["wall_s"][-1] / 60 for s in seeds])),
        "env_steps_per_s": _nanmean([_throughput(s) for s in seeds]),
        "env_steps": float(np.mean([s["env_steps"][-1] for s in seeds])),
    }


def _throughput(seed: dict[str, np.ndarray]) -> float:
    """Training env steps per second of training time (evaluations excluded) of one seed."""
    steps = np.diff(seed["env_steps"])
    rates = seed["env_steps_per_s"][1:]
    ok = np.isfinite(rates) & (rates > 0) & (steps > 0)
    seconds = float(np.sum(steps[ok] / rates[ok]))
    return float(np.sum(steps[ok]) / seconds) if seconds > 0 else float("nan")


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def summary_markdown(summary: Sequence[dict[str, Any]]) -> str:
    """The summary as a Markdown table with a one-line legend below it."""
    lines = [
        "| method | seeds | final eval reward | messages / agent / step "
        "| wall-clock / seed (min) | env steps/s | env steps |",
        "|:--|--:|--:|--:|--:|--:|--:|",
    ]
    for s in summary:
        lines.append(
            f"| {s['method']} | {s['seeds']} "
            f"| {s['final_eval_reward_mean']:.2f} ± {s['final_eval_reward_std']:.2f} "
            f"| {s['final_messages']:.3f} | {s['wall_min']:.1f} "
            f"| {s['env_steps_per_s']:,.0f} | {s['env_steps']:,.0f} |"
        )
    lines.append("")
    lines.append(
        f"Final eval reward: per seed the mean of its last {FINAL_ROWS} evaluations, then "
        "mean ± std over seeds; messages from the same evaluations; env steps/s excludes "
        "evaluation time."
    )
    return "\n".join(lines) + "\n"


def _align(seeds: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Eval rewards of every seed on the shared env-step grid: ``x`` and ``(seeds, len(x))``."""
    lo = max(s["env_steps"][0] for s in seeds)
    hi = min(s["env_steps"][-1] for s in seeds)
    x = np.unique(np.concatenate([s["env_steps"] for s in seeds]))
    x = x[(x >= lo) & (x <= hi)]
    ys = np.stack([np.interp(x, s["env_steps"], s["eval_reward"]) for s in seeds])
    return x, ys


def plot_compare(runs: dict[str, list[dict[str, np.ndarray]]], path: Path, env: str) -> None:
    """One line per method: mean eval reward over seeds, band from min to max.

    A method keeps its colour (its place in METHODS) whichever methods are plotted.
    """
    fig = figure(6.4, 4.4)
    ax = fig.subplots()
    used: set[int] = set()
    for method, seeds in runs.items():
        x, ys = _align(seeds)
        rank = _method_rank(method)
        while rank in used:  # names outside METHODS share a rank: give each its own colour
            rank += 1
        used.add(rank)
        color = f"C{rank % 10}"
        label = f"{method} ({len(seeds)} seed{'s' if len(seeds) > 1 else ''})"
        ax.plot(x / 1e6, ys.mean(axis=0), color=color, lw=1.8, label=label)
        ax.fill_between(x / 1e6, ys.min(axis=0), ys.max(axis=0), color=color, alpha=0.2, lw=0)
    ax.set_xlabel(r"environment steps ($\times 10^6$)")
    ax.set_ylabel("evaluation reward")
    ax.set_title(f"{env}: mean over seeds, band min-max")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)


# -- command line ----------------------------------------------------------------------
def parse_overrides(base: Any, items: Sequence[str]) -> dict[str, Any]:
    """``{field: value}`` from ``key=value`` strings, each value parsed by its field's type.

    Raises
    ------
    ValueError
        A malformed item, an unknown field (the message lists the valid ones), or a field
        that has its own option.
    """
    names = [f.name for f in dataclasses.fields(base)]
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise ValueError(f"--set expects key=value, got {item!r}")
        if key in _OWN_OPTIONS and key in names:
            raise ValueError(f"set {key} with {_OWN_OPTIONS[key]}, not --set")
        if key not in names:
            valid = ", ".join(n for n in names if n not in _OWN_OPTIONS)
            raise ValueError(f"unknown field {key!r} in --set; valid fields: {valid}")
        try:
            out[key] = parse_value(text, getattr(base, key))
        except ValueError as err:
            raise ValueError(f"--set {item}: {err}") from None
    return out


def build_parser() -> argparse.ArgumentParser:
    """The parser of :func:`main`: subcommands ``train`` and ``compare``."""
    parser = argparse.ArgumentParser(
        prog="baselines.comm.runner",
        description="Train and compare the communication-topology learners.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("train", help="train methods x seeds, one run after the other")
    p.add_argument("--env", help="particle task id (default: CommArgs' default)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--method", help="one method (default: CommArgs' default, meta)")
    which.add_argument("--methods", nargs="+", metavar="METHOD", help="several methods")
    p.add_argument("--seeds", type=int, default=3, help="seeds per method (default 3)")
    p.add_argument("--seed0", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--episodes", type=int, help="training episodes per run")
    p.add_argument("--eval-every", type=int, help="episodes between evaluations")
    p.add_argument("--out", default="runs/comm", help="root of the runs (default runs/comm)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads per run (default 1: run seeds in parallel processes instead)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any other CommArgs field (repeatable)",
    )
    p = sub.add_parser("compare", help="figure and summary table of the runs of one env")
    p.add_argument("--env", help="particle task id (default: CommArgs' default)")
    p.add_argument("--out", default="runs/comm", help="root of the runs (default runs/comm)")
    p.add_argument("--png", type=Path, help="figure path (default OUT/ENV/compare.png)")
    p.add_argument("--methods", nargs="+", metavar="METHOD", help="methods (default: all)")
    return parser


def _train_args(ns: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Any]:
    """Every run's args, built (and so validated) before the first one starts."""
    base = make_args()
    methods = ns.methods or [ns.method or base.method]
    valid = known_methods()
    unknown = [m for m in methods if m not in valid]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    if ns.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {ns.seeds}")
    try:
        changes = parse_overrides(base, ns.overrides)
    except ValueError as err:
        parser.error(str(err))
    for name in ("env", "episodes", "eval_every"):
        if getattr(ns, name) is not None:
            changes[name] = getattr(ns, name)
    try:
        return [
            dataclasses.replace(base, method=m, seed=s, **changes)
            for m in methods
            for s in range(ns.seed0, ns.seed0 + ns.seeds)
        ]
    except (TypeError, ValueError) as err:
        parser.error(str(err))


def _cmd_train(ns: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    all_args = _train_args(ns, parser)
    one_thread_per_run(ns.threads)
    for args in all_args:
        try:
            run_dir = run(args, ns.out, progress=not ns.no_progress)
        except ConfigMismatchError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        final = read_metrics(run_dir / "metrics.csv")
        print(
            f"{run_dir}: {int(final['episodes'][-1])} episodes, "
            f"eval reward {final['eval_reward'][-1]:.4g}"
        )
    print(f"compare: metaenvs compare comm --out {ns.out} --env {args.env}")
    return 0


def _cmd_compare(ns: argparse.Namespace) -> int:
    env = ns.env or make_args().env
    try:
        compare(ns.out, env, methods=ns.methods, png=ns.png)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print((Path(ns.out) / env / "summary.md").read_text(), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``train`` methods x seeds, or ``compare`` the runs of one env.

    Parameters
    ----------
    argv : sequence of str, optional
        ``["train", ...]`` or ``["compare", ...]``; ``sys.argv[1:]`` by default.  Also the
        ``comm`` experiment of ``metaenvs train`` / ``metaenvs compare``.

    Returns
    -------
    int
        0 on success, 1 if there is nothing to compare, 2 for bad usage or a run directory
        holding another config.
    """
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.command == "train":
        return _cmd_train(ns, parser)
    return _cmd_compare(ns)


if __name__ == "__main__":
    raise SystemExit(main())
