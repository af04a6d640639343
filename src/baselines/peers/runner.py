"""Experiment runner of the learning-peers meta-agents (:mod:`baselines.peers.learner`).

One run meta-trains one ``(game, method, seed)`` and keeps everything in its own directory::

    OUT/NAME/METHOD/seedS/
        config.json      the resolved PeerArgs and the runner's settings
        metrics.csv      one row per validation (see :func:`columns`)
        checkpoint.pt    learner state, best-by-validation state, runner counters
        checkpoint.pt.sha256   its SHA-256, checked before a resume loads it (weights-only)
        tb/              TensorBoard events (every iteration's scalars, x = iteration)
        test.json        meta-test of the best-by-validation state on the test split
        val_auc.png      validation AUC against meta-training iterations
        chain.png        test reward per joint policy phi_0 .. phi_L

``NAME`` is the game unless given.  The meta-agent is validated on the ``"val"`` personas
before training and every ``eval_every`` iterations; as in the paper's appendix D the
state with the best validation AUC is the one meta-tested on the ``"test"`` personas.  A
run that finds a checkpoint resumes from it, so an interrupted run, or one rerun with a
larger ``iterations`` budget, continues where it stopped.  :func:`compare` then tabulates
the methods of one ``OUT/NAME`` and draws the paper's Figure 2 (adaptation along the chain)
and its appendix G figures (action probabilities along the chain)::

    python -m baselines.peers.runner train --game ipd --methods meta_mapg meta_pg \\
        --seeds 0 1 2 --iterations 200 --eval-every 20
    python -m baselines.peers.runner compare runs/peers/ipd
    metaenvs train peers --game ipd --methods meta_mapg --set k=8 horizon=50  # by plugin
    metaenvs compare peers runs/peers/ipd
"""

from __future__ import annotations

import argparse
import copy
import csv
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from baselines._runs import (
    ConfigMismatchError,
    append_row,
    check_saved_config,
    figure,
    mean_ci95,
    mean_or_nan,
    one_thread_per_run,
    parse_value,
    read_checkpoint,
    save_checkpoint,
    seed_number,
    summary_writer,
    write_rows,
)

__all__ = [
    "ConfigMismatchError",
    "METHOD_ORDER",
    "SUMMARY_COLUMNS",
    "columns",
    "compare",
    "load_results",
    "main",
    "mean_ci95",
    "read_metrics",
    "run",
    "summarize",
]

TRAIN_COLUMNS = ("train_auc", "policy_loss", "value_loss", "inner_lr_mean")
"""Learner metrics averaged over the iterations since the previous row of ``metrics.csv``."""
VAL_SEED = 0
"""Seed of every validation: each one replays the same draws (common random numbers)."""
TEST_SEED = 1
"""Seed of the meta-test."""
METHOD_ORDER = ("meta_mapg", "meta_mapg_om", "meta_pg", "no_own", "lola_dice", "reinforce")
"""Order (and colour) of the methods in figures and tables; other names come after."""
SUMMARY_COLUMNS = (
    "method",
    "seeds",
    "test_auc_mean",
    "test_auc_ci95",
    "reward_first_mean",
    "reward_first_ci95",
    "reward_last_mean",
    "reward_last_ci95",
    "best_iteration_mean",
    "iterations",
    "wall_min",
)
"""Columns of ``summary.csv`` (``*_ci95``: half-width of the 95% t interval over seeds)."""
DEFAULT_ITERATIONS = 200
DEFAULT_EVAL_EVERY = 20
_OWN_OPTIONS = {"game": "--game", "method": "--methods", "seed": "--seeds"}
_RUNNER_OPTIONS = ("iterations", "eval_every", "eval_chains")


# -- the learner (imported lazily: it brings torch; tests replace these three) -----------
def make_args() -> Any:
    """The default :class:`~baselines.peers.learner.PeerArgs` (the paper's settings)."""
    from baselines.peers.learner import PeerArgs

    return PeerArgs()


def make_learner(args: Any) -> Any:
    """A :class:`~baselines.peers.learner.PeerMetaLearner` for ``args``."""
    from baselines.peers.learner import PeerMetaLearner

    return PeerMetaLearner(args)


def known_methods() -> tuple[str, ...]:
    """The learner's ``METHODS``."""
    from baselines.peers.learner import METHODS

    return tuple(METHODS)


# -- one run ---------------------------------------------------------------------------
def columns(length: int) -> tuple[str, ...]:
    """Columns of ``metrics.csv`` for chain length ``length`` (L).

    ``iteration``, ``wall_s``, :data:`TRAIN_COLUMNS`, ``val_auc`` and ``val_r0`` ..
    ``val_rL``, the validation reward per round at each joint policy.
    """
    return (
        "iteration",
        "wall_s",
        *TRAIN_COLUMNS,
        "val_auc",
        *(f"val_r{i}" for i in range(length + 1)),
    )


