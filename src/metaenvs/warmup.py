"""Compile every kernel signature ahead of time, into Numba's on-disk cache.

A fresh install (or an edit of a kernel module) leaves Numba's cache cold: the first use of
a family then compiles its kernels for 10-50 s, and every process that starts before the
cache is full pays it again (the spawned workers of a job included).  :func:`warmup`, or
``metaenvs warmup [ids...]`` on the command line, compiles them all once, up front:

::

    metaenvs warmup                    # every registered id, and every installed plugin
    metaenvs warmup ipd navigation     # only what these ids use

For each id it drives the public API exactly as the faces, wrappers and learners do:
``reset`` and ``step`` at B = 1 and at a large batch (:data:`LARGE_BATCH`, which takes
the batched path of every core), with every action type the id takes (discrete and
continuous, :data:`KEYWORD_VARIANTS`), the action masks, the global state and the final
global state and masks of finished episodes.  Numba caches a kernel per argument type
signature, so what is compiled here is what a later process finds, as long as it calls the
kernels with the same types (the public API makes them: int64 discrete actions, float32
continuous ones, the state's own buffers).

Other packages add their kernels through the entry-point group ``metaenvs.warmup``: an
entry point is a function ``tasks(specs) -> list[WarmupTask]`` given the
:class:`~metaenvs.registry.EnvSpec` of the requested ids (``meta_wrappers`` adds its
communication, learning-peers and baseline kernels this way, so that ``metaenvs`` does
not import it).

Examples
--------
>>> from metaenvs.warmup import warmup
>>> [row.name for row in warmup(["ipd"], plugins=False)]
['matrix']
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import itertools
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from numba.core import event

import metaenvs
from metaenvs._numba_setup import OUR_PACKAGES
from metaenvs.core import BatchedCore, legal_actions
from metaenvs.registry import EnvSpec

WARMUP_GROUP = "metaenvs.warmup"
"""Entry-point group of the packages that add warm-up tasks (see the module docstring)."""

LARGE_BATCH = 1024
"""The large batch every core is stepped at, beside B = 1 (the step kernels take the same
types at any batch and thread count; the large batch compiles the batch-sized paths)."""

STEPS = 2
"""Steps taken at each batch size."""

KEYWORD_VARIANTS: dict[str, tuple[Any, ...]] = {
    "continuous_actions": (False, True),
    "prey": ("heuristic", "pretrained", "agents"),
}
"""Config keywords whose values change the types the kernels see, with the values to warm.

