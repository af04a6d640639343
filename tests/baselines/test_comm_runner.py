"""The experiment runner of the comm learners (``baselines.comm.runner``) over a fake learner.

The fake stands in for :class:`baselines.comm.learner.CommLearner`: deterministic numbers,
a counter state, 4 episodes of 25 steps per iteration, so no test trains anything.
"""

from __future__ import annotations

import csv
import dataclasses
import re
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

from baselines.comm import runner  # noqa: E402
from metaenvs.cli import main as metaenvs_main  # noqa: E402

FAKE_METHODS = ("meta", "reinforce", "stgs", "none", "full")
EPISODES_PER_ITERATION = 4
STEPS_PER_EPISODE = 25


@dataclasses.dataclass(frozen=True)
class FakeArgs:
    env: str = "navigation_N3_l3"
    method: str = "meta"
    seed: int = 0
    episodes: int = 40
    eval_every: int = 10
    eval_episodes: int = 2
    lr: float = 1e-3
    hidden: tuple[int, ...] = (64, 64)
    normalize: bool = True


class FakeLearner:
    """Counts what the runner asks of it; class-level logs survive between instances."""

    iterations: list[tuple[int, int]] = []  # (seed, episodes_done after the iteration)
    eval_seeds: list[int] = []

    def __init__(self, args: FakeArgs) -> None:
        self.args = args
        self.episodes_done = 0
        self.env_steps = 0
        self.counter = 0

    def train_iteration(self) -> dict[str, float]:
        self.counter += 1
        self.episodes_done += EPISODES_PER_ITERATION
        self.env_steps += EPISODES_PER_ITERATION * STEPS_PER_EPISODE
        FakeLearner.iterations.append((self.args.seed, self.episodes_done))
        return {
            "episodes": float(self.episodes_done),
            "env_steps": float(self.env_steps),
            "train_reward": float(self.counter),
            "messages": 0.5,
            "critic_loss": 1.0 / self.counter,
        }

    def evaluate(self, episodes: int, seed: int) -> dict[str, float]:
        FakeLearner.eval_seeds.append(seed)
        return {
            "eval_reward": self.episodes_done / 10 + self.args.seed,
            "eval_messages": 0.25 * (1 + self.args.seed),
        }

    def state_dict(self) -> dict:
        return {"counter": self.counter, "counters": (self.episodes_done, self.env_steps)}

    def load_state_dict(self, state: dict) -> None:
        self.counter = state["counter"]
        self.episodes_done, self.env_steps = state["counters"]