def run_directory(out: str | Path, args: Any, name: str | None = None) -> Path:
    """``out / (name or game) / method / seed{seed}``, the directory of one run."""
    return Path(out) / (name or args.game) / args.method / f"seed{args.seed}"


def run_config(args: Any, iterations: int, eval_every: int, eval_chains: int | None) -> dict:
    """What ``config.json`` holds: the resolved args (paper defaults filled in) and the
    runner's settings, as it reads back from JSON."""
    resolved = args.resolved() if hasattr(args, "resolved") else args
    config = dataclasses.asdict(resolved)
    config.update(iterations=iterations, eval_every=eval_every, eval_chains=eval_chains)
    return json.loads(json.dumps(config))


def check_config(run_dir: Path, config: dict[str, Any]) -> None:
    """Raise if ``run_dir/config.json`` exists and differs from ``config`` (budget aside).

    Raises
    ------
    ConfigMismatchError
        Naming every differing field with its saved and its requested value.
    """
    check_saved_config(
        run_dir / "config.json",
        config,
        budget={"iterations"},
        hint="use another --out or --name, or delete the run directory",
    )


def run(
    args: Any,
    out: str | Path,
    iterations: int,
    eval_every: int,
    name: str | None = None,
    eval_chains: int | None = None,
    progress: bool = True,
    report: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """Meta-train one seed, validating, logging and checkpointing; meta-test the best state.

    Validates on the ``"val"`` split before training (row 0), after every iteration that
    is a multiple of ``eval_every`` and after the last one, appending a row to
    ``metrics.csv`` and rewriting ``checkpoint.pt`` (atomically) each time.  The learner
    state with the highest validation AUC so far (the earliest on ties) is kept in the
    checkpoint; at the end it is meta-tested on the whole ``"test"`` split and the result
    written to ``test.json``, with the figures ``val_auc.png`` and ``chain.png``.

    Parameters
    ----------
    args : PeerArgs
        Any dataclass with ``game``, ``method``, ``seed`` and ``length`` works (the
        learner is :func:`make_learner`'s); ``resolved()`` is used when it has one.
    out : str or Path
        Root of the run directories (see :func:`run_directory`).
    iterations : int
        Meta-training iterations in all (a resumed run trains the missing ones).
    eval_every : int
        Iterations between validations.
    name : str, optional
        Directory of the experiment under ``out``; ``args.game`` by default.
    eval_chains : int, optional
        Validate on ``eval_chains`` personas spread evenly over the split (so over its
        kinds) only: faster, noisier model selection; all of them by default.  The
        meta-test always uses every test persona.
    progress : bool
        Show a tqdm bar over iterations with the last validation AUC.
    report : callable, optional
        Called after every validation with ``{"method", "seed", "iteration",
        "iterations", "val_auc", "best_iteration", "best_val_auc", "wall_s"}``: for a
        caller that shows progress itself (the main job's workers report to their parent).

    Returns
    -------
    Path
        The run directory.

    Raises
    ------
    ConfigMismatchError
        The run directory already holds a run with another config (``iterations`` aside).
    CheckpointError
        Its ``checkpoint.pt`` fails verification (see :func:`~baselines._runs.read_checkpoint`);
        raised before anything is trained or written.

    Notes
    -----
    ``metrics.csv`` columns (:func:`columns`): ``iteration`` done; ``wall_s``, seconds of
    this run's training, validation and logging so far (resumes add to it, time between
    them does not count); :data:`TRAIN_COLUMNS`, means of the iterations since the previous
    row (NaN in row 0); ``val_auc`` and ``val_r0`` .. ``val_rL`` of
    ``learner.evaluate("val", VAL_SEED, eval_chains)``.  A run whose checkpoint already
    reached ``iterations`` only writes ``test.json`` and the figures if they are missing or
    stale (a smaller budget than done returns the run as it is).  A killed run loses at
    most the iterations since its last validation; TensorBoard events past the checkpoint
    are purged when it resumes.

    ``test.json`` keys: ``auc``, ``reward``, ``peer_reward``, ``meta_actions``,
    ``peer_actions`` (per joint policy, action frequencies), ``reward_by_kind`` (by the
    first peer's persona kind), ``actions`` (action names), ``best_iteration``,
    ``best_val_auc``, ``iterations``, ``wall_s`` (training and validation, as in
    ``metrics.csv``), ``test_s`` (the meta-test), ``game``, ``method``, ``seed``,
    ``test_seed``.
    """
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    if eval_every < 1:
        raise ValueError(f"eval_every must be >= 1, got {eval_every}")
    if eval_chains is not None and eval_chains < 1:
        raise ValueError(f"eval_chains must be >= 1 or None, got {eval_chains}")
    run_dir = run_directory(out, args, name)
    config = run_config(args, iterations, eval_every, eval_chains)
    check_config(run_dir, config)
    checkpoint = read_checkpoint(run_dir / "checkpoint.pt", config, budget={"iterations"})
    state = _RunState.from_checkpoint(checkpoint)
    del checkpoint
    finished = bool(state.rows) and state.rows[-1]["iteration"] >= iterations
    if finished and _test_is_current(run_dir / "test.json", state):
        return run_dir
    learner = make_learner(args)
    if state.learner is not None:
        learner.load_state_dict(state.learner)
        state.learner = None
        _check_resumed(learner, state.rows[-1])
    run_dir.mkdir(parents=True, exist_ok=True)
    if not finished:
        (run_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        header = columns(args.length)
        write_rows(run_dir / "metrics.csv", state.rows, header)
        writer = summary_writer(
            run_dir / "tb", purge_step=learner.iteration if state.rows else None
        )
        bar = _progress_bar(args, name, iterations, learner.iteration, progress, state.rows)
        settings = _Settings(iterations, eval_every, eval_chains, header)
        try:
            _Loop(learner, args, settings, run_dir, state, writer, bar, report).run()
        finally:
            bar.close()
            writer.close()
    result = _meta_test(learner, state, args)
    _write_json(run_dir / "test.json", result)
    title = f"{name or args.game}: {args.method}, seed {args.seed}"
    plot_run(state.rows, result, run_dir / "val_auc.png", title)
    plot_chain(result, run_dir / "chain.png", title)
    return run_dir


@dataclasses.dataclass
class _RunState:
    """The runner's own counters and the best state, saved next to the learner's state."""

    wall_s: float = 0.0
    rows: list[dict[str, float]] = dataclasses.field(default_factory=list)
    best: dict[str, Any] | None = None  # iteration, val_auc, learner (a state_dict copy)
    learner: dict[str, Any] | None = None  # the checkpoint's learner state, until loaded

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any] | None) -> _RunState:
        if checkpoint is None:
            return cls()
        saved = checkpoint["runner"]
        return cls(
            float(saved["wall_s"]), list(saved["rows"]), checkpoint["best"], checkpoint["learner"]
        )


