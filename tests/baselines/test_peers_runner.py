"""The experiment runner of the learning-peers meta-agents (``baselines.peers.runner``).

Most tests run over a fake learner standing in for
:class:`baselines.peers.learner.PeerMetaLearner`: its "weights" are its iteration count,
its validation AUC peaks at a seed-dependent iteration and its test AUC is ``100 +
weights``, so ``test.json`` shows which state was meta-tested.  Two tests train the real
learner on a tiny config (K = 2, H = 4, L = 2, 2 chains) for a few iterations.
"""

from __future__ import annotations

import csv
import json
import math
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

from baselines import _runs  # noqa: E402
from baselines.peers import runner  # noqa: E402
from baselines.peers.learner import Evaluation, PeerArgs  # noqa: E402
from metaenvs.cli import main as metaenvs_main  # noqa: E402

TINY = {"k": 2, "horizon": 4, "length": 2, "chains": 2}
TINY_SET = ["--set", *(f"{k}={v}" for k, v in TINY.items())]


def peak(seed: int) -> int:
    """The iteration at which the fake's validation AUC is highest."""
    return 4 + 2 * seed


class FakeLearner:
    """Counts what the runner asks of it; class-level logs survive between instances."""

    trained: list[tuple[str, int, int]] = []  # (method, seed, iteration after the step)
    evaluations: list[tuple[str, int, int | None, float]] = []  # split, seed, chains, weights

    def __init__(self, args: PeerArgs) -> None:
        self.args = args.resolved()
        self.iteration = 0
        self.weights = 0.0

    def train_iteration(self) -> dict[str, float]:
        self.iteration += 1
        self.weights = float(self.iteration)
        FakeLearner.trained.append((self.args.method, self.args.seed, self.iteration))
        return {
            "train_auc": float(self.iteration),
            "policy_loss": -float(self.iteration),
            "value_loss": 1.0 / self.iteration,
            "inner_lr_mean": 0.1,
            "grad_norm": 2.0,
        }

    def evaluate(self, split: str, seed: int = 0, max_chains: int | None = None) -> Evaluation:
        FakeLearner.evaluations.append((split, seed, max_chains, self.weights))
        n = self.args.length + 1
        if split == "val":
            auc = -((self.weights - peak(self.args.seed)) ** 2) / 10
        else:
            auc = 100.0 + self.weights
        reward = np.full(n, auc / n)
        actions = np.tile([0.25, 0.75], (n, 1))
        return Evaluation(
            reward=reward,
            peer_reward=-reward,
            auc=auc,
            meta_actions=actions,
            peer_actions=actions[:, ::-1],
            reward_by_kind={"cooperating": reward + 1, "defecting": reward - 1},
        )

    def state_dict(self) -> dict:
        return {"weights": self.weights, "iteration": self.iteration}

    def load_state_dict(self, state: dict) -> None:
        self.weights, self.iteration = state["weights"], state["iteration"]


@pytest.fixture
def fake(monkeypatch):
    FakeLearner.trained = []
    FakeLearner.evaluations = []
    monkeypatch.setattr(runner, "make_learner", FakeLearner)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_run_writes_every_file_and_one_row_per_validation(tmp_path, fake):
    args = PeerArgs(method="meta_pg", length=2)
    run_dir = runner.run(args, tmp_path, iterations=5, eval_every=2, eval_chains=3, progress=False)
    assert run_dir == tmp_path / "ipd" / "meta_pg" / "seed0"
    for name in ("config.json", "metrics.csv", "checkpoint.pt", "test.json"):
        assert (run_dir / name).is_file(), name
    for name in ("val_auc.png", "chain.png"):
        assert (run_dir / name).stat().st_size > 0, name
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    rows = read_rows(run_dir / "metrics.csv")
    assert tuple(rows[0]) == runner.columns(2)
    assert tuple(rows[0])[-4:] == ("val_auc", "val_r0", "val_r1", "val_r2")
    # validations before training, at multiples of eval_every and after the last iteration
    assert [int(r["iteration"]) for r in rows] == [0, 2, 4, 5]
    assert rows[0]["train_auc"] == "nan"
    # train metrics: means over the iterations since the previous row
    assert [float(r["train_auc"]) for r in rows[1:]] == [1.5, 3.5, 5.0]
    assert [float(r["policy_loss"]) for r in rows[1:]] == [-1.5, -3.5, -5.0]
    assert float(rows[1]["value_loss"]) == pytest.approx(0.75)
    assert [float(r["val_auc"]) for r in rows] == [-1.6, -0.4, 0.0, -0.1]
    assert float(rows[1]["val_r1"]) == pytest.approx(-0.4 / 3)
    wall = [float(r["wall_s"]) for r in rows]
    assert wall == sorted(wall) and wall[0] >= 0
    val = [e for e in FakeLearner.evaluations if e[0] == "val"]
    assert {(s, c) for _, s, c, _ in val} == {(runner.VAL_SEED, 3)}
    assert [e[:3] for e in FakeLearner.evaluations if e[0] != "val"] == [
        ("test", runner.TEST_SEED, None)
    ]
    config = json.loads((run_dir / "config.json").read_text())
    # the resolved PeerArgs (paper defaults of IPD filled in) and the runner's settings
    assert config["horizon"] == 150 and config["gamma"] == 0.96 and config["actor_lr"] == 1e-4
    assert (config["iterations"], config["eval_every"], config["eval_chains"]) == (5, 2, 3)


