"""The learning-peers meta-agents as an experiment (meta-mapg-learning-peers, Figure 2).

``metaenvs train peers --game ipd --methods meta_mapg meta_pg --seeds 0 1 2 --k 8
--horizon 50`` meta-trains one run per (method, seed) with :mod:`baselines.experiment`
into ``OUT/<game>/<method>/seed<S>/``::

    config.json      the PeerArgs, the game's paper defaults filled in (PeerArgs.resolved)
    metrics.csv      one row per validation: iteration, env steps, wall_s, env steps/s,
                     TRAIN_COLUMNS (means since the previous row), val_auc, val_r0..val_rL
    checkpoint.pt    learner state, the best-by-validation state, loop counters (+ .sha256)
    tb/              TensorBoard events
    test.json        meta-test of the best-by-validation state on the test split
    val_auc.png      validation AUC, and reward per joint policy, against iterations
    chain.png        test reward per joint policy phi_0 .. phi_L

The meta-agent is validated on the ``"val"`` personas before training, at every multiple
of ``eval_every`` and after the last iteration; as in the paper's appendix D the state
with the best validation AUC (the earliest on ties) is the one meta-tested on the
``"test"`` personas (:func:`meta_test`).  ``metaenvs compare peers OUT/<game>`` writes the
framework's summary of the validation AUC and the paper's outputs (:func:`report_test`):
``test_summary.md`` / ``test_summary.csv`` on the test AUC, ``adaptation.png`` (Figure
2: adaptation along the chain) and ``dynamics.png`` (appendix G: action probabilities
along the chain).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from baselines._runs import figure, mean_ci95, write_rows
from baselines.experiment import Experiment, RunContext
from baselines.experiment import main as experiment_main
from baselines.experiment.report import RunResult, plus_minus, verdict
from baselines.peers.learner import METHODS, PeerArgs, PeerMetaLearner

TRAIN_COLUMNS = ("train_auc", "policy_loss", "value_loss", "inner_lr_mean")
"""Learner metrics averaged over the iterations since the previous row of ``metrics.csv``."""
VAL_SEED = 0
"""Seed of every validation: each one replays the same draws (common random numbers)."""
TEST_SEED = 1
"""Seed of the meta-test."""
METHOD_ORDER = ("meta_mapg", "meta_mapg_om", "meta_pg", "no_own", "lola_dice", "reinforce")
"""Order (and colour) of the methods in figures and tables; other names come after."""
if set(METHOD_ORDER) != set(METHODS):
    raise ImportError("METHOD_ORDER must list every method of baselines.peers.learner")
TEST_SUMMARY_COLUMNS = (
    "method",
    "seeds",
    "test_auc_mean",
    "test_auc_ci95",
    "test_auc_paper_mean",
    "test_auc_paper_ci95",
    "reward_first_mean",
    "reward_first_ci95",
    "reward_last_mean",
    "reward_last_ci95",
    "best_iteration_mean",
    "iterations",
    "wall_min",
)
"""Columns of ``test_summary.csv`` (``*_ci95``: half-width of the 95% t interval over seeds)."""


# -- one run: validation and the counters of metrics.csv --------------------------------
def env_steps(learner: PeerMetaLearner) -> int:
    """Rounds played in meta-training (chains x joint policies x K trajectories x H)."""
    a = learner.args
    return learner.iteration * a.chains * (a.length + 1) * a.k * a.horizon


def evaluate(learner: PeerMetaLearner, args: PeerArgs, row: int) -> dict[str, float]:
    """Validation on the ``"val"`` personas: ``val_auc`` and the reward per joint policy."""
    result = learner.evaluate("val", seed=VAL_SEED, max_chains=args.eval_chains)
    reward = np.asarray(result.reward, dtype=float)
    if len(reward) != args.length + 1:
        raise RuntimeError(f"evaluate gave {len(reward)} rewards for L = {args.length}")
    auc = float(reward[learner.args.auc_from :].sum())  # resolved: never None
    return {"val_auc": auc, **{f"val_r{i}": float(r) for i, r in enumerate(reward)}}


def eval_columns(args: PeerArgs) -> tuple[str, ...]:
    """``val_auc`` (the sum of ``val_r{auc_from}`` .. ``val_rL``: phi_0..phi_L with the
    ``"ours"`` preset, the paper's phi_1..phi_L with ``"paper"``; it selects the
    checkpoint) and ``val_r0`` .. ``val_rL``, the validation reward per round at each
    joint policy."""
    return ("val_auc", *(f"val_r{i}" for i in range(args.length + 1)))


# -- the end of a run: meta-test of the best state --------------------------------------
def meta_test(context: RunContext) -> None:
    """Meta-test the best-by-validation state on every test persona: ``test.json``,
    ``val_auc.png`` and ``chain.png`` (redone only when stale: a resumed run, a lost file).

    ``test.json`` keys: ``auc`` (phi_0..phi_L), ``auc_paper`` (phi_1..phi_L), ``reward``,
    ``peer_reward``, ``meta_actions``, ``peer_actions`` (per joint policy, action
    frequencies), ``reward_by_kind`` (by the first peer's persona kind), ``actions``
    (action names), ``best_iteration``, ``best_val_auc``, ``iterations``, ``wall_s``
    (training and validation, as in ``metrics.csv``), ``test_s`` (the meta-test),
    ``game``, ``method``, ``seed``, ``test_seed``.
    """
    state, args, path = context.state, context.args, context.run_dir / "test.json"
    best, done = state.best, int(state.rows[-1]["iteration"])
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("iterations") == done and saved.get("best_iteration") == best["x"]:
            return
    learner = context.learner
    learner.load_state_dict(best["learner"])
    tick = time.perf_counter()
    result = learner.evaluate("test", seed=TEST_SEED)
    test_s = time.perf_counter() - tick
    meta_actions = np.asarray(result.meta_actions, dtype=float)
    test = {
        "game": args.game,
        "method": args.method,
        "seed": args.seed,
        "auc": float(result.auc),
        "auc_paper": float(result.auc_paper),
        "reward": _floats(result.reward),
        "peer_reward": _floats(result.peer_reward),
        "meta_actions": _floats(meta_actions),
        "peer_actions": _floats(result.peer_actions),
        "reward_by_kind": {str(k): _floats(v) for k, v in result.reward_by_kind.items()},
        "actions": _action_names(learner, meta_actions.shape[-1]),
        "best_iteration": int(best["x"]),
        "best_val_auc": float(best["value"]),
        "iterations": done,
        "wall_s": float(state.wall_s),
        "test_s": test_s,
        "test_seed": TEST_SEED,
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(test, indent=2) + "\n")
    os.replace(tmp, path)
    title = f"{context.run_dir.parent.parent.name}: {args.method}, seed {args.seed}"
    plot_run(state.rows, test, context.run_dir / "val_auc.png", title, learner.args.auc_from)
    plot_chain(test, context.run_dir / "chain.png", title)


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


def _phi_labels(n: int) -> list[str]:
    return [rf"$\phi_{{{i}}}$" for i in range(n)]


def plot_run(
    rows: Sequence[dict[str, float]],
    test: dict[str, Any],
    path: Path,
    title: str,
    auc_from: int = 0,
) -> None:
    """Validation AUC (over phi_{auc_from}..phi_L; the train AUC between validations)
    against iterations, and beside it the validation reward per round of every joint
    policy phi_l."""
    x = [r["iteration"] for r in rows]
    fig = figure(11.0, 4.0)
    ax, ax_pos = fig.subplots(1, 2)
    span = f"φ{auc_from}..φL"
    ax.plot(x, [r["val_auc"] for r in rows], "o-", ms=3, label=f"validation AUC {span}")
    train = [r["train_auc"] for r in rows]
    if np.isfinite(train).any():
        ax.plot(x, train, "-", alpha=0.6, label="train AUC φ0..φL (mean since previous row)")
    best = test["best_iteration"]
    ax.plot([best], [test["best_val_auc"]], "*", ms=12, color="C3", label=f"best ({best})")
    test_auc = test["auc_paper"] if auc_from else test["auc"]
    ax.axhline(test_auc, color="C3", ls=":", lw=1, label=f"test AUC {span} of the best")
    ax.set_xlabel("meta-training iteration")
    ax.set_ylabel("AUC (sum of reward per round over the chain)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    from matplotlib import colormaps  # matplotlib stays out of import time

    n_pos = sum(1 for key in rows[0] if key.startswith("val_r"))
    colors = colormaps["viridis"](np.linspace(0.0, 0.9, max(n_pos, 1)))  # dark φ0 .. light φL
    for i in range(n_pos):
        ax_pos.plot(
            x, [r[f"val_r{i}"] for r in rows], "-", color=colors[i], label=rf"$\phi_{{{i}}}$"
        )
    ax_pos.set_xlabel("meta-training iteration")
    ax_pos.set_ylabel("validation reward per round")
    ax_pos.set_title("per joint policy (dark: φ0, light: φL)")
    ax_pos.grid(alpha=0.3)
    ax_pos.legend(fontsize="x-small", ncol=2)
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


# -- compare: the paper's tables and figures on the meta-test ---------------------------
def report_test(exp_dir: Path, runs: dict[str, list[RunResult]]) -> list[Path]:
    """The meta-test results of every method of one experiment (runs with a ``test.json``).

    Writes, in ``exp_dir``:

    - ``test_summary.csv`` and ``test_summary.md``: :func:`summarize`, one row per method,
      with the verdict on the test AUC (:func:`summary_markdown`);
    - ``adaptation.png``: the paper's Figure 2, mean test reward per joint policy
      ``phi_0 .. phi_L`` with a 95% CI band over seeds, one panel for all test peers and,
      when the peers' personas have several kinds, one per kind (IPD: cooperating and
      defecting peers, Figures 2a and 2b);
    - ``dynamics.png``: the meta-agent's and the peers' action frequencies per joint
      policy, mean over seeds, one row per method (appendix G, Figures 9-16).

    Returns
    -------
    list of Path
        The four files written; none if no run has a ``test.json``.
    """
    results: dict[str, list[dict[str, Any]]] = {}
    config = None
    for method, seeds in runs.items():
        done = [r for r in seeds if (r.seed_dir / "test.json").is_file()]
        if done:
            results[method] = [json.loads((r.seed_dir / "test.json").read_text()) for r in done]
            config = config or done[0].config
    if not results:
        return []
    summary = summarize(results)
    names = ("test_summary.csv", "test_summary.md", "adaptation.png", "dynamics.png")
    paths = [exp_dir / n for n in names]
    write_rows(paths[0], summary, TEST_SUMMARY_COLUMNS)
    paths[1].write_text(summary_markdown(summary, exp_dir.name, config))
    plot_adaptation(results, paths[2], exp_dir.name)
    plot_dynamics(results, paths[3], exp_dir.name)
    return paths


def summarize(results: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row of :data:`TEST_SUMMARY_COLUMNS` per method (means and 95% CIs over seeds)."""
    summary = []
    for method, seeds in results.items():
        auc, auc_ci = mean_ci95([s["auc"] for s in seeds])
        paper, paper_ci = mean_ci95([float(np.sum(s["reward"][1:])) for s in seeds])
        first, first_ci = mean_ci95([s["reward"][0] for s in seeds])
        last, last_ci = mean_ci95([s["reward"][-1] for s in seeds])
        summary.append(
            {
                "method": method,
                "seeds": len(seeds),
                "test_auc_mean": float(auc),
                "test_auc_ci95": float(auc_ci),
                "test_auc_paper_mean": float(paper),
                "test_auc_paper_ci95": float(paper_ci),
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
        "| method | seeds | test AUC φ0..φL | test AUC φ1..φL (paper) | reward φ0 | reward φL "
        "| best iteration | iterations | wall-clock / run (min) |",
        "|:--|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for s in summary:
        lines.append(
            f"| {s['method']} | {s['seeds']} "
            f"| {plus_minus(s['test_auc_mean'], s['test_auc_ci95'])} "
            f"| {plus_minus(s['test_auc_paper_mean'], s['test_auc_paper_ci95'])} "
            f"| {plus_minus(s['reward_first_mean'], s['reward_first_ci95'])} "
            f"| {plus_minus(s['reward_last_mean'], s['reward_last_ci95'])} "
            f"| {s['best_iteration_mean']:.0f} | {s['iterations']:.0f} | {s['wall_min']:.2f} |"
        )
    lines.append("")
    lines.append(
        "Meta-test on the test personas of each seed's best iteration by validation AUC "
        "(mean over seeds when several); mean ± half-width of the 95% t confidence interval "
        "over seeds (no interval for one seed).  AUC: sum over the joint policies φ0..φL "
        "(or the paper's φ1..φL) of the meta-agent's average reward per round; the verdict "
        "is on the first; wall-clock: training and validation."
    )
    return "\n".join(lines) + "\n"


def _verdict(summary: Sequence[dict[str, Any]]) -> list[str]:
    """Who leads, whether the seeds allow a claim, and which methods had not converged."""
    if not summary:
        return ["No results."]
    text = verdict(summary, "test AUC", mean="test_auc_mean", ci="test_auc_ci95", label="method")
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


def _color(method: str, methods: Sequence[str]) -> str:
    """A method's colour: its place in METHOD_ORDER; other names after, each its own."""
    if method in METHOD_ORDER:
        rank = METHOD_ORDER.index(method)
    else:
        rank = len(METHOD_ORDER) + [m for m in methods if m not in METHOD_ORDER].index(method)
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
            mean, ci = mean_ci95(_stack(rows))
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


EXPERIMENT = Experiment(
    name="peers",
    description="Meta-agents against learning peers: Meta-MAPG, Meta-PG, LOLA-DiCE, REINFORCE "
    "and ablations (meta-mapg-learning-peers).",
    args_cls=PeerArgs,
    make_learner=PeerMetaLearner,
    methods=METHOD_ORDER,
    group_field="game",
    budget_field="iterations",
    every_field="eval_every",
    x_column="iteration",
    progress=lambda learner: learner.iteration,
    counters=lambda learner: {"iteration": learner.iteration, "env_steps": env_steps(learner)},
    train=lambda learner: learner.train_iteration(),
    evaluate=evaluate,
    train_columns=TRAIN_COLUMNS,
    eval_columns=eval_columns,
    score="val_auc",
    score_label="validation AUC",
    env_steps=env_steps,
    cadence="multiples",
    best_by="val_auc",
    finish=meta_test,
    report_hook=report_test,
    resolve=lambda args: args.resolved(),
    env_ids=lambda args: [args.game],
)


def main(argv: Sequence[str] | None = None) -> int:
    """``metaenvs train peers ...`` / ``metaenvs compare peers DIR``."""
    return experiment_main(EXPERIMENT, argv)


if __name__ == "__main__":
    raise SystemExit(main())
