"""The learning-peers experiment through the shared framework (``baselines.peers.experiment``).

Most tests run over a fake learner standing in for
:class:`baselines.peers.learner.PeerMetaLearner`: its "weights" are its iteration count,
its validation AUC peaks at a seed-dependent iteration and its test AUC is ``100 +
weights``, so ``test.json`` shows which state was meta-tested.  Two tests train the real
learner on a tiny config (K = 2, H = 4, L = 2, 2 chains) for a few iterations.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import shutil
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

from baselines import _runs  # noqa: E402
from baselines._runs import ConfigMismatchError  # noqa: E402
from baselines.experiment import compare  # noqa: E402
from baselines.experiment import main as experiment_main  # noqa: E402
from baselines.experiment import run as experiment_run  # noqa: E402
from baselines.experiment.report import read_metrics  # noqa: E402
from baselines.peers import experiment as peers  # noqa: E402
from baselines.peers.learner import Evaluation, PeerArgs  # noqa: E402
from baselines.peers.quick_ipd import parse_overrides  # noqa: E402
from metaenvs.cli import main as metaenvs_main  # noqa: E402
from metaenvs.config import field_docs  # noqa: E402

TINY = {"k": 2, "horizon": 4, "length": 2, "chains": 2}
TINY_FLAGS = [x for k, v in TINY.items() for x in (f"--{k}", str(v))]


def peak(seed: int) -> int:
    """The iteration at which the fake's validation AUC is highest."""
    return 4 + 2 * seed


class FakeLearner:
    """Counts what the loop asks of it; class-level logs survive between instances."""

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
            auc_paper=float(reward[1:].sum()),
            meta_actions=actions,
            peer_actions=actions[:, ::-1],
            reward_by_kind={"cooperating": reward + 1, "defecting": reward - 1},
        )

    def state_dict(self) -> dict:
        return {"weights": self.weights, "iteration": self.iteration}

    def load_state_dict(self, state: dict) -> None:
        self.weights, self.iteration = state["weights"], state["iteration"]


FAKE = dataclasses.replace(peers.EXPERIMENT, make_learner=FakeLearner)


@pytest.fixture
def fake():
    FakeLearner.trained = []
    FakeLearner.evaluations = []
    return FAKE


def run(args, out, **kwargs):
    return experiment_run(FAKE, args, out, progress=False, **kwargs)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_run_writes_every_file_and_one_row_per_validation(tmp_path, fake):
    args = PeerArgs(method="meta_pg", length=2, iterations=5, eval_every=2, eval_chains=3)
    run_dir = run(args, tmp_path)
    assert run_dir == tmp_path / "ipd" / "meta_pg" / "seed0"
    for name in ("config.json", "metrics.csv", "checkpoint.pt", "test.json"):
        assert (run_dir / name).is_file(), name
    for name in ("val_auc.png", "chain.png"):
        assert (run_dir / name).stat().st_size > 0, name
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    rows = read_rows(run_dir / "metrics.csv")
    counters = ("iteration", "env_steps", "wall_s", "env_steps_per_s")
    validation = ("val_auc", "val_r0", "val_r1", "val_r2")
    assert tuple(rows[0]) == (*counters, *peers.TRAIN_COLUMNS, *validation)
    # validations before training, at multiples of eval_every and after the last iteration
    assert [int(r["iteration"]) for r in rows] == [0, 2, 4, 5]
    assert rows[0]["train_auc"] == "nan"
    # train metrics: means over the iterations since the previous row
    assert [float(r["train_auc"]) for r in rows[1:]] == [1.5, 3.5, 5.0]
    assert [float(r["policy_loss"]) for r in rows[1:]] == [-1.5, -3.5, -5.0]
    assert float(rows[1]["value_loss"]) == pytest.approx(0.75)
    assert [float(r["val_auc"]) for r in rows] == [-1.6, -0.4, 0.0, -0.1]
    assert float(rows[1]["val_r1"]) == pytest.approx(-0.4 / 3)
    # rounds played: chains x (L + 1) x K x H per iteration (IPD: H = 150)
    assert [int(r["env_steps"]) for r in rows] == [i * 5 * 3 * 64 * 150 for i in (0, 2, 4, 5)]
    assert rows[0]["env_steps_per_s"] == "nan"
    assert all(float(r["env_steps_per_s"]) > 0 for r in rows[1:])
    wall = [float(r["wall_s"]) for r in rows]
    assert wall == sorted(wall) and wall[0] >= 0
    val = [e for e in FakeLearner.evaluations if e[0] == "val"]
    assert {(s, c) for _, s, c, _ in val} == {(peers.VAL_SEED, 3)}
    assert [e[:3] for e in FakeLearner.evaluations if e[0] != "val"] == [
        ("test", peers.TEST_SEED, None)
    ]
    config = json.loads((run_dir / "config.json").read_text())
    # the resolved PeerArgs (paper defaults of IPD filled in) with the run's settings
    assert config["horizon"] == 150 and config["gamma"] == 0.96 and config["actor_lr"] == 1e-4
    assert (config["iterations"], config["eval_every"], config["eval_chains"]) == (5, 2, 3)