@dataclasses.dataclass(frozen=True)
class _Settings:
    iterations: int
    eval_every: int
    eval_chains: int | None
    header: tuple[str, ...]


@dataclasses.dataclass
class _Window:
    """What the iterations since the last validation reported."""

    metrics: dict[str, list[float]] = dataclasses.field(
        default_factory=lambda: {c: [] for c in TRAIN_COLUMNS}
    )


@dataclasses.dataclass
class _Loop:
    """The loop of :func:`run`: train, and validate when due, until ``iterations``."""

    learner: Any
    args: Any
    settings: _Settings
    run_dir: Path
    state: _RunState
    writer: Any
    bar: Any
    report: Callable[[dict[str, Any]], None] | None = None
    window: _Window = dataclasses.field(default_factory=_Window)

    def run(self) -> None:
        learner, settings = self.learner, self.settings
        start = time.perf_counter() - self.state.wall_s
        if not self.state.rows:
            self.evaluate(start)
        while learner.iteration < settings.iterations:
            before = learner.iteration
            self.train_iteration()
            if learner.iteration != before + 1:
                raise RuntimeError(
                    f"train_iteration moved the iteration from {before} to {learner.iteration}"
                )
            self.bar.update(1)
            if learner.iteration % settings.eval_every == 0 or (
                learner.iteration >= settings.iterations
            ):
                self.evaluate(start)

    def train_iteration(self) -> None:
        metrics = self.learner.train_iteration()
        for key in TRAIN_COLUMNS:
            self.window.metrics[key].append(float(metrics.get(key, float("nan"))))
        for key, value in metrics.items():
            self.writer.add_scalar(f"train/{key}", float(value), self.learner.iteration)

    def evaluate(self, start: float) -> None:
        """Validate, append the row to ``metrics.csv`` and log it, then write the checkpoint.

        ``wall_s`` of the row counts from ``start`` to the end of this validation.
        """
        learner, state = self.learner, self.state
        result = learner.evaluate("val", seed=VAL_SEED, max_chains=self.settings.eval_chains)
        wall_s = time.perf_counter() - start
        row: dict[str, float] = {"iteration": int(learner.iteration), "wall_s": wall_s}
        row.update({k: mean_or_nan(v) for k, v in self.window.metrics.items()})
        row["val_auc"] = float(result.auc)
        reward = np.asarray(result.reward, dtype=float)
        if len(reward) != self.args.length + 1:
            raise RuntimeError(f"evaluate gave {len(reward)} rewards for L = {self.args.length}")
        row.update({f"val_r{i}": float(r) for i, r in enumerate(reward)})
        state.rows.append(row)
        state.wall_s = wall_s
        self.window = _Window()
        if state.best is None or row["val_auc"] > state.best["val_auc"]:
            state.best = {
                "iteration": row["iteration"],
                "val_auc": row["val_auc"],
                "learner": copy.deepcopy(learner.state_dict()),
            }
        append_row(self.run_dir / "metrics.csv", row, self.settings.header)
        x = learner.iteration
        self.writer.add_scalar("val/auc", row["val_auc"], x)
        self.writer.add_scalar("val/best_auc", state.best["val_auc"], x)
        for i, r in enumerate(reward):
            self.writer.add_scalar(f"val/reward_{i}", float(r), x)
        for kind, values in getattr(result, "reward_by_kind", {}).items():
            self.writer.add_scalar(f"val_auc_by_kind/{kind}", float(np.sum(values)), x)
        self.writer.add_scalar("perf/wall_s", wall_s, x)
        self.writer.flush()
        _write_checkpoint(self.run_dir / "checkpoint.pt", learner, state, self.args, self.settings)
        self.bar.set_postfix(val_auc=f"{row['val_auc']:.4g}", best=state.best["iteration"])
        if self.report is not None:
            self.report(
                {
                    "method": self.args.method,
                    "seed": self.args.seed,
                    "iteration": row["iteration"],
                    "iterations": self.settings.iterations,
                    "val_auc": row["val_auc"],
                    "best_iteration": state.best["iteration"],
                    "best_val_auc": state.best["val_auc"],
                    "wall_s": wall_s,
                }
            )


