"""Train and compare VDN, QMIX and MNMPG on Skirmish maps (mnmpg-exercise-moves, Figure 2).

``metaenvs train mnmpg --map 3m --methods vdn qmix mnmpg --seeds 0 1 2 --env-steps 200000``
writes one run directory per (method, seed)::

    OUT/<map>/<label>/seed<S>/
        config.json     the MixArgs and the budget (a different config in the same place
                        is an error; a larger --env-steps resumes)
        metrics.csv     one row per test: env steps, test win rate and return (greedy,
                        ``--eval-episodes`` battles on fixed seeds), training return and win
                        rate since the last test, TD loss, meta-reward, epsilon, wall-clock
        tb/             the same rows for TensorBoard
        checkpoint.pt   networks, optimisers, replay and random states, after every test
        checkpoint.pt.sha256  its SHA-256, checked before a resume loads it (weights-only)
        win_rate.png    the test win rate curve

``<label>`` is the method unless ``--label`` names an ablation (``mnmpg_no_grad`` ...).
``metaenvs compare mnmpg OUT/<map>`` draws ``win_rate.png`` (mean and 95% t interval over
seeds, per label) and writes ``summary.csv`` / ``summary.md`` (final and mean test win rate).
"""

from __future__ import annotations

import argparse
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

HEADER = (
    "env_steps",
    "episodes",
    "test_win_rate",
    "test_return",
    "train_return",
    "train_win_rate",
    "td_loss",
    "meta_reward",
    "epsilon",
    "wall_s",
)
EVAL_SEED = 10**9
"""Test battles are seeded from here: every test of every run meets the same battles."""


def run_directory(out: str | Path, args: Any, label: str | None = None) -> Path:
    """``OUT/<map>/<label or method>/seed<S>``."""
    return Path(out) / args.map_name / (label or args.method) / f"seed{args.seed}"


def run(
    args: Any,
    out: str | Path,
    env_steps: int,
    eval_every: int = 10_000,
    eval_episodes: int = 32,
    label: str | None = None,
    progress: bool = True,
) -> Path:
    """Train one learner to ``env_steps`` env steps, testing every ``eval_every``; resumes.

    Returns
    -------
    Path
        The run directory (layout in the module docstring).

    Raises
    ------
    ConfigMismatchError
        If the directory holds a run with another config (the budget may grow).
    CheckpointError
        If its ``checkpoint.pt`` fails verification (see
        :func:`~baselines._runs.read_checkpoint`); raised before anything is trained.
    """
    from tqdm import tqdm

    from baselines.mnmpg.learner import MixingLearner

    run_dir = run_directory(out, args, label)
    config = {**dataclasses.asdict(args), "env_steps": env_steps, "eval_every": eval_every,
              "eval_episodes": eval_episodes}  # fmt: skip
    check_saved_config(
        run_dir / "config.json", config, {"env_steps"}, "use another --out or --label"
    )
    saved = read_checkpoint(run_dir / "checkpoint.pt", config, budget={"env_steps"})
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    learner = MixingLearner(args)
    rows: list[dict[str, float]] = []
    next_test, wall = 0, 0.0
    if saved is not None:
        learner.load_state_dict(saved["learner"])
        rows, next_test, wall = saved["rows"], saved["next_test"], saved["wall"]
    write_rows(run_dir / "metrics.csv", rows, HEADER)
    writer = summary_writer(run_dir / "tb", purge_step=learner.env_steps)
    bar = tqdm(
        total=env_steps, initial=min(learner.env_steps, env_steps), unit="step",
        desc=f"{args.map_name} {label or args.method} seed{args.seed}", disable=not progress,
        dynamic_ncols=True,
    )  # fmt: skip
    window: dict[str, list[float]] = {}
    start = time.perf_counter() - wall
    while True:
        if learner.env_steps >= next_test:
            test = learner.evaluate(eval_episodes, seed=EVAL_SEED)
            row = {
                "env_steps": learner.env_steps,
                "episodes": learner.episodes_seen,
                "test_win_rate": test["win_rate"],
                "test_return": test["return"],
                **{k: mean_or_nan(window.get(k, [])) for k in
                   ("train_return", "train_win_rate", "td_loss", "meta_reward")},
                "epsilon": learner.epsilon,
                "wall_s": time.perf_counter() - start,
            }  # fmt: skip
            rows.append(row)
            append_row(run_dir / "metrics.csv", row, HEADER)
            for key, value in row.items():
                writer.add_scalar(key, value, learner.env_steps)
            writer.flush()
            bar.set_postfix(win=f"{test['win_rate']:.2f}")
            window = {}
            next_test = learner.env_steps + eval_every
            payload = {"learner": learner.state_dict(), "rows": rows, "next_test": next_test,
                       "wall": row["wall_s"]}  # fmt: skip
            save_checkpoint(run_dir / "checkpoint.pt", payload, config)
            if learner.env_steps >= env_steps:
                break
        before = learner.env_steps
        out = learner.iteration()
        for key, name in (("return", "train_return"), ("win_rate", "train_win_rate"),
                          ("td_loss", "td_loss"), ("meta_reward", "meta_reward")):  # fmt: skip
            if key in out:
                window.setdefault(name, []).append(out[key])
        bar.update(min(learner.env_steps, env_steps) - min(before, env_steps))
    bar.close()
    writer.close()
    plot_run(rows, run_dir / "win_rate.png", f"{args.map_name} {label or args.method}")
    return run_dir


