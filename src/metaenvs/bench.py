"""Throughput timing of metaenvs cores and faces (used by ``metaenvs bench`` and ``benchmarks/``).

Every timing follows the same recipe, so numbers from different faces and from peer
libraries are comparable:

1. **Compile apart.**  The first ``reset`` + ``observe`` + ``step`` of a core in a
   process pays Numba compilation (or, with a warm on-disk cache, the cache load).  It is
   timed once and reported as ``compile_s``; it never enters a throughput number.
   :func:`time_compile` measures it in a fresh interpreter, with the on-disk cache either
   used (``cold_cache=False``) or bypassed (``cold_cache=True``, a real compile).
2. **Actions made before the clock starts.**  A few arrays (or dicts) of random valid
   actions are drawn up front and cycled through, so drawing actions is not timed.
3. **Warm up, then repeat.**  A few untimed steps, then ``repeats`` timed runs of
   ``steps`` steps each with :func:`time.perf_counter`.  The headline number is the
   **best** (fastest) run, as :mod:`timeit` recommends: slower runs measure other load on
   the machine, not the code.  The median is reported beside it.
4. **Agent-independent units.**  ``copy_steps_per_s`` is ``batch * steps / seconds``:
   steps of one copy of the game, whatever N is.  ``agent_steps_per_s`` multiplies it by
   the number of agents N.

Nothing here asserts on time; these are measurements, not tests.

Examples
--------
>>> from metaenvs.bench import Timing, time_core
>>> r = time_core("ipd", batch=64, timing=Timing(steps=20, repeats=2))
>>> r["copy_steps_per_s"] == 64 * 20 / r["seconds"]
True
>>> r["agent_steps_per_s"] == 2 * r["copy_steps_per_s"]
True
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from itertools import cycle, islice
from typing import Any

import numpy as np
from gymnasium import spaces

import metaenvs
from metaenvs.core import check_batch_size, legal_actions, within_mask
from metaenvs.core import random_actions as draw_actions

__all__ = [
    "Timing",
    "machine_info",
    "random_actions",
    "comparison_table",
    "compile_lines",
    "write_results",
    "time_compile",
    "time_core",
    "time_first_call",
    "time_parallel_env",
    "time_parallel_face",
    "time_vector_face",
]

#: Statistic reported as the headline number of every timing.
STATISTIC = "best"
DEFAULT_REPEATS = 5
DEFAULT_SECONDS = 0.5
DEFAULT_ACTION_SETS = 8
DEFAULT_WARMUP = 10


# -- helpers ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Timing:
    """How to time a loop: the same options for every face and peer.

    Attributes
    ----------
    steps : int, optional
        Steps per timed run; by default chosen so that one run lasts about ``seconds``.
    seconds : float
        Target length of one timed run when ``steps`` is None.
    repeats : int
        Number of timed runs; the best is the headline, the median is reported too.
    n_action_sets : int
        Number of pre-made action arrays (or dicts) cycled through.
    warmup : int
        Untimed steps before the first run.
    """

    steps: int | None = None
    seconds: float = DEFAULT_SECONDS
    repeats: int = DEFAULT_REPEATS
    n_action_sets: int = DEFAULT_ACTION_SETS
    warmup: int = DEFAULT_WARMUP

    def __post_init__(self) -> None:
        for name in ("repeats", "n_action_sets"):
            check_batch_size(getattr(self, name), name)
        if self.steps is not None:
            check_batch_size(self.steps, "steps")
        if self.steps is None and not self.seconds > 0:
            raise ValueError(f"seconds must be > 0, got {self.seconds!r}")

    def measure(self, run: Callable[[int], float]) -> tuple[int, list[float]]:
        """Warm up, pick ``steps`` (if not given) so one run lasts about ``seconds``, then
        time ``repeats`` runs.  ``run(n)`` performs ``n`` steps and returns the seconds."""
        run(self.warmup)
        steps = self.steps
        if steps is None:
            n, elapsed = 1, run(1)
            while elapsed < self.seconds / 10 and n < 2**40:
                n *= 4
                elapsed = run(n)
            steps = max(1, math.ceil(n * self.seconds / max(elapsed, 1e-9)))
        return steps, [run(steps) for _ in range(self.repeats)]


def random_actions(
    space: spaces.Space, shape: tuple[int, ...], n_sets: int, seed: int = 0
) -> list[np.ndarray]:
    """``n_sets`` arrays of random valid actions, each ``shape + space.shape``.

    See :func:`metaenvs.core.random_actions`; the arrays are cycled through while timing.
    """
    rng = np.random.default_rng(seed)
    return [draw_actions(space, shape, rng) for _ in range(n_sets)]


def _dict_actions(
    agents: Sequence[str],
    space_of: Callable[[str], spaces.Space],
    n_sets: int,
    seed: int,
) -> list[dict[str, Any]]:
    """Pre-made action dicts; discrete actions are plain Python ints (what users pass)."""
    per_agent = {
        a: random_actions(space_of(a), (n_sets,), 1, seed + i)[0] for i, a in enumerate(agents)
    }
    sets = []
    for k in range(n_sets):
        d = {}
        for a in agents:
            act = per_agent[a][k]
            d[a] = int(act) if np.ndim(act) == 0 and np.issubdtype(act.dtype, np.integer) else act
        sets.append(d)
    return sets


def _summary(times: list[float], steps: int, batch: int, n_agents: int) -> dict[str, Any]:
    best, median = min(times), statistics.median(times)
    repeats = len(times)
    copy_steps = batch * steps
    return {
        "batch": batch,
        "n_agents": n_agents,
        "steps": steps,
        "repeats": repeats,
        "statistic": f"{STATISTIC} of {repeats} repeats",
        "seconds": best,
        "seconds_median": median,
        "copy_steps_per_s": copy_steps / best,
        "copy_steps_per_s_median": copy_steps / median,
        "agent_steps_per_s": copy_steps * n_agents / best,
        "agent_steps_per_s_median": copy_steps * n_agents / median,
        "us_per_step": best / steps * 1e6,
    }


def _array_loop(
    step: Callable[[np.ndarray], Any], action_sets: list[np.ndarray]
) -> Callable[[int], float]:
    def run(n: int) -> float:
        acts = islice(cycle(action_sets), n)
        t0 = time.perf_counter()
        for a in acts:
            step(a)
        return time.perf_counter() - t0

    return run


# -- compile ----------------------------------------------------------------------------
def time_first_call(env_id: str, seed: int = 0, **kwargs: Any) -> dict[str, float]:
    """Time making a core and its first ``reset`` + ``observe`` + ``step`` in this process.

    In a fresh process this is the Numba compile (or on-disk cache load) of the core's
    kernels; once a core of the same kind has run in this process it is just one step.

    Parameters
    ----------
    env_id : str
        A registered id.
    seed : int
        Seed of the reset and of the random action.
    **kwargs
        Config keywords of the id.

    Returns
    -------
    dict
        ``make_s`` (building the core) and ``compile_s`` (first reset + observe + step).
    """
    t0 = time.perf_counter()
    core = metaenvs.make_core(env_id, **kwargs)
    t1 = time.perf_counter()
    action = random_actions(core.action_space, (1, core.n_agents), 1, seed)[0]
    t2 = time.perf_counter()
    state = core.reset(1, seed)
    core.observe(state)
    core.step(state, legal_actions(core, state, action))
    t3 = time.perf_counter()
    return {"make_s": t1 - t0, "compile_s": t3 - t2}


def time_compile(
    env_id: str, cold_cache: bool = False, timeout: float = 600.0, **kwargs: Any
) -> dict[str, Any]:
    """Compile time measured in a fresh Python interpreter.

    Parameters
    ----------
    env_id : str
        A registered id.
    cold_cache : bool
        If True, Numba's on-disk cache is pointed at an empty temporary folder
        (``NUMBA_CACHE_DIR``), so every kernel is really compiled; otherwise the cache
        in ``__pycache__`` is used as a user's second run would.
    timeout : float
        Seconds to wait for the child process.
    **kwargs
        JSON-serialisable config keywords (arrays are sent as nested lists).

    Returns
    -------
    dict
        ``import_s`` (``import metaenvs``), ``make_s``, ``compile_s`` (first reset +
        observe + step) and ``cold_cache``.

    Raises
    ------
    RuntimeError
        If the child process fails.
    """
    code = (
        "import json, sys, time\n"
        "t0 = time.perf_counter()\n"
        "import metaenvs.bench as b\n"
        "t1 = time.perf_counter()\n"
        "r = b.time_first_call(sys.argv[1], **json.loads(sys.argv[2]))\n"
        "r['import_s'] = t1 - t0\n"
        "print(json.dumps(r))\n"
    )
    args = json.dumps(kwargs, default=lambda o: o.tolist() if isinstance(o, np.ndarray) else str(o))
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="metaenvs-numba-cache-") as tmp:
        if cold_cache:
            env["NUMBA_CACHE_DIR"] = tmp
        proc = subprocess.run(
            [sys.executable, "-c", code, env_id, args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"compile timing of {env_id!r} failed:\n{proc.stderr.strip()}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"env_id": env_id, "cold_cache": cold_cache, **result}


# -- the batched core -------------------------------------------------------------------
def time_core(
    env_id: str, batch: int, seed: int = 0, timing: Timing = Timing(), **kwargs: Any
) -> dict[str, Any]:
    """Throughput of ``core.step`` over ``batch`` copies, with actions made in advance.

    Parameters
    ----------
    env_id : str
        A registered id.
    batch : int
        Number of copies B.
    seed : int
        Seed of the reset and of the random actions.
    timing : Timing
        Steps, repeats, warm-up and action sets.
    **kwargs
        Config keywords of the id.

    Returns
    -------
    dict
        ``face="core"``, ``env_id``, ``compile_s`` (the first reset + observe + step of
        this core, see :func:`time_first_call`), ``steps``, ``seconds`` (best run),
        ``copy_steps_per_s`` (``batch * steps / seconds``), ``agent_steps_per_s``, their
        ``*_median`` counterparts, ``us_per_step`` and ``statistic``.
    """
    batch = check_batch_size(batch)
    core = metaenvs.make_core(env_id, **kwargs)
    action_sets = random_actions(
        core.action_space, (batch, core.n_agents), timing.n_action_sets, seed
    )
    t0 = time.perf_counter()
    state = core.reset(batch, seed)
    core.observe(state)
    core.step(state, legal_actions(core, state, action_sets[0]))
    compile_s = time.perf_counter() - t0

    # with action masks, each pre-drawn array is moved onto the available actions inside
    # the timed loop (numpy work a learner sampling from the masks does too)
    steps, times = timing.measure(
        _array_loop(lambda a: core.step(state, legal_actions(core, state, a)), action_sets)
    )
    return {
        "env_id": metaenvs.spec(env_id).id,
        "face": "core",
        "compile_s": compile_s,
        **_summary(times, steps, batch, core.n_agents),
    }


# -- the PettingZoo face ------------------------------------------------------------------
def time_parallel_env(env: Any, seed: int = 0, timing: Timing = Timing()) -> dict[str, Any]:
    """Throughput of any PettingZoo ``ParallelEnv`` (ours or a peer library's).

    The loop is ``if not env.agents: env.reset()`` then ``env.step(actions)`` with
    pre-made action dicts (Python ints for discrete spaces); the resets at episode ends
    are part of the timed loop, as in a real rollout, and ``steps`` counts only steps.
    With action masks in the observations, each step sends the live agents' actions moved
    onto their masks (:func:`~metaenvs.core.within_mask`), inside the timed loop.

    Parameters
    ----------
    env : pettingzoo.ParallelEnv
        The environment; it is reset with ``seed`` first.
    seed, timing
        As in :func:`time_core`.

    Returns
    -------
    dict
        As :func:`time_core` with ``batch=1`` and ``face="parallel"``, without
        ``compile_s``.
    """
    obs, _ = env.reset(seed=seed)
    agents = list(env.possible_agents)
    action_sets = _dict_actions(agents, env.action_space, timing.n_action_sets, seed)
    masked = isinstance(obs[agents[0]], dict) and "action_mask" in obs[agents[0]]

    def run(n: int) -> float:
        nonlocal obs
        acts = islice(cycle(action_sets), n)
        t0 = time.perf_counter()
        for a in acts:
            if not env.agents:
                obs, _ = env.reset()
            if masked:  # live agents only, each action moved onto its mask
                a = {k: int(within_mask(obs[k]["action_mask"], np.int64(a[k]))) for k in env.agents}
            obs, *_ = env.step(a)
        return time.perf_counter() - t0

    steps, times = timing.measure(run)
    return {"face": "parallel", **_summary(times, steps, 1, len(agents))}


def time_parallel_face(
    env_id: str, seed: int = 0, timing: Timing = Timing(), **kwargs: Any
) -> dict[str, Any]:
    """Throughput of ``metaenvs.make(env_id)``, the PettingZoo face (B = 1, dict actions).

    See :func:`time_parallel_env` for the loop and :func:`time_core` for the parameters.
    """
    result = time_parallel_env(metaenvs.make(env_id, **kwargs), seed, timing)
    return {"env_id": metaenvs.spec(env_id).id, **result}


# -- the Gymnasium vector face --------------------------------------------------------------
def time_vector_face(
    env_id: str, num_envs: int, seed: int = 0, timing: Timing = Timing(), **kwargs: Any
) -> dict[str, Any]:
    """Throughput of ``metaenvs.make_vec(env_id, num_envs)``, the Gymnasium vector face.

    Actions are pre-made ``(num_envs, N)`` arrays; episodes restart inside the kernel.
    Parameters are as in :func:`time_core` (``num_envs`` is the batch).

    Returns
    -------
    dict
        As :func:`time_core` with ``face="vector"``, without ``compile_s``.
    """
    venv = metaenvs.make_vec(env_id, check_batch_size(num_envs, "num_envs"), **kwargs)
    n_agents = len(venv.agent_names)
    action_sets = random_actions(
        venv.core.action_space, (venv.num_envs, n_agents), timing.n_action_sets, seed
    )
    venv.reset(seed=seed)
    steps, times = timing.measure(
        _array_loop(lambda a: venv.step(legal_actions(venv.core, venv.state, a)), action_sets)
    )
    venv.close()
    return {
        "env_id": metaenvs.spec(env_id).id,
        "face": "vector",
        **_summary(times, steps, venv.num_envs, n_agents),
    }


def comparison_table(results: dict[str, Any], env_ids: list[str]) -> str:
    """A Markdown table of ``results["rows"]``: one line per id and batch, ours against
    each peer (rows with ``who`` other than ``"metaenvs"``) and the ratio to the fastest."""
    lines = [
        "| task | B | metaenvs core | metaenvs PettingZoo face | peers (copy-steps/s) "
        "| ours / fastest peer |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for env_id in env_ids:
        rows = [r for r in results["rows"] if r["env_id"] == env_id]
        for b in sorted({r["batch"] for r in rows}):
            ours = [r for r in rows if r["who"] == "metaenvs" and r["batch"] == b]
            core = next((r for r in ours if r["face"] == "core"), None)
            face = next((r for r in ours if r["face"] == "parallel"), None)
            peers = [r for r in rows if r["who"] != "metaenvs" and r["batch"] == b]
            best = max(peers, key=lambda r: r["copy_steps_per_s"], default=None)
            mine = max(r["copy_steps_per_s"] for r in ours) if ours else None
            peer_text = ", ".join(f"{r['who']} {format_rate(r['copy_steps_per_s'])}" for r in peers)
            ratio = f"{mine / best['copy_steps_per_s']:.1f}x" if best and mine else "-"
            core_text = format_rate(core["copy_steps_per_s"]) if core else "-"
            face_text = format_rate(face["copy_steps_per_s"]) if face else "-"
            lines.append(
                f"| {env_id} | {b} | {core_text} | {face_text} | {peer_text or '-'} | {ratio} |"
            )
    return "\n".join(lines)


def compile_lines(results: dict[str, Any]) -> list[str]:
    """One line per :func:`time_compile` result in ``results["compile"]``."""
    lines = ["compile (fresh interpreter; first reset + observe + step at B = 1):"]
    for c in results["compile"]:
        cache = "empty cache" if c["cold_cache"] else "warm cache"
        lines.append(f"  {c['env_id']:<24} {cache:<12} {c['compile_s']:7.2f} s")
    return lines


def write_results(results: dict[str, Any], folder: Any, name: str) -> Any:
    """Write ``results`` as ``<folder>/<name>[-quick]-<time stamp>.json``; return the path."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = folder / f"{name}{'-quick' if results.get('quick') else ''}-{stamp}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return path


def format_rate(x: float | None) -> str:
    """A rate with 3 significant digits and a k / M / G suffix (``"-"`` for None)."""
    if x is None:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


BUSY_LOOP = "import time\nend = time.time() + 24 * 3600\nwhile time.time() < end:\n    pass\n"


@contextlib.contextmanager
def busy_process(on: bool = True) -> Iterator[subprocess.Popen | None]:
    """A process spinning on one core while the block runs: the contended mode of the
    benchmarks (one competing process, as a torch learner, another run or a CI neighbour
    would be).  Yields the process (None when ``on`` is False: nothing is started); it is
    killed when the block ends, however it ends."""
    proc = subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) if on else None
    try:
        yield proc
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()


# -- context ---------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    """Versions and machine facts to store beside timings."""
    import gymnasium
    import numba
    import pettingzoo

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "gymnasium": gymnasium.__version__,
        "pettingzoo": pettingzoo.__version__,
        "metaenvs": metaenvs.__version__,
        "statistic": STATISTIC,
    }
