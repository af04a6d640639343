"""The comm experiment (``baselines.comm.experiment``) through the shared framework.

Most tests swap in a fake learner (``dataclasses.replace`` of ``EXPERIMENT``, patched
into the module): deterministic numbers, a counter state, 4 episodes of 25 steps per
iteration, so they check the comm hooks (cadence, evaluation seeds, columns, figures,
the paper's table) without training.  The others run the real learner, tiny.
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

from baselines._runs import ConfigMismatchError  # noqa: E402
from baselines.comm import experiment as comm  # noqa: E402
from baselines.comm.learner import CommArgs  # noqa: E402
from baselines.experiment import compare, run  # noqa: E402
from baselines.experiment.report import load_runs, read_metrics, summarize  # noqa: E402
from metaenvs.cli import main as metaenvs_main  # noqa: E402
from metaenvs.config import field_docs  # noqa: E402

EPISODES_PER_ITERATION = 4
STEPS_PER_EPISODE = 25
COLUMNS = ["episodes", "env_steps", "wall_s", "env_steps_per_s", "train_reward", "messages",
           "eval_reward", "eval_messages"]  # fmt: skip


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
    """Counts what the loop asks of it; class-level logs survive between instances."""

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


@pytest.fixture
def fake(monkeypatch):
    """The comm experiment over :class:`FakeLearner`, also behind ``comm.main``."""
    FakeLearner.iterations = []
    FakeLearner.eval_seeds = []
    experiment = dataclasses.replace(comm.EXPERIMENT, args_cls=FakeArgs, make_learner=FakeLearner)
    monkeypatch.setattr(comm, "EXPERIMENT", experiment)
    return experiment


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_run_writes_config_metrics_tb_checkpoint_and_figure(tmp_path, fake):
    run_dir = comm.EXPERIMENT.run(FakeArgs(episodes=30, eval_every=10), tmp_path, progress=False)
    assert run_dir == tmp_path / "navigation_N3_l3" / "meta" / "seed0"
    for name in ("config.json", "metrics.csv", "checkpoint.pt", "reward.png"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    rows = read_rows(run_dir / "metrics.csv")
    assert list(rows[0]) == COLUMNS
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


def test_resume_continues_from_the_checkpoint(tmp_path, fake):
    run_dir = comm.EXPERIMENT.run(FakeArgs(episodes=20), tmp_path, progress=False)
    first = read_rows(run_dir / "metrics.csv")
    assert [int(r["episodes"]) for r in first] == [0, 12, 20]
    assert len(FakeLearner.iterations) == 5

    comm.EXPERIMENT.run(FakeArgs(episodes=40), tmp_path, progress=False)
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
    comm.EXPERIMENT.run(FakeArgs(episodes=40), tmp_path, progress=False)
    assert (len(FakeLearner.iterations), len(FakeLearner.eval_seeds)) == calls
    assert read_rows(run_dir / "metrics.csv") == rows


def test_resume_drops_rows_written_after_the_checkpoint(tmp_path, fake):
    run_dir = comm.EXPERIMENT.run(FakeArgs(episodes=20), tmp_path, progress=False)
    with open(run_dir / "metrics.csv", "a") as f:
        f.write("24,600,1.0,1,1,1,1,1\n")  # as if killed between the csv and the checkpoint
    comm.EXPERIMENT.run(FakeArgs(episodes=28), tmp_path, progress=False)
    rows = read_rows(run_dir / "metrics.csv")
    assert [int(r["episodes"]) for r in rows] == [0, 12, 20, 28]


def test_config_mismatch_raises_naming_the_fields(tmp_path, fake):
    comm.EXPERIMENT.run(FakeArgs(episodes=8), tmp_path, progress=False)
    with pytest.raises(ConfigMismatchError, match=r"lr \(saved 0.001, now 0.01\)") as info:
        comm.EXPERIMENT.run(
            FakeArgs(episodes=16, lr=1e-2, eval_episodes=3), tmp_path, progress=False
        )
    assert "eval_episodes (saved 2, now 3)" in str(info.value)
    assert not re.search(r"(?<!eval_)episodes \(", str(info.value))  # a budget may change
    assert FakeLearner.iterations == [(0, 4), (0, 8)]


def test_without_tensorboard_the_run_warns_and_goes_on(tmp_path, monkeypatch, fake):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.warns(UserWarning, match="TensorBoard logging skipped"):
        run_dir = comm.EXPERIMENT.run(FakeArgs(episodes=8), tmp_path, progress=False)
    assert not (run_dir / "tb").exists()
    assert len(read_rows(run_dir / "metrics.csv")) == 2


def test_compare_writes_the_summary_and_the_papers_figure_and_table(tmp_path, fake):
    for seed in (0, 1):
        comm.EXPERIMENT.run(FakeArgs(method="meta", seed=seed), tmp_path, progress=False)
    comm.EXPERIMENT.run(FakeArgs(method="none", seed=0, episodes=20), tmp_path, progress=False)
    env_dir = tmp_path / "navigation_N3_l3"
    paths = compare(fake, env_dir)
    names = ["summary.csv", "summary.md", "curves.png", "compare.png", "bandwidth.csv",
             "bandwidth.md"]  # fmt: skip
    assert [p.name for p in paths] == names and all(p.stat().st_size > 0 for p in paths)
    # eval rows at 0, 12, 20, 32, 40 episodes: the last 3 average to 3.07 (+ 1 for seed 1)
    final0 = np.mean([2.0, 3.2, 4.0])
    summary = {s["label"]: s for s in summarize(fake, load_runs(fake, env_dir))}
    assert list(summary) == ["meta", "none"]  # METHODS order, "full" skipped
    assert summary["meta"]["final_mean"] == pytest.approx(final0 + 0.5)
    t_sd = 12.706 * 0.5  # t(0.975, 1) * std / sqrt(2) of seeds 1 apart
    assert summary["meta"]["final_ci95"] == pytest.approx(t_sd, rel=1e-4)
    assert np.isnan(summary["none"]["final_ci95"])
    assert "no claim" in (env_dir / "summary.md").read_text()  # one seed of none

    meta, none = read_rows(env_dir / "bandwidth.csv")
    assert (meta["method"], none["method"]) == ("meta", "none")
    assert int(meta["seeds"]) == 2 and int(none["seeds"]) == 1
    assert float(meta["final_eval_reward_mean"]) == pytest.approx(final0 + 0.5)
    assert float(meta["final_eval_reward_std"]) == pytest.approx(0.5)
    assert float(none["final_eval_reward_std"]) == 0.0
    assert float(meta["final_messages"]) == pytest.approx(0.375)
    assert float(meta["env_steps"]) == 1000
    assert float(meta["env_steps_per_s"]) > 0 and float(meta["wall_min"]) >= 0
    table = (env_dir / "bandwidth.md").read_text()
    assert table.startswith("| method | seeds | final eval reward | messages / agent / step |")
    assert f"| meta | 2 | {final0 + 0.5:.2f} ± 0.50 | 0.375 |" in table

    only = compare(fake, env_dir, methods=["none"])
    assert [r["method"] for r in read_rows(only[4])] == ["none"]
    with pytest.raises(FileNotFoundError):
        compare(fake, tmp_path / "nosuch_env")


def test_cli_train_builds_args_for_methods_seeds_and_fields(tmp_path, capsys, fake):
    argv = ["train", "--methods", "meta", "none", "--seeds", "3", "4", "--episodes", "8"]
    argv += ["--eval-every", "4", "--out", str(tmp_path), "--no-progress"]
    argv += ["--lr", "0.5", "--hidden", "32,16", "--normalize", "false"]
    assert comm.main(argv) == 0
    for method in ("meta", "none"):
        for seed in (3, 4):
            run_dir = tmp_path / "navigation_N3_l3" / method / f"seed{seed}"
            config = (run_dir / "config.json").read_text()
            assert '"lr": 0.5' in config and '"normalize": false' in config
            assert '"hidden": [\n    32,\n    16\n  ]' in config
            assert [int(r["episodes"]) for r in read_rows(run_dir / "metrics.csv")] == [0, 4, 8]
    out = capsys.readouterr().out
    assert "seed4: eval reward 4.8 at episodes 8" in out
    assert f"compare: metaenvs compare comm {tmp_path / 'navigation_N3_l3'}" in out

    assert comm.main(["compare", str(tmp_path / "navigation_N3_l3")]) == 0
    out = capsys.readouterr().out
    assert "| none | 2 |" in out and "bandwidth.md" in out
    assert comm.main(["compare", str(tmp_path / "nothing")]) == 1


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--nosuch", "1"], "unrecognized arguments: --nosuch 1"),
        (["--lr", "fast"], "--lr: could not convert string to float: 'fast'"),
        (["--method", "bogus"], "unknown method(s) bogus; valid: meta, reinforce"),
        (["--seeds", "-1"], "--seeds must be >= 0"),
    ],
)
def test_cli_train_rejects_bad_options(tmp_path, capsys, extra, message, fake):
    with pytest.raises(SystemExit) as info:
        comm.main(["train", "--out", str(tmp_path), "--no-progress", *extra])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert FakeLearner.iterations == []


def test_cli_train_checks_comm_args_before_training(tmp_path, capsys):
    for bad, message in ((["--eval-episodes", "0"], "eval_episodes must be a positive int"),
                         (["--envs", "2.5"], "--envs: not an int: '2.5'")):  # fmt: skip
        with pytest.raises(SystemExit) as info:
            comm.main(["train", "--out", str(tmp_path), "--no-progress", *bad])
        assert info.value.code == 2 and message in capsys.readouterr().err
    assert not tmp_path.joinpath("navigation_N3_l3").exists()


def test_cli_train_reports_a_config_mismatch(tmp_path, capsys, fake):
    base = ["train", "--episodes", "4", "--out", str(tmp_path), "--no-progress"]
    assert comm.main(base) == 0
    assert comm.main([*base, "--lr", "0.1"]) == 2
    assert "lr (saved 0.001, now 0.1)" in capsys.readouterr().err


def test_metaenvs_train_and_compare_reach_the_comm_experiment(tmp_path, capsys, fake):
    argv = ["comm", "--method", "full", "--episodes", "4", "--out", str(tmp_path)]
    assert metaenvs_main(["train", *argv, "--no-progress"]) == 0
    assert (tmp_path / "navigation_N3_l3" / "full" / "seed0" / "checkpoint.pt").is_file()
    assert metaenvs_main(["compare", "comm", str(tmp_path / "navigation_N3_l3")]) == 0
    assert "| full | 1 |" in capsys.readouterr().out


def test_metaenvs_train_unknown_experiment_exits_2(capsys, monkeypatch):
    assert metaenvs_main(["train", "nosuch", "--env", "x"]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment 'nosuch'" in err and "comm" in err

    monkeypatch.setattr("metaenvs.cli.experiments", dict)
    assert metaenvs_main(["compare", "comm"]) == 2
    assert "pip install metaenvs[baselines]" in capsys.readouterr().err


def test_help_shows_every_field_with_its_docstring(capsys):
    with pytest.raises(SystemExit):
        comm.main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    fields = [f.name for f in dataclasses.fields(CommArgs) if f.name not in ("method", "seed")]
    docs = field_docs(CommArgs)
    for field in fields:
        assert f"--{field.replace('_', '-')} " in out, field
        if field in docs:
            assert " ".join(docs[field].split())[:40] in out, field
    assert "--methods" in out and "--seeds" in out and "stgs" in out


# -- the real learner, tiny ---------------------------------------------------------------
TINY = {"eval_every": 2, "eval_episodes": 1, "envs": 2, "warmup_episodes": 2, "batch_size": 32,
        "hidden": 16, "meta_k": 2, "buffer_size": 5000}  # fmt: skip


def tiny(method="reinforce", **changes):
    return CommArgs(method=method, **{**TINY, **changes})


def test_a_real_run_resumes_exactly(tmp_path):
    """Half the budget, then resumed to the whole, gives the rows of one uninterrupted run:
    networks, optimisers, replay and random states all come back from the checkpoint."""
    once = run(comm.EXPERIMENT, tiny(episodes=8), tmp_path / "a", progress=False)
    run(comm.EXPERIMENT, tiny(episodes=4), tmp_path / "b", progress=False)
    twice = run(comm.EXPERIMENT, tiny(episodes=8), tmp_path / "b", progress=False)
    assert (twice / "reward.png").is_file()
    a, b = read_metrics(once / "metrics.csv"), read_metrics(twice / "metrics.csv")
    assert list(a["episodes"]) == [0, 2, 4, 6, 8]
    for key in ("env_steps", "train_reward", "messages", "eval_reward", "eval_messages"):
        # torch's float sums may differ in the last bits between runs (test_comm_learners)
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, err_msg=key)