def read_metrics(path: str | Path) -> dict[str, np.ndarray]:
    """``metrics.csv`` as columns."""
    data = np.genfromtxt(path, delimiter=",", names=True)
    return {name: np.atleast_1d(data[name]) for name in data.dtype.names}


def plot_run(rows: Sequence[dict[str, float]], path: Path, title: str) -> None:
    """The test win rate of one run against env steps."""
    fig = figure(5, 3.2)
    ax = fig.add_subplot()
    ax.plot([r["env_steps"] for r in rows], [r["test_win_rate"] for r in rows], marker=".")
    ax.set(xlabel="env steps", ylabel="test win rate", title=title, ylim=(-0.02, 1.02))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def load_curves(map_dir: str | Path) -> dict[str, list[dict[str, np.ndarray]]]:
    """``{label: [metrics of each seed]}`` for every ``<label>/seed*/metrics.csv``."""
    map_dir = Path(map_dir)
    curves: dict[str, list[dict[str, np.ndarray]]] = {}
    for label_dir in sorted(p for p in map_dir.iterdir() if p.is_dir()) if map_dir.is_dir() else []:
        paths = sorted(label_dir.glob("seed*/metrics.csv"), key=seed_number)
        seeds = [read_metrics(p) for p in paths]
        if seeds:
            curves[label_dir.name] = seeds
    if not curves:
        raise FileNotFoundError(f"no <label>/seed*/metrics.csv under {map_dir}")
    return curves


def summarize(curves: dict[str, list[dict[str, np.ndarray]]]) -> list[dict[str, Any]]:
    """Per label: seeds, env steps, final and mean test win rate (mean and 95% half-width)."""
    out = []
    for label, seeds in curves.items():
        n = min(len(s["test_win_rate"]) for s in seeds)
        final, final_ci = mean_ci95([s["test_win_rate"][n - 1] for s in seeds])
        area, area_ci = mean_ci95([s["test_win_rate"][:n].mean() for s in seeds])
        out.append({
            "label": label, "seeds": len(seeds), "env_steps": int(seeds[0]["env_steps"][n - 1]),
            "final_win_rate": float(final), "final_ci95": float(final_ci),
            "mean_win_rate": float(area), "mean_ci95": float(area_ci),
            "wall_min": float(np.mean([s["wall_s"][n - 1] for s in seeds]) / 60),
        })  # fmt: skip
    return out


