"""Stable-Baselines3 ``VecEnv`` face: B copies x N agents as B*N slots (parameter sharing).

Importing this module imports stable-baselines3 (and so torch); ``metaenvs.make_sb3_vec``
imports it only when called.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvStepReturn,
    VecEnvWrapper,
)

from metaenvs._rng import SEED_BOUND, check_seed, seeds_for_batch
from metaenvs.config import check_choice
from metaenvs.core import INVALID_ACTIONS, BatchedCore, CoreState, check_batch_size
from metaenvs.faces._common import check_render_mode

_NO_INFO = MappingProxyType({})


class SB3VecEnv(VecEnv):
    """B copies of an N-agent game as an SB3 ``VecEnv`` with ``B * N`` slots.

    Slot ``b * N + i`` is agent ``i`` of copy ``b``; one policy drives every slot
    (parameter sharing).  Observations are ``(B*N, *obs_shape)``, actions ``(B*N,)``
    or ``(B*N, *act_shape)``.  Finished copies restart in the kernel; their slots'
    infos carry ``terminal_observation`` and ``TimeLimit.truncated`` as SB3 expects.
    ``seed(s)`` (called by ``PPO(..., seed=s)``) applies at the next ``reset()`` and
    gives copy ``b`` the seed ``(s + b) mod 2**64`` (``s`` an int in ``[0, 2**64)``).

    Infos of slots that did not finish are one shared read-only empty mapping, so the
    per-step Python work is a list copy, not B*N new dicts.

    With action masks (``core.masked_actions``), :meth:`action_masks` returns the
    ``(B*N, n_actions)`` bool masks of the current observations, as sb3-contrib's
    ``MaskablePPO`` asks for them (``env_method("action_masks")`` gives one row per slot).
    A slot whose agent has died keeps a zero observation and reward and allows only
    action 0.  ``invalid_action`` is the PettingZoo face's: a masked action raises
    (``"raise"``, default) or becomes the agent's first available action (``"noop"``,
    e.g. for plain ``PPO``, which samples without masks).
    """

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(
        self,
        core: BatchedCore,
        num_envs: int,
        render_mode: str | None = None,
        invalid_action: str = "raise",
    ) -> None:
        self.core = core
        self.num_copies = check_batch_size(num_envs, "num_envs (copies)")
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.invalid_action = check_choice("invalid_action", invalid_action, INVALID_ACTIONS)
        super().__init__(self.num_copies * core.n_agents, core.observation_space, core.action_space)
        self._state: CoreState | None = None
        self._actions: np.ndarray | None = None
        self._pending_seed: int | None = None
        self._no_infos: list[Any] = [_NO_INFO] * self.num_envs
        self.reset_infos = list(self._no_infos)

    def __getstate__(self) -> dict[str, Any]:
        # the shared read-only empty info (a mappingproxy) does not pickle: rebuild it
        state = self.__dict__.copy()
        del state["_no_infos"], state["reset_infos"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._no_infos = [_NO_INFO] * self.num_envs
        self.reset_infos = list(self._no_infos)

    # -- seeding and reset ---------------------------------------------------------
    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed the next ``reset()``: copy ``b`` gets ``(seed + b) mod 2**64``.

        Parameters
        ----------
        seed : int or None
            An int in ``[0, 2**64)`` (see :func:`metaenvs._rng.check_seed`); None draws
            one from NumPy's global generator, as SB3's own vector envs do.

        Returns
        -------
        list of int
            The per-copy seeds.

        Raises
        ------
        ValueError, TypeError
            For a bad seed (a float such as 1.5 included), before anything changes.
        """
        seed = check_seed(seed)
        if seed is None:
            seed = int(np.random.randint(0, 2**31 - 1))
        self._pending_seed = seed
        return seeds_for_batch(self.num_copies, seed).tolist()

    def reset(self) -> np.ndarray:
        seed, self._pending_seed = self._pending_seed, None
        if seed is None and self._state is not None:
            self._state = self.core.restart(self._state)
        else:
            self._state = self.core.reset(self.num_copies, seed)
        self.reset_infos = list(self._no_infos)
        return self._flat(self.core.observe(self._state))

    def _flat(self, arr: np.ndarray) -> np.ndarray:
        """A copy of ``(B, N, ...)`` as ``(B*N, ...)``: SB3 keeps arrays across steps."""
        return arr.reshape(self.num_envs, *arr.shape[2:]).copy()

    # -- stepping ------------------------------------------------------------------
    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._state is None:
            raise RuntimeError("step() called before reset()")
        n = self.core.n_agents
        actions = np.asarray(self._actions)
        expected = (self.num_envs, *self.action_space.shape)
        if actions.shape != expected:
            raise ValueError(f"actions must have shape {expected} (B*N, ...), got {actions.shape}")
        joint = actions.reshape(self.num_copies, n, *expected[1:])
        result = self.core.step(self._state, joint, self.invalid_action)
        done_copy = result.terminated | result.truncated
        dones = np.repeat(done_copy, n)
        infos = list(self._no_infos)
        if done_copy.any():
            truncated_only = result.truncated & ~result.terminated
            for b in np.flatnonzero(done_copy):
                for i in range(n):
                    infos[b * n + i] = {
                        "terminal_observation": result.final_obs[b, i].copy(),
                        "TimeLimit.truncated": bool(truncated_only[b]),
                    }
        return self._flat(result.obs), self._flat(result.reward), dones, infos

    # -- the rest of the VecEnv interface ---------------------------------------------
    def close(self) -> None:
        pass

    def get_images(self) -> Sequence[np.ndarray | None]:
        if self._state is None:
            raise RuntimeError("render() called before reset()")
        return [self.core.render_copy(self._state, b) for b in range(self.num_copies)]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        if attr_name == "action_masks" and not self.core.masked_actions:
            # sb3-contrib asks this to decide whether the env supports masking
            raise AttributeError(f"{type(self.core).__name__} has no action masks")
        return [getattr(self, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def action_masks(self) -> np.ndarray:
        """``(B*N, n_actions)`` bool, the available actions of every slot."""
        if not self.core.masked_actions:
            raise AttributeError(f"{type(self.core).__name__} has no action masks")
        if self._state is None:
            raise RuntimeError("action_masks() called before reset()")
        return self._flat(self.core.action_mask(self._state)).astype(bool)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **kwargs: Any
    ) -> list[Any]:
        result = getattr(self, method_name)(*method_args, **kwargs)
        if method_name == "action_masks":  # per slot, as sb3-contrib stacks them
            return [result[i] for i in self._get_indices(indices)]
        return [result] * len(self._get_indices(indices))

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False] * len(self._get_indices(indices))