An id that takes one of these keywords is warmed with each value (and each combination);
a value its config rejects (pretrained prey exist for some tasks only) is skipped."""


@dataclasses.dataclass(frozen=True)
class WarmupTask:
    """One row of the warm-up: a name and what to run to compile its kernels.

    Attributes
    ----------
    name : str
        The row's name in the table (a family, or a wrapper and what it wraps).
    run : callable
        Called once with no arguments; drives the public API whose kernels the row covers.
    """

    name: str
    run: Callable[[], None]


@dataclasses.dataclass(frozen=True)
class WarmupResult:
    """What one :class:`WarmupTask` took.

    Attributes
    ----------
    name : str
        The task's name.
    seconds : float
        Wall-clock seconds of the task (compiling, or loading from the cache, and the few
        steps it takes).
    compiled : tuple of str
        The kernel signatures Numba compiled (``module.function(types)``, callees
        included); empty when every kernel came from the cache.
    """

    name: str
    seconds: float
    compiled: tuple[str, ...]

    @property
    def status(self) -> str:
        """``"compiled"`` if any kernel was compiled, ``"cached"`` if all were loaded."""
        return "compiled" if self.compiled else "cached"


# -- counting compiles ----------------------------------------------------------------------
class CompileLog(event.Listener):
    """The kernels of our packages Numba compiles while it listens (:func:`compile_log`).

    Attributes
    ----------
    signatures : list of str
        ``"module.function(arg types)"`` per compile, callees (kernels called by kernels)
        included.
    seconds : float
        Wall-clock seconds spent compiling them (outermost compiles only, so a callee
        compiled inside its caller is not counted twice).
    """

    def __init__(self) -> None:
        self.signatures: list[str] = []
        self.seconds = 0.0
        self._depth = 0
        self._start = 0.0

    def on_start(self, ev: event.Event) -> None:
        data = ev.data or {}
        func = getattr(data.get("dispatcher"), "py_func", None)
        module = getattr(func, "__module__", "") or ""
        if module.split(".")[0] in OUR_PACKAGES:
            args = ", ".join(str(a) for a in data.get("args", ()))
            self.signatures.append(f"{module}.{func.__qualname__}({args})")
        if self._depth == 0:
            self._start = time.perf_counter()
        self._depth += 1

    def on_end(self, ev: event.Event) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.seconds += time.perf_counter() - self._start


@contextlib.contextmanager
def compile_log() -> Iterator[CompileLog]:
    """Record the kernels of our packages that Numba compiles inside the block.

    A kernel loaded from the on-disk cache is not compiled, so an empty
    ``log.signatures`` after a block means everything it ran came from the cache (or was
    compiled earlier in this process).

    Yields
    ------
    CompileLog
        Filled while the block runs.

    Examples
    --------
    >>> import metaenvs
    >>> from metaenvs.warmup import compile_log
    >>> core = metaenvs.make_core("ipd")
    >>> with compile_log() as log:
    ...     state = core.reset(1, seed=0)
    >>> isinstance(log.signatures, list)
    True
    """
    log = CompileLog()
    with event.install_listener("numba:compile", log):
        yield log


# -- driving a core -------------------------------------------------------------------------
def exercise_core(
    core: BatchedCore, batches: Sequence[int] = (1, LARGE_BATCH), seed: int = 0
) -> None:
    """Run ``core`` through its public protocol at each batch size.

    ``reset``, ``observe``, ``global_state``, ``action_mask``, ``alive``, :data:`STEPS`
    ``step`` calls with random legal actions (which fill the final global state and
    masks), ``restart``, and the core's ``scripted_actions`` if it has them.

    Parameters
    ----------
    core : BatchedCore
        Any core (a wrapper's too).
    batches : sequence of int
        Batch sizes to run at.
    seed : int
        Seed of the resets and of the random actions.
    """
    rng = np.random.default_rng(seed)
    for batch in batches:
        state = core.reset(batch, seed)
        core.observe(state)
        core.global_state(state)
        core.action_mask(state)
        core.alive(state)
        scripted = getattr(core, "scripted_actions", None)
        if callable(scripted):
            scripted(state)
        for _ in range(STEPS):
            core.step(state, legal_actions(core, state, core.sample_actions(batch, rng)))
        core.restart(state)


def variants(spec: EnvSpec) -> list[dict[str, Any]]:
    """The keyword sets an id is warmed with: ``{}`` (its defaults), then every
    combination of the :data:`KEYWORD_VARIANTS` it takes that its config accepts."""
    keys = [k for k in KEYWORD_VARIANTS if k in spec.keywords()]
    out: list[dict[str, Any]] = [{}]
    for values in itertools.product(*(KEYWORD_VARIANTS[k] for k in keys)):
        kwargs = dict(zip(keys, values))
        try:
            spec.make_core(**kwargs)
        except (ValueError, TypeError):
            continue
        if kwargs not in out:
            out.append(kwargs)
    return out


def kernel_group(spec: EnvSpec) -> str:
    """The row an id's kernels are warmed in: its core's module (``matrix``, ``navigation``,
    ``skirmish``, ...), so ids that share kernels share a row."""
    return spec.core.partition(":")[0].rpartition(".")[2]


def resolve_specs(ids: Iterable[str] | None) -> list[EnvSpec]:
    """The specs of ``ids`` (every registered spec for None), in order, without repeats.

    Raises
    ------
    UnknownEnvError
        For an unknown id, before anything is compiled.
    """
    if ids is None:
        return metaenvs.registered_specs()
    by_id = {s.id: s for s in (metaenvs.spec(i) for i in ids)}
    return list(by_id.values())


def core_tasks(
    specs: Sequence[EnvSpec], batches: Sequence[int] = (1, LARGE_BATCH)
) -> list[WarmupTask]:
    """One task per :func:`kernel_group` of ``specs``: each id with each of its
    :func:`variants`, through :func:`exercise_core`."""
    groups: dict[str, list[EnvSpec]] = {}
    for s in specs:
        groups.setdefault(kernel_group(s), []).append(s)

    def run(group: list[EnvSpec]) -> None:
        for s in group:
            for kwargs in variants(s):
                exercise_core(s.make_core(**kwargs), batches)

    return [WarmupTask(name, lambda g=group: run(g)) for name, group in groups.items()]


def plugin_tasks(specs: Sequence[EnvSpec]) -> list[WarmupTask]:
    """The tasks of every installed entry point of :data:`WARMUP_GROUP` for ``specs``.

    A plugin that fails to load is skipped with a warning (its kernels then compile on
    first use, as without a warm-up).
    """
    tasks: list[WarmupTask] = []
    for ep in sorted(importlib.metadata.entry_points(group=WARMUP_GROUP), key=lambda e: e.name):
        try:
            tasks += list(ep.load()(specs))
        except Exception as err:  # a broken plugin must not stop the others
            warnings.warn(
                f"metaenvs warmup: plugin {ep.name} ({ep.value}) failed: "
                f"{type(err).__name__}: {err}",
                RuntimeWarning,
                stacklevel=2,
            )
    return tasks


def warmup(
    ids: Iterable[str] | None = None,
    *,
    plugins: bool = True,
    batches: Sequence[int] = (1, LARGE_BATCH),
    again: bool = True,
    report: Callable[[WarmupResult], None] | None = None,
) -> list[WarmupResult]:
    """Compile the kernels of ``ids`` (and of the installed plugins) into Numba's cache.

    Parameters
    ----------
    ids : iterable of str, optional
        Registered ids (any spelling ``metaenvs.spec`` takes), warmed in rows of the ids
        that share kernels (:func:`kernel_group`); None: every registered id.
    plugins : bool
        Also run the tasks of the entry points of :data:`WARMUP_GROUP` (the wrappers').
    batches : sequence of int
        Batch sizes every core is stepped at.
    again : bool
        Run tasks this process has already run (False: skip them, their kernels are in
        memory).
    report : callable, optional
        Called with each :class:`WarmupResult` as soon as its task is done.

    Returns
    -------
    list of WarmupResult
        One per task run, in order: the cores' groups, then the plugins' tasks.

    Raises
    ------
    UnknownEnvError
        For an unknown id (nothing is compiled then).

    Notes
    -----
    A kernel already compiled in this process is neither compiled nor loaded again, so
    the first call in a fresh process is the one whose times mean something.  Runs that
    start several processes call this once in the parent: the children then load from
    the cache instead of each compiling the same kernels.
    """
    specs = resolve_specs(ids)
    tasks = core_tasks(specs, batches)
    if plugins:
        tasks += plugin_tasks(specs)
    results = []
    for task in tasks:
        if not again and task.name in _DONE:
            continue
        tick = time.perf_counter()
        with compile_log() as log:
            task.run()
        _DONE.add(task.name)  # only once it ran through: a failed task is tried again
        result = WarmupResult(task.name, time.perf_counter() - tick, tuple(log.signatures))
        results.append(result)
        if report is not None:
            report(result)
    return results


_DONE: set[str] = set()
"""Names of the tasks :func:`warmup` ran in this process."""


def format_row(result: WarmupResult) -> str:
    """One line of the warm-up table: name, seconds, and what was compiled."""
    if result.compiled:
        what = f"compiled {len(result.compiled)} kernel signatures"
    else:
        what = "loaded from the cache"
    return f"{result.name:<32} {result.seconds:7.2f} s  {what}"


TABLE_HEADER = f"{'task':<32} {'time':>9}  kernels"
"""The header of :func:`format_table` (for callers that print rows as they come)."""


def format_table(results: Sequence[WarmupResult]) -> str:
    """The warm-up table: one row per task, then the total."""
    total = sum(r.seconds for r in results)
    return "\n".join([TABLE_HEADER, *map(format_row, results), f"{'total':<32} {total:7.2f} s"])
