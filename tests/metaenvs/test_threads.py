"""The package's thread pool: every copy stepped once, same result for any thread count,
errors raised in the caller, clear errors for bad thread counts, safe after a fork."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import metaenvs
from metaenvs import threads as th


def record_chunks(seen: np.ndarray, lo: int, hi: int) -> None:
    """A stand-in kernel: counts the copies it is given."""
    seen[lo:hi] += 1


@pytest.mark.parametrize(("batch", "threads"), [(1, 4), (7, 2), (8, 8), (100, 3), (1000, 2)])
def test_every_copy_is_stepped_exactly_once(batch, threads):
    seen = np.zeros(batch, dtype=np.int64)
    th.run_copies(record_chunks, (seen,), batch, min_parallel=1, threads=threads)
    np.testing.assert_array_equal(seen, 1)


def test_small_batches_stay_in_the_calling_thread():
    callers = []

    def kernel(lo: int, hi: int) -> None:
        callers.append((threading.get_ident(), lo, hi))

    th.run_copies(kernel, (), 100, min_parallel=101, threads=4)
    assert callers == [(threading.get_ident(), 0, 100)]


def test_a_kernel_error_is_raised_in_the_caller():
    def kernel(lo: int, hi: int) -> None:
        if lo == 0:
            raise FloatingPointError("copy 0 diverged")

    with pytest.raises(FloatingPointError, match="copy 0 diverged"):
        th.run_copies(kernel, (), 64, min_parallel=1, threads=4)


BIG_BATCHES = [("navigation_N3_l3", 300), ("predator_prey_N3_M1_l3", 260), ("skirmish_3m", 70)]


@pytest.mark.parametrize(("env_id", "batch"), BIG_BATCHES)
def test_thread_count_does_not_change_the_trajectory(env_id, batch):
    traces = []
    for threads in (1, 2, 5):
        core = metaenvs.make_core(env_id, threads=threads)
        core.min_parallel = 64  # the threaded path at a small batch
        assert batch >= core.min_parallel
        rng = np.random.default_rng(3)
        state = core.reset(batch, seed=9)
        rewards, obs = [], []
        for _ in range(30):
            actions = core.sample_actions(batch, rng)
            if core.masked_actions:
                actions = metaenvs.core.within_mask(core.action_mask(state), actions)
            r = core.step(state, actions)
            rewards.append(r.reward.copy())
            obs.append(r.obs.copy())
        traces.append((np.stack(rewards), np.stack(obs)))
    for rewards, obs in traces[1:]:
        np.testing.assert_array_equal(rewards, traces[0][0])
        np.testing.assert_array_equal(obs, traces[0][1])


def test_threads_keyword_reaches_every_face():
    assert metaenvs.make_core("navigation_N3_l3", threads=2).threads == 2
    assert metaenvs.make_vec("navigation_N3_l3", 4, threads=3).core.threads == 3
    assert metaenvs.make("navigation_N3_l3", threads=1).core.threads == 1
    assert metaenvs.make_core("navigation_N3_l3").threads is None


@pytest.mark.parametrize(
    ("value", "error"), [(0, ValueError), (-2, ValueError), (2.0, TypeError), (True, TypeError)]
)
def test_bad_thread_counts_are_refused(value, error):
    with pytest.raises(error, match="threads must be a positive int"):
        metaenvs.make_core("navigation_N3_l3", threads=value)
    with pytest.raises(error, match="threads must be a positive int"):
        th.set_num_threads(value)
    core = metaenvs.make_core("navigation_N3_l3", threads=2)
    with pytest.raises(error, match="threads must be a positive int"):
        core.threads = value
    assert core.threads == 2


def test_default_follows_set_num_threads(monkeypatch):
    monkeypatch.setattr(th, "_default", [])
    monkeypatch.setenv(th.ENV_VAR, "3")
    assert th.get_num_threads() == 3
    th.set_num_threads(1)
    assert th.get_num_threads() == 1


@pytest.mark.parametrize("raw", ["0", "two", "-1"])
def test_bad_environment_variable_is_named(monkeypatch, raw):
    monkeypatch.setattr(th, "_default", [])
    monkeypatch.setenv(th.ENV_VAR, raw)
    with pytest.raises(ValueError, match=th.ENV_VAR):
        th.get_num_threads()


def test_unset_environment_variable_gives_the_available_cores(monkeypatch):
    monkeypatch.setattr(th, "_default", [])
    monkeypatch.delenv(th.ENV_VAR, raising=False)
    assert th.get_num_threads() == th.available_cores()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_pool_works_in_a_forked_child():
    script = """
import os, numpy as np
from metaenvs import threads as th
def kernel(seen, lo, hi):
    seen[lo:hi] += 1
seen = np.zeros(64, dtype=np.int64)
th.run_copies(kernel, (seen,), 64, 1, 4)  # starts the pool in the parent
pid = os.fork()
if pid == 0:
    child = np.zeros(64, dtype=np.int64)
    th.run_copies(kernel, (child,), 64, 1, 4)
    os._exit(0 if (child == 1).all() else 3)
_, status = os.waitpid(pid, 0)
raise SystemExit(os.waitstatus_to_exitcode(status))
"""
    done = subprocess.run([sys.executable, "-c", script], timeout=120)
    assert done.returncode == 0
