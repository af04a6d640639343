"""PettingZoo ``ParallelEnv`` face over a batched core (one copy)."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv

from metaenvs.core import BatchedCore, CoreState
from metaenvs.faces._common import check_render_mode, render_copies


class BatchedParallelEnv(ParallelEnv):
    """A PettingZoo ``ParallelEnv`` running one copy (B = 1) of ``core``.

    Agents leave the episode together when it terminates or is truncated; call
    :meth:`reset` to start the next one.  AEC users convert with
    ``pettingzoo.utils.conversions.parallel_to_aec``.

    Parameters
    ----------
    core : BatchedCore
        The game.
    render_mode : {"rgb_array", None}
        ``"rgb_array"`` makes :meth:`render` return an ``(H, W, 3)`` uint8 image.
    name : str
        Shown in ``metadata["name"]``.
    """

    metadata = {
        "render_modes": ["rgb_array"],
        "render_fps": 10,
        "is_parallelizable": True,
        "name": "metaenvs",
    }

    def __init__(
        self, core: BatchedCore, render_mode: str | None = None, name: str | None = None
    ) -> None:
        self.core = core
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.metadata = {**self.metadata, "name": name or type(core).__name__}
        self.possible_agents = list(core.agent_names)
        self.agents: list[str] = []
        self.observation_spaces = {a: core.observation_space for a in self.possible_agents}
        self.action_spaces = {a: core.action_space for a in self.possible_agents}
        self._state: CoreState | None = None

    def observation_space(self, agent: str) -> gymnasium.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> gymnasium.Space:
        return self.action_spaces[agent]

    @property
    def state_space(self) -> gymnasium.Space:
        return self.core.global_state_space

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        if seed is None and self._state is not None:
            # continue the copy's random stream, so the face follows the core: after an
            # episode end the kernel's auto-reset has already started the next episode
            if self.agents:
                self._state = self.core.restart(self._state)
        else:
            self._state = self.core.reset(1, seed)
        self.agents = list(self.possible_agents)
        obs = self.core.observe(self._state)[0].copy()
        return dict(zip(self.agents, obs)), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if self._state is None or not self.agents:
            raise RuntimeError("step() called before reset() or after the episode ended")
        missing = [a for a in self.agents if a not in actions]
        unknown = [a for a in actions if a not in self.agents]
        if missing or unknown:
            raise ValueError(
                f"actions must have one entry per live agent {self.agents}; "
                f"missing {missing}, unknown {unknown}"
            )
        joint = np.stack([np.asarray(actions[a]) for a in self.agents])[None]
        result = self.core.step(self._state, joint)
        done = bool(result.terminated[0] or result.truncated[0])
        obs = (result.final_obs[0] if done else result.obs[0]).copy()
        agents = self.agents
        observations = dict(zip(agents, obs))
        rewards = {a: float(r) for a, r in zip(agents, result.reward[0])}
        terminations = dict.fromkeys(agents, bool(result.terminated[0]))
        truncations = dict.fromkeys(agents, bool(result.truncated[0]))
        extra = {k: v[0] for k, v in result.info.items()}
        infos = {a: dict(extra) for a in agents}
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        if self._state is None:
            raise RuntimeError("state() called before reset()")
        return self.core.global_state(self._state)[0]

    def render(self) -> np.ndarray | None:
        frames = render_copies(self.core, self._state, self.render_mode, range(1))
        return None if frames is None else frames[0]

    def close(self) -> None:
        pass