def test_test_json_reports_the_best_state_by_validation(tmp_path, fake):
    run_dir = runner.run(PeerArgs(length=2, seed=1), tmp_path, 9, 2, name="x", progress=False)
    assert run_dir == tmp_path / "x" / "meta_mapg" / "seed1"
    metrics = runner.read_metrics(run_dir / "metrics.csv")
    best_row = int(np.argmax(metrics["val_auc"]))
    test = json.loads((run_dir / "test.json").read_text())
    assert test["best_iteration"] == metrics["iteration"][best_row] == peak(1) == 6
    assert test["best_val_auc"] == metrics["val_auc"].max()
    # the state meta-tested is the best one, not the last one (iteration 9)
    assert test["auc"] == 100.0 + 6
    assert FakeLearner.evaluations[-1] == ("test", runner.TEST_SEED, None, 6.0)
    assert test["reward"] == pytest.approx([106 / 3] * 3)
    assert test["peer_reward"] == pytest.approx([-106 / 3] * 3)
    assert test["meta_actions"] == [[0.25, 0.75]] * 3
    assert test["peer_actions"] == [[0.75, 0.25]] * 3
    assert set(test["reward_by_kind"]) == {"cooperating", "defecting"}
    assert test["actions"] == ["action 0", "action 1"]  # the fake has no game to name them
    assert (test["iterations"], test["method"], test["seed"], test["game"]) == (
        9,
        "meta_mapg",
        1,
        "ipd",
    )
    assert test["wall_s"] == pytest.approx(metrics["wall_s"][-1]) and test["test_s"] >= 0


def test_resume_continues_and_keeps_the_best_state(tmp_path, fake):
    args = PeerArgs(length=1)
    run_dir = runner.run(args, tmp_path, iterations=5, eval_every=2, progress=False)
    first = read_rows(run_dir / "metrics.csv")
    assert [int(r["iteration"]) for r in first] == [0, 2, 4, 5]
    assert len(FakeLearner.trained) == 5

    runner.run(args, tmp_path, iterations=9, eval_every=2, progress=False)
    rows = read_rows(run_dir / "metrics.csv")
    # the first 5 iterations are not redone: 4 more, from iteration 6 on
    assert [it for _, _, it in FakeLearner.trained[5:]] == [6, 7, 8, 9]
    assert rows[:4] == first
    assert [int(r["iteration"]) for r in rows] == [0, 2, 4, 5, 6, 8, 9]
    assert [float(r["train_auc"]) for r in rows[4:]] == [6.0, 7.5, 9.0]
    wall = [float(r["wall_s"]) for r in rows]
    assert wall == sorted(wall)
    assert json.loads((run_dir / "config.json").read_text())["iterations"] == 9
    test = json.loads((run_dir / "test.json").read_text())
    # the best (iteration 4) came before the resume: it came back from the checkpoint
    assert (test["best_iteration"], test["auc"], test["iterations"]) == (4, 104.0, 9)

    # a budget already reached, test.json current: nothing is trained nor evaluated
    calls = len(FakeLearner.trained), len(FakeLearner.evaluations)
    runner.run(args, tmp_path, iterations=9, eval_every=2, progress=False)
    runner.run(args, tmp_path, iterations=3, eval_every=2, progress=False)
    assert (len(FakeLearner.trained), len(FakeLearner.evaluations)) == calls
    assert read_rows(run_dir / "metrics.csv") == rows
    # test.json lost (killed after the last checkpoint): only the meta-test is redone
    (run_dir / "test.json").unlink()
    runner.run(args, tmp_path, iterations=9, eval_every=2, progress=False)
    assert len(FakeLearner.trained) == calls[0]
    assert FakeLearner.evaluations[calls[1] :] == [("test", runner.TEST_SEED, None, 4.0)]
    assert json.loads((run_dir / "test.json").read_text()) == test | {
        "test_s": pytest.approx(test["test_s"], abs=1.0)
    }