def test_test_json_reports_the_best_state_by_validation(tmp_path, fake):
    run_dir = run(PeerArgs(length=2, seed=1, iterations=9, eval_every=2), tmp_path, name="x")
    assert run_dir == tmp_path / "x" / "meta_mapg" / "seed1"
    metrics = read_metrics(run_dir / "metrics.csv")
    best_row = int(np.argmax(metrics["val_auc"]))
    test = json.loads((run_dir / "test.json").read_text())
    assert test["best_iteration"] == metrics["iteration"][best_row] == peak(1) == 6
    assert test["best_val_auc"] == metrics["val_auc"].max()
    # the state meta-tested is the best one, not the last one (iteration 9)
    assert test["auc"] == 100.0 + 6
    assert FakeLearner.evaluations[-1] == ("test", peers.TEST_SEED, None, 6.0)
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
    assert test["test_seed"] == peers.TEST_SEED


def test_the_earliest_of_equal_validations_is_the_best(tmp_path, fake, monkeypatch):
    monkeypatch.setattr(FakeLearner, "evaluate", _flat_validation)
    run_dir = run(PeerArgs(length=1, iterations=4, eval_every=1), tmp_path)
    assert json.loads((run_dir / "test.json").read_text())["best_iteration"] == 0


def _flat_validation(self, split, seed=0, max_chains=None):
    n = self.args.length + 1
    reward = np.zeros(n)
    return Evaluation(reward, reward, 0.0, 0.0, np.ones((n, 2)) / 2, np.ones((n, 2)) / 2, {})


def test_every_validation_is_reported_with_the_best_so_far(tmp_path, fake):
    seen = []
    run(PeerArgs(length=1, seed=0, iterations=6, eval_every=2), tmp_path, report=seen.append)
    assert [(m["iteration"], m["budget"], m["best_x"]) for m in seen] == [
        (0, 6, 0),
        (2, 6, 2),
        (4, 6, 4),
        (6, 6, 4),
    ]
    assert {(m["method"], m["seed"]) for m in seen} == {("meta_mapg", 0)}
    assert seen[-1]["best"] == 0.0 and seen[-1]["val_auc"] == pytest.approx(-0.4)
    assert all(m["wall_s"] >= 0 for m in seen)


def test_resume_continues_and_keeps_the_best_state(tmp_path, fake):
    args = PeerArgs(length=1, iterations=5, eval_every=2)
    run_dir = run(args, tmp_path)
    first = read_rows(run_dir / "metrics.csv")
    assert [int(r["iteration"]) for r in first] == [0, 2, 4, 5]
    assert len(FakeLearner.trained) == 5

    longer = dataclasses.replace(args, iterations=9)
    run(longer, tmp_path)
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
    run(longer, tmp_path)
    run(dataclasses.replace(args, iterations=3), tmp_path)
    assert (len(FakeLearner.trained), len(FakeLearner.evaluations)) == calls
    assert read_rows(run_dir / "metrics.csv") == rows
    # test.json lost (killed after the last checkpoint): only the meta-test is redone
    (run_dir / "test.json").unlink()
    run(longer, tmp_path)
    assert len(FakeLearner.trained) == calls[0]
    assert FakeLearner.evaluations[calls[1] :] == [("test", peers.TEST_SEED, None, 4.0)]
    assert json.loads((run_dir / "test.json").read_text()) == test | {
        "test_s": pytest.approx(test["test_s"], abs=1.0)
    }


def test_resume_drops_rows_written_after_the_checkpoint(tmp_path, fake):
    run_dir = run(PeerArgs(length=1, iterations=4, eval_every=2), tmp_path)
    with open(run_dir / "metrics.csv", "a") as f:
        f.write("6,1,1.0,1,1,1,1,1,1,1,1\n")  # as if killed between the csv and the checkpoint
    run(PeerArgs(length=1, iterations=6, eval_every=2), tmp_path)
    rows = read_rows(run_dir / "metrics.csv")
    assert [int(r["iteration"]) for r in rows] == [0, 2, 4, 6]


def test_config_mismatch_raises_naming_the_fields(tmp_path, fake):
    run(PeerArgs(k=4, iterations=2, eval_every=2), tmp_path)
    with pytest.raises(ConfigMismatchError, match=r"k \(saved 4, now 8\)") as info:
        run(PeerArgs(k=8, iterations=4, eval_every=1), tmp_path)
    assert "eval_every (saved 2, now 1)" in str(info.value)
    assert "iterations" not in str(info.value)  # a budget may change
    assert len(FakeLearner.trained) == 2
    # the paper's defaults resolved: horizon None and horizon 150 are the same IPD config
    run(PeerArgs(k=4, horizon=150, iterations=4, eval_every=2), tmp_path)
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