def _check_resumed(learner: Any, last_row: dict[str, float]) -> None:
    """The loaded learner must be where the checkpoint's last row says it was."""
    if learner.iteration != last_row["iteration"]:
        raise RuntimeError(
            f"checkpoint inconsistent: learner at iteration {learner.iteration}, "
            f"runner at row {last_row}"
        )


def _test_is_current(path: Path, state: _RunState) -> bool:
    """``test.json`` exists and was written from this checkpoint's best state."""
    if not path.exists() or state.best is None:
        return False
    saved = json.loads(path.read_text())
    return (
        saved.get("iterations") == state.rows[-1]["iteration"]
        and saved.get("best_iteration") == state.best["iteration"]
    )


def _meta_test(learner: Any, state: _RunState, args: Any) -> dict[str, Any]:
    """Load the best state into ``learner`` and meta-test it on the test split."""
    best = state.best
    learner.load_state_dict(best["learner"])
    tick = time.perf_counter()
    result = learner.evaluate("test", seed=TEST_SEED)
    test_s = time.perf_counter() - tick
    meta_actions = np.asarray(result.meta_actions, dtype=float)
    return {
        "game": args.game,
        "method": args.method,
        "seed": args.seed,
        "auc": float(result.auc),
        "reward": _floats(result.reward),
        "peer_reward": _floats(result.peer_reward),
        "meta_actions": _floats(meta_actions),
        "peer_actions": _floats(result.peer_actions),
        "reward_by_kind": {str(k): _floats(v) for k, v in result.reward_by_kind.items()},
        "actions": _action_names(learner, meta_actions.shape[-1]),
        "best_iteration": int(best["iteration"]),
        "best_val_auc": float(best["val_auc"]),
        "iterations": int(state.rows[-1]["iteration"]),
        "wall_s": float(state.wall_s),
        "test_s": test_s,
        "test_seed": TEST_SEED,
    }


def _action_names(learner: Any, n_actions: int) -> list[str]:
    try:
        names = learner.chain("test").game_core.config.action_names
    except AttributeError:
        names = None
    if names is None or len(names) != n_actions:
        return [f"action {i}" for i in range(n_actions)]
    return [str(n) for n in names]


def _floats(values: Any) -> Any:
    """A float or nested lists of floats, for JSON."""
    return np.asarray(values, dtype=float).tolist()


# -- files -----------------------------------------------------------------------------
def _write_checkpoint(
    path: Path, learner: Any, state: _RunState, args: Any, settings: _Settings
) -> None:
    payload = {
        "learner": learner.state_dict(),
        "best": state.best,
        "runner": {"wall_s": state.wall_s, "rows": list(state.rows)},
    }
    config = run_config(args, settings.iterations, settings.eval_every, settings.eval_chains)
    save_checkpoint(path, payload, config)


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