def test_resume_drops_rows_written_after_the_checkpoint(tmp_path, fake):
    run_dir = runner.run(PeerArgs(length=1), tmp_path, 4, 2, progress=False)
    with open(run_dir / "metrics.csv", "a") as f:
        f.write("6,1.0,1,1,1,1,1,1,1\n")  # as if killed between the csv and the checkpoint
    runner.run(PeerArgs(length=1), tmp_path, 6, 2, progress=False)
    rows = read_rows(run_dir / "metrics.csv")
    assert [int(r["iteration"]) for r in rows] == [0, 2, 4, 6]


def test_config_mismatch_raises_naming_the_fields(tmp_path, fake):
    runner.run(PeerArgs(k=4), tmp_path, 2, 2, progress=False)
    with pytest.raises(runner.ConfigMismatchError, match=r"k \(saved 4, now 8\)") as info:
        runner.run(PeerArgs(k=8), tmp_path, 4, 1, progress=False)
    assert "eval_every (saved 2, now 1)" in str(info.value)
    assert "iterations" not in str(info.value)  # a budget may change
    assert len(FakeLearner.trained) == 2
    # the paper's defaults resolved: horizon None and horizon 150 are the same IPD config
    runner.run(PeerArgs(k=4, horizon=150), tmp_path, 4, 2, progress=False)
    assert len(FakeLearner.trained) == 4


def test_mean_ci95_is_the_t_interval(monkeypatch):
    stats = pytest.importorskip("scipy.stats")
    values = np.array([[1.0, 2.0], [2.0, 2.5], [4.5, 1.0], [3.0, 0.0]])
    mean, half = _runs.mean_ci95(values)
    n = len(values)
    expected = stats.t.ppf(0.975, n - 1) * values.std(axis=0, ddof=1) / np.sqrt(n)
    np.testing.assert_allclose(mean, values.mean(axis=0))
    np.testing.assert_allclose(half, expected)
    assert np.isnan(_runs.mean_ci95([3.0])[1])
    # without SciPy: a table, then an expansion
    exact = {df: float(stats.t.ppf(0.975, df)) for df in (1, 2, 5, 10, 11, 30, 31, 45, 200)}
    monkeypatch.setitem(sys.modules, "scipy", None)
    for df, quantile in exact.items():
        assert _runs.t_quantile_975(df) == pytest.approx(quantile, abs=2e-3)


