"""Pretrained prey for predator-prey: small per-prey MLPs shipped as ``.npz`` files.

``PredatorPreyCore`` with ``prey="pretrained"`` moves its prey by :class:`PretrainedPrey`,
a callable prey policy ``policy(obs, rng) -> actions`` (see
:mod:`metaenvs.games.predator_prey`).  Each prey ``j`` has its own deterministic MLP
``Linear - ReLU - Linear - ReLU - Linear - sigmoid`` from the first ``n_inputs`` entries
of its observation (own velocity, position and team flag, the landmarks and the
predators it sees: everything but the neighbour block, which depends on the
``neighbours`` keyword) to the five continuous action entries in ``[0, 1]``.

The weights of one task are one file ``data/prey/N{n}_M{m}_L{L}_l{l}.npz`` in this
package (:func:`prey_key`), holding ``weight_k`` ``(M, in, out)`` and ``bias_k`` ``(M, out)``
float32 for the layers ``k = 0, 1, 2``; a JSON file beside it says how they were trained.
They are written by :func:`save_prey_weights` (the trainer is
``python -m baselines.comm.prey``) and read once per process.

The forward pass is one Numba kernel over all copies and prey; every row is computed in
the same order whatever the batch size, so a batch reproduces its B = 1 runs exactly.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numba
import numpy as np

#: Where the shipped weights live (inside the installed package).
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "data" / "prey"
N_LAYERS = 3
N_ACTIONS = 5


def prey_key(n_predators: int, n_prey: int, n_landmarks: int, n_observed: int | None) -> str:
    """The name of the weights of a task, ``N{n}_M{m}_L{L}_l{l}``.

    ``l`` is ``n_observed`` capped at ``max(L, N, M)`` (``None``: that cap): every larger
    value gives the prey the same observation.
    """
    cap = max(n_landmarks, n_predators, n_prey)
    seen = cap if n_observed is None else min(n_observed, cap)
    return f"N{n_predators}_M{n_prey}_L{n_landmarks}_l{seen}"


def available_prey() -> list[str]:
    """The keys (:func:`prey_key`) of the tasks that have shipped weights, sorted."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.npz"))


def input_size(n_predators: int, n_prey: int, n_landmarks: int, n_observed: int | None) -> int:
    """Entries of the prey observation the MLP reads: own (5), landmarks, predators."""
    cap = max(n_landmarks, n_predators, n_prey)
    seen = cap if n_observed is None else min(n_observed, cap)
    return 5 + 2 * min(seen, n_landmarks) + 5 * min(seen, max(n_predators, n_prey))


def save_prey_weights(path: str | Path, layers: list[tuple[np.ndarray, np.ndarray]]) -> Path:
    """Write per-prey MLP layers ``[(weight (M, in, out), bias (M, out)), ...]`` as ``.npz``.

    Returns the path written (``.npz`` appended if missing).
    """
    if len(layers) != N_LAYERS:
        raise ValueError(f"a prey MLP has {N_LAYERS} layers, got {len(layers)}")
    arrays: dict[str, np.ndarray] = {}
    for k, (weight, bias) in enumerate(layers):
        arrays[f"weight_{k}"] = np.asarray(weight, dtype=np.float32)
        arrays[f"bias_{k}"] = np.asarray(bias, dtype=np.float32)
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def read_prey_weights(path: str | Path) -> tuple[np.ndarray, ...]:
    """The arrays ``(weight_0, bias_0, weight_1, bias_1, weight_2, bias_2)`` of a weights
    file, checked for consistent shapes (C-contiguous float32)."""
    with np.load(path) as data:
        arrays = []
        for k in range(N_LAYERS):
            arrays += [data[f"weight_{k}"], data[f"bias_{k}"]]
    arrays = [np.ascontiguousarray(a, dtype=np.float32) for a in arrays]
    n_prey, fan_in = arrays[0].shape[:2]
    for k in range(N_LAYERS):
        weight, bias = arrays[2 * k], arrays[2 * k + 1]
        want_out = N_ACTIONS if k == N_LAYERS - 1 else weight.shape[2]
        if (
            weight.ndim != 3
            or weight.shape[:2] != (n_prey, fan_in)
            or bias.shape != (n_prey, weight.shape[2])
            or weight.shape[2] != want_out
        ):
            raise ValueError(
                f"{path}: layer {k} has inconsistent shapes {weight.shape}, {bias.shape}"
            )
        fan_in = weight.shape[2]
    return tuple(arrays)


@functools.cache
def _load(key: str) -> tuple[np.ndarray, ...]:
    return read_prey_weights(WEIGHTS_DIR / f"{key}.npz")