def read_metrics(path: str | Path) -> dict[str, np.ndarray]:
    """Every column of one ``metrics.csv`` as a float array (empty ones if it has no rows)."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        names = reader.fieldnames or []
    return {c: np.array([float(r[c]) for r in rows], dtype=float) for c in names}


def _progress_bar(
    args: Any, name: str | None, total: int, done: int, progress: bool, rows: list
) -> Any:
    from tqdm import tqdm

    bar = tqdm(
        total=total,
        initial=done,
        unit="it",
        desc=f"{name or args.game} {args.method} seed{args.seed}",
        disable=not progress,
        dynamic_ncols=True,
    )
    if rows:
        bar.set_postfix(val_auc=f"{rows[-1]['val_auc']:.4g}")
    return bar


# -- figures of one run ----------------------------------------------------------------
def _phi_labels(n: int) -> list[str]:
    return [rf"$\phi_{{{i}}}$" for i in range(n)]


def plot_run(
    rows: Sequence[dict[str, float]], test: dict[str, Any], path: Path, title: str
) -> None:
    """Validation AUC (and the train AUC between validations) against iterations."""
    x = [r["iteration"] for r in rows]
    fig = figure(6.4, 4.0)
    ax = fig.subplots()
    ax.plot(x, [r["val_auc"] for r in rows], "o-", ms=3, label="validation AUC")
    train = [r["train_auc"] for r in rows]
    if np.isfinite(train).any():
        ax.plot(x, train, "-", alpha=0.6, label="train AUC (mean since previous row)")
    best = test["best_iteration"]
    ax.plot([best], [test["best_val_auc"]], "*", ms=12, color="C3", label=f"best ({best})")
    ax.axhline(test["auc"], color="C3", ls=":", lw=1, label="test AUC of the best")
    ax.set_xlabel("meta-training iteration")
    ax.set_ylabel("AUC (sum of reward per round over the chain)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_chain(test: dict[str, Any], path: Path, title: str) -> None:
    """Meta-test reward per joint policy, overall, by peer kind and the peers' own."""
    reward = np.asarray(test["reward"])
    x = np.arange(len(reward))
    fig = figure(6.4, 4.0)
    ax = fig.subplots()
    ax.plot(x, reward, "o-", lw=2, color="C0", label="meta-agent, all test peers")
    kinds = test.get("reward_by_kind", {})
    if len(kinds) > 1:
        for i, (kind, values) in enumerate(kinds.items()):
            ax.plot(x, values, "--", lw=1, color=f"C{i + 1}", label=f"vs {kind} peers")
    ax.plot(x, test["peer_reward"], ":", color="grey", label="peers")
    ax.set_xticks(x, _phi_labels(len(x)))
    ax.set_xlabel("joint policy")
    ax.set_ylabel("average reward per round")
    ax.set_title(f"{title}: test (best iteration {test['best_iteration']})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


# -- comparing methods -----------------------------------------------------------------
def _method_rank(method: str) -> int:
    return METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)


def _method_order(found: Sequence[str]) -> list[str]:
    """``found`` in :data:`METHOD_ORDER`, other names after, alphabetically."""
    return sorted(dict.fromkeys(found), key=lambda m: (_method_rank(m), m))