class SeedableSuperSuitVecEnv(VecEnvWrapper):
    """Give SuperSuit's SB3 vector env the ``seed()`` that ``PPO(..., seed=s)`` calls.

    SuperSuit 3.11's ``concat_vec_envs_v1(..., base_class="stable_baselines3")`` has no
    ``seed()``; this wrapper stores the seed and passes it to the next ``reset()``.

    Examples
    --------
    >>> import supersuit as ss  # doctest: +SKIP
    >>> venv = ss.concat_vec_envs_v1(ss.pettingzoo_env_to_vec_env_v1(env), 2,
    ...                              base_class="stable_baselines3")  # doctest: +SKIP
    >>> model = PPO("MlpPolicy", SeedableSuperSuitVecEnv(venv), seed=0)  # doctest: +SKIP
    """

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self._pending_seed: int | None = None

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed the next ``reset()`` with an int in ``[0, 2**64)`` or None.

        SuperSuit gives its i-th sub-env the seed ``seed + i`` without wrapping around,
        so a seed that would pass ``2**64`` there is rejected here, before anything
        changes.

        Raises
        ------
        ValueError, TypeError
            For a bad seed (see :func:`metaenvs._rng.check_seed`) or one too close to
            ``2**64`` for SuperSuit.
        """
        seed = check_seed(seed)
        if seed is not None and seed + self.num_envs - 1 >= SEED_BOUND:
            raise ValueError(
                f"seed {seed} is too close to 2**64: SuperSuit seeds its sub-envs with "
                f"seed + i (up to {self.num_envs - 1}) without wrapping around"
            )
        self._pending_seed = seed
        if seed is None:
            return [None] * self.num_envs
        return seeds_for_batch(self.num_envs, seed).tolist()

    def reset(self) -> np.ndarray:
        seed, self._pending_seed = self._pending_seed, None
        # SuperSuit's SB3 wrapper forwards a reset seed to the missing seed(); reset the
        # Gymnasium-style vector env it wraps instead, and keep its infos where SB3 looks.
        observations, infos = self.venv.venv.reset(seed=seed)
        self.venv.reset_infos = infos
        return observations

    def step_wait(self) -> VecEnvStepReturn:
        return self.venv.step_wait()
