"""The paper's 8-task comparison and Figure 4's ablations, read from finished runs.

``python -m baselines.comm.tasks runs/comm18`` reads ``runs/comm18/<task>/<method>/seed*/``
(one folder per task, as ``metaenvs train comm --name <task>`` writes them) and writes
``tasks.md``: one table of final eval rewards (mean ± 95% t interval over seeds) and
messages per agent per step, the ranks of the methods per task, and a verdict for each of
the paper's claims (section 5.2):

- ``meta`` is "consistently among the top two in all eight tasks";
- full communication is "among the worst in all tasks except for push_N3" (7 of 8);
- STGS is "among the worst in all tasks except for navigation_N6_l1 and push_N3" (6 of 8).

With ``--ablations NAME`` (default ``navigation_N3_l3``) it also tabulates the Figure 4
variants found as ``<root>/<NAME>_<variant>/meta/`` (``beta0``, ``noblend``, ``k1``,
``k5``, ``k20``; ``meta`` of the task itself is the default K = 10) against the claims
"both design choices are crucial" and "an intermediate value such as 5 and 10 tends to
work better than the extreme values of 1 and 20".

How a claim is judged (the paper's figures have no intervals; ours have three seeds):
a method is *among the top two* / *among the worst* (the bottom two of five) on a task by
its mean; it is *clearly not* when the 95% intervals separate it from the places the
claim names (for "top two": at least two methods whose interval lies wholly above
``meta``'s; for "among the worst": at least two methods whose interval lies wholly below
it). A claim is **reproduced** when it holds by the means on as many tasks as the paper
says, **not reproduced** when the intervals rule that out, and **inconclusive** otherwise.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from baselines._runs import mean_ci95, seed_number
from baselines.comm.experiment import FINAL_ROWS
from baselines.comm.learner import METHODS
from baselines.experiment.report import read_metrics

TASKS = ("navigation_N3_l3", "navigation_N6_l1", "navigation_N6_l6",
         "predator_prey_N3_M1_l3", "predator_prey_N6_M2_l1", "predator_prey_N6_M2_l6",
         "push_N3", "push_N6")  # fmt: skip
"""The paper's eight tasks (Table 1), in its order."""
WORST_CLAIMS = {"full": ("push_N3",), "stgs": ("navigation_N6_l1", "push_N3")}
"""Methods the paper finds among the worst on every task but these."""
ABLATIONS = {"": "meta (K = 10, β = 0.01, blending)", "beta0": "no entropy (β = 0)",
             "noblend": "no blending", "k1": "K = 1", "k5": "K = 5", "k20": "K = 20"}  # fmt: skip
"""Figure 4's variants: folder suffix -> label (``""``: the task's own ``meta`` runs)."""


@dataclass(frozen=True)
class Cell:
    """One method on one task: per-seed final eval rewards and their summary."""

    finals: np.ndarray
    messages: float
    episodes: int

    @property
    def mean(self) -> float:
        return float(self.finals.mean())

    @property
    def ci(self) -> float:
        return float(mean_ci95(self.finals)[1])

    @property
    def low(self) -> float:
        return self.mean - self.ci if np.isfinite(self.ci) else self.mean

    @property
    def high(self) -> float:
        return self.mean + self.ci if np.isfinite(self.ci) else self.mean


def finished(metrics_csv: Path, rows: dict[str, np.ndarray]) -> bool:
    """Whether the run reached the budget of its ``config.json`` (True without one)."""
    config = metrics_csv.parent / "config.json"
    if not config.exists() or not len(rows.get("episodes", [])):
        return bool(len(rows.get("episodes", [])))
    return rows["episodes"][-1] >= json.loads(config.read_text())["episodes"]


