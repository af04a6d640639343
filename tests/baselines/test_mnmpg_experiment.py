"""The MNMPG experiment through the shared framework: run folders, exact resume, config
checks, compare and the command line built from MixArgs."""

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from baselines._runs import ConfigMismatchError  # noqa: E402
from baselines.experiment import compare, run  # noqa: E402
from baselines.experiment.report import load_runs, read_metrics, summarize  # noqa: E402
from baselines.mnmpg.experiment import EXPERIMENT, main  # noqa: E402
from baselines.mnmpg.learner import MixArgs  # noqa: E402

TINY = {"n_envs": 4, "batch_size": 4, "meta_interval": 100, "epsilon_anneal_steps": 500,
        "eval_every": 200, "eval_episodes": 4}  # fmt: skip


def tiny(method="mnmpg", seed=0, **changes):
    return MixArgs(method=method, seed=seed, **{**TINY, **changes})


def test_a_run_writes_its_directory(tmp_path):
    run_dir = run(EXPERIMENT, tiny(env_steps=600), tmp_path, progress=False)
    assert run_dir == tmp_path / "3m" / "mnmpg" / "seed0"
    for name in ("config.json", "metrics.csv", "checkpoint.pt", "win_rate.png"):
        assert (run_dir / name).exists(), name
    m = read_metrics(run_dir / "metrics.csv")
    assert m["env_steps"][0] == 0 and m["env_steps"][-1] >= 600
    assert np.all(np.diff(m["env_steps"]) > 0)
    assert ((0 <= m["test_win_rate"]) & (m["test_win_rate"] <= 1)).all()
    for rate in ("env_steps_per_s", "td_steps_per_s"):
        assert np.isnan(m[rate][0]) and (m[rate][1:] > 0).all(), rate
    # one TD step per episode once the replay holds a batch (the exercise steps paid from it)
    assert (np.diff(m["td_steps"]) > 0).all() and m["td_steps"][-1] <= m["episodes"][-1]
    assert ((m["test_draw_rate"] >= 0) & (m["test_draw_rate"] <= 1)).all()
    assert json.loads((run_dir / "config.json").read_text())["method"] == "mnmpg"


def test_resuming_continues_exactly(tmp_path):
    """Half the budget, then resumed to the whole, gives the rows of one uninterrupted run:
    networks, optimisers, replay and random states all come back from the checkpoint."""
    once = run(EXPERIMENT, tiny(env_steps=800), tmp_path / "a", progress=False)
    run(EXPERIMENT, tiny(env_steps=400), tmp_path / "b", progress=False)
    twice = run(EXPERIMENT, tiny(env_steps=800), tmp_path / "b", progress=False)
    a, b = read_metrics(once / "metrics.csv"), read_metrics(twice / "metrics.csv")
    for key in ("env_steps", "test_win_rate", "test_return", "train_return", "td_loss"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    rows = len(b["env_steps"])
    run(EXPERIMENT, tiny(env_steps=800), tmp_path / "b", progress=False)  # done: no more rows
    assert len(read_metrics(twice / "metrics.csv")["env_steps"]) == rows


def test_another_config_in_the_same_directory_is_refused(tmp_path):
    run(EXPERIMENT, tiny(env_steps=200), tmp_path, progress=False)
    with pytest.raises(ConfigMismatchError, match="lr"):
        run(EXPERIMENT, tiny(env_steps=200, lr=1e-3), tmp_path, progress=False)


def test_compare_tabulates_labels_over_seeds(tmp_path):
    for seed in (0, 1):
        run(EXPERIMENT, tiny("qmix", seed, env_steps=400), tmp_path, progress=False)
    ablation = tiny("mnmpg", 0, env_steps=400, meta_lr=0.0, label="mnmpg_meta_lr0")
    run(EXPERIMENT, ablation, tmp_path, progress=False)
    paths = compare(EXPERIMENT, tmp_path / "3m")
    assert all(p.exists() for p in paths)
    text = paths[1].read_text()
    assert text.startswith("# mnmpg: 3m") and "| qmix | 2 |" in text
    assert "| mnmpg_meta_lr0 | 1 |" in text and "no claim" in text
    rows = {s["label"]: s for s in summarize(EXPERIMENT, load_runs(EXPERIMENT, tmp_path / "3m"))}
    finals = [
        read_metrics(tmp_path / "3m" / "qmix" / f"seed{s}" / "metrics.csv")["test_win_rate"][-1]
        for s in (0, 1)
    ]
    assert rows["qmix"]["final_mean"] == pytest.approx(np.mean(finals))
    assert np.isnan(rows["mnmpg_meta_lr0"]["final_ci95"])  # one seed: no interval
    # --until: every run compared at one budget, from the rows up to it
    metrics = read_metrics(tmp_path / "3m" / "qmix" / "seed0" / "metrics.csv")
    cut = float(metrics["env_steps"][1])
    early = {s["label"]: s for s in summarize(EXPERIMENT, load_runs(EXPERIMENT, tmp_path / "3m",
                                                                   until=cut))}  # fmt: skip
    assert early["qmix"]["budget"] <= cut < rows["qmix"]["budget"]
    seed0 = load_runs(EXPERIMENT, tmp_path / "3m", until=cut)["qmix"][0].metrics
    np.testing.assert_array_equal(seed0["test_win_rate"], metrics["test_win_rate"][:2])
    assert main(["compare", str(tmp_path / "3m"), "--until", str(cut)]) == 0


def test_command_line(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nothing")]) == 1
    with pytest.raises(SystemExit):
        main(["train", "--no-such-field", "1"])
    with pytest.raises(SystemExit):
        main(["train", "--map", "no_such_map"])
    with pytest.raises(SystemExit):
        main(["train", "--lr", "fast"])
    code = main(
        ["train", "--methods", "vdn", "--env-steps", "200", "--eval-every", "200",
         "--eval-episodes", "2", "--out", str(tmp_path), "--no-progress",
         "--n-envs", "2", "--batch-size", "2"]
    )  # fmt: skip
    assert code == 0 and "compare: metaenvs compare mnmpg" in capsys.readouterr().out
    saved = json.loads((tmp_path / "3m" / "vdn" / "seed0" / "config.json").read_text())
    assert saved["n_envs"] == 2 and saved["env_steps"] == 200


def test_help_shows_every_field_with_its_docstring(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    from metaenvs.config import field_docs

    for field, doc in field_docs(MixArgs).items():
        if field not in ("method", "seed"):
            assert f"--{field.replace('_', '-')}" in out
            assert " ".join(doc.split())[:40] in out, field
