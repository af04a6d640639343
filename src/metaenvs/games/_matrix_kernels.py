"""Numba kernels of the iterated matrix games (batched over B copies)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def joint_index(actions: np.ndarray, n_actions: int) -> np.ndarray:
    """Row-major index of each copy's joint action, agent 0 most significant.

    Parameters
    ----------
    actions : np.ndarray
        ``(B, N)`` int64 actions.
    n_actions : int
        Actions per player A.

    Returns
    -------
    np.ndarray
        ``(B,)`` int64 in ``[0, A**N)``.
    """
    batch, n = actions.shape
    out = np.empty(batch, dtype=np.int64)
    for b in range(batch):
        idx = 0
        for i in range(n):
            idx = idx * n_actions + actions[b, i]
        out[b] = idx
    return out


@numba.njit(cache=True)
def one_hot_obs(state_id: np.ndarray, obs: np.ndarray) -> None:
    """Write observations ``(B, N, S)``: every agent sees the one-hot of ``state_id``."""
    obs[:] = 0.0
    for b in range(state_id.shape[0]):
        for i in range(obs.shape[1]):
            obs[b, i, state_id[b]] = 1.0


@numba.njit(cache=True)
def step_matrix_game(
    state_id: np.ndarray,  # (B,) int64, 0 = start, 1 + joint index of the last actions
    t: np.ndarray,  # (B,) int64, steps taken in the episode
    actions: np.ndarray,  # (B, N) int64
    payoff_flat: np.ndarray,  # (A**N, N) float32, payoffs by joint index
    n_actions: int,
    horizon: int,
    obs: np.ndarray,  # (B, N, S) float32, one-hot of state_id; updated
    reward: np.ndarray,  # (B, N) float32; written
    terminated: np.ndarray,  # (B,) bool; written
    truncated: np.ndarray,  # (B,) bool; written
    final_obs: np.ndarray,  # (B, N, S) float32; rows of finished copies written
) -> None:
    """Advance every copy one round; finished copies restart (auto-reset) in place.

    The state is ``s_0 = 0`` and ``s_t = 1 + index(a_{t-1})``; the episode is truncated
    (never terminated) after ``horizon`` rounds.  Only the two changed entries of each
    one-hot row are touched, so a step costs O(B N), not O(B N S).
    """
    batch, n_agents = actions.shape
    for b in range(batch):
        idx = 0
        for i in range(n_agents):
            idx = idx * n_actions + actions[b, i]
        for i in range(n_agents):
            reward[b, i] = payoff_flat[idx, i]
            obs[b, i, state_id[b]] = 0.0
        state_id[b] = idx + 1
        t[b] += 1
        terminated[b] = False
        truncated[b] = t[b] >= horizon
        if truncated[b]:
            for i in range(n_agents):
                final_obs[b, i, :] = 0.0
                final_obs[b, i, state_id[b]] = 1.0
            state_id[b] = 0
            t[b] = 0
        for i in range(n_agents):
            obs[b, i, state_id[b]] = 1.0
