"""The README's main job, at a small budget: it runs, writes its run directory, and learns."""

import csv
import json

import pytest

pytest.importorskip("stable_baselines3")

from baselines.ipd_focal import Args, train  # noqa: E402


def test_main_job_learns_the_best_response_to_always_defect(tmp_path):
    args = Args(out=str(tmp_path), peers=("always_defect",), timesteps=12_000, horizon=20,
                n_envs=4, eval_episodes=5)  # fmt: skip
    summary = train(args)
    stats = summary["always_defect"]
    assert stats["best_response_return"] == pytest.approx(-0.5 * 20)
    assert stats["ppo_greedy_return"] == pytest.approx(stats["best_response_return"])
    for name in ("config.json", "metrics.csv", "summary.json", "learning_curves.png"):
        assert (tmp_path / name).stat().st_size > 0
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert len(rows) >= 12_000 // 20 - 4 and {r["peer"] for r in rows} == {"always_defect"}
    assert json.loads((tmp_path / "config.json").read_text())["horizon"] == 20


def test_quick_ipd_smoke_runs_reports_progress_and_summarises(tmp_path, capsys):
    """The README's main job at --smoke: every method trains, reports, tests and is compared."""
    pytest.importorskip("torch")
    from baselines.peers.quick_ipd import METHODS, main

    assert main(["--out", str(tmp_path), "--smoke"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("main job: 4 methods x 1 seed(s), 2 meta-training iterations")
    for method in METHODS:  # a line per method and validation (0, 1, 2), with an estimate
        progress = [ln for ln in lines if f"] {method} " in ln and "val AUC" in ln]
        assert len(progress) == 3 and all("left" in ln or "estimating" in ln for ln in progress)
    root = tmp_path / "ipd"
    for method in METHODS:
        result = json.loads((root / method / "seed0" / "test.json").read_text())
        assert len(result["reward"]) == 2 and result["game"] == "ipd"
    rows = list(csv.DictReader(open(root / "test_summary.csv")))
    assert [r["method"] for r in rows] == list(METHODS)
    for name in ("adaptation.png", "dynamics.png", "test_summary.md", "summary.md", "curves.png"):
        assert (root / name).stat().st_size > 0
    summary = (root / "test_summary.md").read_text()
    assert summary in out  # the job prints it
    best = max(rows, key=lambda r: float(r["test_auc_mean"]))["method"]
    assert summary.startswith("# ipd: ")
    assert f"**Highest test AUC: {best}**" in summary
    assert "One seed per method: this ranking is no claim" in summary
    assert "Budget per run: 2 meta-training iterations" in summary and "K = 2" in summary


def test_summary_names_a_leader_only_when_its_interval_clears_the_others():
    from baselines.peers.experiment import summary_markdown

    def row(method, mean, ci, best=50):
        return {"method": method, "seeds": 5, "test_auc_mean": mean, "test_auc_ci95": ci,
                "test_auc_paper_mean": mean, "test_auc_paper_ci95": ci, "reward_first_mean": 0.0,
                "reward_first_ci95": 0.1, "reward_last_mean": 0.0,
                "reward_last_ci95": 0.1, "best_iteration_mean": best, "iterations": 150,
                "wall_min": 1.0}  # fmt: skip

    clear = summary_markdown([row("a", 1.0, 0.1), row("b", 0.5, 0.1)], "ipd")
    assert "clears every other method's" in clear and "Not converged" not in clear
    overlap = summary_markdown([row("a", 1.0, 0.4), row("b", 0.5, 0.2, best=150)], "ipd")
    assert "overlaps b: no method is ahead" in overlap
    assert "Not converged: the best validation of b was the last one" in overlap
