"""Numba kernels of the 2-agent HalfCheetah: physics, rewards, observations and resets.

:func:`advance` steps copies with MuJoCo's C functions (:mod:`._mujoco_calls`); the
other kernels read and write the copies' MuJoCo states, one row per copy in the layout
of :data:`STATE_SPEC`:

``physics  # (B, P) float64: time, qpos (9), qvel (9), qacc_warmstart (9), ctrl (6)``

with ``P = 1 + 9 + 9 + 9 + 6 = 34`` for the cheetah (no activations).  The column
ranges come in as arguments (``qpos0``, ``qvel0``, ``warm0``, ``ctrl0``, and ``nq``,
``nv``, ``nu``), so the kernels hold no model knowledge.
"""

from __future__ import annotations

import numba
import numpy as np

from metaenvs._rng import next_uniform
from metaenvs.games._mujoco_calls import step_rows


@numba.njit(cache=True, inline="always")
def _normal(rng: np.ndarray, b: int) -> float:
    """A standard normal from stream ``b`` (Box-Muller on two uniforms, cosine branch)."""
    u1 = next_uniform(rng, b)
    u2 = next_uniform(rng, b)
    return np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(2.0 * np.pi * u2)


@numba.njit(cache=True, nogil=True)
def reset_copy(
    physics: np.ndarray,
    rng: np.ndarray,
    b: int,
    init_qpos: np.ndarray,
    init_qvel: np.ndarray,
    noise: float,
    nq: int,
    nv: int,
) -> None:
    """Start copy ``b`` afresh, as HalfCheetah-v5's ``reset_model``.

    ``qpos = init_qpos + U(-noise, noise)``, ``qvel = init_qvel + noise * N(0, 1)`` drawn
    from the copy's stream (first the ``nq`` uniforms, then the ``nv`` normals); time,
    warm start and controls zero (as after ``mj_resetData``).
    """
    row = physics[b]
    row[:] = 0.0
    for j in range(nq):
        row[1 + j] = init_qpos[j] + noise * (2.0 * next_uniform(rng, b) - 1.0)
    for j in range(nv):
        row[1 + nq + j] = init_qvel[j] + noise * _normal(rng, b)


@numba.njit(cache=True, nogil=True)
def observe_copy(physics: np.ndarray, b: int, nq: int, nv: int, out: np.ndarray) -> None:
    """``out (N, nq - 1 + nv)`` float32: every agent sees ``qpos[1:]`` and ``qvel`` of copy
    ``b`` (HalfCheetah-v5's observation: all but the root's x position)."""
    for i in range(out.shape[0]):
        for j in range(nq - 1):
            out[i, j] = physics[b, 2 + j]
        for j in range(nv):
            out[i, nq - 1 + j] = physics[b, 1 + nq + j]


@numba.njit(cache=True, nogil=True)
def reset_copies(
    physics: np.ndarray,
    rng: np.ndarray,
    init_qpos: np.ndarray,
    init_qvel: np.ndarray,
    noise: float,
    nq: int,
    nv: int,
    t: np.ndarray,
    obs: np.ndarray,
) -> None:
    """Start every copy afresh; ``obs (B, N, D)`` gets the first observations."""
    for b in range(physics.shape[0]):
        reset_copy(physics, rng, b, init_qpos, init_qvel, noise, nq, nv)
        t[b] = 0
        observe_copy(physics, b, nq, nv, obs[b])


@numba.njit(cache=True, nogil=True)
def load_controls(
    physics: np.ndarray, x_before: np.ndarray, actions: np.ndarray, lo: int, hi: int
) -> None:
    """Before the physics of copies ``lo..hi-1``: ``x_before[b]`` the root's x, and the
    ``(B, N, 3)`` actions written into the controls, the last ``N * 3`` columns of
    ``physics``."""
    ctrl0 = physics.shape[1] - actions.shape[1] * actions.shape[2]
    for b in range(lo, hi):
        x_before[b] = physics[b, 1]
        k = ctrl0
        for i in range(actions.shape[1]):
            for j in range(actions.shape[2]):
                physics[b, k] = np.float64(actions[b, i, j])
                k += 1


@numba.njit(cache=True, nogil=True)
def advance(
    table: np.ndarray,
    model: int,
    data: int,
    spec: int,
    frames: int,
    stepped: bool,
    physics: np.ndarray,
    x_before: np.ndarray,
    actions: np.ndarray,
    rng: np.ndarray,
    t: np.ndarray,
    obs: np.ndarray,
    reward: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    final_obs: np.ndarray,
    x_velocity: np.ndarray,
    reward_forward: np.ndarray,
    reward_ctrl: np.ndarray,
    x_position: np.ndarray,
    init_qpos: np.ndarray,
    init_qvel: np.ndarray,
    par: tuple,
    lo: int,
    hi: int,
) -> None:
    """One env step of copies ``lo..hi-1``: the physics, then rewards, observations, time
    limit and auto-reset.

    Parameters
    ----------
    table, model, data, spec, frames
        The physics: :func:`load_controls`, then ``frames`` MuJoCo steps in the
        ``MjData`` at ``data`` (:func:`~._mujoco_calls.step_rows` with the C functions of
        ``table``).
    stepped : bool
        The caller already did all that (the per-copy path through ``mujoco``'s Python
        functions); ``table``, ``model``, ``data``, ``spec`` and ``frames`` are unused.
    physics : np.ndarray
        ``(B, P)`` float64 MuJoCo states (updated in place; reset rows on an auto-reset).
    x_before : np.ndarray
        ``(B,)`` float64, the root's x position before the step.
    actions : np.ndarray
        ``(B, N, 3)`` float32, the step's actions (agent 0 the back leg, 1 the front).
    par : tuple
        ``(dt, forward_weight, ctrl_weight, noise, horizon, nq, nv)``.

    The reward is HalfCheetah-v5's, shared by both agents:
    ``forward_weight * (x_after - x_before) / dt - ctrl_weight * sum(action ** 2)``.
    """
    if not stepped:
        load_controls(physics, x_before, actions, lo, hi)
        step_rows(table, model, data, physics, spec, frames, lo, hi)
    dt, forward_weight, ctrl_weight, noise, horizon, nq_f, nv_f = par
    nq, nv = int(nq_f), int(nv_f)
    for b in range(lo, hi):
        x = physics[b, 1]
        velocity = (x - x_before[b]) / dt
        square = 0.0
        for i in range(actions.shape[1]):
            for k in range(actions.shape[2]):
                a = np.float64(actions[b, i, k])
                square += a * a
        forward = forward_weight * velocity
        ctrl = ctrl_weight * square
        x_velocity[b] = velocity
        reward_forward[b] = forward
        reward_ctrl[b] = -ctrl
        x_position[b] = x
        for i in range(reward.shape[1]):
            reward[b, i] = np.float32(forward - ctrl)
        t[b] += 1
        terminated[b] = False
        truncated[b] = t[b] >= horizon
        observe_copy(physics, b, nq, nv, obs[b])
        if truncated[b]:
            final_obs[b] = obs[b]
            reset_copy(physics, rng, b, init_qpos, init_qvel, noise, nq, nv)
            t[b] = 0
            observe_copy(physics, b, nq, nv, obs[b])
