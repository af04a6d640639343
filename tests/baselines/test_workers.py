"""Runs farmed out to Ray workers (baselines.experiment.workers) on a local Ray instance."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from baselines._runs import ConfigMismatchError, one_thread_per_run
from baselines.comm.experiment import EXPERIMENT
from baselines.comm.learner import CommArgs
from baselines.experiment import workers
from baselines.experiment.loop import run
from baselines.experiment.report import read_metrics

TIMING = ("wall_s", "env_steps_per_s")
SMALL = dict(env="navigation_N3_l3", episodes=240, eval_every=48, warmup_episodes=16,
             eval_episodes=8)  # fmt: skip


def runs_of(method_seeds: list[tuple[str, int]]) -> list[CommArgs]:
    return [CommArgs(**SMALL, method=m, seed=s) for m, s in method_seeds]


def same_metrics(a: Path, b: Path) -> None:
    """The metrics of runs ``a`` and ``b`` are equal, bit for bit (timing columns apart)."""
    ma, mb = read_metrics(a / "metrics.csv"), read_metrics(b / "metrics.csv")
    assert set(ma) == set(mb)
    for column in ma:
        if column not in TIMING:
            got, want = ma[column].tolist(), mb[column].tolist()
            assert got == pytest.approx(want, nan_ok=True, abs=0), column


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Path]:
    """The sequential runs, in this process, with the one torch thread per run that
    ``metaenvs train`` (``--threads 1``) and every Ray worker set: torch's products can
    round differently with another thread count, and training amplifies that."""
    one_thread_per_run(1)
    out = tmp_path_factory.mktemp("sequential")
    return {(a.method, a.seed): run(EXPERIMENT, a, out, progress=False)
            for a in runs_of([("meta", 0), ("none", 1)])}  # fmt: skip


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_two_workers_give_the_sequential_runs(local_ray, reference, tmp_path: Path) -> None:
    done: list[Path] = []
    folders = workers.run_on_ray(EXPERIMENT, runs_of([("meta", 0), ("none", 1)]), tmp_path,
                                 on_done=done.append)  # fmt: skip
    assert [f.relative_to(tmp_path).as_posix() for f in folders] == [
        "navigation_N3_l3/meta/seed0", "navigation_N3_l3/none/seed1"]  # fmt: skip
    assert sorted(done) == sorted(folders)
    for folder, key in zip(folders, reference):
        same_metrics(folder, reference[key])


def _worker_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"ray::_run_in_worker" in cmdline:
                pids.append(int(entry))
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker in /proc")
def test_a_killed_worker_is_retried_and_resumes_without_losing_or_repeating_rows(
    local_ray, reference, tmp_path: Path
) -> None:
    args = runs_of([("meta", 0)])
    result: dict[str, object] = {}

    def train() -> None:
        try:
            result["folders"] = workers.run_on_ray(EXPERIMENT, args, tmp_path)
        except BaseException as err:  # reported below
            result["error"] = err

    thread = threading.Thread(target=train)
    thread.start()
    metrics = tmp_path / "navigation_N3_l3" / "meta" / "seed0" / "metrics.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait for the rows of 0 and 48 episodes
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    pids = _worker_pids()
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGKILL)
    thread.join(timeout=300)
    assert "error" not in result, result.get("error")
    folder = result["folders"][0]
    rows = read_metrics(folder / "metrics.csv")
    assert rows["episodes"].tolist() == [0, 48, 96, 144, 192, 240]
    # the kill came in the middle of a meta cycle (K = 10 trajectories); the resume
    # replays it, so every row is the uninterrupted run's
    same_metrics(folder, reference[("meta", 0)])


def test_a_folder_with_another_config_stops_before_any_task(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    first = CommArgs(**{**SMALL, "episodes": 16, "eval_every": 16}, method="none", seed=0)
    run(EXPERIMENT, first, tmp_path, progress=False)
    fresh = CommArgs(**SMALL, method="none", seed=1)
    other = CommArgs(**{**SMALL, "gamma": 0.9}, method="none", seed=0)
    with pytest.raises(ConfigMismatchError, match="gamma"):
        workers.run_on_ray(EXPERIMENT, [fresh, other], tmp_path)
    assert not (tmp_path / "navigation_N3_l3" / "none" / "seed1").exists()


def test_without_ray_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"metaenvs\[ray\]"):
        workers.run_on_ray(EXPERIMENT, runs_of([("none", 0)]), tmp_path)


def test_cli_refuses_zero_workers(capsys: pytest.CaptureFixture) -> None:
    from baselines.comm.experiment import main

    with pytest.raises(SystemExit):
        main(["train", "--workers", "0", "--episodes", "8"])
    assert "--workers must be >= 1" in capsys.readouterr().err
