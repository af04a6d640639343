"""Per-copy random streams for kernels.

Every copy of a batch owns one 64-bit SplitMix64 state, so copy ``b`` seeded with
``s`` draws the same numbers whatever the batch size and whatever the other copies do
(Gymnasium's and SB3's convention: an integer seed ``s`` gives copy ``b`` the seed
``s + b``).
"""

from __future__ import annotations

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


def seeds_for_batch(batch: int, seed: int | np.ndarray | list[int] | None) -> np.ndarray:
    """Per-copy integer seeds: ``seed + b`` for an int, the given list, or fresh entropy.

    Raises
    ------
    ValueError
        If a sequence of seeds does not have ``batch`` entries or holds negative values.
    """
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1, dtype=np.uint32)[0])
    if isinstance(seed, (int, np.integer)):
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        return np.arange(batch, dtype=np.int64) + np.int64(seed)
    seeds = np.asarray(seed)
    if seeds.shape != (batch,) or not np.issubdtype(seeds.dtype, np.integer):
        raise ValueError(f"seed must be an int, None or a sequence of {batch} ints, got {seed!r}")
    if (seeds < 0).any():
        raise ValueError(f"seeds must be non-negative, got {seed!r}")
    return seeds.astype(np.int64)