def test_compare_tabulates_the_test_auc_over_seeds_and_plots(tmp_path, fake):
    stats = pytest.importorskip("scipy.stats")
    runs = {"reinforce": [0], "meta_pg": [0, 1, 2], "meta_mapg": [0, 2]}
    for method, seeds in runs.items():
        for seed in seeds:
            run(PeerArgs(method=method, seed=seed, length=2, iterations=8, eval_every=2), tmp_path)
    env_dir = tmp_path / "ipd"
    (env_dir / "no_own" / "seed0").mkdir(parents=True)  # nothing at all: left out
    killed = env_dir / "lola_dice" / "seed0"  # metrics but no test.json: only in summary.md
    killed.mkdir(parents=True)
    shutil.copy(env_dir / "reinforce" / "seed0" / "metrics.csv", killed)
    paths = compare(fake, env_dir)
    assert [p.name for p in paths] == [
        "summary.csv",
        "summary.md",
        "curves.png",
        "test_summary.csv",
        "test_summary.md",
        "adaptation.png",
        "dynamics.png",
    ]
    assert all(p.stat().st_size > 0 for p in paths)
    assert [r["label"] for r in read_rows(env_dir / "summary.csv")] == [
        "meta_mapg",
        "meta_pg",
        "lola_dice",
        "reinforce",
    ]
    rows = read_rows(env_dir / "test_summary.csv")
    assert tuple(rows[0]) == peers.TEST_SUMMARY_COLUMNS
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
        adapted = np.array([sum(t["reward"][1:]) for t in tests])  # the paper's phi_1..phi_L
        assert float(row["test_auc_paper_mean"]) == pytest.approx(adapted.mean())
        assert all(t["auc_paper"] == pytest.approx(a) for t, a in zip(tests, adapted))
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
    table = (env_dir / "test_summary.md").read_text()
    assert table.startswith("# ipd: meta-test of the meta-agents")
    assert "| method | seeds | test AUC φ0..φL | test AUC φ1..φL (paper) | reward φ0 |" in table
    assert "| meta_pg | 3 | 106.000 ± 4.968 |" in table
    assert "| reinforce | 1 | 104.000 | 69.333 | 34.667 | 34.667 | 4 | 8 |" in table
    assert "Budget per run: 8 meta-training iterations (validation every 2)" in table
    assert "K = 64 trajectories of H = 150 rounds" in table  # resolved: the paper's IPD H

    only = compare(fake, env_dir, methods=["reinforce", "meta_pg"])
    assert [r["method"] for r in read_rows(only[3])] == ["meta_pg", "reinforce"]
    with pytest.raises(FileNotFoundError):
        compare(fake, tmp_path / "nosuch")


def test_cli_train_builds_args_for_methods_seeds_and_fields(tmp_path, fake, capsys):
    argv = ["train", "--game", "rps", "--methods", "meta_pg", "reinforce", "--seeds", "3", "5"]
    argv += ["--iterations", "4", "--eval-every", "2", "--out", str(tmp_path), "--no-progress"]
    argv += ["--name", "tiny", "--k", "8", "--horizon", "50", "--pcgrad", "false"]
    argv += ["--eval-chains", "7", "--inner-lr", "none", "--actor-lr", "1e-3"]
    assert experiment_main(fake, argv) == 0
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
            assert config["inner_lr"] == 0.01 and config["actor_lr"] == 1e-3  # RPS's, given
            assert [int(r["iteration"]) for r in read_rows(run_dir / "metrics.csv")] == [0, 2, 4]
    out = capsys.readouterr().out
    assert "seed5: validation AUC" in out and "at iteration 4" in out
    assert f"compare: metaenvs compare peers {tmp_path / 'tiny'}" in out
    assert sorted({(m, s) for m, s, _ in FakeLearner.trained}) == [
        ("meta_pg", 3),
        ("meta_pg", 5),
        ("reinforce", 3),
        ("reinforce", 5),
    ]

    assert experiment_main(fake, ["compare", str(tmp_path / "tiny")]) == 0
    out = capsys.readouterr().out  # the framework's summary, then the test-AUC table
    assert out.index("# peers: tiny") < out.index("# tiny: meta-test of the meta-agents")
    assert "| meta_pg | 2 |" in out and "| reinforce | 2 |" in out
    assert "adaptation.png" in out and "dynamics.png" in out
    assert experiment_main(fake, ["compare", str(tmp_path / "nosuch")]) == 1


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--nosuch", "1"], "unrecognized arguments: --nosuch"),
        (["--k", "many"], "--k:"),
        (["--horizon", "2.5"], "--horizon: not an int"),
        (["--horizon", "0"], "horizon"),
        (["--methods", "bogus"], "unknown method(s) bogus; valid: meta_mapg, meta_mapg_om,"),
        (["--game", "chess"], "game"),
        (["--iterations", "-1"], "iterations must be >= 0"),
        (["--eval-every", "0"], "eval_every must be >= 1"),
        (["--eval-chains", "0"], "eval_chains must be >= 1"),
        (["--seeds", "-1"], "--seeds must be >= 0"),
        (["--outer-optimizer", "sgd"], "outer_optimizer must be one of ('shared_adam', 'adam')"),
    ],
)
def test_cli_train_rejects_bad_options(tmp_path, fake, capsys, extra, message):
    with pytest.raises(SystemExit) as info:
        experiment_main(fake, ["train", "--out", str(tmp_path), "--no-progress", *extra])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert FakeLearner.trained == []


