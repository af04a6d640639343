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
def one_hot_obs(state_id: np.ndarray, n_agents: int, n_states: int) -> np.ndarray:
    """Observations ``(B, N, S)`` float32: every agent sees the one-hot of ``state_id``."""
    batch = state_id.shape[0]
    obs = np.zeros((batch, n_agents, n_states), dtype=np.float32)
    for b in range(batch):
        for i in range(n_agents):
            obs[b, i, state_id[b]] = 1.0
    return obs


@numba.njit(cache=True)
def step_matrix_game(
    state_id: np.ndarray,  # (B,) int64, 0 = start, 1 + joint index of the last actions
    t: np.ndarray,  # (B,) int64, steps taken in the episode
    actions: np.ndarray,  # (B, N) int64
    payoff_flat: np.ndarray,  # (A**N, N) float32, payoffs by joint index
    n_actions: int,
    horizon: int,
):
    """Advance every copy one round; finished copies restart (auto-reset) in place.

    The state is ``s_0 = 0`` and ``s_t = 1 + index(a_{t-1})``; the episode is truncated
    (never terminated) after ``horizon`` rounds.

    Returns
    -------
    obs, reward, terminated, truncated, final_obs
        ``(B, N, S)`` float32, ``(B, N)`` float32, ``(B,)`` bool, ``(B,)`` bool,
        ``(B, N, S)`` float32 (rows of unfinished copies are zero).
    """
    batch, n_agents = actions.shape
    n_states = payoff_flat.shape[0] + 1
    joint = joint_index(actions, n_actions)
    reward = np.empty((batch, n_agents), dtype=np.float32)
    terminated = np.zeros(batch, dtype=np.bool_)
    truncated = np.empty(batch, dtype=np.bool_)
    final_obs = np.zeros((batch, n_agents, n_states), dtype=np.float32)
    for b in range(batch):
        for i in range(n_agents):
            reward[b, i] = payoff_flat[joint[b], i]
        state_id[b] = joint[b] + 1
        t[b] += 1
        truncated[b] = t[b] >= horizon
        if truncated[b]:
            for i in range(n_agents):
                final_obs[b, i, state_id[b]] = 1.0
            state_id[b] = 0
            t[b] = 0
    obs = one_hot_obs(state_id, n_agents, n_states)
    return obs, reward, terminated, truncated, final_obs
