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

import metaenvs

__all__ = ["make_env"]


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
