"""Per-copy random streams for kernels, and the seed policy every face follows.

Every copy of a batch owns one 64-bit SplitMix64 state, so copy ``b`` seeded with
``s`` draws the same numbers whatever the batch size and whatever the other copies do
(Gymnasium's and SB3's convention: an integer seed ``s`` gives copy ``b`` the seed
``s + b``).

Seed policy (:func:`check_seed`, used by the core and by every face and view): a seed
is ``None`` (fresh entropy) or an integer in ``[0, 2**64)``; Python and NumPy integers
are accepted, bools, floats, strings and the rest raise ``TypeError``, integers outside
the range ``ValueError``, each naming the seed.  The per-copy seed ``s + b`` wraps
around modulo ``2**64`` (the streams are uint64), so every valid seed works at every
batch size: seed ``2**64 - 1`` gives copy 0 the seed ``2**64 - 1`` and copy 1 the
seed 0.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@numba.njit(cache=True, inline="always")
def _mix64(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True)
def seed_streams(seeds: np.ndarray) -> np.ndarray:
    """Turn integer seeds ``(B,)`` into independent stream states ``(B,)`` uint64."""
    out = np.empty(seeds.shape[0], dtype=np.uint64)
    for b in range(seeds.shape[0]):
        out[b] = _mix64(np.uint64(seeds[b]) + _GOLDEN)
    return out


@numba.njit(cache=True, inline="always")
def next_uniform(streams: np.ndarray, b: int) -> float:
    """Advance stream ``b`` and return a float64 uniform in [0, 1)."""
    streams[b] += _GOLDEN
    return float(_mix64(streams[b]) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


SEED_BOUND = 2**64
"""Seeds are integers in ``[0, SEED_BOUND)``; per-copy seeds ``seed + b`` wrap modulo it."""


def check_seed(seed: Any, name: str = "seed") -> int | None:
    """Apply the seed policy: ``seed`` as a Python int in ``[0, 2**64)``, or None.

    Parameters
    ----------
    seed : int, numpy integer or None
        The seed to check.
    name : str
        How the message calls it (e.g. ``"seed"``, ``"seed[3]"``).

    Returns
    -------
    int or None
        The seed as a Python int (None stays None).

    Raises
    ------
    TypeError
        If ``seed`` is not None and not an integer (bools, floats and strings included).
    ValueError
        If ``seed`` is negative or not below ``2**64``.
    """
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(
            f"{name} must be None or an int in [0, 2**64), got {seed!r} ({type(seed).__name__})"
        )
    value = int(seed)
    if not 0 <= value < SEED_BOUND:
        raise ValueError(f"{name} must be a non-negative int below 2**64 (or None), got {value}")
    return value


def seeds_for_batch(batch: int, seed: Any) -> np.ndarray:
    """Per-copy seeds ``(B,)`` uint64: ``(seed + b) mod 2**64``, the given ones, or entropy.

    Parameters
    ----------
    batch : int
        Number of copies B.
    seed : int, sequence of B ints, array of B ints or None
        One seed for the batch (see :func:`check_seed`), one seed per copy (each checked
        the same way), or None for fresh entropy.

    Raises
    ------
    TypeError
        If a seed is not an integer (bools and floats included).
    ValueError
        If a sequence of seeds does not have ``batch`` entries, or a seed is negative or
        not below ``2**64``.
    """
    if isinstance(seed, (list, tuple, np.ndarray)):
        return _per_copy_seeds(batch, seed)
    seed = check_seed(seed)
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0])
    # uint64 array arithmetic wraps around silently: (seed + b) mod 2**64
    return np.uint64(seed) + np.arange(batch, dtype=np.uint64)


def _per_copy_seeds(batch: int, seed: list | tuple | np.ndarray) -> np.ndarray:
    """One seed per copy, checked; see :func:`seeds_for_batch`."""
    shape = seed.shape if isinstance(seed, np.ndarray) else (len(seed),)
    if shape != (batch,):
        raise ValueError(f"seed must be an int, None or a sequence of {batch} ints, got {seed!r}")
    if isinstance(seed, np.ndarray) and seed.dtype != np.object_:
        if seed.dtype == np.bool_ or not np.issubdtype(seed.dtype, np.integer):
            raise TypeError(f"seeds must be integers, got dtype {seed.dtype}")
        if (seed < 0).any():
            i = int(np.flatnonzero(seed < 0)[0])
            raise ValueError(f"seeds must be non-negative, got seed[{i}] = {seed[i]}")
        return seed.astype(np.uint64)
    # a Python sequence may mix ints of any size: check each as a seed of its own
    return np.array([check_seed(s, f"seed[{i}]") for i, s in enumerate(seed)], dtype=np.uint64)