def test_compare_tabulates_mean_and_ci_over_seeds_and_plots(tmp_path, fake):
    stats = pytest.importorskip("scipy.stats")
    runs = {"reinforce": [0], "meta_pg": [0, 1, 2], "meta_mapg": [0, 2]}
    for method, seeds in runs.items():
        for seed in seeds:
            runner.run(PeerArgs(method=method, seed=seed, length=2), tmp_path, 8, 2, progress=False)
    env_dir = tmp_path / "ipd"
    (env_dir / "lola_dice" / "seed0").mkdir(parents=True)  # no test.json: left out
    paths = runner.compare(env_dir)
    assert [p.name for p in paths] == [
        "summary.csv",
        "summary.md",
        "adaptation.png",
        "dynamics.png",
    ]
    assert all(p.stat().st_size > 0 for p in paths)
    rows = read_rows(env_dir / "summary.csv")
    assert tuple(rows[0]) == runner.SUMMARY_COLUMNS
    assert [r["method"] for r in rows] == ["meta_mapg", "meta_pg", "reinforce"]
    assert [int(r["seeds"]) for r in rows] == [2, 3, 1]
    for row in rows:
        tests = [
            json.loads(p.read_text())
            for p in sorted((env_dir / row["method"]).glob("seed*/test.json"))
        ]
        aucs = np.array([t["auc"] for t in tests])
        n = len(aucs)
        assert float(row["test_auc_mean"]) == pytest.approx(aucs.mean())
        last = np.array([t["reward"][-1] for t in tests])
        assert float(row["reward_last_mean"]) == pytest.approx(last.mean())
        assert float(row["best_iteration_mean"]) == pytest.approx(
            np.mean([t["best_iteration"] for t in tests])
        )
        if n > 1:
            half = stats.t.ppf(0.975, n - 1) * aucs.std(ddof=1) / math.sqrt(n)
            assert float(row["test_auc_ci95"]) == pytest.approx(half)
            assert half > 0
        else:
            assert math.isnan(float(row["test_auc_ci95"]))
    # meta_pg: best iterations 4, 6, 8 (the fake's peaks), so test AUCs 104, 106, 108
    assert float(rows[1]["test_auc_mean"]) == pytest.approx(106.0)
    assert float(rows[1]["test_auc_ci95"]) == pytest.approx(stats.t.ppf(0.975, 2) * 2 / 3**0.5)
    table = (env_dir / "summary.md").read_text()
    assert (
        table.startswith("# ipd: ")
        and "| method | seeds | test AUC | reward φ0 | reward φL |" in table
    )
    assert "| meta_pg | 3 | 106.000 ± 4.968 |" in table
    assert "| reinforce | 1 | 104.000 | 34.667 | 34.667 | 4 | 8 |" in table

    only = runner.compare(env_dir, methods=["reinforce", "meta_pg"])
    assert [r["method"] for r in read_rows(only[0])] == ["meta_pg", "reinforce"]
    with pytest.raises(FileNotFoundError):
        runner.compare(tmp_path / "nosuch")


def test_cli_train_builds_args_for_methods_seeds_and_overrides(tmp_path, fake, capsys):
    argv = ["train", "--game", "rps", "--methods", "meta_pg", "reinforce", "--seeds", "3", "5"]
    argv += ["--iterations", "4", "--eval-every", "2", "--out", str(tmp_path), "--no-progress"]
    argv += ["--name", "tiny", "--set", "k=8", "horizon=50", "--set", "pcgrad=false"]
    argv += ["--eval-chains", "7"]
    assert runner.main(argv) == 0
    for method in ("meta_pg", "reinforce"):
        for seed in (3, 5):
            run_dir = tmp_path / "tiny" / method / f"seed{seed}"
            config = json.loads((run_dir / "config.json").read_text())
            assert (config["game"], config["k"], config["horizon"], config["pcgrad"]) == (
                "rps",
                8,
                50,
                False,
            )
            assert config["gamma"] == 0.9 and config["eval_chains"] == 7
            assert [int(r["iteration"]) for r in read_rows(run_dir / "metrics.csv")] == [0, 2, 4]
    out = capsys.readouterr().out
    assert "seed5: 4 iterations, best val AUC" in out
    assert f"compare: metaenvs compare peers {tmp_path / 'tiny'}" in out
    assert sorted({(m, s) for m, s, _ in FakeLearner.trained}) == [
        ("meta_pg", 3),
        ("meta_pg", 5),
        ("reinforce", 3),
        ("reinforce", 5),
    ]

    assert runner.main(["compare", str(tmp_path / "tiny")]) == 0
    out = capsys.readouterr().out
    assert "| meta_pg | 2 |" in out and "| reinforce | 2 |" in out
    assert runner.main(["compare", str(tmp_path / "nosuch")]) == 1


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "nosuch=1"], "unknown field 'nosuch' in --set; valid fields: k, length,"),
        (["--set", "seed=1"], "set seed with --seeds"),
        (["--set", "game=rps"], "set game with --game"),
        (["--set", "iterations=3"], "set iterations with --iterations"),
        (["--set", "k=many"], "--set k=many"),
        (["--set", "horizon=0"], "horizon"),
        (["--methods", "bogus"], "unknown method(s) bogus; valid: meta_mapg, meta_pg"),
        (["--game", "chess"], "game"),
        (["--eval-every", "0"], "--eval-every must be >= 1"),
        (["--seeds", "-1"], "--seeds must be >= 0"),
    ],
)
def test_cli_train_rejects_bad_options(tmp_path, fake, capsys, extra, message):
    with pytest.raises(SystemExit) as info:
        runner.main(["train", "--out", str(tmp_path), "--no-progress", *extra])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert FakeLearner.trained == []


