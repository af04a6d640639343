"""Fixed tabular policies for iterated matrix games, and the exact best response to them.

A tabular policy maps the game's state (the argmax of the one-hot observation of
:mod:`metaenvs.games.matrix`) to a distribution over actions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from gymnasium import spaces

from metaenvs.core import random_actions
from metaenvs.games.matrix import MatrixGameConfig

PeerPolicy = Callable[[np.ndarray, np.random.Generator], int]
"""A fixed policy: ``policy(observation, rng) -> action``."""


class TabularPolicy:
    """Acts by sampling from ``probs[state]``, the state being the argmax of the observation.

    Parameters
    ----------
    probs : np.ndarray
        ``(S, A)`` action probabilities per state; rows sum to 1.
    name : str
        Shown in plots and reprs.
    """

    def __init__(self, probs: np.ndarray, name: str = "tabular") -> None:
        probs = np.asarray(probs, dtype=np.float64)
        if probs.ndim != 2 or (probs < 0).any() or not np.allclose(probs.sum(axis=1), 1.0):
            raise ValueError("probs must be (S, A) with non-negative rows that sum to 1")
        self.probs = probs
        self.name = name

    def __call__(self, obs: np.ndarray, rng: np.random.Generator) -> int:
        state = int(np.argmax(obs))
        return int(rng.choice(self.probs.shape[1], p=self.probs[state]))

    def __repr__(self) -> str:
        return f"TabularPolicy({self.name!r}, states={self.probs.shape[0]})"


def always(config: MatrixGameConfig, action: int, name: str | None = None) -> TabularPolicy:
    """Play ``action`` in every state."""
    if not 0 <= action < config.n_actions:
        raise ValueError(f"action must be in [0, {config.n_actions}), got {action}")
    probs = np.zeros((config.n_states, config.n_actions))
    probs[:, action] = 1.0
    return TabularPolicy(probs, name or f"always_{action}")


def uniform(config: MatrixGameConfig) -> TabularPolicy:
    """Every action with equal probability in every state."""
    probs = np.full((config.n_states, config.n_actions), 1.0 / config.n_actions)
    return TabularPolicy(probs, "uniform")


def tit_for_tat(config: MatrixGameConfig, copy_agent: int, first_action: int = 0) -> TabularPolicy:
    """Play ``first_action`` at the start, then whatever ``copy_agent`` played last round."""
    probs = np.zeros((config.n_states, config.n_actions))
    probs[0, first_action] = 1.0
    joint = np.indices((config.n_actions,) * config.n_players).reshape(config.n_players, -1)
    probs[1 + np.arange(joint.shape[1]), joint[copy_agent]] = 1.0
    return TabularPolicy(probs, "tit_for_tat")


def random_tabular(
    config: MatrixGameConfig, rng: np.random.Generator, name: str = "random_tabular"
) -> TabularPolicy:
    """Action probabilities drawn uniformly from the simplex, independently per state."""
    probs = rng.dirichlet(np.ones(config.n_actions), size=config.n_states)
    return TabularPolicy(probs, name)


def best_response(
    config: MatrixGameConfig, focal: int, peers: dict[int, TabularPolicy]
) -> tuple[float, np.ndarray]:
    """Exact finite-horizon best response of player ``focal`` to fixed tabular peers.

    Backward induction over the ``horizon`` rounds (undiscounted):
    ``V_t(s) = max_a sum_{a_-i} p(a_-i | s) [r_i(a, a_-i) + V_{t+1}(s')]`` with
    ``V_H = 0`` and ``s' = 1 + index(a, a_-i)``.

    Parameters
    ----------
    config : MatrixGameConfig
        The game.
    focal : int
        The responding player.
    peers : dict of int to TabularPolicy
        One policy for every other player.

    Returns
    -------
    value : float
        Expected episode return of the best response from ``s_0``.
    policy : np.ndarray
        ``(H, S)`` int, the optimal action per round and state.
    """
    n, n_actions, n_states = config.n_players, config.n_actions, config.n_states
    if sorted(peers) != [i for i in range(n) if i != focal]:
        raise ValueError(f"peers must map every player but {focal} of {n} to a policy")
    joint = np.indices((n_actions,) * n).reshape(n, -1).T  # (J, N), row = joint index
    rewards = config.payoffs.reshape(-1, n)[:, focal]  # (J,)
    # p(joint | s) for the peers' part, times an indicator of the focal action: (S, A, J)
    peer_prob = np.ones((n_states, joint.shape[0]))
    for j, policy in peers.items():
        peer_prob *= policy.probs[:, joint[:, j]]
    focal_mask = joint[:, focal][None, :] == np.arange(n_actions)[:, None]  # (A, J)
    trans = peer_prob[:, None, :] * focal_mask[None]  # (S, A, J)
    value = np.zeros(n_states)
    policy = np.zeros((config.horizon, n_states), dtype=np.int64)
    for t in reversed(range(config.horizon)):
        q = trans @ (rewards + value[1:])  # (S, A)
        policy[t] = q.argmax(axis=1)
        value = q.max(axis=1)
    return float(value[0]), policy


class RandomPolicy:
    """Uniformly random actions of any action space (a peer for any game).

    Parameters
    ----------
    space : gymnasium.spaces.Discrete or Box
        The peer's action space.
    """

    def __init__(self, space: spaces.Space) -> None:
        self.space = space

    def __call__(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return random_actions(self.space, (), rng)

    def __repr__(self) -> str:
        return f"RandomPolicy({self.space})"


NAMED_PEERS = ("uniform", "tit_for_tat", "always_<action>", "random_tabular")


def named_peer(
    name: str, config: MatrixGameConfig, focal: int, rng: np.random.Generator
) -> TabularPolicy:
    """Build a peer policy from a name (for ``gymnasium.make`` keywords).

    ``"uniform"``, ``"tit_for_tat"`` (copies the focal player), ``"random_tabular"``
    (drawn from ``rng``), ``"always_<k>"`` or ``"always_<action name>"`` (e.g.
    ``"always_defect"`` in IPD).
    """
    if name == "uniform":
        return uniform(config)
    if name == "tit_for_tat":
        return tit_for_tat(config, copy_agent=focal)
    if name == "random_tabular":
        return random_tabular(config, rng)
    if name.startswith("always_"):
        what = name.removeprefix("always_")
        names = config.action_names or ()
        if what in names:
            return always(config, names.index(what), name)
        if what.isdigit():
            return always(config, int(what), name)
    choices = list(NAMED_PEERS) + [f"always_{a}" for a in config.action_names or ()]
    raise ValueError(f"unknown peer policy {name!r}; valid: {choices}")