def read_cell(method_dir: Path) -> Cell | None:
    """The final eval reward of each finished seed under ``method_dir`` (the mean of its
    last ``FINAL_ROWS`` evaluations, cut at the shortest seed), or None without one.

    Runs still short of their budget are left out (a table of runs in progress would mix
    budgets)."""
    paths = sorted(method_dir.glob("seed*/metrics.csv"), key=seed_number)
    seeds = [rows for p in paths if finished(p, rows := read_metrics(p))]
    seeds = [s for s in seeds if len(s.get("eval_reward", []))]
    if not seeds:
        return None
    n = min(len(s["eval_reward"]) for s in seeds)
    k = min(FINAL_ROWS, n)
    finals = np.array([s["eval_reward"][n - k : n].mean() for s in seeds])
    messages = float(np.mean([s["eval_messages"][n - k : n].mean() for s in seeds]))
    return Cell(finals, messages, int(seeds[0]["episodes"][n - 1]))


def read_task(task_dir: Path, methods: Sequence[str] = METHODS) -> dict[str, Cell]:
    """``{method: Cell}`` for the methods with runs under ``task_dir``."""
    cells = {m: read_cell(task_dir / m) for m in methods}
    return {m: c for m, c in cells.items() if c is not None}


def ranks(cells: dict[str, Cell]) -> dict[str, int]:
    """1 = the highest mean final reward."""
    order = sorted(cells, key=lambda m: -cells[m].mean)
    return {m: order.index(m) + 1 for m in cells}


def clearly_above(cells: dict[str, Cell], method: str) -> int:
    """How many other methods' intervals lie wholly above ``method``'s."""
    return sum(c.low > cells[method].high for m, c in cells.items() if m != method)


def clearly_below(cells: dict[str, Cell], method: str) -> int:
    """How many other methods' intervals lie wholly below ``method``'s."""
    return sum(c.high < cells[method].low for m, c in cells.items() if m != method)


def claim_verdicts(table: dict[str, dict[str, Cell]]) -> list[tuple[str, str, str]]:
    """``(claim, verdict, evidence)`` for the paper's three claims over the tasks run."""
    out = []
    complete = {t: cells for t, cells in table.items() if set(METHODS) <= set(cells)}
    # meta among the top two on every task
    top = [t for t, cells in complete.items() if ranks(cells)["meta"] <= 2]
    out_of_top = [t for t, cells in complete.items() if clearly_above(cells, "meta") >= 2]
    if len(complete) == len(TASKS) and len(top) == len(TASKS):
        verdict = "reproduced"
    elif out_of_top:
        verdict = "not reproduced"
    else:
        verdict = "inconclusive"
    evidence = (f"top two by the mean on {len(top)} of {len(complete)} tasks"
                f" ({', '.join(top) or 'none'}); clearly below two methods on "
                f"{', '.join(out_of_top) or 'none'}")  # fmt: skip
    out.append(("meta among the top two on all 8 tasks", verdict, evidence))
    for method, exceptions in WORST_CLAIMS.items():
        need = len(TASKS) - len(exceptions)
        worst = [t for t, cells in complete.items() if ranks(cells)[method] >= len(METHODS) - 1]
        clear = [t for t, cells in complete.items() if clearly_below(cells, method) >= 2]
        if len(complete) == len(TASKS) and len(worst) >= need:
            verdict = "reproduced"
        elif len(TASKS) - len(clear) < need:
            verdict = "not reproduced"
        else:
            verdict = "inconclusive"
        evidence = (f"bottom two by the mean on {len(worst)} of {len(complete)} tasks "
                    f"({', '.join(worst) or 'none'}); clearly above two methods on "
                    f"{', '.join(clear) or 'none'}")  # fmt: skip
        out.append((f"{method} among the worst on {need} of 8 tasks", verdict, evidence))
    return out


