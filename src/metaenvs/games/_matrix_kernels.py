"""Numba kernels of the iterated matrix games (batched over B copies)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def joint_action_index(joint: np.ndarray, n_actions: int) -> int:
    """Row-major index of one joint action, agent 0 most significant.

    ``index(a) = sum_i a_i * A**(N - 1 - i)``.

    Parameters
    ----------
    joint : np.ndarray
        ``(N,)`` int64 actions of the N players.
    n_actions : int
        Actions per player A.

    Returns
    -------
    int
        The index in ``[0, A**N)``.
    """
    idx = 0
    for i in range(joint.shape[0]):
        idx = idx * n_actions + joint[i]
    return idx


@numba.njit(cache=True, inline="always")
def play_round(
    joint: np.ndarray,  # (N,) int64 the players' actions
    payoff_flat: np.ndarray,  # (A**N, N) payoffs by joint index (any float dtype)
    n_actions: int,
    reward: np.ndarray,  # (N,) written: payoff_flat[index(joint)]
) -> int:
    """The rules of one round: write every player's payoff, return the next state id.

    The next state is ``1 + index(joint)`` (:func:`joint_action_index`).  Every face
    that plays a matrix game (the core below, the learning-peer chain of
    :mod:`meta_wrappers._peer_kernels`) plays its rounds through this function.

    Parameters
    ----------
    joint : np.ndarray
        ``(N,)`` int64 actions of the N players.
    payoff_flat : np.ndarray
        ``(A**N, N)`` payoffs by joint index.
    n_actions : int
        Actions per player A.
    reward : np.ndarray
        ``(N,)`` written with the players' payoffs (cast to its dtype).

    Returns
    -------
    int
        The state id after the round, in ``[1, A**N]``.
    """
    idx = joint_action_index(joint, n_actions)
    for i in range(joint.shape[0]):
        reward[i] = payoff_flat[idx, i]
    return idx + 1


@numba.njit(cache=True, inline="always")
def move_one_hot(row: np.ndarray, old: int, new: int) -> None:
    """Turn the one-hot ``row`` ``(S,)`` of state ``old`` into that of state ``new``.

    Only the two changed entries are touched (O(1), not O(S)).
    """
    row[old] = 0.0
    row[new] = 1.0


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
    out = np.empty(actions.shape[0], dtype=np.int64)
    for b in range(actions.shape[0]):
        out[b] = joint_action_index(actions[b], n_actions)
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

    The state is ``s_0 = 0`` and ``s_t = 1 + index(a_{t-1})`` (:func:`play_round`); the
    episode is truncated (never terminated) after ``horizon`` rounds.  Only the two
    changed entries of each one-hot row are touched, so a step costs O(B N), not O(B N S).
    """
    batch, n_agents = actions.shape
    for b in range(batch):
        old = state_id[b]
        new = play_round(actions[b], payoff_flat, n_actions, reward[b])
        t[b] += 1
        terminated[b] = False
        truncated[b] = t[b] >= horizon
        if truncated[b]:
            for i in range(n_agents):
                final_obs[b, i, :] = 0.0
                final_obs[b, i, new] = 1.0
            new = 0
            t[b] = 0
        state_id[b] = new
        for i in range(n_agents):
            move_one_hot(obs[b, i], old, new)
