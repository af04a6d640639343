"""RLlib: any registered id as an RLlib ``MultiAgentEnv``, masks in the form RLlib reads.

``MetaenvsMultiAgentEnv({"env_id": "skirmish_3m"})`` is RLlib's ``ParallelPettingZooEnv``
around ``metaenvs.make("skirmish_3m", invalid_action="noop")`` with, for games with action
masks, observations renamed to what RLlib's ``ActionMaskingTorchRLModule`` reads:
``{"observations": Box, "action_mask": Box(0, 1) float32}`` (metaenvs' own are
``{"observation", "action_mask": int8}``).  :func:`register` makes it the RLlib env
``"metaenvs"``; :func:`ppo_config` builds a PPO config with one policy shared by all
agents (masked by ``ActionMaskingTorchRLModule`` where the game has masks).

Why ``invalid_action="noop"`` by default: RLlib's env checker (run inside every env runner)
steps the env with actions sampled without masks; ``"noop"`` replaces a masked action by
the agent's first legal one instead of raising.  A masking module never samples a masked
action, so training is unaffected; pass ``invalid_action="raise"`` in the env config to
make a masked action an error.  Actions RLlib sends for agents that have died are ignored
by the PettingZoo face.

Needs Ray RLlib (``pip install 'ray[rllib]'``), which pins Gymnasium exactly (Ray 2.60:
gymnasium 1.2.2, within metaenvs' range); install it in its own environment if other
packages need a newer Gymnasium.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from pettingzoo.utils.wrappers import BaseParallelWrapper

import metaenvs

try:
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv
except ModuleNotFoundError as err:  # pragma: no cover - exercised without RLlib
    raise ImportError(
        "metaenvs.integrations.rllib needs Ray RLlib: pip install 'ray[rllib]'"
    ) from err

__all__ = ["ENV_NAME", "MetaenvsMultiAgentEnv", "ppo_config", "register"]

ENV_NAME = "metaenvs"
"""The name :func:`register` gives the env in RLlib's registry."""


class _RLlibMasks(BaseParallelWrapper):
    """A PettingZoo ParallelEnv view whose masked observations use RLlib's key names."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self.possible_agents = env.possible_agents
        self.metadata = env.metadata
        self.render_mode = env.render_mode
        inner = env.core.observation_space
        n_actions = int(env.core.action_space.n)
        self._space = gymnasium.spaces.Dict(
            {
                "observations": inner,
                "action_mask": gymnasium.spaces.Box(0.0, 1.0, (n_actions,), dtype=np.float32),
            }
        )

    @property
    def agents(self) -> list[str]:
        return self.env.agents

    def observation_space(self, agent: str) -> gymnasium.Space:
        return self._space

    @staticmethod
    def _rename(obs: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, np.ndarray]]:
        return {
            a: {
                "observations": o["observation"],
                "action_mask": o["action_mask"].astype(np.float32),
            }
            for a, o in obs.items()
        }

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        obs, infos = self.env.reset(seed=seed, options=options)
        return self._rename(obs), infos

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        obs, rewards, terminated, truncated, infos = self.env.step(actions)
        return self._rename(obs), rewards, terminated, truncated, infos


class MetaenvsMultiAgentEnv(ParallelPettingZooEnv):
    """RLlib ``MultiAgentEnv`` of a registered id.

    Parameters
    ----------
    config : dict
        RLlib's ``env_config``: ``env_id`` (required) and the id's keywords
        (``max_cycles``, ``invalid_action`` (default ``"noop"``), ...), checked by
        :func:`metaenvs.make`.

    Raises
    ------
    ValueError
        Without ``env_id``; :func:`metaenvs.make`'s errors for an unknown id or keyword.
    """

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        config = dict(config or {})
        if "env_id" not in config:
            raise ValueError("env_config needs 'env_id' (one of metaenvs.list_envs())")
        env_id = config.pop("env_id")
        config.setdefault("invalid_action", "noop")
        env = metaenvs.make(env_id, **config)
        self.masked = bool(env.core.masked_actions)
        super().__init__(_RLlibMasks(env) if self.masked else env)


def register(name: str = ENV_NAME) -> str:
    """Register :class:`MetaenvsMultiAgentEnv` with RLlib (``config.environment(name,
    env_config={"env_id": ...})``); returns ``name``."""
    from ray.tune.registry import register_env

    register_env(name, lambda config: MetaenvsMultiAgentEnv(dict(config)))
    return name


def ppo_config(env_id: str, **env_kwargs: Any) -> Any:
    """An RLlib ``PPOConfig`` on ``env_id`` with one policy shared by every agent.

    Games with action masks get RLlib's ``ActionMaskingTorchRLModule``; the others RLlib's
    default PPO module.  Tune it further with the config's own methods
    (``.training(...)``, ``.env_runners(...)``) and build with ``.build_algo()``.
    """
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    env_config = {"env_id": env_id, **env_kwargs}
    masked = MetaenvsMultiAgentEnv(env_config).masked  # validates the id and keywords
    spec = RLModuleSpec()
    if masked:
        from ray.rllib.examples.rl_modules.classes.action_masking_rlm import (
            ActionMaskingTorchRLModule,
        )

        spec = RLModuleSpec(module_class=ActionMaskingTorchRLModule)
    return (
        PPOConfig()
        .environment(register(), env_config=env_config)
        .multi_agent(policies={"shared"}, policy_mapping_fn=lambda agent_id, *a, **k: "shared")
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={"shared": spec}))
    )
