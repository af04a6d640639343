"""``metaenvs train neurons`` through the shared framework: run folders, exact resume,
config checks before anything runs, the reference rules at the same rows, and compare's
loss-against-updates figure."""

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from baselines._runs import ConfigMismatchError  # noqa: E402
from baselines.experiment import run  # noqa: E402
from baselines.experiment.report import read_metrics  # noqa: E402
from baselines.neurons.experiment import EXPERIMENT, main, read_curve  # noqa: E402
from baselines.neurons.ppo import NeuronArgs  # noqa: E402
from metaenvs.config import field_docs  # noqa: E402

TINY = {"horizon": 4, "networks": 2, "eval_networks": 2, "hidden": 8, "eval_every": 2,
        "minibatches": 2, "epochs": 2}  # fmt: skip


def tiny(method="ppo", seed=0, **changes):
    return NeuronArgs(method=method, seed=seed, **{**TINY, **changes})


def test_a_run_writes_its_directory(tmp_path):
    run_dir = run(EXPERIMENT, tiny(iterations=4), tmp_path, progress=False)
    assert run_dir == tmp_path / "neurons_teacher" / "ppo" / "seed0"
    for name in ("config.json", "metrics.csv", "checkpoint.pt", "loss_curve.csv"):
        assert (run_dir / name).exists(), name
    m = read_metrics(run_dir / "metrics.csv")
    np.testing.assert_array_equal(m["iteration"], [0, 2, 4])
    np.testing.assert_array_equal(m["env_steps"], [0, 16, 32])  # 2 networks x 4 updates
    assert (m["eval_test_loss"] > 0).all() and (m["eval_score"] == -m["eval_test_loss"]).all()
    assert np.isnan(m["train_loss"][0]) and np.isfinite(m["train_loss"][1:]).all()
    curve = read_curve(run_dir)
    assert curve is not None and len(curve["update"]) == 5  # before and after each update
    # the curve's last held-out loss is the last row's (the same held-out runs and rule)
    assert curve["test_loss"][-1] == pytest.approx(m["eval_test_loss"][-1])
    assert json.loads((run_dir / "config.json").read_text())["policy"] == "synapse"


def test_resuming_continues_exactly(tmp_path):
    """Half the budget, then resumed to the whole, gives the rows of one uninterrupted run
    (policy, optimiser, normalisation statistics and the torch generator come back)."""
    once = run(EXPERIMENT, tiny(iterations=6), tmp_path / "a", progress=False)
    run(EXPERIMENT, tiny(iterations=2), tmp_path / "b", progress=False)
    twice = run(EXPERIMENT, tiny(iterations=6), tmp_path / "b", progress=False)
    a, b = read_metrics(once / "metrics.csv"), read_metrics(twice / "metrics.csv")
    for key in ("iteration", "env_steps", "train_loss", "approx_kl", "value_loss",
                "eval_test_loss", "eval_mean_loss"):  # fmt: skip
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert (once / "loss_curve.csv").read_text() == (twice / "loss_curve.csv").read_text()


def test_the_reference_rules_do_not_train_and_are_evaluated_at_the_same_rows(tmp_path):
    for method in ("sgd", "none"):
        run(EXPERIMENT, tiny(method, iterations=4), tmp_path, progress=False)
    sgd = read_metrics(tmp_path / "neurons_teacher" / "sgd" / "seed0" / "metrics.csv")
    none = read_metrics(tmp_path / "neurons_teacher" / "none" / "seed0" / "metrics.csv")
    np.testing.assert_array_equal(sgd["iteration"], [0, 2, 4])
    assert (sgd["env_steps"] == 0).all() and np.isnan(sgd["train_loss"]).all()
    assert np.ptp(sgd["eval_test_loss"]) == 0  # the same held-out runs at every row
    assert (sgd["eval_test_loss"] < none["eval_test_loss"]).all()


def test_another_config_in_the_same_directory_is_refused(tmp_path):
    run(EXPERIMENT, tiny(iterations=2), tmp_path, progress=False)
    with pytest.raises(ConfigMismatchError, match="lr"):
        run(EXPERIMENT, tiny(iterations=2, lr=1e-3), tmp_path, progress=False)


@pytest.mark.parametrize(
    ("changes", "match"),
    [({"env": "navigation_N3_l3"}, "neurons id"), ({"env": "neurons_teachr"}, "neurons_teacher"),
     ({"policy": "layer"}, "policy"), ({"method": "adam"}, "method"), ({"seed": 1000}, "seed"),
     ({"horizon": 0}, "horizon"), ({"lr": -1.0}, "lr"), ({"gae_lambda": 1.5}, "gae_lambda")],
)  # fmt: skip
def test_a_bad_config_raises_before_anything_runs(tmp_path, changes, match):
    with pytest.raises(ValueError, match=match):
        tiny(**changes)
    flags = [f"--{k.replace('_', '-')}" for k in changes if k != "method"]
    argv = ["train", "--out", str(tmp_path), "--no-progress"]
    for key, value in changes.items():
        argv += ["--methods" if key == "method" else flags.pop(0), str(value)]
    with pytest.raises(SystemExit):
        main(argv)
    assert not any(tmp_path.iterdir())  # nothing was written


def test_compare_draws_the_rules_against_inner_updates(tmp_path, capsys):
    for method in ("ppo", "sgd", "np", "wp"):
        for seed in (0, 1):
            run(EXPERIMENT, tiny(method, seed, iterations=2), tmp_path, progress=False)
    assert main(["compare", str(tmp_path / "neurons_teacher")]) == 0
    out = capsys.readouterr().out
    for name in ("summary.md", "curves.png", "rules.md", "updates.png"):
        assert (tmp_path / "neurons_teacher" / name).exists(), name
    assert "| sgd | 2 | 2 |" in out and "the rules on held-out inner runs" in out
    assert "±" in (tmp_path / "neurons_teacher" / "rules.md").read_text()


def test_the_command_line_trains_on_digits(tmp_path, capsys):
    code = main(["train", "--env", "neurons_digits_pca10", "--methods", "ppo", "wp",
                 "--iterations", "2", "--eval-every", "2", "--horizon", "3", "--networks", "2",
                 "--eval-networks", "2", "--hidden", "8", "--out", str(tmp_path),
                 "--no-progress"])  # fmt: skip
    assert code == 0 and "compare: metaenvs compare neurons" in capsys.readouterr().out
    m = read_metrics(tmp_path / "neurons_digits_pca10" / "ppo" / "seed0" / "metrics.csv")
    assert ((0 <= m["eval_test_accuracy"]) & (m["eval_test_accuracy"] <= 1)).all()


def test_help_shows_every_field_with_its_docstring(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for field, doc in field_docs(NeuronArgs).items():
        if field not in ("method", "seed"):
            assert f"--{field.replace('_', '-')}" in out
            assert " ".join(doc.split())[:40] in out, field
