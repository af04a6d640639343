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


def test_quick_ipd_comparison_runs_and_summarises(tmp_path):
    """The README's main job at a toy budget: every method trains, tests and is compared."""
    pytest.importorskip("torch")
    from baselines.peers.quick_ipd import METHODS, main

    code = main(["--out", str(tmp_path), "--iterations", "2", "--eval-every", "1",
                 "--set", "k=2", "horizon=4", "length=1", "chains=2"])  # fmt: skip
    assert code == 0
    root = tmp_path / "ipd"
    for method in METHODS:
        result = json.loads((root / method / "seed0" / "test.json").read_text())
        assert len(result["reward"]) == 2 and result["game"] == "ipd"
    rows = list(csv.DictReader(open(root / "summary.csv")))
    assert [r["method"] for r in rows] == list(METHODS)
    for name in ("adaptation.png", "dynamics.png", "summary.md"):
        assert (root / name).stat().st_size > 0
