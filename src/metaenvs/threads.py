"""Threads that advance a batch of copies: the package's own pool, robust to contention.

A step kernel advances copies ``lo..hi-1`` and releases the GIL (``nogil=True``).  From
a batch of ``min_parallel`` copies up, :func:`run_copies` cuts the batch into
``CHUNKS_PER_THREAD`` chunks per thread; the calling thread and ``threads - 1`` pool
threads take chunks until none is left.  Two properties make this hold when another
process competes for a core (a torch learner, another run, a CI neighbour):

- **Dynamic chunks.**  A thread that the operating system deschedules takes fewer
  chunks; the others take the rest.  Numba's ``prange`` hands each thread an equal
  share, so every step waits for the slowest thread: measured on 2 cores with one busy
  process, navigation_N3_l3 at B = 1024 ran at 0.4-1.2M copy-steps/s on Numba's ``omp``
  layer against 1.9M serial.
- **No waiting on a thread that took nothing.**  The caller waits only for chunks that
  another thread has started; a pool thread that wakes after the work is done finds
  nothing to take and returns.  Pool threads sleep between steps (no spinning).

Copies are independent and each has its own random stream, so the result is the same
for every thread count and chunking, bit for bit.

How many threads: ``threads=`` on :func:`metaenvs.make_core` (and every ``make*``)
fixes a core's count; otherwise the package default, :func:`get_num_threads`, applies:
the ``METAENVS_NUM_THREADS`` environment variable if set, else the cores this process may
run on.  :func:`set_num_threads` changes the default (the experiment runner sets it to its
``--threads``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from metaenvs.config import check_int

if TYPE_CHECKING:  # imported on first use: `import metaenvs` stays fast
    from concurrent.futures import ThreadPoolExecutor

ENV_VAR = "METAENVS_NUM_THREADS"
"""Environment variable that sets the default thread count."""

CHUNKS_PER_THREAD = 4
"""Chunks per thread of a parallel step: enough for a thread that is descheduled to
leave its share to the others, few enough that a chunk outweighs waking a thread."""


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def check_threads(value: Any, name: str = "threads") -> int:
    """Return ``value`` as an int if it is a positive integer (NumPy integers included),
    else raise ``TypeError`` (not an integer, bools included) or ``ValueError`` (below 1)."""
    return check_int(name, value, 1)


def _threads_from_environment() -> int:
    raw = os.environ.get(ENV_VAR)
    if raw is None or raw.strip() == "":
        return available_cores()
    try:
        return check_threads(int(raw), ENV_VAR)
    except (TypeError, ValueError):
        raise ValueError(f"{ENV_VAR} must be a positive integer, got {raw!r}") from None


_default: list[int] = []


def get_num_threads() -> int:
    """The default thread count of cores made without ``threads=``.

    ``METAENVS_NUM_THREADS`` if set, else :func:`available_cores`, until
    :func:`set_num_threads` changes it.
    """
    if not _default:
        _default.append(_threads_from_environment())
    return _default[0]


def set_num_threads(threads: int) -> None:
    """Set the default thread count of cores made without ``threads=``.

    Parameters
    ----------
    threads : int
        1 steps every batch in the calling thread.

    Raises
    ------
    TypeError, ValueError
        For anything but a positive int.
    """
    threads = check_threads(threads)
    _default[:] = [threads]


MAX_POOL_THREADS = 1024
"""Upper bound of the pool; it starts a thread only when no idle one can take a task, so
it holds as many threads as steps have asked for at once."""


class _Pool:
    """The pool threads shared by every core of the process, started on first use.

    One executor for the life of the process (never replaced, so a step in another
    thread never meets a shut-down executor); after a fork the child gets a new one.
    """

    def __init__(self) -> None:
        self.executor: ThreadPoolExecutor | None = None
        self.lock = threading.Lock()

    def submit(self, task: Callable[[], None], count: int) -> None:
        """Queue ``task`` ``count`` times; fewer (none) once the interpreter is shutting
        down, when no new task can start: the caller then takes the chunks itself."""
        with self.lock:
            if self.executor is None:
                from concurrent.futures import ThreadPoolExecutor

                self.executor = ThreadPoolExecutor(MAX_POOL_THREADS, "metaenvs")
            executor = self.executor
        try:
            for _ in range(count):
                executor.submit(task)
        except RuntimeError:  # "cannot schedule new futures after (interpreter) shutdown"
            pass

    def forget(self) -> None:
        """Drop the executor without joining it (its threads do not exist after a fork)."""
        self.executor = None
        self.lock = threading.Lock()


class _Chunks:
    """The chunks of one step: claimed one at a time, counted while they run."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.next = 0
        self.running = 0
        self.lock = threading.Lock()
        self.finished = threading.Condition(self.lock)

    def claim(self) -> int | None:
        """The next chunk to run, or None when every chunk is taken."""
        with self.lock:
            if self.next >= self.count:
                return None
            self.next += 1
            self.running += 1
            return self.next - 1

    def release(self) -> None:
        """A claimed chunk has finished (or failed)."""
        with self.lock:
            self.running -= 1
            if self.running == 0:
                self.finished.notify_all()

    def close(self) -> None:
        """Take every chunk not yet claimed away, then wait for those running: after this
        no thread touches the step's arrays."""
        with self.lock:
            self.next = self.count
            while self.running:
                self.finished.wait()


_POOL = _Pool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_POOL.forget)


def run_copies(
    kernel: Callable[..., None],
    args: tuple,
    batch: int,
    min_parallel: int,
    threads: int | None = None,
) -> None:
    """Run ``kernel(*args, lo, hi)`` over copies ``0..batch-1``.

    Parameters
    ----------
    kernel : callable
        A Numba kernel compiled with ``nogil=True`` that advances copies ``lo..hi-1``
        and touches no other copy.
    args : tuple
        Its arguments before ``lo, hi``.
    batch : int
        Number of copies.
    min_parallel : int
        The batch from which 2 threads beat 1 (below it one call in this thread: waking
        a thread costs more than it saves).  ``k`` threads are used from ``k / 2`` times
        it, up to ``threads``.
    threads : int or None
        Threads to use at most, this one included; None for :func:`get_num_threads`.

    Raises
    ------
    BaseException
        The first error a chunk raised, in the calling thread, once no chunk runs.
    """
    if batch < min_parallel:
        kernel(*args, 0, batch)
        return
    threads = get_num_threads() if threads is None else threads
    threads = min(threads, 2 * batch // max(min_parallel, 1))
    n_chunks = min(threads * CHUNKS_PER_THREAD, batch)
    if threads < 2 or n_chunks < 2:
        kernel(*args, 0, batch)
        return
    chunks = _Chunks(n_chunks)
    errors: list[BaseException] = []

    def take_chunks() -> None:
        while (c := chunks.claim()) is not None:
            try:
                kernel(*args, c * batch // n_chunks, (c + 1) * batch // n_chunks)
            except BaseException as err:  # noqa: BLE001 - re-raised in the caller
                errors.append(err)
            finally:
                chunks.release()

    try:
        _POOL.submit(take_chunks, threads - 1)
        take_chunks()
    finally:
        chunks.close()
    if errors:
        raise errors[0]
