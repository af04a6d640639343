"""The package's thread pool: every copy stepped once, same result for any thread count,
errors raised in the caller, clear errors for bad thread counts, safe after a fork."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

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


def sleepy_kernel(seen: list, lo: int, hi: int) -> None:
    """A stand-in kernel that releases the GIL a while, so pool threads take chunks."""
    time.sleep(0.005)
    seen.append((threading.get_ident(), lo, hi))


def test_large_batches_run_on_several_threads():
    seen: list = []
    th.run_copies(sleepy_kernel, (seen,), 64, min_parallel=1, threads=2)
    assert len({ident for ident, _, _ in seen}) == 2
    assert sorted((lo, hi) for _, lo, hi in seen)[0][0] == 0


def test_threads_grow_with_the_batch_up_to_the_limit():
    seen: list = []  # at the threshold 2 threads pay, from twice it 4, ...
    th.run_copies(sleepy_kernel, (seen,), 100, min_parallel=100, threads=8)
    assert len({ident for ident, _, _ in seen}) <= 2
    assert len(seen) == 2 * th.CHUNKS_PER_THREAD


@pytest.mark.parametrize("where", ["caller", "pool"])
def test_a_kernel_error_is_raised_in_the_caller(where):
    caller = threading.get_ident()

    def kernel(lo: int, hi: int) -> None:
        time.sleep(0.005)
        if (threading.get_ident() == caller) == (where == "caller"):
            raise FloatingPointError(f"a copy diverged in the {where}")

    with pytest.raises(FloatingPointError, match=f"diverged in the {where}"):
        th.run_copies(kernel, (), 64, min_parallel=1, threads=2)


def test_no_chunk_runs_after_the_caller_returns_from_an_error():
    running = []

    def kernel(lo: int, hi: int) -> None:
        running.append(1)
        time.sleep(0.01)
        running.pop()
        if lo == 0:
            raise KeyError("first chunk")

    with pytest.raises(KeyError):
        th.run_copies(kernel, (), 64, min_parallel=1, threads=4)
    assert running == []


def test_steps_from_several_python_threads_at_once():
    def stepper(threads: int, out: list) -> None:
        for _ in range(20):
            seen = np.zeros(97, dtype=np.int64)
            th.run_copies(record_chunks, (seen,), 97, min_parallel=1, threads=threads)
            out.append(bool((seen == 1).all()))

    results: list = []
    workers = [threading.Thread(target=stepper, args=(k, results)) for k in (2, 3, 5, 8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert results == [True] * 80


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
    with pytest.raises(error, match="threads must be"):
        metaenvs.make_core("navigation_N3_l3", threads=value)
    with pytest.raises(error, match="threads must be"):
        th.set_num_threads(value)
    core = metaenvs.make_core("navigation_N3_l3", threads=2)
    with pytest.raises(error, match="threads must be"):
        core.threads = value
    assert core.threads == 2


def test_numpy_integer_thread_counts_are_taken():
    assert metaenvs.make_core("ipd", threads=np.int64(2)).threads == 2


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
import threading, time
def kernel(seen, idents, lo, hi):
    time.sleep(0.005)
    idents.add(threading.get_ident())
    seen[lo:hi] += 1
seen, idents = np.zeros(64, dtype=np.int64), set()
th.run_copies(kernel, (seen, idents), 64, 1, 2)  # starts the pool in the parent
assert len(idents) == 2
pid = os.fork()
if pid == 0:
    child, idents = np.zeros(64, dtype=np.int64), set()
    th.run_copies(kernel, (child, idents), 64, 1, 2)
    os._exit(0 if (child == 1).all() and len(idents) == 2 else 3)
_, status = os.waitpid(pid, 0)
raise SystemExit(os.waitstatus_to_exitcode(status))
"""
    done = subprocess.run([sys.executable, "-c", script], timeout=120)
    assert done.returncode == 0
