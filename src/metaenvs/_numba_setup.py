"""Numba set-up done once on ``import metaenvs``, before any kernel module is imported.

Importing this module does both; ``metaenvs/__init__.py`` imports it first.  Two things a
user would otherwise hit on first use:

- **A read-only install.**  Numba caches compiled kernels next to their source
  (``__pycache__``) or, failing that, in the user's cache directory.  When neither is
  writable (a system-wide install, a container without a writable ``HOME``) every
  ``cache=True`` kernel fails with ``RuntimeError: cannot cache function ...: no locator
  available``.  :func:`choose_cache_dir` then points Numba at ``$XDG_CACHE_HOME/metaenvs``
  (``~/.cache/metaenvs``) or, when that is not writable either, at a directory in the
  system's temporary folder, with a warning.  A ``NUMBA_CACHE_DIR`` set by the user is
  always kept.
- **Silent compiles.**  The first use of a family after installing (or editing) compiles
  its kernels for 10-50 s.  :func:`announce_compiles` logs one line per kernel module on
  the ``metaenvs`` logger the first time Numba compiles one of ours (cache loads are quiet).
  ``logging.getLogger("metaenvs").setLevel(logging.ERROR)`` silences it.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path

import numba
from numba.core import event

logger = logging.getLogger("metaenvs")

OUR_PACKAGES = ("metaenvs", "meta_wrappers", "baselines")
"""Packages whose kernels :func:`announce_compiles` announces."""


def writable_dir(path: Path) -> bool:
    """Whether a file can be created in ``path`` (created if missing): tried, not guessed.

    ``os.access`` is not enough: it says yes to root on a read-only mount, and no
    directory exists yet for a fresh user cache.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError:
        return False
    return True


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/metaenvs/numba``, ``~/.cache/metaenvs/numba`` by default."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "metaenvs" / "numba"


def choose_cache_dir(package_dir: Path) -> str | None:
    """Where Numba should cache kernels, or None to leave Numba's own choice.

    None when the user set ``NUMBA_CACHE_DIR`` or the package's ``__pycache__`` is
    writable; else the user cache directory if writable; else a temporary directory,
    with a ``RuntimeWarning`` (kernels then recompile after the temporary folder is
    cleaned).
    """
    if os.environ.get("NUMBA_CACHE_DIR") or numba.config.CACHE_DIR:
        return None
    if writable_dir(package_dir / "__pycache__"):
        return None
    user = user_cache_dir()
    if writable_dir(user):
        return str(user)
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    fallback = Path(tempfile.gettempdir()) / f"metaenvs-numba-{uid}"
    warnings.warn(
        f"metaenvs: neither {package_dir / '__pycache__'} nor {user} is writable; caching "
        f"compiled kernels in {fallback} (set NUMBA_CACHE_DIR to choose a lasting place)",
        RuntimeWarning,
        stacklevel=3,
    )
    return str(fallback)


def configure_cache() -> None:
    """Set ``numba.config.CACHE_DIR`` when :func:`choose_cache_dir` says so.

    Must run before the first ``@numba.njit(cache=True)`` of ours is decorated: Numba
    picks a kernel's cache directory when it is defined.
    """
    chosen = choose_cache_dir(Path(__file__).resolve().parent)
    if chosen is not None:
        numba.config.CACHE_DIR = chosen


class _CompileNotice(event.Listener):
    """Logs once per kernel module when Numba starts compiling one of our kernels."""

    def __init__(self) -> None:
        self.announced: set[str] = set()

    def on_start(self, ev: event.Event) -> None:
        dispatcher = (ev.data or {}).get("dispatcher")
        module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
        if module.split(".")[0] not in OUR_PACKAGES or module in self.announced:
            return
        self.announced.add(module)
        logger.warning(
            "metaenvs: compiling the Numba kernels of %s (first use after an install or an "
            "edit; this can take 10-50 s, later runs load them from the cache)",
            module,
        )

    def on_end(self, ev: event.Event) -> None:
        pass


_NOTICE: list[_CompileNotice] = []


def announce_compiles() -> None:
    """Register the compile notice (once per process)."""
    if not _NOTICE:
        _NOTICE.append(_CompileNotice())
        event.register("numba:compile", _NOTICE[0])


configure_cache()
announce_compiles()
