"""The one report of every experiment: summary tables and curves over seeds.

``compare(experiment, OUT/GROUP)`` reads ``<label>/seed*/metrics.csv`` and writes, in
``OUT/GROUP``: ``summary.csv`` and ``summary.md`` (per label: seeds, budget, final and
mean score with the half-width of their 95% t interval over seeds, wall-clock, env
steps/s; a verdict that names the leader only when its interval clears the others), and
``curves.png`` (the score against the budget, mean and 95% band over seeds); then the
experiment's own tables and figures (:attr:`Experiment.report_hook`).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from baselines._runs import figure, mean_ci95, seed_number, write_rows
from baselines.experiment.spec import Experiment

SUMMARY_COLUMNS = (
    "label",
    "seeds",
    "budget",
    "final_mean",
    "final_ci95",
    "mean_mean",
    "mean_ci95",
    "wall_min",
    "env_steps_per_s",
)
"""Columns of ``summary.csv`` (``*_ci95``: half-width of the 95% t interval over seeds)."""


@dataclasses.dataclass(frozen=True)
class RunResult:
    """One seed's run as ``compare`` reads it."""

    seed_dir: Path
    metrics: dict[str, np.ndarray]
    config: dict[str, Any]


def read_metrics(path: str | Path) -> dict[str, np.ndarray]:
    """Every column of one ``metrics.csv`` as a float array (empty ones if it has no rows)."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        names = reader.fieldnames or []
    return {c: np.array([float(r[c]) for r in rows], dtype=float) for c in names}


def load_runs(
    experiment: Experiment,
    exp_dir: str | Path,
    methods: Sequence[str] | None = None,
    until: float | None = None,
) -> dict[str, list[RunResult]]:
    """``{label: [each seed's run]}`` under ``exp_dir``, known methods first in their order;
    with ``until``, only the rows whose x (:attr:`Experiment.x_column`) is at most ``until``
    (runs with other budgets compared at one budget).

    Raises
    ------
    FileNotFoundError
        No ``<label>/seed*/metrics.csv`` with a row under ``exp_dir``.
    """
    exp_dir = Path(exp_dir)
    labels = sorted(p.name for p in exp_dir.iterdir() if p.is_dir()) if exp_dir.is_dir() else []
    if methods is not None:
        labels = [m for m in labels if m in methods]
    order = list(experiment.methods)
    labels.sort(key=lambda m: (order.index(m) if m in order else len(order), m))
    runs: dict[str, list[RunResult]] = {}
    for label in labels:
        found = []
        for path in sorted((exp_dir / label).glob("seed*/metrics.csv"), key=seed_number):
            metrics = read_metrics(path)
            if until is not None and experiment.x_column in metrics:
                keep = metrics[experiment.x_column] <= until
                metrics = {name: values[keep] for name, values in metrics.items()}
            if len(metrics.get(experiment.score, [])):
                config_path = path.parent / "config.json"
                config = json.loads(config_path.read_text()) if config_path.exists() else {}
                found.append(RunResult(path.parent, metrics, config))
        if found:
            runs[label] = found
    if not runs:
        raise FileNotFoundError(f"no runs with metrics under {exp_dir}/<label>/seed*/")
    return runs


def summarize(experiment: Experiment, runs: dict[str, list[RunResult]]) -> list[dict[str, Any]]:
    """One row of :data:`SUMMARY_COLUMNS` per label."""
    out = []
    for label, seeds in runs.items():
        n = min(len(r.metrics[experiment.score]) for r in seeds)
        k = min(experiment.final_rows, n)
        scores = [r.metrics[experiment.score][:n] for r in seeds]
        final, final_ci = mean_ci95([s[n - k : n].mean() for s in scores])
        area, area_ci = mean_ci95([s.mean() for s in scores])
        rates = [r.metrics.get("env_steps_per_s", np.array([]))[:n] for r in seeds]
        speed = [np.nanmean(v) for v in rates if np.isfinite(v).any()]
        out.append(
            {
                "label": label,
                "seeds": len(seeds),
                "budget": int(seeds[0].metrics[experiment.x_column][n - 1]),
                "final_mean": float(final),
                "final_ci95": float(final_ci),
                "mean_mean": float(area),
                "mean_ci95": float(area_ci),
                "wall_min": float(np.mean([r.metrics["wall_s"][n - 1] for r in seeds])) / 60,
                "env_steps_per_s": float(np.mean(speed)) if speed else float("nan"),
            }
        )
    return out


def plus_minus(mean: float, ci: float, digits: int = 3) -> str:
    """``mean ± ci``, or the mean alone when there is no interval (one seed)."""
    if not np.isfinite(ci):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {ci:.{digits}f}"


def verdict(
    summary: Sequence[dict[str, Any]],
    what: str,
    mean: str = "final_mean",
    ci: str = "final_ci95",
    label: str = "label",
) -> str:
    """Who leads on the column ``mean``, and whether the seeds allow that claim.

    With one seed for a method the ranking is no claim; with several, the leader is ahead
    only if its 95% interval (column ``ci``) clears every other method's.
    """
    ranked = sorted(summary, key=lambda s: -s[mean])
    lead = ranked[0]
    text = f"**Highest {what}: {lead[label]}** ({plus_minus(lead[mean], lead[ci])})"
    if len(ranked) == 1:
        return text + "."
    text += f", then {ranked[1][label]} ({ranked[1][mean]:.3f})"
    seeds = min(s["seeds"] for s in summary)
    if seeds < 2:
        which = "per method" if max(s["seeds"] for s in summary) < 2 else "for some method"
        return text + (
            f". **One seed {which}: this ranking is no claim** (no interval can be "
            "computed; rerun with more seeds, e.g. `--seeds 0 1 2 3 4`)."
        )
    low = lead[mean] - lead[ci]
    overlaps = [s[label] for s in ranked[1:] if s[mean] + s[ci] >= low]
    if overlaps:
        return text + (
            f". Its 95% interval over {seeds}+ seeds overlaps {', '.join(overlaps)}: "
            "no method is ahead at this budget."
        )
    return text + f". Its 95% interval over {seeds}+ seeds clears every other method's."


def summary_markdown(experiment: Experiment, summary: Sequence[dict[str, Any]], title: str) -> str:
    """The summary as Markdown: a heading, the verdict, the table and its legend."""
    what = experiment.score_label
    lines = [f"# {experiment.name}: {title}", "", verdict(summary, f"final {what}"), ""]
    lines += [
        f"| method | seeds | {experiment.x_column} | final {what} | mean {what} over the run "
        "| wall-clock / run (min) | env steps / s |",
        "|:--|--:|--:|--:|--:|--:|--:|",
    ]
    for s in summary:
        speed = f"{s['env_steps_per_s']:.0f}" if np.isfinite(s["env_steps_per_s"]) else "-"
        final = plus_minus(s["final_mean"], s["final_ci95"])
        over_run = plus_minus(s["mean_mean"], s["mean_ci95"])
        lines.append(
            f"| {s['label']} | {s['seeds']} | {s['budget']} | {final} | {over_run} | "
            f"{s['wall_min']:.2f} | {speed} |"
        )
    k = experiment.final_rows
    final = "its last evaluation" if k == 1 else f"the mean of its last {k} evaluations"
    lines += [
        "",
        f"Final {what} of a seed: {final}; mean ± half-width of the 95% t interval over "
        "seeds (no interval for one seed).",
    ]
    return "\n".join(lines) + "\n"


def plot_curves(
    experiment: Experiment, runs: dict[str, list[RunResult]], path: Path, title: str
) -> None:
    """The score against the budget: mean over seeds, with a 95% band for several seeds."""
    fig = figure(6.4, 4.0)
    ax = fig.subplots()
    most = 1
    for i, (label, seeds) in enumerate(runs.items()):
        n = min(len(r.metrics[experiment.score]) for r in seeds)
        x = seeds[0].metrics[experiment.x_column][:n]
        mean, ci = mean_ci95([r.metrics[experiment.score][:n] for r in seeds])
        most = max(most, len(seeds))
        plural = "s" if len(seeds) > 1 else ""
        ax.plot(x, mean, "-", color=f"C{i % 10}", label=f"{label} ({len(seeds)} seed{plural})")
        if len(seeds) > 1:
            low, high = mean - ci, mean + ci
            if experiment.score_bounds is not None:
                low, high = (
                    np.clip(low, *experiment.score_bounds),
                    np.clip(high, *experiment.score_bounds),
                )
            ax.fill_between(x, low, high, color=f"C{i % 10}", alpha=0.2, lw=0)
    ax.set_xlabel(experiment.x_column.replace("_", " "))
    ax.set_ylabel(experiment.score_label)
    drawn = "one seed, no interval" if most < 2 else "mean and 95% t interval over seeds"
    ax.set_title(f"{title} ({drawn})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def compare(
    experiment: Experiment,
    exp_dir: str | Path,
    methods: Sequence[str] | None = None,
    until: float | None = None,
) -> list[Path]:
    """Summary tables and curves of every label under ``exp_dir`` (module docstring), of
    the rows up to x = ``until`` if given.

    Returns
    -------
    list of Path
        ``summary.csv``, ``summary.md``, ``curves.png``, then the report hook's files.

    Raises
    ------
    FileNotFoundError
        No run with metrics under ``exp_dir``.
    """
    exp_dir = Path(exp_dir)
    runs = load_runs(experiment, exp_dir, methods, until)
    summary = summarize(experiment, runs)
    paths = [exp_dir / "summary.csv", exp_dir / "summary.md", exp_dir / "curves.png"]
    write_rows(paths[0], summary, SUMMARY_COLUMNS)
    paths[1].write_text(summary_markdown(experiment, summary, exp_dir.name))
    plot_curves(experiment, runs, paths[2], f"{experiment.name}: {exp_dir.name}")
    if experiment.report_hook is not None:
        paths += experiment.report_hook(exp_dir, runs)
    return paths
