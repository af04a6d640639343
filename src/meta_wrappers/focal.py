"""Focal / frozen peers: a multi-agent env plus fixed policies for the others is a
single-agent Gymnasium env (the K = infinity case of the learning-peers chain).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np

import metaenvs
from meta_wrappers.policies import PeerPolicy, RandomPolicy, named_peer
from metaenvs.core import BatchedCore, CoreState, check_agent_action, check_masked_actions
from metaenvs.faces import check_reset_options, render_copies
from metaenvs.games.matrix import MatrixGameCore
from metaenvs.rng import check_seed


class FocalEnv(gymnasium.Env):
    """One focal agent acts; every other agent follows a given fixed policy.

    Observation and action spaces are the focal agent's; the reward is the focal
    agent's.  Termination and truncation are the game's (a time limit is truncation);
    after either, :meth:`step` raises until :meth:`reset`.  A bad focal action raises
    before the peers draw their actions, so it leaves the env as it was.

    Parameters
    ----------
    core : BatchedCore
        The multi-agent game (one copy is run).
    peers : sequence of PeerPolicy
        One policy per non-focal agent, in slot order; each is called as
        ``policy(observation, rng) -> action`` with this env's ``np_random``.
    focal_agent : int
        Slot of the focal agent.
    render_mode : {"rgb_array", None}
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        core: BatchedCore,
        peers: Sequence[PeerPolicy],
        focal_agent: int = 0,
        render_mode: str | None = None,
    ) -> None:
        if not 0 <= focal_agent < core.n_agents:
            raise ValueError(f"focal_agent must be in [0, {core.n_agents}), got {focal_agent}")
        if len(peers) != core.n_agents - 1:
            raise ValueError(f"need {core.n_agents - 1} peer policies, got {len(peers)}")
        if not all(callable(p) for p in peers):
            raise TypeError("every peer policy must be callable as policy(obs, rng) -> action")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"unknown render_mode {render_mode!r}")
        self.core = core
        self.focal_agent = focal_agent
        self.peers = list(peers)
        self.peer_slots = [i for i in range(core.n_agents) if i != focal_agent]
        self.render_mode = render_mode
        self.observation_space = core.observation_space
        self.action_space = core.action_space
        self._state: CoreState | None = None
        self._obs: np.ndarray | None = None
        self._done = False  # the episode ended: step() needs a reset() first

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode.

        Parameters
        ----------
        seed : int or None
            An int in ``[0, 2**64)`` (see :func:`metaenvs.rng.check_seed`); it seeds
            ``np_random``, which seeds the game and drives the peers.
        options : None or {}
            No options are supported; others raise ``ValueError``.

        Raises
        ------
        ValueError, TypeError
            For a bad seed or non-empty options, before anything changes.
        """
        check_reset_options(options, type(self).__name__)
        super().reset(seed=check_seed(seed))
        core_seed = int(self.np_random.integers(2**62))
        self._state = self.core.reset(1, core_seed)
        self._obs = self.core.observe(self._state)[0].copy()
        self._done = False
        return self._obs[self.focal_agent], {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Play one round: the focal ``action``, the peers' from their policies.

        Raises
        ------
        RuntimeError
            Before :meth:`reset` or after the episode ended.
        ValueError, TypeError
            For a bad focal action (shape, dtype, range, masked), before the peers act
            or anything else changes.
        """
        if self._state is None or self._obs is None:
            raise RuntimeError("step() called before reset()")
        if self._done:
            raise RuntimeError("step() called after the episode ended; call reset()")
        core, focal = self.core, self.focal_agent
        focal_action = check_agent_action(core.action_space, action, core.agent_names[focal])
        if core.masked_actions:
            check_masked_actions(
                core.action_mask(self._state)[:, [focal]],
                focal_action.reshape(1, 1),
                (core.agent_names[focal],),
            )
        joint = np.empty((1, core.n_agents, *core.action_space.shape), focal_action.dtype)
        joint[0, focal] = focal_action
        for slot, policy in zip(self.peer_slots, self.peers):
            joint[0, slot] = policy(self._obs[slot], self.np_random)
        result = self.core.step(self._state, joint)
        terminated, truncated = bool(result.terminated[0]), bool(result.truncated[0])
        self._done = terminated or truncated
        self._obs = (result.final_obs[0] if terminated or truncated else result.obs[0]).copy()
        info = {k: v[0] for k, v in result.info.items()}
        info["peer_actions"] = joint[0, self.peer_slots]
        reward = float(result.reward[0, self.focal_agent])
        return self._obs[self.focal_agent], reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        frames = render_copies(self.core, self._state, self.render_mode, range(1))
        return None if frames is None else frames[0]


def make_focal_env(
    env_id: str,
    peers: str | PeerPolicy | Sequence[str | PeerPolicy] = "uniform",
    focal_agent: int = 0,
    peer_seed: int = 0,
    render_mode: str | None = None,
    **kwargs: Any,
) -> FocalEnv:
    """Gymnasium entry point of ``metaenvs/<id>-focal-v0``.

    Parameters
    ----------
    env_id : str
        Registered id of the multi-agent game.
    peers : str, callable or sequence of them
        The non-focal agents' policies; one value is used for every peer.  Names
        (matrix games only): ``"uniform"``, ``"tit_for_tat"``, ``"random_tabular"``,
        ``"always_<action>"`` (see :func:`meta_wrappers.policies.named_peer`).  Other
        games accept ``"uniform"`` (uniformly random actions) or callables.
    focal_agent : int
        Slot of the learning agent.
    peer_seed : int
        Seed of the draw of ``"random_tabular"`` peers (fixed for the env's life).
    render_mode : {"rgb_array", None}
    **kwargs
        Keywords of the game's config (e.g. ``horizon``).

    Examples
    --------
    >>> import gymnasium, metaenvs
    >>> env = gymnasium.make("metaenvs/ipd-focal-v0", peers="tit_for_tat")
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape
    (5,)
    """
    core = metaenvs.make_core(env_id, **kwargs)
    n_peers = core.n_agents - 1
    if isinstance(peers, str) or callable(peers):
        peers = [peers] * n_peers
    rng = np.random.default_rng(peer_seed)
    resolved: list[PeerPolicy] = []
    for p in peers:
        if isinstance(p, str):
            if isinstance(core, MatrixGameCore):
                p = named_peer(p, core.config, focal_agent, rng)
            elif p == "uniform":
                p = RandomPolicy(core.action_space)
            else:
                raise TypeError(
                    f"{env_id!r} knows the peer name 'uniform' only (others need a matrix "
                    f"game); pass a callable policy(obs, rng) -> action instead of {p!r}"
                )
        resolved.append(p)
    return FocalEnv(core, resolved, focal_agent=focal_agent, render_mode=render_mode)