def check_pretrained(
    n_predators: int, n_prey: int, n_landmarks: int, n_observed: int | None
) -> str:
    """The key of a task's weights; ``ValueError`` naming it when none are shipped."""
    key = prey_key(n_predators, n_prey, n_landmarks, n_observed)
    if not (WEIGHTS_DIR / f"{key}.npz").is_file():
        raise ValueError(
            f'prey="pretrained": no pretrained prey for n_predators={n_predators}, '
            f"n_prey={n_prey}, n_landmarks={n_landmarks}, n_observed={n_observed} ({key}); "
            f"pretrained prey exist for: {', '.join(available_prey()) or 'none'} "
            "(train others with python -m baselines.comm.prey)"
        )
    return key


class PretrainedPrey:
    """A deterministic prey policy ``policy(obs, rng) -> actions`` from MLP weights.

    Parameters
    ----------
    weights : tuple of np.ndarray
        ``(weight_0, bias_0, weight_1, bias_1, weight_2, bias_2)``, as
        :func:`read_prey_weights` returns them: ``weight_k`` ``(M, in, out)``.
    continuous : bool
        True: return the MLP's output, ``(B, M, 5)`` float32 in ``[0, 1]``.  False: return
        ``(B, M)`` discrete moves along the dominant axis of the force
        ``(a[2] - a[1], a[4] - a[3])`` (1 -x, 2 +x, 3 -y, 4 +y; 0 when the force is 0),
        as the heuristic prey move with discrete actions.
    """

    def __init__(self, weights: tuple[np.ndarray, ...], continuous: bool) -> None:
        self.weights = weights
        self.continuous = bool(continuous)
        self.n_prey, self.n_inputs = weights[0].shape[:2]

    @classmethod
    def for_task(
        cls,
        n_predators: int,
        n_prey: int,
        n_landmarks: int,
        n_observed: int | None,
        continuous: bool,
    ) -> PretrainedPrey:
        """The shipped policy of a task (``ValueError`` when there is none)."""
        weights = _load(check_pretrained(n_predators, n_prey, n_landmarks, n_observed))
        return cls(weights, continuous)

    def action_values(self, obs: np.ndarray) -> np.ndarray:
        """The MLP's outputs ``(B, M, 5)`` float32 in ``[0, 1]`` for prey observations
        ``obs (B, M, D)`` (only the first ``n_inputs`` entries are read)."""
        obs = np.asarray(obs, dtype=np.float32)
        if obs.ndim != 3 or obs.shape[1] != self.n_prey or obs.shape[2] < self.n_inputs:
            raise ValueError(
                f"pretrained prey need observations (B, {self.n_prey}, >= {self.n_inputs}), "
                f"got {obs.shape}"
            )
        out = np.empty((obs.shape[0], self.n_prey, N_ACTIONS), dtype=np.float32)
        _mlp_forward(obs, self.weights, out)
        return out

    def __call__(self, obs: np.ndarray, rng: Any = None) -> np.ndarray:
        """Actions ``(B, M, 5)`` (continuous) or ``(B, M)`` int64 (discrete); ``rng`` unused."""
        values = self.action_values(obs)
        if self.continuous:
            return values
        return dominant_axis_moves(values)


def dominant_axis_moves(values: np.ndarray) -> np.ndarray:
    """Discrete moves ``(...)`` int64 from continuous actions ``(..., 5)``: the force
    ``(a[2] - a[1], a[4] - a[3])`` along its dominant axis (ties to x), 0 for no force."""
    fx = values[..., 2].astype(np.float64) - values[..., 1]
    fy = values[..., 4].astype(np.float64) - values[..., 3]
    along_x = np.abs(fx) >= np.abs(fy)
    x_move = np.where(fx > 0, 2, np.where(fx < 0, 1, 0))
    y_move = np.where(fy > 0, 4, 3)
    return np.where(along_x, x_move, y_move).astype(np.int64)


@numba.njit(cache=True)
def _dense(x, weight, bias, out, relu):
    """``out = act(x @ weight + bias)`` for one row; the sum runs over inputs in order."""
    out[:] = bias
    for k in range(x.shape[0]):
        xk = x[k]
        if xk != 0.0:  # ReLU zeros add nothing: skip their row
            for j in range(out.shape[0]):
                out[j] += xk * weight[k, j]
    if relu:
        for j in range(out.shape[0]):
            out[j] = max(out[j], 0.0)


@numba.njit(cache=True)
def _mlp_forward(obs, weights, out):
    """The per-prey MLPs on ``obs (B, M, D)`` into ``out (B, M, 5)`` (sigmoid outputs)."""
    w0, b0, w1, b1, w2, b2 = weights
    n_in = w0.shape[1]
    h0 = np.empty(w0.shape[2], dtype=np.float32)
    h1 = np.empty(w1.shape[2], dtype=np.float32)
    y = np.empty(w2.shape[2], dtype=np.float32)
    for b in range(obs.shape[0]):
        for j in range(obs.shape[1]):
            _dense(obs[b, j, :n_in], w0[j], b0[j], h0, True)
            _dense(h0, w1[j], b1[j], h1, True)
            _dense(h1, w2[j], b2[j], y, False)
            for a in range(y.shape[0]):
                out[b, j, a] = 1.0 / (1.0 + np.exp(-y[a]))
