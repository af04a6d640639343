"""Faces written once over every :class:`~metaenvs.core.BatchedCore`.

- :class:`~metaenvs.faces.parallel.BatchedParallelEnv`: PettingZoo ``ParallelEnv`` (B = 1).
- :class:`~metaenvs.faces.vector.BatchedVectorEnv`: Gymnasium ``VectorEnv`` over B copies.
- ``metaenvs.faces.sb3.SB3VecEnv``: Stable-Baselines3 ``VecEnv`` over B x N agent slots
  (imported lazily: it needs stable-baselines3 and torch).

Wrappers that are faces of their own (single-agent views) use the same checks:
:func:`check_reset_options` and :func:`render_copies`.
"""

from metaenvs.faces._common import check_reset_options, render_copies
from metaenvs.faces.parallel import BatchedParallelEnv
from metaenvs.faces.vector import BatchedVectorEnv

__all__ = ["BatchedParallelEnv", "BatchedVectorEnv", "check_reset_options", "render_copies"]
