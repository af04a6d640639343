"""Gymnasium ``VectorEnv`` face over B copies of a batched core."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from metaenvs.config import check_choice
from metaenvs.core import INVALID_ACTIONS, BatchedCore, CoreState, StepResult, check_batch_size
from metaenvs.faces._common import (
    check_render_mode,
    check_reset_options,
    render_copies,
    stacked_action_space,
    stacked_observation_space,
)


class BatchedVectorEnv(VectorEnv):
    """B copies of a multi-agent game as one Gymnasium ``VectorEnv``; agents are stacked.

    - observations ``(B, N, *obs_shape)``; ``single_observation_space`` is ``(N, *obs_shape)``;
    - actions ``(B, N)`` (``MultiDiscrete``) or ``(B, N, *act_shape)`` (``Box``);
    - rewards ``(B, N)`` float32, one per agent (not summed): Gymnasium's single-agent
      vector wrappers (``RecordEpisodeStatistics``, ``NormalizeReward``) expect ``(B,)``,
      so reduce them first with ``gymnasium.wrappers.vector.TransformReward`` (e.g.
      ``lambda r: r.sum(axis=1)``), or use ``metaenvs.make_sb3_vec`` (one slot per agent);
    - terminations and truncations ``(B,)``, per copy;
    - with action masks (``core.masked_actions``), ``infos["action_mask"]``
      ``(B, N, n_actions)`` int8 after every reset and step, for the returned observations;
      an agent that has died keeps its slot (zero observation and reward, only action 0).

    Finished copies restart inside the kernel in the same step
    (``metadata["autoreset_mode"] == AutoresetMode.SAME_STEP``): the returned observation
    is the first of the new episode and ``infos["final_obs"]`` ``(B, N, *obs_shape)``
    holds the last one where ``infos["_final_obs"]`` is True.  On the same steps,
    ``infos["final_state"]`` ``(B, *state_shape)`` holds the finished episodes' last
    global state (:meth:`global_state` before the restart) and, with action masks,
    ``infos["final_action_mask"]`` ``(B, N, n_actions)`` their last masks, each with its
    ``_final_state`` / ``_final_action_mask`` flags (the same as ``_final_obs``).

    Parameters
    ----------
    core : BatchedCore
        The game.
    num_envs : int
        Number of copies B.
    render_mode : {"rgb_array", None}
        ``render()`` returns a tuple of B frames.
    copy : bool
        Return arrays the caller owns (default, as Gymnasium's ``SyncVectorEnv``).  With
        ``copy=False`` the arrays are the core's buffers, overwritten by the next step:
        faster at large B, safe when you copy what you keep (e.g. into a rollout buffer).
    invalid_action : {"raise", "noop"}
        What a masked (unavailable) action does, as on the PettingZoo face
        (:class:`~metaenvs.faces.parallel.BatchedParallelEnv`): ``"raise"`` (default)
        raises ``ValueError`` naming the copy and agent, before anything changes;
        ``"noop"`` replaces it by the agent's first available action (for Skirmish,
        ``stop`` for a live unit), so samplers that ignore masks can play.  Actions out
        of the action space raise either way.  No effect on a game without masks.

    Raises
    ------
    ValueError
        For a bad ``num_envs``, ``render_mode`` or ``invalid_action``.
    """

    metadata = {
        "render_modes": ["rgb_array"],
        "render_fps": 10,
        "autoreset_mode": AutoresetMode.SAME_STEP,
    }
    autoreset_mode: AutoresetMode = AutoresetMode.SAME_STEP
    """How finished copies restart, as Gymnasium's ``SyncVectorEnv.autoreset_mode``:
    always ``AutoresetMode.SAME_STEP`` (also in ``metadata["autoreset_mode"]``)."""

    def __init__(
        self,
        core: BatchedCore,
        num_envs: int,
        render_mode: str | None = None,
        copy: bool = True,
        invalid_action: str = "raise",
    ) -> None:
        self.core = core
        self.num_envs = check_batch_size(num_envs, "num_envs")
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.invalid_action = check_choice("invalid_action", invalid_action, INVALID_ACTIONS)
        self.single_observation_space = stacked_observation_space(core)
        self.single_action_space = stacked_action_space(core)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.agent_names = core.agent_names
        self.copy = copy
        self._state: CoreState | None = None

    def reset(
        self,
        *,
        seed: int | list[int] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all copies; an int seed gives copy ``b`` the seed ``seed + b``.

        Without a seed, every copy continues its own random stream (as auto-reset does).

        Parameters
        ----------
        seed : int, sequence of B ints or None
            An int in ``[0, 2**64)`` (copy ``b`` gets ``(seed + b) mod 2**64``) or one
            such int per copy (see :func:`metaenvs.rng.check_seed`).
        options : None or {}
            No options are supported; others raise ``ValueError``.

        Raises
        ------
        ValueError, TypeError
            For a bad seed or non-empty options, before anything changes.
        """
        check_reset_options(options, type(self).__name__)
        if seed is None and self._state is not None:
            self._state = self.core.restart(self._state)
        else:
            self._state = self.core.reset(self.num_envs, seed)
        obs = self.core.observe(self._state)
        return (obs.copy() if self.copy else obs), self._mask_info()

    def _mask_info(self) -> dict[str, np.ndarray]:
        if not self.core.masked_actions:
            return {}
        mask = self.core.action_mask(self._state)
        return {"action_mask": mask.copy() if self.copy else mask}

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self._state is None:
            raise RuntimeError("step() called before reset()")
        result = self.core.step(self._state, actions, self.invalid_action)
        done = result.terminated | result.truncated
        if self.copy:
            result = StepResult(*(a.copy() for a in result[:4]), *result[4:])
        infos: dict[str, Any] = {k: v.copy() if self.copy else v for k, v in result.info.items()}
        infos.update(self._mask_info())
        if done.any():
            finals = {"final_obs": result.final_obs, "final_state": result.final_state}
            if result.final_mask is not None:
                finals["final_action_mask"] = result.final_mask
            for key, value in finals.items():
                infos[key] = value.copy() if self.copy else value
                infos[f"_{key}"] = done
        return result.obs, result.reward, result.terminated, result.truncated, infos

    @property
    def state(self) -> CoreState:
        """The batched core state (arrays, updated in place by ``step``)."""
        if self._state is None:
            raise RuntimeError("no state before reset()")
        return self._state

    def global_state(self) -> np.ndarray:
        """Global state ``(B, *state_shape)`` for centralised critics."""
        return self.core.global_state(self.state)

    def render(self) -> tuple[np.ndarray, ...] | None:
        frames = render_copies(self.core, self._state, self.render_mode, range(self.num_envs))
        return None if frames is None else tuple(frames)

    def close_extras(self, **kwargs: Any) -> None:
        pass