def summary_markdown(summary: Sequence[dict[str, Any]], title: str) -> str:
    """The summary as a Markdown table."""

    def pm(mean: float, ci: float) -> str:
        return f"{mean:.2f}" if np.isnan(ci) else f"{mean:.2f} ± {ci:.2f}"

    lines = [
        f"Test win rate on {title} (mean ± 95% t interval over seeds; greedy policy).", "",
        "| method | seeds | env steps | final test win rate | mean over the run | wall (min/run) |",
        "|---|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for s in summary:
        lines.append(
            f"| {s['label']} | {s['seeds']} | {s['env_steps']} | "
            f"{pm(s['final_win_rate'], s['final_ci95'])} | {pm(s['mean_win_rate'], s['mean_ci95'])}"
            f" | {s['wall_min']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def compare(map_dir: str | Path) -> list[Path]:
    """``win_rate.png``, ``summary.csv`` and ``summary.md`` of every label under ``map_dir``."""
    map_dir = Path(map_dir)
    curves = load_curves(map_dir)
    summary = summarize(curves)
    fig = figure(6, 3.8)
    ax = fig.add_subplot()
    for label, seeds in curves.items():
        n = min(len(s["test_win_rate"]) for s in seeds)
        steps = seeds[0]["env_steps"][:n]
        mean, ci = mean_ci95([s["test_win_rate"][:n] for s in seeds])
        ax.plot(steps, mean, label=f"{label} ({len(seeds)} seeds)")
        if len(seeds) > 1:
            ax.fill_between(steps, np.clip(mean - ci, 0, 1), np.clip(mean + ci, 0, 1), alpha=0.2)
    ax.set(xlabel="env steps", ylabel="test win rate", title=map_dir.name, ylim=(-0.02, 1.02))
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths = [map_dir / "win_rate.png", map_dir / "summary.csv", map_dir / "summary.md"]
    fig.savefig(paths[0], dpi=110)
    write_rows(paths[1], summary, list(summary[0]))
    paths[2].write_text(summary_markdown(summary, map_dir.name))
    return paths


def parse_overrides(base: Any, items: Sequence[str]) -> dict[str, Any]:
    """``{field: value}`` from ``key=value`` strings typed by the MixArgs field's default."""
    names = {f.name for f in dataclasses.fields(base)} - {"method", "map_name", "seed"}
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in names:
            raise ValueError(f"--set expects key=value with a MixArgs field ({sorted(names)}), "
                             f"got {item!r}")  # fmt: skip
        out[key] = parse_value(text, getattr(base, key))
    return out


def build_parser() -> argparse.ArgumentParser:
    """``train`` and ``compare`` subcommands."""
    parser = argparse.ArgumentParser(
        prog="baselines.mnmpg.runner", description="VDN / QMIX / MNMPG on Skirmish maps."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("train", help="train methods x seeds on one map, one after the other")
    p.add_argument("--map", default="3m", help="a Skirmish map (default 3m)")
    p.add_argument("--methods", "--method", nargs="+", default=["qmix"], metavar="METHOD")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="SEED")
    p.add_argument("--env-steps", type=int, default=200_000, help="budget per run")
    p.add_argument("--eval-every", type=int, default=10_000, help="env steps between tests")
    p.add_argument("--eval-episodes", type=int, default=32, help="test battles")
    p.add_argument("--label", help="directory name instead of the method (ablations)")
    p.add_argument("--out", default="runs/mnmpg", help="root of the runs (default runs/mnmpg)")
    p.add_argument("--threads", type=int, default=1, help="torch and numba threads (default 1)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[],
                   metavar="KEY=VALUE", help="another MixArgs field: --set meta_lr=0")  # fmt: skip
    p = sub.add_parser("compare", help="figure and table of one map's runs")
    p.add_argument("map_dir", type=Path, metavar="DIR", help="OUT/<map>, e.g. runs/mnmpg/3m")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line (also ``metaenvs train mnmpg`` / ``metaenvs compare mnmpg``).

    Returns
    -------
    int
        0 on success, 1 if there is nothing to compare, 2 for bad usage or a run directory
        holding another config.
    """
    from baselines.mnmpg.learner import MixArgs

    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.command == "compare":
        try:
            paths = compare(ns.map_dir)
        except FileNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(paths[2].read_text(), end="")
        print(f"figure: {paths[0]}")
        return 0
    options = {"--env-steps": ns.env_steps, "--eval-every": ns.eval_every,
               "--eval-episodes": ns.eval_episodes, "--threads": ns.threads}  # fmt: skip
    for option, value in options.items():
        if value < 1:
            parser.error(f"{option} must be >= 1, got {value}")
    try:
        base = MixArgs(map_name=ns.map)
        changes = parse_overrides(base, ns.overrides)
        all_args = [
            MixArgs(**{**dataclasses.asdict(base), **changes, "method": m, "seed": s})
            for m in dict.fromkeys(ns.methods) for s in dict.fromkeys(ns.seeds)
        ]  # fmt: skip
        from metaenvs.games.skirmish_maps import get_map

        get_map(ns.map)
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    one_thread_per_run(ns.threads)
    for args in all_args:
        try:
            run_dir = run(args, ns.out, ns.env_steps, ns.eval_every, ns.eval_episodes,
                          ns.label, progress=not ns.no_progress)  # fmt: skip
        except ConfigMismatchError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        last = read_metrics(run_dir / "metrics.csv")
        print(f"{run_dir}: test win rate {last['test_win_rate'][-1]:.2f} "
              f"after {int(last['env_steps'][-1])} env steps")  # fmt: skip
    print(f"compare: metaenvs compare mnmpg {Path(ns.out) / ns.map}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