def test_cli_train_reports_a_config_mismatch(tmp_path, fake, capsys):
    base = ["train", "--iterations", "2", "--eval-every", "1", "--out", str(tmp_path)]
    base += ["--no-progress"]
    assert experiment_main(fake, base) == 0
    assert experiment_main(fake, [*base, "--hidden", "8"]) == 2
    assert "hidden (saved 64, now 8)" in capsys.readouterr().err


def test_help_shows_every_field_with_its_docstring(capsys):
    with pytest.raises(SystemExit):
        peers.main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    docs = field_docs(PeerArgs)
    assert {"iterations", "eval_every", "eval_chains"} <= set(docs)
    for field in dataclasses.fields(PeerArgs):
        if field.name not in ("method", "seed"):
            assert f"--{field.name.replace('_', '-')}" in out, field.name
            assert " ".join(docs[field.name].split())[:40] in out, field.name


def test_the_main_jobs_overrides_are_typed_by_their_fields():
    got = parse_overrides(["horizon=20", "gamma=0.5", "actor_lr=1e-3", "k=1e2"])
    assert got == {"horizon": 20, "gamma": 0.5, "actor_lr": 1e-3, "k": 100}
    assert isinstance(got["horizon"], int) and isinstance(got["gamma"], float)
    assert parse_overrides(["inner_lr=none"]) == {"inner_lr": None}
    with pytest.raises(ValueError, match="not an int"):
        parse_overrides(["horizon=2.5"])
    with pytest.raises(ValueError, match="unknown field 'nosuch' in --set; valid fields: k,"):
        parse_overrides(["nosuch=1"])
    with pytest.raises(ValueError, match="iterations is set by the job"):
        parse_overrides(["iterations=3"])


# -- the real learner, tiny ------------------------------------------------------------
def test_metaenvs_train_and_compare_peers_with_the_real_learner(tmp_path, capsys):
    torch.set_num_threads(1)
    argv = ["train", "peers", "--methods", "reinforce", "meta_pg", "--seeds", "0"]
    argv += ["--iterations", "3", "--eval-every", "2", "--out", str(tmp_path), "--no-progress"]
    assert metaenvs_main([*argv, *TINY_FLAGS]) == 0
    env_dir = tmp_path / "ipd"
    for method in ("reinforce", "meta_pg"):
        run_dir = env_dir / method / "seed0"
        metrics = read_metrics(run_dir / "metrics.csv")
        assert metrics["iteration"].tolist() == [0, 2, 3]
        assert metrics["env_steps"].tolist() == [i * 2 * 3 * 2 * 4 for i in (0, 2, 3)]
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
    assert "meta-test of the meta-agents" in out
    assert (env_dir / "adaptation.png").is_file() and (env_dir / "dynamics.png").is_file()


@pytest.mark.parametrize("outer_optimizer", ["shared_adam", "adam"])
def test_a_resumed_real_run_matches_an_uninterrupted_one(tmp_path, outer_optimizer):
    torch.set_num_threads(1)
    args = PeerArgs(
        method="meta_pg", iterations=4, eval_every=2, outer_optimizer=outer_optimizer, **TINY
    )
    whole = peers.EXPERIMENT.run(args, tmp_path / "a", progress=False)
    peers.EXPERIMENT.run(dataclasses.replace(args, iterations=2), tmp_path / "b", progress=False)
    resumed = peers.EXPERIMENT.run(args, tmp_path / "b", progress=False)
    a, b = (read_metrics(d / "metrics.csv") for d in (whole, resumed))
    assert list(a) == list(b)
    for column in a:
        if column not in ("wall_s", "env_steps_per_s"):
            np.testing.assert_array_equal(a[column], b[column], err_msg=column)
    test_a, test_b = (json.loads((d / "test.json").read_text()) for d in (whole, resumed))
    assert test_a["auc"] == test_b["auc"] and test_a["reward"] == test_b["reward"]
