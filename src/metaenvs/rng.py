"""Per-copy random streams and the seed policy: the public names.

Wrappers, learners and custom cores import from here; the kernels live in
:mod:`metaenvs._rng` (which keeps working for old imports).

- :func:`check_seed` applies the seed policy: None or an integer in ``[0, 2**64)``.
- :func:`seeds_for_batch` gives copy ``b`` the seed ``(seed + b) mod 2**64``.
- :func:`seed_streams` turns per-copy seeds into the ``(B,)`` uint64 stream states that
  :meth:`metaenvs.core.BatchedCore.start` takes and ``state.rng`` holds.
- :func:`next_uniform` draws from stream ``b`` inside a Numba kernel.

Examples
--------
>>> import metaenvs
>>> from metaenvs.rng import seed_streams, seeds_for_batch
>>> core = metaenvs.make_core("ipd")
>>> state = core.start(2, seed_streams(seeds_for_batch(2, 7)))  # as core.reset(2, 7)
>>> state.rng.dtype
dtype('uint64')
"""

from metaenvs._rng import SEED_BOUND, check_seed, next_uniform, seed_streams, seeds_for_batch

__all__ = ["SEED_BOUND", "check_seed", "next_uniform", "seed_streams", "seeds_for_batch"]
