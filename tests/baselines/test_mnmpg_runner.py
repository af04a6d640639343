"""The MNMPG experiment runner: run directories, exact resume, config checks, compare."""

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from baselines._runs import ConfigMismatchError  # noqa: E402
from baselines.mnmpg import runner  # noqa: E402
from baselines.mnmpg.learner import MixArgs  # noqa: E402

TINY = {"n_envs": 4, "batch_size": 4, "meta_interval": 100, "epsilon_anneal_steps": 500}


def tiny(method="mnmpg", seed=0, **changes):
    return MixArgs(method=method, seed=seed, **{**TINY, **changes})


def test_a_run_writes_its_directory(tmp_path):
    run_dir = runner.run(tiny(), tmp_path, 600, eval_every=200, eval_episodes=4, progress=False)
    assert run_dir == tmp_path / "3m" / "mnmpg" / "seed0"
    for name in ("config.json", "metrics.csv", "checkpoint.pt", "win_rate.png"):
        assert (run_dir / name).exists(), name
    m = runner.read_metrics(run_dir / "metrics.csv")
    assert m["env_steps"][0] == 0 and m["env_steps"][-1] >= 600
    assert np.all(np.diff(m["env_steps"]) > 0)
    assert ((0 <= m["test_win_rate"]) & (m["test_win_rate"] <= 1)).all()
    assert json.loads((run_dir / "config.json").read_text())["method"] == "mnmpg"


def test_resuming_continues_exactly(tmp_path):
    """Half the budget, then resumed to the whole, gives the rows of one uninterrupted run:
    networks, optimisers, replay and random states all come back from the checkpoint."""
    once = runner.run(tiny(), tmp_path / "a", 800, eval_every=200, eval_episodes=4,
                      progress=False)  # fmt: skip
    runner.run(tiny(), tmp_path / "b", 400, eval_every=200, eval_episodes=4, progress=False)
    twice = runner.run(tiny(), tmp_path / "b", 800, eval_every=200, eval_episodes=4,
                       progress=False)  # fmt: skip
    a, b = runner.read_metrics(once / "metrics.csv"), runner.read_metrics(twice / "metrics.csv")
    for key in ("env_steps", "test_win_rate", "test_return", "train_return", "td_loss"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_another_config_in_the_same_directory_is_refused(tmp_path):
    runner.run(tiny(), tmp_path, 200, eval_every=200, eval_episodes=4, progress=False)
    with pytest.raises(ConfigMismatchError, match="lr"):
        runner.run(tiny(lr=1e-3), tmp_path, 200, eval_every=200, eval_episodes=4, progress=False)


def test_compare_tabulates_labels_over_seeds(tmp_path):
    for seed in (0, 1):
        runner.run(tiny("qmix", seed), tmp_path, 400, 200, 4, progress=False)
    runner.run(tiny("mnmpg", 0, meta_lr=0.0), tmp_path, 400, 200, 4, label="mnmpg_meta_lr0",
               progress=False)  # fmt: skip
    paths = runner.compare(tmp_path / "3m")
    assert all(p.exists() for p in paths)
    text = paths[2].read_text()
    assert "| qmix | 2 |" in text and "| mnmpg_meta_lr0 | 1 |" in text
    rows = {s["label"]: s for s in runner.summarize(runner.load_curves(tmp_path / "3m"))}
    finals = [
        runner.read_metrics(tmp_path / "3m" / "qmix" / f"seed{s}" / "metrics.csv")["test_win_rate"][
            -1
        ]
        for s in (0, 1)
    ]
    assert rows["qmix"]["final_win_rate"] == pytest.approx(np.mean(finals))
    assert np.isnan(rows["mnmpg_meta_lr0"]["final_ci95"])  # one seed: no interval


def test_command_line(tmp_path, capsys):
    assert runner.main(["compare", str(tmp_path / "nothing")]) == 1
    with pytest.raises(SystemExit):
        runner.main(["train", "--set", "no_such_field=1"])
    with pytest.raises(SystemExit):
        runner.main(["train", "--map", "no_such_map"])
    code = runner.main(
        ["train", "--methods", "vdn", "--env-steps", "200", "--eval-every", "200",
         "--eval-episodes", "2", "--out", str(tmp_path), "--no-progress",
         "--set", "n_envs=2", "batch_size=2"]
    )  # fmt: skip
    assert code == 0 and "compare: metaenvs compare mnmpg" in capsys.readouterr().out
