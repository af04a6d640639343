"""TorchRL: any registered id as a TorchRL env, with the settings its game needs.

``make_env("skirmish_3m")`` is TorchRL's ``PettingZooWrapper`` around
``metaenvs.make("skirmish_3m")`` with:

- ``use_mask=True`` when agents can die or actions are masked (TorchRL then keeps one slot
  per agent of ``possible_agents``, marks the live ones in ``("group", "mask")`` and reads
  the action masks from the observations; the actions it sends for dead agents are
  ignored by metaenvs), ``False`` otherwise;
- ``done_on_any=False``: an episode ends when every agent is done (TorchRL's setting for
  games whose agents die), not at the first death;
- ``return_state=True``: the global state (``env.state()``, what QMIX's mixer and MAPPO's
  critic read) under ``"state"``;
- TorchRL's default groups (agents grouped by the name before their index: Skirmish's
  ``marine_0..2`` form ``"marine"``; predator-prey's scripted prey are not agents).

Needs TorchRL (``pip install 'metaenvs[torchrl]'``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pettingzoo.utils.wrappers import BaseParallelWrapper

import metaenvs

__all__ = ["make_env"]


class _EveryAgentEachStep(BaseParallelWrapper):
    """A ParallelEnv view that reports every agent of ``possible_agents`` at every step.

    TorchRL before 0.14 (the version BenchMARL pins) reads the observation, mask and info
    of every agent of a group at each step, dead ones too, and fails on an agent that has
    left.  This view keeps ``agents`` (the live ones) and adds, for each agent that has
    left, a zero observation, its no-op-only mask, reward 0 and ``terminated``: what
    TorchRL's mask (``("group", "mask")``) then hides from learning.
    """

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self.possible_agents = env.possible_agents
        self.metadata = env.metadata
        self.render_mode = env.render_mode
        space = env.core.observation_space
        self._zero = np.zeros(space.shape, dtype=space.dtype)
        self._gone = getattr(env, "_gone_mask", None)
        self._dict_obs = bool(env.core.masked_actions and env.mask_in_obs)

    @property
    def agents(self) -> list[str]:
        return self.env.agents

    def _fill(self, observations: dict, infos: dict) -> None:
        for agent in self.possible_agents:
            if agent in observations:
                continue
            obs = self._zero.copy()
            if self._dict_obs:
                obs = {"observation": obs, "action_mask": self._gone.copy()}
            observations[agent] = obs
            infos[agent] = {} if self._gone is None else {"action_mask": self._gone.copy()}

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        observations, infos = self.env.reset(seed=seed, options=options)
        self._fill(observations, infos)
        return observations, infos

    def step(self, actions: dict) -> tuple[dict, dict, dict, dict, dict]:
        observations, rewards, terminated, truncated, infos = self.env.step(actions)
        for agent in self.possible_agents:
            if agent not in observations:
                rewards[agent], terminated[agent], truncated[agent] = 0.0, True, False
        self._fill(observations, infos)
        return observations, rewards, terminated, truncated, infos


def make_env(
    env_id: str,
    *,
    seed: int | None = None,
    return_state: bool = True,
    group_map: Any = None,
    categorical_actions: bool = True,
    device: Any = None,
    **kwargs: Any,
) -> Any:
    """A TorchRL ``PettingZooWrapper`` of ``metaenvs.make(env_id, **kwargs)``.

    Parameters
    ----------
    env_id : str
        A registered id (``metaenvs.list_envs()``).
    seed : int, optional
        Seed of the first reset (TorchRL's ``seed``).
    return_state : bool
        Put the global state under ``"state"`` (default True).
    group_map : MarlGroupMapType or dict, optional
        TorchRL's grouping of agents (default: by name prefix).
    categorical_actions : bool
        Discrete actions as indices (default) rather than one-hot.
    device : torch.device or str, optional
        Where the tensors live.
    **kwargs
        Keywords of the id (``max_cycles``, ``invalid_action``, ...), checked by
        :func:`metaenvs.make` before anything is built.

    Returns
    -------
    torchrl.envs.libs.pettingzoo.PettingZooWrapper

    Raises
    ------
    ImportError
        Without TorchRL, naming the extra to install.
    """
    try:
        from torchrl.envs.libs.pettingzoo import PettingZooWrapper
    except ModuleNotFoundError as err:
        raise ImportError(
            "metaenvs.integrations.torchrl needs TorchRL: pip install 'metaenvs[torchrl]'"
        ) from err
    env = metaenvs.make(env_id, **kwargs)
    core = env.core
    if core.agents_can_die:
        env = _EveryAgentEachStep(env)
    options: dict[str, Any] = {} if device is None else {"device": device}
    return PettingZooWrapper(
        env,
        return_state=return_state,
        group_map=group_map,
        use_mask=bool(core.agents_can_die or core.masked_actions),
        categorical_actions=categorical_actions,
        seed=seed,
        done_on_any=False,
        **options,
    )
