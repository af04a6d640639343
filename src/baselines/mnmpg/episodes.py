"""One episode runner for every value-decomposition learner, on the batched Skirmish core.

:func:`run_episodes` plays E episodes in lockstep (one batched core of E copies), the agents
acting epsilon-greedily on their masked utilities, and returns them as an :class:`Episodes`
batch of fixed length T (the map's time limit), padded after each episode's end.

The core keeps the map's time limit T: an episode cut at T steps is *truncated* (the
learners bootstrap there) and a battle that ends is *terminated* (no bootstrap).  Either
way the core restarts the copy in the same step, so the episode's last observation, global
state and masks are read from the step's ``final_obs``, ``final_state`` and ``final_mask``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import torch

import metaenvs
from baselines.mnmpg.nets import RNNAgent
from metaenvs.core import StepResult, sample_available


@dataclasses.dataclass
class Episodes:
    """E episodes padded to T steps (tensors; float32 unless stated).

    Attributes
    ----------
    obs : (E, T + 1, N, D)
    state : (E, T + 1, S)
    avail : (E, T + 1, N, A) bool, the action masks
    actions : (E, T, N) int64
    reward : (E, T), the team reward
    terminated : (E, T), 1 at the step a battle ended (not at truncation)
    filled : (E, T), 1 at the steps that happened
    z : (E, T + 1, K) or None, the hierarchy chosen at each step (MNMPG)
    returns : (E,) numpy, the undiscounted return of each episode
    won : (E,) numpy bool
    draw : (E,) numpy bool, both sides lost
    """

    OBSERVED: ClassVar[tuple[str, ...]] = ("obs", "state", "avail", "z")
    """The fields with ``T + 1`` steps (the rest of the per-step fields have ``T``)."""

    obs: torch.Tensor
    state: torch.Tensor
    avail: torch.Tensor
    actions: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    filled: torch.Tensor
    z: torch.Tensor | None
    returns: np.ndarray
    won: np.ndarray
    draw: np.ndarray

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    @property
    def steps(self) -> int:
        """Env steps the episodes took."""
        return int(self.filled.sum().item())

    def select(self, index: np.ndarray | list[int]) -> Episodes:
        """The episodes at ``index``."""
        fields = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            fields[f.name] = None if value is None else value[index]
        return Episodes(**fields)


def make_runner_core(map_name: str, **kwargs):
    """The Skirmish core of ``map_name`` the runner plays (the map's own time limit T).

    ``kwargs`` are more :class:`~metaenvs.games.skirmish.SkirmishConfig` keywords (e.g.
    ``difficulty``).
    """
    return metaenvs.make_core("skirmish", map_name=map_name, **kwargs)


def agent_inputs(obs: torch.Tensor, last_actions: torch.Tensor, n_actions: int) -> torch.Tensor:
    """QMIX's agent input: ``[obs, one-hot last action, one-hot agent id]``, ``(..., N, *)``."""
    n = obs.shape[-2]
    ids = torch.eye(n).expand(*obs.shape[:-2], n, n)
    return torch.cat([obs, torch.nn.functional.one_hot(last_actions, n_actions).float(), ids], -1)


class LockstepEpisodes:
    """E episodes played step by step in one batched core (the loop of :func:`run_episodes`,
    opened up so that a meta-agent can choose ``z_t`` between steps).

    Call :meth:`record` (returns the global states ``s_t``), optionally :meth:`record_z`,
    then :meth:`step`, until :attr:`finished`; then :meth:`episodes`.

    An episode is recorded up to and including the observation, global state and masks
    its last step led to: a battle that ends at step k < T leaves ``obs``, ``state`` and
    ``avail`` at k filled (``z`` stays zero there), a truncated one is recorded at T
    like any running step.
    """

    def __init__(self, core, agent: RNNAgent, n_episodes: int, epsilon: float, seed: int):
        self.core, self.agent, self.epsilon = core, agent, epsilon
        self.t_max = core.time_limit
        e, n, a = n_episodes, core.n_agents, int(core.action_space.n)
        self.e, self.n, self.a = e, n, a
        self.rng = np.random.default_rng(seed)
        self.state = core.reset(e, seed)
        d, s, t1 = core.observation_space.shape[0], core.state_space.shape[0], self.t_max + 1
        self.obs = np.zeros((e, t1, n, d), np.float32)
        self.gstate = np.zeros((e, t1, s), np.float32)
        self.avail = np.zeros((e, t1, n, a), np.bool_)
        self.actions = np.zeros((e, self.t_max, n), np.int64)
        self.reward = np.zeros((e, self.t_max), np.float32)
        self.terminated = np.zeros((e, self.t_max), np.float32)
        self.filled = np.zeros((e, self.t_max), np.float32)
        self.zs: np.ndarray | None = None
        self.active = np.ones(e, np.bool_)
        self.won = np.zeros(e, np.bool_)
        self.draw = np.zeros(e, np.bool_)
        self.h = agent.initial_state(e * n)
        self.last = torch.zeros(e, n, dtype=torch.long)
        self.result: StepResult | None = None
        self.t = 0

    @property
    def finished(self) -> bool:
        """Every episode has ended (terminated, or truncated at T steps)."""
        return self.t >= self.t_max or not self.active.any()

    def now(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Observations ``(E, N, D)``, global states ``(E, S)`` and masks ``(E, N, A)`` the
        episodes are at: for a copy the last step finished (the core restarted it), the
        step's final ones."""
        obs = self.core.observe(self.state)
        gstate = self.core.global_state(self.state)
        mask = self.core.action_mask(self.state)
        r = self.result
        done = None if r is None else r.terminated | r.truncated
        if done is not None and done.any():
            obs = np.where(done[:, None, None], r.final_obs, obs)
            gstate = np.where(done[:, None], r.final_state, gstate)
            mask = np.where(done[:, None, None], r.final_mask, mask)
        return obs, gstate, mask

    def record(self) -> np.ndarray:
        """Record ``obs_t``, ``s_t`` and the masks of the running episodes; ``s_t (E, S)``."""
        idx, t = np.flatnonzero(self.active), self.t
        obs, gstate, mask = self.now()
        self.obs[idx, t] = obs[idx]
        self.gstate[idx, t] = gstate[idx]
        self.avail[idx, t] = mask[idx]
        return self.gstate[:, t]

    def record_z(self, z: np.ndarray) -> None:
        """Record the hierarchy ``z_t (E, K)`` of the running episodes."""
        if self.zs is None:
            self.zs = np.zeros((self.e, self.t_max + 1, z.shape[-1]), np.float32)
        idx = np.flatnonzero(self.active)
        self.zs[idx, self.t] = z[idx]

    @torch.no_grad()
    def step(self) -> None:
        """Every agent acts epsilon-greedily on its masked utilities; the core steps."""
        e, n, a, t = self.e, self.n, self.a, self.t
        mask = self.core.action_mask(self.state).astype(np.bool_)
        x = agent_inputs(torch.from_numpy(self.obs[:, t]), self.last, a)
        q, self.h = self.agent(x.reshape(e * n, -1), self.h)
        q = q.view(e, n, a).masked_fill(~torch.from_numpy(mask), -float("inf"))
        greedy = q.argmax(dim=-1).numpy()
        explore = self.rng.random((e, n)) < self.epsilon
        chosen = np.where(explore, sample_available(mask, self.rng.random((e, n))), greedy)
        self.result = result = self.core.step(self.state, chosen)
        idx = np.flatnonzero(self.active)
        self.actions[idx, t] = chosen[idx]
        self.reward[idx, t] = result.info["team_reward"][idx]
        self.filled[idx, t] = 1.0
        ended = self.active & result.terminated
        self.terminated[ended, t] = 1.0
        self.won |= ended & result.info["battle_won"]
        self.draw |= ended & result.info["battle_draw"]
        # a battle that ended restarted in the core: keep where it ended, stop recording
        self.obs[ended, t + 1] = result.final_obs[ended]
        self.gstate[ended, t + 1] = result.final_state[ended]
        self.avail[ended, t + 1] = result.final_mask[ended]
        self.active &= ~ended
        self.last = torch.from_numpy(chosen)
        self.t += 1

    def episodes(self) -> Episodes:
        """The recorded episodes."""
        return Episodes(
            obs=torch.from_numpy(self.obs),
            state=torch.from_numpy(self.gstate),
            avail=torch.from_numpy(self.avail),
            actions=torch.from_numpy(self.actions),
            reward=torch.from_numpy(self.reward),
            terminated=torch.from_numpy(self.terminated),
            filled=torch.from_numpy(self.filled),
            z=None if self.zs is None else torch.from_numpy(self.zs),
            returns=self.reward.sum(axis=1).astype(np.float64),
            won=self.won.copy(),
            draw=self.draw.copy(),
        )


def run_episodes(
    core,
    agent: RNNAgent,
    n_episodes: int,
    epsilon: float,
    seed: int,
    hierarchy: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Episodes:
    """Play ``n_episodes`` episodes in lockstep with epsilon-greedy masked utilities.

    Parameters
    ----------
    core : SkirmishCore
        Built by :func:`make_runner_core`; its time limit is the episodes' length T.
    agent : RNNAgent
        The utility network, shared by the agents.
    epsilon : float
        Probability that an agent takes a uniformly random available action.
    seed : int
        Seeds the battles (copy e gets ``seed + e``) and the exploration.
    hierarchy : callable, optional
        ``states (E, S) -> z (E, K)``, called at every step (MNMPG's ``z_t``); recorded.
    """
    play = LockstepEpisodes(core, agent, n_episodes, epsilon, seed)
    while True:
        states = play.record()
        if hierarchy is not None:
            play.record_z(hierarchy(states))
        if play.finished:
            return play.episodes()
        play.step()