def load_results(
    env_dir: str | Path, methods: Sequence[str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """``{method: [test.json of each seed]}`` under ``env_dir``, in :data:`METHOD_ORDER`.

    Methods without a ``seed*/test.json`` are left out.
    """
    env_dir = Path(env_dir)
    if methods is None:
        methods = [p.name for p in env_dir.iterdir() if p.is_dir()] if env_dir.is_dir() else []
    results: dict[str, list[dict[str, Any]]] = {}
    for method in _method_order(methods):
        paths = sorted((env_dir / method).glob("seed*/test.json"), key=seed_number)
        if paths:
            results[method] = [json.loads(p.read_text()) for p in paths]
    return results


def summarize(results: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row of :data:`SUMMARY_COLUMNS` per method (means and 95% CIs over seeds)."""
    summary = []
    for method, seeds in results.items():
        auc, auc_ci = mean_ci95([s["auc"] for s in seeds])
        first, first_ci = mean_ci95([s["reward"][0] for s in seeds])
        last, last_ci = mean_ci95([s["reward"][-1] for s in seeds])
        summary.append(
            {
                "method": method,
                "seeds": len(seeds),
                "test_auc_mean": float(auc),
                "test_auc_ci95": float(auc_ci),
                "reward_first_mean": float(first),
                "reward_first_ci95": float(first_ci),
                "reward_last_mean": float(last),
                "reward_last_ci95": float(last_ci),
                "best_iteration_mean": float(np.mean([s["best_iteration"] for s in seeds])),
                "iterations": float(np.mean([s["iterations"] for s in seeds])),
                "wall_min": float(np.mean([s["wall_s"] for s in seeds])) / 60,
            }
        )
    return summary


def _pm(mean: float, ci: float, digits: int = 3) -> str:
    return f"{mean:.{digits}f}" if not np.isfinite(ci) else f"{mean:.{digits}f} ± {ci:.{digits}f}"


def summary_markdown(
    summary: Sequence[dict[str, Any]], title: str = "", config: dict[str, Any] | None = None
) -> str:
    """The summary as Markdown: a heading, the verdict, the budget, the table and a legend.

    The verdict names the method with the highest mean test AUC and says whether the
    seeds allow a claim: with one seed they do not; with several, the leader is ahead
    only if its 95% interval clears every other method's.  A method whose best
    validation was its last one is flagged as not converged (validation still rising).

    Parameters
    ----------
    summary : sequence of dict
        :func:`summarize`'s rows.
    title : str
        The experiment's name (the heading).
    config : dict, optional
        One run's ``config.json``: the budget line (iterations, chain length L, K, H).
    """
    lines = [f"# {title or 'learning peers'}: meta-test of the meta-agents", ""]
    lines += _verdict(summary)
    if config:
        lines += ["", _budget_line(config)]
    lines += [
        "",
        "| method | seeds | test AUC | reward φ0 | reward φL | best iteration "
        "| iterations | wall-clock / run (min) |",
        "|:--|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for s in summary:
        lines.append(
            f"| {s['method']} | {s['seeds']} "
            f"| {_pm(s['test_auc_mean'], s['test_auc_ci95'])} "
            f"| {_pm(s['reward_first_mean'], s['reward_first_ci95'])} "
            f"| {_pm(s['reward_last_mean'], s['reward_last_ci95'])} "
            f"| {s['best_iteration_mean']:.0f} | {s['iterations']:.0f} | {s['wall_min']:.2f} |"
        )
    lines.append("")
    lines.append(
        "Meta-test on the test personas of each seed's best iteration by validation AUC "
        "(mean over seeds when several); mean ± half-width of the 95% t confidence interval "
        "over seeds (no interval for one seed).  AUC: sum over the joint policies φ0..φL of "
        "the meta-agent's average reward per round; wall-clock: training and validation."
    )
    return "\n".join(lines) + "\n"


def _verdict(summary: Sequence[dict[str, Any]]) -> list[str]:
    """Who leads, whether the seeds allow a claim, and which methods had not converged."""
    if not summary:
        return ["No results."]
    ranked = sorted(summary, key=lambda s: -s["test_auc_mean"])
    lead = ranked[0]
    seeds = min(s["seeds"] for s in summary)
    auc = _pm(lead["test_auc_mean"], lead["test_auc_ci95"])
    text = f"**Highest test AUC: {lead['method']}** ({auc})"
    if len(ranked) > 1:
        text += f", then {ranked[1]['method']} ({ranked[1]['test_auc_mean']:.3f})"
    if seeds < 2:
        text += (
            ". **One seed per method: this ranking is no claim** (no interval can be "
            "computed; rerun with more seeds, e.g. `--seeds 0 1 2 3 4`)."
        )
    else:
        low = lead["test_auc_mean"] - lead["test_auc_ci95"]
        overlaps = [
            s["method"] for s in ranked[1:] if s["test_auc_mean"] + s["test_auc_ci95"] >= low
        ]
        text += (
            f". Its 95% interval over {seeds}+ seeds overlaps {', '.join(overlaps)}: "
            "no method is ahead at this budget."
            if overlaps
            else f". Its 95% interval over {seeds}+ seeds clears every other method's."
        )
    lines = [text]
    rising = [s["method"] for s in summary if s["best_iteration_mean"] >= s["iterations"]]
    if rising:
        lines += [
            "",
            f"Not converged: the best validation of {', '.join(rising)} was the last one "
            "(validation AUC still rising at the end of the budget); more iterations may "
            "change the ranking.",
        ]
    return lines


def _budget_line(config: dict[str, Any]) -> str:
    """The budget of one run, from its ``config.json``."""
    return (
        f"Budget per run: {config.get('iterations')} meta-training iterations "
        f"(validation every {config.get('eval_every')}), chain length L = "
        f"{config.get('length')}, K = {config.get('k')} trajectories of H = "
        f"{config.get('horizon')} rounds per joint policy, {config.get('chains')} chains per "
        f"batch, outer learning rates {config.get('actor_lr')} / {config.get('critic_lr')}."
    )


def compare(env_dir: str | Path, methods: Sequence[str] | None = None) -> list[Path]:
    """Tabulate and plot the meta-test results of every method of one experiment.

    Reads ``env_dir/<method>/seed*/test.json`` and writes, in ``env_dir``:

    - ``summary.csv`` and ``summary.md``: :func:`summarize`, one row per method;
    - ``adaptation.png``: the paper's Figure 2, mean test reward per joint policy
      ``phi_0 .. phi_L`` with a 95% CI band over seeds, one panel for all test peers and,
      when the peers' personas have several kinds, one per kind (IPD: cooperating and
      defecting peers, Figures 2a and 2b);
    - ``dynamics.png``: the meta-agent's and the peers' action frequencies per joint
      policy, mean over seeds, one row per method (appendix G, Figures 9-16).

    Parameters
    ----------
    env_dir : str or Path
        ``OUT/NAME`` of the runs.
    methods : sequence of str, optional
        Methods to include; by default every method directory with results.  Always
        listed in :data:`METHOD_ORDER`.

    Returns
    -------
    list of Path
        The four files written.

    Raises
    ------
    FileNotFoundError
        No method has a ``test.json``.
    """
    env_dir = Path(env_dir)
    results = load_results(env_dir, methods)
    if not results:
        raise FileNotFoundError(f"no runs with test.json under {env_dir}/<method>/seed*/")
    summary = summarize(results)
    paths = [env_dir / n for n in ("summary.csv", "summary.md", "adaptation.png", "dynamics.png")]
    with open(paths[0], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        writer.writerows(summary)
    configs = sorted(env_dir.glob("*/seed*/config.json"), key=seed_number)
    config = json.loads(configs[0].read_text()) if configs else None
    paths[1].write_text(summary_markdown(summary, env_dir.name, config))
    plot_adaptation(results, paths[2], env_dir.name)
    plot_dynamics(results, paths[3], env_dir.name)
    return paths


def _color(method: str, methods: Sequence[str]) -> str:
    """A method's colour: its place in METHOD_ORDER; other names after, each its own."""
    rank = _method_rank(method)
    if rank == len(METHOD_ORDER):
        extra = [m for m in methods if m not in METHOD_ORDER]
        rank += extra.index(method)
    return f"C{rank % 10}"


def _stack(rows: Sequence[Sequence[float]]) -> np.ndarray:
    """Seeds' per-position values as ``(seeds, positions)``, cut at the shortest seed."""
    n = min(len(r) for r in rows)
    return np.array([list(r)[:n] for r in rows], dtype=float)


def plot_adaptation(results: dict[str, list[dict[str, Any]]], path: Path, title: str) -> None:
    """Mean test reward per joint policy and a 95% CI band over seeds, per method."""
    kinds = list(
        dict.fromkeys(k for ss in results.values() for s in ss for k in s["reward_by_kind"])
    )
    panels: list[str | None] = [None, *kinds] if len(kinds) > 1 else [None]
    fig = figure(4.4 * len(panels), 3.8)
    axes = np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)[0])
    methods = list(results)
    longest = 0
    for ax, kind in zip(axes, panels):
        for method, seeds in results.items():
            rows = [s["reward"] if kind is None else s["reward_by_kind"].get(kind) for s in seeds]
            rows = [r for r in rows if r is not None]
            if not rows:
                continue
            values = _stack(rows)
            mean, ci = mean_ci95(values)
            x = np.arange(len(mean))
            longest = max(longest, len(x))
            color = _color(method, methods)
            label = f"{method} ({len(rows)} seed{'s' if len(rows) > 1 else ''})"
            ax.plot(x, mean, "o-", ms=3, lw=1.6, color=color, label=label)
            if len(rows) > 1:
                ax.fill_between(x, mean - ci, mean + ci, color=color, alpha=0.2, lw=0)
        ax.set_xticks(np.arange(longest), _phi_labels(longest))
        ax.set_xlabel("joint policy")
        ax.set_title("all test peers" if kind is None else f"{kind} peers")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("meta-agent's average reward per round")
    axes[0].legend(fontsize="small")
    most = max(len(seeds) for seeds in results.values())
    drawn = "one seed, no interval" if most < 2 else "mean and 95% t interval over seeds"
    fig.suptitle(f"{title}: meta-test reward along the chain ({drawn})")
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def plot_dynamics(results: dict[str, list[dict[str, Any]]], path: Path, title: str) -> None:
    """Action frequencies of the meta-agent and of the peers per joint policy (stacked)."""
    fig = figure(8.0, 0.6 + 2.3 * len(results))
    axes = fig.subplots(len(results), 2, squeeze=False)
    for row, (method, seeds) in zip(axes, results.items()):
        names = seeds[0].get("actions")
        for ax, key, who in zip(row, ("meta_actions", "peer_actions"), ("meta-agent", "peers")):
            n = min(len(s[key]) for s in seeds)
            probs = np.mean([np.asarray(s[key], dtype=float)[:n] for s in seeds], axis=0)
            labels = names if names and len(names) == probs.shape[1] else None
            labels = labels or [f"action {i}" for i in range(probs.shape[1])]
            x = np.arange(n)
            ax.stackplot(x, probs.T, labels=labels, alpha=0.85)
            ax.set_xlim(0, max(n - 1, 1))
            ax.set_ylim(0, 1)
            ax.set_xticks(x, _phi_labels(n))
            ax.set_title(f"{method}: {who} ({len(seeds)} seed{'s' if len(seeds) > 1 else ''})")
            ax.set_ylabel("action probability")
        row[1].legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    for ax in axes[-1]:
        ax.set_xlabel("joint policy")
    most = max(len(seeds) for seeds in results.values())
    drawn = "one seed" if most < 2 else "mean over seeds"
    fig.suptitle(f"{title}: action probabilities during meta-test ({drawn})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


# -- command line ----------------------------------------------------------------------
def parse_overrides(base: Any, items: Sequence[str]) -> dict[str, Any]:
    """``{field: value}`` from ``key=value`` strings, each parsed by its field's type.

    A field defaulting to None is parsed as the game's resolved value (``horizon=50``
    stays an int), and ``none``/``null`` gives None back.

    Raises
    ------
    ValueError
        A malformed item, an unknown field (the message lists the valid ones), or a field
        or runner setting that has its own option.
    """
    names = [f.name for f in dataclasses.fields(base)]
    resolved = base.resolved() if hasattr(base, "resolved") else base
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise ValueError(f"--set expects key=value, got {item!r}")
        if key in _OWN_OPTIONS:
            raise ValueError(f"set {key} with {_OWN_OPTIONS[key]}, not --set")
        if key in _RUNNER_OPTIONS:
            raise ValueError(f"set {key} with --{key.replace('_', '-')}, not --set")
        if key not in names:
            valid = ", ".join(n for n in names if n not in _OWN_OPTIONS)
            raise ValueError(f"unknown field {key!r} in --set; valid fields: {valid}")
        default = getattr(base, key)
        if default is None and text.strip().lower() in ("none", "null"):
            out[key] = None
            continue
        proto = getattr(resolved, key) if default is None else default
        try:
            out[key] = parse_value(text, proto)
        except ValueError as err:
            raise ValueError(f"--set {item}: {err}") from None
    return out


def build_parser() -> argparse.ArgumentParser:
    """The parser of :func:`main`: subcommands ``train`` and ``compare``."""
    parser = argparse.ArgumentParser(
        prog="baselines.peers.runner",
        description="Meta-train and compare the learning-peers meta-agents (Meta-MAPG).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("train", help="train methods x seeds, one run after the other")
    p.add_argument("--game", help="ipd, rps, rps_3p or rps_4p (default: PeerArgs' ipd)")
    p.add_argument(
        "--methods",
        "--method",
        nargs="+",
        metavar="METHOD",
        help="methods (default: PeerArgs' meta_mapg)",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="SEED", help="seeds")
    p.add_argument(
        "--iterations",
        type=int,
        default=DEFAULT_ITERATIONS,
        help=f"meta-training iterations per run (default {DEFAULT_ITERATIONS})",
    )
    p.add_argument(
        "--eval-every",
        type=int,
        default=DEFAULT_EVAL_EVERY,
        help=f"iterations between validations (default {DEFAULT_EVAL_EVERY})",
    )
    p.add_argument(
        "--eval-chains",
        type=int,
        help="validate on N personas spread over the split (default: all)",
    )
    p.add_argument("--name", help="experiment directory under --out (default: the game)")
    p.add_argument("--out", default="runs/peers", help="root of the runs (default runs/peers)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch and numba threads per run (default 1: run seeds in parallel processes)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="override any other PeerArgs field, e.g. --set k=8 horizon=50 (repeatable)",
    )
    p = sub.add_parser("compare", help="summary table and figures of one experiment")
    p.add_argument("env_dir", type=Path, metavar="DIR", help="OUT/NAME, e.g. runs/peers/ipd")
    p.add_argument("--methods", nargs="+", metavar="METHOD", help="methods (default: all)")
    return parser


def _train_args(ns: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Any]:
    """Every run's args, built (and so validated) before the first one starts."""
    base = make_args()
    if ns.game is not None:
        try:
            base = dataclasses.replace(base, game=ns.game)
        except (TypeError, ValueError) as err:
            parser.error(str(err))
    methods = list(dict.fromkeys(ns.methods or [base.method]))
    valid = known_methods()
    unknown = [m for m in methods if m not in valid]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    seeds = list(dict.fromkeys(ns.seeds))
    if any(s < 0 for s in seeds):
        parser.error(f"--seeds must be >= 0, got {' '.join(map(str, ns.seeds))}")
    for option, value, low in (
        ("--iterations", ns.iterations, 0),
        ("--eval-every", ns.eval_every, 1),
        ("--eval-chains", ns.eval_chains, 1),
        ("--threads", ns.threads, 1),
    ):
        if value is not None and value < low:
            parser.error(f"{option} must be >= {low}, got {value}")
    try:
        changes = parse_overrides(base, ns.overrides)
        all_args = [
            dataclasses.replace(base, method=m, seed=s, **changes) for m in methods for s in seeds
        ]
        if hasattr(all_args[0], "chain_config"):  # the env's own checks (game, horizon, ...)
            all_args[0].resolved().chain_config("train")
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    return all_args


def _cmd_train(ns: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    all_args = _train_args(ns, parser)
    one_thread_per_run(ns.threads)
    for args in all_args:
        try:
            run_dir = run(
                args,
                ns.out,
                ns.iterations,
                ns.eval_every,
                name=ns.name,
                eval_chains=ns.eval_chains,
                progress=not ns.no_progress,
            )
        except ConfigMismatchError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        test = json.loads((run_dir / "test.json").read_text())
        print(
            f"{run_dir}: {test['iterations']} iterations, best val AUC "
            f"{test['best_val_auc']:.4g} at iteration {test['best_iteration']}, "
            f"test AUC {test['auc']:.4g}"
        )
    env_dir = Path(ns.out) / (ns.name or all_args[0].game)
    print(f"compare: metaenvs compare peers {env_dir}")
    return 0


def _cmd_compare(ns: argparse.Namespace) -> int:
    try:
        paths = compare(ns.env_dir, methods=ns.methods)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(paths[1].read_text(), end="")
    print(f"figures: {paths[2]}, {paths[3]}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``train`` methods x seeds, or ``compare`` the runs of one experiment.

    Parameters
    ----------
    argv : sequence of str, optional
        ``["train", ...]`` or ``["compare", DIR, ...]``; ``sys.argv[1:]`` by default.
        Also the ``peers`` experiment of ``metaenvs train`` / ``metaenvs compare``.

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