def tasks_markdown(
    root: Path, tasks: Sequence[str] = TASKS
) -> tuple[str, dict[str, dict[str, Cell]]]:
    """The 8-task table (final eval reward mean ± 95% interval, rank, messages per agent per
    step) and the claims' verdicts, as Markdown; and the cells it was made from."""
    table = {t: read_task(root / t) for t in tasks if (root / t).is_dir()}
    table = {t: cells for t, cells in table.items() if cells}
    lines = ["| task | episodes | seeds | " + " | ".join(METHODS) + " |",
             "|:--|--:|--:|" + "--:|" * len(METHODS)]  # fmt: skip
    for task, cells in table.items():
        rank = ranks(cells)
        row = []
        for m in METHODS:
            if m not in cells:
                row.append("—")
                continue
            c = cells[m]
            ci = f" ± {c.ci:.2f}" if np.isfinite(c.ci) else ""
            row.append(f"{c.mean:.2f}{ci} (#{rank[m]}, {c.messages:.2f} msg)")
        episodes = min(c.episodes for c in cells.values())
        seeds = min(len(c.finals) for c in cells.values())
        lines.append(f"| {task} | {episodes:,} | {seeds} | " + " | ".join(row) + " |")
    lines += ["", "Per seed the mean of its last 3 evaluations (32 episodes each, no exploration "
              "noise), then mean ± 95% t interval over seeds; #rank by the mean (1 = best); msg: "
              "messages per agent per step in the same evaluations.", "",
              "| claim (paper, section 5.2) | verdict | evidence |", "|:--|:--|:--|"]  # fmt: skip
    lines += [f"| {c} | **{v}** | {e} |" for c, v, e in claim_verdicts(table)]
    return "\n".join(lines) + "\n", table


def ablations_markdown(root: Path, task: str) -> str:
    """Figure 4's ablations on ``task``: one row per variant found."""
    lines = ["| variant | seeds | episodes | final eval reward | messages / agent / step |",
             "|:--|--:|--:|--:|--:|"]  # fmt: skip
    for suffix, label in ABLATIONS.items():
        cell = read_cell(root / (f"{task}_{suffix}" if suffix else task) / "meta")
        if cell is None:
            continue
        ci = f" ± {cell.ci:.2f}" if np.isfinite(cell.ci) else ""
        lines.append(f"| {label} | {len(cell.finals)} | {cell.episodes:,} "
                     f"| {cell.mean:.2f}{ci} | {cell.messages:.3f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def plot_tasks(table: dict[str, dict[str, Cell]], path: Path) -> None:
    """One panel per task: each method's final eval reward, mean and 95% interval."""
    from baselines._runs import figure

    n = len(table)
    cols = min(4, n)
    rows = -(-n // cols)
    fig = figure(3.2 * cols, 2.6 * rows)
    for i, (task, cells) in enumerate(table.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        for j, m in enumerate(METHODS):
            if m in cells:
                c = cells[m]
                err = c.ci if np.isfinite(c.ci) else 0.0
                ax.errorbar([j], [c.mean], yerr=[err], fmt="o", color=f"C{j}", capsize=3)
                ax.scatter(
                    np.full(len(c.finals), j + 0.15), c.finals, s=6, color=f"C{j}", alpha=0.5
                )
        ax.set_xticks(range(len(METHODS)), METHODS, fontsize=7)
        ax.set_title(task, fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle("final eval reward: mean, 95% interval and seeds", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m baselines.comm.tasks ROOT [--ablations TASK] [--plot PATH]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="folder holding one folder per task")
    parser.add_argument(
        "--ablations", default="navigation_N3_l3", help="task of Figure 4's variants"
    )
    parser.add_argument("--plot", type=Path, default=None, help="where to save the figure (PNG)")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        parser.error(f"no folder {args.root}")
    text, table = tasks_markdown(args.root)
    if not table:
        parser.error(f"no runs under {args.root}/<task>/<method>/seed*/ for the tasks {TASKS}")
    text += "\n" + ablations_markdown(args.root, args.ablations)
    (args.root / "tasks.md").write_text(text)
    plot_tasks(table, args.plot or args.root / "tasks.png")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
