"""Runs of an experiment farmed out to Ray workers: ``metaenvs train NAME --workers N``.

Each ``(method, seed)`` run is one Ray task that calls :func:`baselines.experiment.loop.run`
in a worker process, exactly as the sequential command does in its own process: the
result of a run is a function of its args alone (every learner seeds its own generators),
so the run folders are the same, bit for bit apart from the wall-clock columns, whether
they were trained one after the other, by two local workers or on a cluster
(``--ray-address``).

Faults: a task whose worker dies (killed, out of memory, a node lost) is retried by Ray
(:data:`MAX_RETRIES` times); the retry resumes from the run's last checkpoint, so rows
already written are neither lost nor written twice (the loop rewrites ``metrics.csv`` from
the checkpoint's rows when it resumes).  An exception raised by the run itself (a bad
config, a corrupt checkpoint) is not retried: it stops the command with the run named.

Every run folder's saved config is checked in the driver before the first task starts,
and the Numba kernels of every id are compiled there once (:func:`warm_kernels`), so
workers load them from the cache.  On a cluster every node needs the package installed
and the ``--out`` folder on a file system they share.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from baselines._runs import one_thread_per_run
from baselines.experiment.loop import check_run_config, run
from baselines.experiment.spec import Experiment

MAX_RETRIES = 3
"""Times Ray restarts a run whose worker died."""


def check_configs(experiment: Experiment, all_args: Sequence[Any], out: str | Path,
                  name: str | None) -> None:  # fmt: skip
    """Raise :class:`~baselines._runs.ConfigMismatchError` for the first run folder that
    holds another config (the budget aside), before any run starts."""
    for args in all_args:
        check_run_config(experiment, args, out, name)


def _run_in_worker(experiment: Experiment, args: Any, out: str, name: str | None,
                   threads: int) -> str:  # fmt: skip
    """One run in a Ray worker, without a progress bar; its folder."""
    one_thread_per_run(threads)
    return str(run(experiment, args, out, name=name, progress=False))


def run_on_ray(
    experiment: Experiment,
    all_args: Sequence[Any],
    out: str | Path,
    name: str | None = None,
    threads: int = 1,
    workers: int = 2,
    address: str | None = None,
    on_done: Callable[[Path], None] | None = None,
) -> list[Path]:
    """Train every run of ``all_args`` as a Ray task; their folders, in ``all_args``'s order.

    Parameters
    ----------
    experiment : Experiment
        What the learner declares.
    all_args : sequence of dataclass
        One args per run (``metaenvs train``'s methods x seeds).
    out, name
        As :func:`~baselines.experiment.loop.run`.
    threads : int
        Torch and Numba threads per run (and CPUs Ray reserves for it).
    workers : int
        CPUs of the local Ray instance started here (ignored with ``address``).
    address : str, optional
        An existing Ray cluster (``"auto"``, ``"ray://host:10001"``); the local instance
        otherwise.  A Ray instance already initialised in this process is used as it is.
    on_done : callable, optional
        Called with each run's folder as it finishes (in finishing order).

    Raises
    ------
    ImportError
        Without Ray (``pip install 'metaenvs[ray]'``).
    ConfigMismatchError
        A run folder holds another config; raised before any task starts.
    """
    try:
        import ray
    except ModuleNotFoundError as err:
        raise ImportError(
            "--workers and --ray-address need Ray: pip install 'metaenvs[ray]'"
        ) from err
    if workers < 1 or threads < 1:
        raise ValueError(f"workers and threads must be >= 1, got {workers} and {threads}")
    check_configs(experiment, all_args, out, name)
    started = not ray.is_initialized()
    if started:
        if address is not None:
            ray.init(address=address, log_to_driver=True)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=True)
    try:
        task = ray.remote(num_cpus=threads, max_retries=MAX_RETRIES)(_run_in_worker)
        pending = {task.remote(experiment, args, str(out), name, threads): i
                   for i, args in enumerate(all_args)}  # fmt: skip
        folders: list[Path | None] = [None] * len(all_args)
        waiting = list(pending)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            folder = Path(ray.get(ready[0]))
            folders[pending[ready[0]]] = folder
            if on_done is not None:
                on_done(folder)
        return [f for f in folders if f is not None]
    finally:
        if started:
            ray.shutdown()