def test_cli_train_reports_a_config_mismatch(tmp_path, fake, capsys):
    base = ["train", "--iterations", "2", "--eval-every", "1", "--out", str(tmp_path)]
    base += ["--no-progress"]
    assert runner.main(base) == 0
    assert runner.main([*base, "--set", "hidden=8"]) == 2
    assert "hidden (saved 64, now 8)" in capsys.readouterr().err


def test_parse_overrides_types_none_defaults_by_the_game():
    base = PeerArgs(game="rps")
    got = runner.parse_overrides(base, ["horizon=20", "gamma=0.5", "actor_lr=1e-3", "k=1e2"])
    assert got == {"horizon": 20, "gamma": 0.5, "actor_lr": 1e-3, "k": 100}
    assert isinstance(got["horizon"], int) and isinstance(got["gamma"], float)
    assert runner.parse_overrides(base, ["inner_lr=none"]) == {"inner_lr": None}
    with pytest.raises(ValueError, match="not an int"):
        runner.parse_overrides(base, ["horizon=2.5"])


# -- the real learner, tiny ------------------------------------------------------------
def test_metaenvs_train_and_compare_peers_with_the_real_learner(tmp_path, capsys):
    torch.set_num_threads(1)
    argv = ["train", "peers", "--methods", "reinforce", "meta_pg", "--seeds", "0"]
    argv += ["--iterations", "3", "--eval-every", "2", "--out", str(tmp_path), "--no-progress"]
    assert metaenvs_main([*argv, *TINY_SET]) == 0
    env_dir = tmp_path / "ipd"
    for method in ("reinforce", "meta_pg"):
        run_dir = env_dir / method / "seed0"
        metrics = runner.read_metrics(run_dir / "metrics.csv")
        assert metrics["iteration"].tolist() == [0, 2, 3]
        assert np.isfinite(metrics["train_auc"][1:]).all()
        assert np.isfinite(metrics["inner_lr_mean"][1:]).all()
        np.testing.assert_allclose(
            metrics["val_auc"], metrics["val_r0"] + metrics["val_r1"] + metrics["val_r2"]
        )
        test = json.loads((run_dir / "test.json").read_text())
        assert test["best_iteration"] == metrics["iteration"][np.argmax(metrics["val_auc"])]
        assert test["actions"] == ["cooperate", "defect"]
        assert sorted(test["reward_by_kind"]) == ["cooperating", "defecting"]
        assert len(test["reward"]) == 3 and np.shape(test["meta_actions"]) == (3, 2)
        np.testing.assert_allclose(np.sum(test["peer_actions"], axis=1), 1.0)
    assert metaenvs_main(["compare", "peers", str(env_dir)]) == 0
    out = capsys.readouterr().out
    assert "| meta_pg | 1 |" in out and "| reinforce | 1 |" in out
    assert (env_dir / "adaptation.png").is_file() and (env_dir / "dynamics.png").is_file()


def test_a_resumed_real_run_matches_an_uninterrupted_one(tmp_path):
    torch.set_num_threads(1)
    args = PeerArgs(method="meta_pg", **TINY)
    whole = runner.run(args, tmp_path / "a", iterations=4, eval_every=2, progress=False)
    runner.run(args, tmp_path / "b", iterations=2, eval_every=2, progress=False)
    resumed = runner.run(args, tmp_path / "b", iterations=4, eval_every=2, progress=False)
    a, b = (runner.read_metrics(d / "metrics.csv") for d in (whole, resumed))
    for column in runner.columns(args.length):
        if column != "wall_s":
            np.testing.assert_array_equal(a[column], b[column], err_msg=column)
    test_a, test_b = (json.loads((d / "test.json").read_text()) for d in (whole, resumed))
    assert test_a["auc"] == test_b["auc"] and test_a["reward"] == test_b["reward"]
