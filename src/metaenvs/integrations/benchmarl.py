"""BenchMARL: every registered id as a BenchMARL task.

``MetaenvsTask.SKIRMISH_3M.get_task(config={"max_cycles": 60})`` is a BenchMARL
``TaskClass`` whose env is :func:`metaenvs.integrations.torchrl.make_env` (TorchRL's
``PettingZooWrapper`` with masks where agents die or actions are masked, ``done_on_any``
False, the global state): MAPPO, QMIX and BenchMARL's other algorithms run on it like on
its own PettingZoo tasks.  The members of :data:`MetaenvsTask` are the registered ids
without their version, upper-cased (``navigation_N3_l3`` -> ``NAVIGATION_N3_L3``,
``skirmish_MMM2`` -> ``SKIRMISH_MMM2``); ``config`` holds the id's keywords.  Tasks need a
config (``get_task(config={})`` for the defaults): BenchMARL's YAML folder has no metaenvs
entries.  Both classes live at module level, as BenchMARL pickles tasks.

Needs BenchMARL (``pip install benchmarl``), which pins TorchRL below 0.12; with
``torch==2.13.0`` install ``torchvision==0.28.*`` alongside, or pip moves torch.
"""

from __future__ import annotations

import functools
from typing import Any

import metaenvs
from metaenvs.integrations.torchrl import make_env

try:
    from benchmarl.environments.common import Task
    from benchmarl.environments.pettingzoo.common import PettingZooClass
except ModuleNotFoundError as err:  # pragma: no cover - exercised without BenchMARL
    raise ImportError(
        "metaenvs.integrations.benchmarl needs BenchMARL: pip install benchmarl"
    ) from err

__all__ = ["ENV_IDS", "MetaenvsClass", "MetaenvsTask"]

ENV_IDS = {i.rsplit("-v", 1)[0].upper(): i.rsplit("-v", 1)[0] for i in metaenvs.list_envs()}
"""Member name of :data:`MetaenvsTask` -> registered id (without version)."""


class MetaenvsClass(PettingZooClass):
    """BenchMARL's task class of a metaenvs id.

    The spec methods (observations, action masks, state, actions) are BenchMARL's
    PettingZoo ones: the TorchRL env is the same ``PettingZooWrapper`` BenchMARL builds for
    PettingZoo; what differs is how the env is made and what it supports.
    """

    @property
    def env_id(self) -> str:
        return ENV_IDS[self.name]

    def _spec(self) -> Any:
        return metaenvs.spec(self.env_id)

    def _core(self) -> Any:
        return metaenvs.make_core(self.env_id, **self.config)

    def get_env_fun(
        self, num_envs: int, continuous_actions: bool, seed: int | None, device: Any
    ) -> Any:
        if continuous_actions and not self.supports_continuous_actions():
            raise ValueError(f"{self.env_id} has discrete actions: set continuous_actions false")
        if not continuous_actions and not self.supports_discrete_actions():
            raise ValueError(f"{self.env_id} has continuous actions: set continuous_actions true")
        return functools.partial(make_env, self.env_id, seed=seed, device=device, **self.config)

    def supports_continuous_actions(self) -> bool:
        return type(self._core().action_space).__name__ == "Box"

    def supports_discrete_actions(self) -> bool:
        return type(self._core().action_space).__name__ == "Discrete"

    def has_state(self) -> bool:
        return True

    def has_render(self, env: Any) -> bool:
        return True

    def max_steps(self, env: Any) -> int:
        field = self._spec().horizon_keyword()
        if field is None:
            raise ValueError(f"{self.env_id} has no episode length keyword")
        core = self._core()
        # the core's own value first: a config may leave it None for a default (Skirmish's
        # time_limit=None is the map's limit, which core.time_limit resolves)
        value = getattr(core, field, None)
        return int(getattr(core.config, field) if value is None else value)

    @staticmethod
    def env_name() -> str:
        return "metaenvs"


class _MetaenvsTaskBase(Task):
    @staticmethod
    def associated_class() -> type:
        return MetaenvsClass


MetaenvsTask = _MetaenvsTaskBase("MetaenvsTask", list(ENV_IDS), module=__name__)
"""BenchMARL ``Task`` enum with one member per registered id."""
MetaenvsTask.__qualname__ = "MetaenvsTask"
