"""PettingZoo ``ParallelEnv`` face over a batched core (one copy)."""

from __future__ import annotations

import copy
from typing import Any

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv

from metaenvs._rng import check_seed
from metaenvs.config import check_choice
from metaenvs.core import INVALID_ACTIONS, BatchedCore, CoreState, check_agent_action
from metaenvs.faces._common import check_render_mode, check_reset_options, render_copies


class BatchedParallelEnv(ParallelEnv):
    """A PettingZoo ``ParallelEnv`` running one copy (B = 1) of ``core``.

    Agents leave the episode together when it terminates or is truncated; call
    :meth:`reset` to start the next one.  In a game where agents die
    (``core.agents_can_die``), an agent that dies is terminated at that step and leaves
    ``agents``.  AEC users convert with ``pettingzoo.utils.conversions.parallel_to_aec``.

    ``step`` takes one action per live agent (``agents``).  Actions of agents that have
    left (in ``possible_agents`` but no longer in ``agents``) are ignored, as PettingZoo's
    own conversions and SuperSuit do, so a sampler may keep sending an action for every
    agent; a name outside ``possible_agents`` or a missing live agent raises.

    With action masks (``core.masked_actions``), each observation is a dict
    ``{"observation": ..., "action_mask": int8 (n_actions,)}`` as in PettingZoo's classic
    games, and ``infos[agent]["action_mask"]`` holds the same mask.  With
    ``mask_in_obs=False`` the observation is the plain array (a ``Box`` space) and the
    mask is in ``infos`` only: the form SuperSuit's ``black_death_v3`` and other
    wrappers that need ``Box`` observations accept.

    Parameters
    ----------
    core : BatchedCore
        The game.
    render_mode : {"rgb_array", None}
        ``"rgb_array"`` makes :meth:`render` return an ``(H, W, 3)`` uint8 image.
    name : str
        Shown in ``metadata["name"]``.
    invalid_action : {"raise", "noop"}
        What a masked (unavailable) action does: ``"raise"`` (default) raises
        ``ValueError`` naming the agent, before anything changes; ``"noop"`` replaces it
        by the first action the agent's current mask allows (its lowest available index:
        for Skirmish, ``stop`` for a live unit, as SMAC allows ``no-op`` only to dead
        ones), so samplers that ignore masks can play.  Actions out of the action space
        raise either way.  No effect on a game without masks.  The core does the
        replacement (:meth:`~metaenvs.core.BatchedCore.step`), the same on every face.
    mask_in_obs : bool
        With action masks, put them in the observations (default, a ``Dict`` space) or
        only in ``infos[agent]["action_mask"]`` (``False``: the observation space is the
        core's ``Box``).  No effect on a game without masks.

    Raises
    ------
    ValueError, TypeError
        For an unknown ``render_mode`` or ``invalid_action``, or a ``mask_in_obs`` that
        is not a bool.
    """

    metadata = {
        "render_modes": ["rgb_array"],
        "render_fps": 10,
        "is_parallelizable": True,
        "name": "metaenvs",
    }

    def __init__(
        self,
        core: BatchedCore,
        render_mode: str | None = None,
        name: str | None = None,
        invalid_action: str = "raise",
        mask_in_obs: bool = True,
    ) -> None:
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.invalid_action = check_choice("invalid_action", invalid_action, INVALID_ACTIONS)
        if not isinstance(mask_in_obs, (bool, np.bool_)):
            raise TypeError(f"mask_in_obs must be a bool, got {mask_in_obs!r}")
        self.mask_in_obs = bool(mask_in_obs)
        self.core = core
        self.metadata = {**self.metadata, "name": name or type(core).__name__}
        self.possible_agents = list(core.agent_names)
        self.agents: list[str] = []
        self._dict_obs = core.masked_actions and self.mask_in_obs
        obs_space: gymnasium.Space = core.observation_space
        if core.masked_actions:
            n_actions = int(core.action_space.n)
            if self._dict_obs:
                obs_space = gymnasium.spaces.Dict(
                    {
                        "observation": core.observation_space,
                        "action_mask": gymnasium.spaces.Box(0, 1, (n_actions,), dtype=np.int8),
                    }
                )
            # the mask of an agent that has left: only action 0 (no-op)
            self._gone_mask = np.zeros(n_actions, dtype=np.int8)
            self._gone_mask[0] = 1
        # one space object per agent and per env: seeding one samples no other's numbers
        self.observation_spaces = {a: copy.deepcopy(obs_space) for a in self.possible_agents}
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        self._action_shape = core.action_space.shape
        self.action_spaces = {a: copy.deepcopy(core.action_space) for a in self.possible_agents}
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
        """Start an episode; without a seed the copy's random stream continues.

        Parameters
        ----------
        seed : int or None
            An int in ``[0, 2**64)`` (see :func:`metaenvs._rng.check_seed`).
        options : mapping or None
            No options are supported.  Non-empty options are ignored with a
            ``UserWarning`` naming them, not rejected: PettingZoo's own API test resets
            with ``options={"options": 1}`` and must pass.

        Raises
        ------
        ValueError, TypeError
            For a bad seed or options that are not a mapping, before anything changes.
        """
        seed = check_seed(seed)
        check_reset_options(options, type(self).__name__, warn_only=True)
        if seed is None and self._state is not None:
            # continue the copy's random stream, so the face follows the core: after an
            # episode end the kernel's auto-reset has already started the next episode
            if self.agents:
                self._state = self.core.restart(self._state)
        else:
            self._state = self.core.reset(1, seed)
        self.agents = list(self.possible_agents)
        obs = self.core.observe(self._state)[0].copy()
        if not self.core.masked_actions:
            return dict(zip(self.agents, obs)), {a: {} for a in self.agents}
        masks = self.core.action_mask(self._state)[0].copy()
        infos = {a: {"action_mask": m} for a, m in zip(self.agents, masks)}
        if not self._dict_obs:
            return dict(zip(self.agents, obs)), infos
        observations = {
            a: {"observation": o, "action_mask": m} for a, o, m in zip(self.agents, obs, masks)
        }
        return observations, infos

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """Advance one step with the live agents' actions.

        Parameters
        ----------
        actions : mapping
            One action per agent of ``agents``; entries of agents that have left
            (``possible_agents`` not in ``agents``) are ignored.

        Raises
        ------
        RuntimeError
            Before :meth:`reset` or after the episode ended.
        ValueError, TypeError
            For a missing live agent, a name outside ``possible_agents``, an action out
            of the action space, or a masked action with ``invalid_action="raise"``;
            nothing changes.
        """
        if self._state is None or not self.agents:
            raise RuntimeError("step() called before reset() or after the episode ended")
        missing = [a for a in self.agents if a not in actions]
        unknown = [a for a in actions if a not in self._index]
        if missing or unknown:
            raise ValueError(
                f"actions must have one entry per live agent {self.agents} (entries of "
                f"agents that have left are ignored); missing {missing}, unknown {unknown} "
                f"(not in possible_agents {self.possible_agents})"
            )
        agents = self.agents
        everyone = len(agents) == len(self.possible_agents)
        # all agents in: every slot, in order (a slice, not a gather); else their slots
        slots = slice(None) if everyone else [self._index[a] for a in agents]
        # the core checks the stacked actions (naming the agent of an out-of-range one);
        # stacking would upcast mixed dtypes or fail on a shape without naming the agent,
        # so then each agent's action is checked on its own first
        arrays = [np.asarray(actions[a]) for a in agents]
        kind, shape = arrays[0].dtype, self._action_shape
        for x in arrays:
            if x.shape != shape or x.dtype != kind:
                space = self.core.action_space
                arrays = [check_agent_action(space, x, a) for x, a in zip(arrays, agents)]
                break
        live = np.array(arrays)  # stacked: same shapes and dtype (np.stack is slower)
        if everyone:
            joint = live[None]
        else:  # the slots of agents that have left get action 0 (no-op)
            joint = np.zeros((1, len(self.possible_agents), *live.shape[1:]), dtype=live.dtype)
            joint[0, slots] = live
        result = self.core.step(self._state, joint, self.invalid_action)
        done = bool(result.terminated[0] or result.truncated[0])
        obs = (result.final_obs[0] if done else result.obs[0])[slots].copy()
        rewards = dict(zip(agents, result.reward[0, slots].tolist()))
        terminations = dict.fromkeys(agents, bool(result.terminated[0]))
        truncations = dict.fromkeys(agents, bool(result.truncated[0]))
        extra = {k: v[0] for k, v in result.info.items()}
        infos = {a: dict(extra) for a in agents}
        leaving: list[str] = []
        if not done and self.core.agents_can_die:
            alive = self.core.alive(self._state)[0]
            leaving = [a for a in agents if not alive[self._index[a]]]
            for a in leaving:
                terminations[a] = True
        if self.core.masked_actions:
            masks = self.core.action_mask(self._state)[0]
            for a in agents:
                gone = done or a in leaving
                mask = self._gone_mask.copy() if gone else masks[self._index[a]].copy()
                infos[a]["action_mask"] = mask
        if self._dict_obs:
            observations = {
                a: {"observation": o, "action_mask": infos[a]["action_mask"]}
                for a, o in zip(agents, obs)
            }
        else:
            observations = dict(zip(agents, obs))
        self.agents = [] if done else [a for a in agents if a not in leaving]
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