@pytest.fixture(autouse=True)
def fake_learner(monkeypatch):
    FakeLearner.iterations = []
    FakeLearner.eval_seeds = []
    monkeypatch.setattr(runner, "make_learner", FakeLearner)
    monkeypatch.setattr(runner, "make_args", FakeArgs)
    monkeypatch.setattr(runner, "known_methods", lambda: FAKE_METHODS)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_run_writes_config_metrics_tb_checkpoint_and_figure(tmp_path):
    args = FakeArgs(episodes=30, eval_every=10)
    run_dir = runner.run(args, tmp_path, progress=False)
    assert run_dir == tmp_path / "navigation_N3_l3" / "meta" / "seed0"
    for name in ("config.json", "metrics.csv", "checkpoint.pt", "reward.png"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    rows = read_rows(run_dir / "metrics.csv")
    assert list(rows[0]) == list(runner.COLUMNS)
    # 4 episodes per iteration: evaluations at 0, on crossing 10 and 20, and at the end (32)
    assert [int(r["episodes"]) for r in rows] == [0, 12, 20, 32]
    assert [int(r["env_steps"]) for r in rows] == [0, 300, 500, 800]
    assert FakeLearner.eval_seeds == [10_000, 10_001, 10_002, 10_003]
    # train reward / messages: means over the iterations since the previous evaluation
    assert rows[0]["train_reward"] == "nan"
    assert [float(r["train_reward"]) for r in rows[1:]] == [2.0, 4.5, 7.0]
    assert float(rows[1]["messages"]) == 0.5
    assert [float(r["eval_reward"]) for r in rows] == [0.0, 1.2, 2.0, 3.2]
    wall = [float(r["wall_s"]) for r in rows]
    assert wall == sorted(wall) and wall[0] >= 0
    assert all(float(r["env_steps_per_s"]) > 0 for r in rows[1:])


def test_resume_continues_from_the_checkpoint(tmp_path):
    runner.run(FakeArgs(episodes=20), tmp_path, progress=False)
    run_dir = tmp_path / "navigation_N3_l3" / "meta" / "seed0"
    first = read_rows(run_dir / "metrics.csv")
    assert [int(r["episodes"]) for r in first] == [0, 12, 20]
    assert len(FakeLearner.iterations) == 5

    runner.run(FakeArgs(episodes=40), tmp_path, progress=False)
    rows = read_rows(run_dir / "metrics.csv")
    # the first 20 episodes are not redone: 5 more iterations, from episode 24 on
    assert [e for _, e in FakeLearner.iterations[5:]] == [24, 28, 32, 36, 40]
    assert rows[:3] == first
    assert [int(r["episodes"]) for r in rows] == [0, 12, 20, 32, 40]
    assert FakeLearner.eval_seeds[3:] == [10_003, 10_004]
    # the learner state (its iteration counter) came back: train rewards continue
    assert [float(r["train_reward"]) for r in rows[3:]] == [7.0, 9.5]
    wall = [float(r["wall_s"]) for r in rows]
    assert wall == sorted(wall) and wall[3] >= wall[2]
    assert '"episodes": 40' in (run_dir / "config.json").read_text()

    # a budget already reached: nothing is trained nor evaluated
    calls = len(FakeLearner.iterations), len(FakeLearner.eval_seeds)
    runner.run(FakeArgs(episodes=40), tmp_path, progress=False)
    assert (len(FakeLearner.iterations), len(FakeLearner.eval_seeds)) == calls
    assert read_rows(run_dir / "metrics.csv") == rows


def test_resume_drops_rows_written_after_the_checkpoint(tmp_path):
    run_dir = runner.run(FakeArgs(episodes=20), tmp_path, progress=False)
    with open(run_dir / "metrics.csv", "a") as f:
        f.write("24,600,1.0,1,1,1,1,1\n")  # as if killed between the csv and the checkpoint
    runner.run(FakeArgs(episodes=28), tmp_path, progress=False)
    rows = read_rows(run_dir / "metrics.csv")
    assert [int(r["episodes"]) for r in rows] == [0, 12, 20, 28]


def test_config_mismatch_raises_naming_the_fields(tmp_path):
    runner.run(FakeArgs(episodes=8), tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"lr \(saved 0.001, now 0.01\)") as info:
        runner.run(FakeArgs(episodes=16, lr=1e-2, eval_episodes=3), tmp_path, progress=False)
    assert "eval_episodes (saved 2, now 3)" in str(info.value)
    assert not re.search(r"(?<!eval_)episodes \(", str(info.value))  # a budget may change
    assert FakeLearner.iterations == [(0, 4), (0, 8)]


def test_without_tensorboard_the_run_warns_and_goes_on(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.warns(UserWarning, match="TensorBoard logging skipped"):
        run_dir = runner.run(FakeArgs(episodes=8), tmp_path, progress=False)
    assert not (run_dir / "tb").exists()
    assert len(read_rows(run_dir / "metrics.csv")) == 2


def test_compare_plots_and_tabulates_mean_and_std_over_seeds(tmp_path):
    for seed in (0, 1):
        runner.run(FakeArgs(method="meta", seed=seed), tmp_path, progress=False)
    runner.run(FakeArgs(method="none", seed=0, episodes=20), tmp_path, progress=False)
    summary = runner.compare(tmp_path, "navigation_N3_l3")
    env_dir = tmp_path / "navigation_N3_l3"
    assert (env_dir / "compare.png").stat().st_size > 0
    assert [s["method"] for s in summary] == ["meta", "none"]  # METHODS order, "full" skipped
    meta, none = summary
    # eval rows at 0, 12, 20, 32, 40 episodes: the last 3 average to 3.07 (+ 1 for seed 1)
    final0 = np.mean([2.0, 3.2, 4.0])
    assert meta["seeds"] == 2
    assert meta["final_eval_reward_mean"] == pytest.approx(final0 + 0.5)
    assert meta["final_eval_reward_std"] == pytest.approx(0.5)
    assert meta["final_messages"] == pytest.approx(0.375)
    assert meta["env_steps"] == 1000
    assert meta["env_steps_per_s"] > 0 and meta["wall_min"] >= 0
    assert none["seeds"] == 1 and none["final_eval_reward_std"] == 0.0
    table = (env_dir / "summary.md").read_text()
    assert table.startswith("| method | seeds | final eval reward |")
    assert f"| meta | 2 | {final0 + 0.5:.2f} ± 0.50 |" in table
    assert [r["method"] for r in read_rows(env_dir / "summary.csv")] == ["meta", "none"]

    png = tmp_path / "figs" / "only_none.png"
    assert [s["method"] for s in runner.compare(tmp_path, "navigation_N3_l3", ["none"], png)] == [
        "none"
    ]
    assert png.is_file()
    with pytest.raises(FileNotFoundError):
        runner.compare(tmp_path, "nosuch_env")


def test_cli_train_builds_args_for_methods_seeds_and_overrides(tmp_path, capsys):
    argv = ["train", "--methods", "meta", "none", "--seeds", "2", "--seed0", "3"]
    argv += ["--episodes", "8", "--eval-every", "4", "--out", str(tmp_path), "--no-progress"]
    argv += ["--set", "lr=0.5", "--set", "hidden=32,16", "--set", "normalize=false"]
    assert runner.main(argv) == 0
    for method in ("meta", "none"):
        for seed in (3, 4):
            run_dir = tmp_path / "navigation_N3_l3" / method / f"seed{seed}"
            config = (run_dir / "config.json").read_text()
            assert '"lr": 0.5' in config and '"normalize": false' in config
            assert '"hidden": [\n    32,\n    16\n  ]' in config
            assert [int(r["episodes"]) for r in read_rows(run_dir / "metrics.csv")] == [0, 4, 8]
    assert "seed4: 8 episodes" in capsys.readouterr().out

    assert runner.main(["compare", "--env", "navigation_N3_l3", "--out", str(tmp_path)]) == 0
    assert "| none | 2 |" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "nosuch=1"], "unknown field 'nosuch' in --set; valid fields: eval_episodes, lr"),
        (["--set", "seed=1"], "set seed with --seed0/--seeds"),
        (["--set", "lr=fast"], "--set lr=fast"),
        (["--method", "bogus"], "unknown method(s) bogus; valid: meta, reinforce"),
    ],
)
def test_cli_train_rejects_bad_options(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as info:
        runner.main(["train", "--out", str(tmp_path), "--no-progress", *extra])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert FakeLearner.iterations == []


def test_cli_train_reports_a_config_mismatch(tmp_path, capsys):
    base = ["train", "--seeds", "1", "--episodes", "4", "--out", str(tmp_path), "--no-progress"]
    assert runner.main(base) == 0
    assert runner.main([*base, "--set", "lr=0.1"]) == 2
    assert "lr (saved 0.001, now 0.1)" in capsys.readouterr().err


def test_metaenvs_train_and_compare_reach_the_comm_runner(tmp_path, capsys):
    argv = ["comm", "--method", "full", "--seeds", "1", "--episodes", "4"]
    argv += ["--out", str(tmp_path), "--no-progress"]
    assert metaenvs_main(["train", *argv]) == 0
    assert (tmp_path / "navigation_N3_l3" / "full" / "seed0" / "checkpoint.pt").is_file()
    assert metaenvs_main(["compare", "comm", "--out", str(tmp_path)]) == 0
    assert "| full | 1 |" in capsys.readouterr().out


def test_metaenvs_train_unknown_experiment_exits_2(capsys, monkeypatch):
    assert metaenvs_main(["train", "nosuch", "--env", "x"]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment 'nosuch'" in err and "known: comm" in err

    monkeypatch.setattr("metaenvs.cli.experiments", dict)
    assert metaenvs_main(["compare", "comm"]) == 2
    assert "pip install metaenvs[baselines]" in capsys.readouterr().err
