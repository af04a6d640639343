"""The batched core protocol: B independent copies of a game as plain arrays.

A core is static configuration plus Numba kernels.  Its state is a dataclass of arrays
with a leading batch axis; :meth:`BatchedCore.step` validates the actions once for the
whole batch, then hands the arrays to the kernels, which advance every copy, compute
rewards and observations, and reset finished copies in place (auto-reset).

Every face (PettingZoo, Gymnasium vector, SB3) is written once against this protocol.

The public protocol (what faces, wrappers and learners call): :meth:`BatchedCore.reset`,
:meth:`~BatchedCore.restart`, :meth:`~BatchedCore.start`, :meth:`~BatchedCore.step`,
:meth:`~BatchedCore.step_validated`, :meth:`~BatchedCore.observe`,
:meth:`~BatchedCore.action_mask`, :meth:`~BatchedCore.alive`,
:meth:`~BatchedCore.global_state`, :meth:`~BatchedCore.final_global_state`,
:meth:`~BatchedCore.final_action_mask` and :meth:`~BatchedCore.render_copy`.  A core
implements the private hooks ``_init_state`` and ``_step`` behind them; nothing outside
:mod:`metaenvs` calls a hook.  Optional capabilities are declared by inheriting a mixin,
such as :class:`NeighbourStructure`, and checked with ``isinstance``.
"""

from __future__ import annotations

import copy
import dataclasses
from abc import ABC, abstractmethod
from typing import Any, ClassVar, NamedTuple

import numba
import numpy as np
from gymnasium import spaces

from metaenvs._rng import seed_streams, seeds_for_batch
from metaenvs.config import EnvConfig, check_choice
from metaenvs.threads import check_threads, run_copies

INVALID_ACTIONS = ("raise", "noop")
"""Values of ``invalid_action`` (:meth:`BatchedCore.step` and every face): what a masked
action does.  ``"raise"``: ``ValueError`` naming the agent; ``"noop"``: it becomes the
agent's first available action (see :func:`first_available_where_masked`)."""


def check_batch_size(value: Any, name: str = "batch") -> int:
    """Return ``value`` as an int if it is a positive integer, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def random_actions(
    space: spaces.Space, shape: tuple[int, ...], rng: np.random.Generator
) -> np.ndarray:
    """Uniformly random valid actions of ``space`` with leading ``shape``.

    Discrete and multi-discrete spaces give int64; box spaces give ``space.dtype`` drawn
    in the bounds (an infinite bound is replaced by +-1).
    """
    if isinstance(space, spaces.Discrete):
        lo = int(space.start)
        return rng.integers(lo, lo + int(space.n), size=shape, dtype=np.int64)
    if isinstance(space, spaces.MultiDiscrete):
        lo = space.start
        return rng.integers(lo, lo + space.nvec, size=shape + space.shape, dtype=np.int64)
    if isinstance(space, spaces.Box):
        low = np.where(np.isfinite(space.low), space.low, -1.0)
        high = np.where(np.isfinite(space.high), space.high, 1.0)
        return rng.uniform(low, high, size=shape + space.shape).astype(space.dtype)
    raise TypeError(f"cannot draw actions for a {type(space).__name__} space")


def nth_available(mask: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Index of the ``k``-th (from 0) available action of each row of ``mask (..., A)``."""
    return (np.cumsum(mask, axis=-1) <= k[..., None]).sum(axis=-1).astype(np.int64)


def within_mask(mask: np.ndarray | None, actions: np.ndarray) -> np.ndarray:
    """``actions (...)`` moved onto the available ones of ``mask (..., A)``.

    An available action is kept; a masked action ``a`` becomes the ``(a mod k)``-th of the
    ``k`` available ones, so random actions drawn in advance stay random, legal and the
    same for a copy whatever the batch.  Without a mask the actions are returned as given.
    """
    if mask is None:
        return actions
    ok = np.take_along_axis(mask, actions[..., None], axis=-1)[..., 0].astype(bool)
    counts = mask.sum(axis=-1).astype(np.int64)
    moved = nth_available(mask, actions % np.maximum(counts, 1))
    return np.where(ok, actions, moved).astype(np.int64)


def sample_available(mask: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """An available action per row of ``mask (..., A)``, uniform over them when
    ``uniforms (...)`` are uniform in [0, 1) (the action at that quantile)."""
    counts = mask.sum(axis=-1).astype(np.int64)
    if (counts == 0).any():
        raise ValueError("a row of the action mask allows no action")
    return nth_available(mask, np.minimum((uniforms * counts).astype(np.int64), counts - 1))


def legal_actions(core: BatchedCore, state: CoreState, actions: np.ndarray) -> np.ndarray:
    """:func:`within_mask` with the core's current masks (the actions as given for a core
    without masks)."""
    return within_mask(core.action_mask(state) if core.masked_actions else None, actions)


@dataclasses.dataclass
class CoreState:
    """Arrays shared by every core's state; subclasses add their own fields.

    The output fields are buffers the kernels overwrite at every step: the arrays in a
    :class:`StepResult` are these buffers, valid until the next ``step`` (the faces
    hand out copies).

    Attributes
    ----------
    t : np.ndarray
        ``(B,)`` int64, steps taken in the current episode of each copy.
    rng : np.ndarray
        ``(B,)`` uint64, one random stream per copy (see :mod:`metaenvs.rng`).
    obs : np.ndarray
        ``(B, N, *obs_shape)``, the current observations.
    reward : np.ndarray
        ``(B, N)`` float32, the last step's rewards.
    terminated : np.ndarray
        ``(B,)`` bool, the last step's terminations.
    truncated : np.ndarray
        ``(B,)`` bool, the last step's truncations.
    final_obs : np.ndarray
        ``(B, N, *obs_shape)``, last observations of the copies the last step finished.
    """

    t: np.ndarray
    rng: np.ndarray
    obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_obs: np.ndarray

    @property
    def batch(self) -> int:
        """Number of copies B."""
        return int(self.t.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """All state arrays by field name (views, not copies)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def copy(self) -> CoreState:
        """A deep copy of the state."""
        return type(self)(**{k: v.copy() for k, v in self.arrays().items()})


class StepResult(NamedTuple):
    """What :meth:`BatchedCore.step` returns; every array has a leading batch axis B.

    The arrays are the state's output buffers: the next ``step`` overwrites them, so
    copy what you keep.

    Attributes
    ----------
    obs : np.ndarray
        ``(B, N, *obs_shape)`` observations; for a copy that just finished, the first
        observation of its next episode (auto-reset).
    reward : np.ndarray
        ``(B, N)`` float32 rewards.
    terminated : np.ndarray
        ``(B,)`` bool, the episode reached a terminal state of the game.
    truncated : np.ndarray
        ``(B,)`` bool, the episode hit its time limit (never reported as termination).
    final_obs : np.ndarray
        ``(B, N, *obs_shape)``; rows of copies with ``terminated | truncated`` hold the
        last observation of the finished episode, other rows are unspecified.
    info : dict[str, np.ndarray]
        Extra per-copy arrays ``(B, ...)`` a game reports (may be empty).
    final_state : np.ndarray or None
        ``(B, *state_shape)``, the :meth:`~BatchedCore.global_state` of the finished
        episodes' last step, in the rows of ``final_obs`` (other rows unspecified).
        :meth:`BatchedCore.step` always fills it (from
        :meth:`~BatchedCore.final_global_state`); None only in what a core's ``_step``
        hook returns, before the base class fills it.
    final_mask : np.ndarray or None
        ``(B, N, n_actions)`` int8, the :meth:`~BatchedCore.action_mask` of the finished
        episodes' last observation, in the rows of ``final_obs``; None for a core
        without masks (``masked_actions`` False).
    """

    obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_obs: np.ndarray
    info: dict[str, np.ndarray]
    final_state: np.ndarray | None = None
    final_mask: np.ndarray | None = None


_new_tuple = tuple.__new__


def step_result(
    obs: np.ndarray,
    reward: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    final_obs: np.ndarray,
    info: dict[str, np.ndarray],
    final_state: np.ndarray | None = None,
    final_mask: np.ndarray | None = None,
) -> StepResult:
    """``StepResult(...)`` at half the cost: NamedTuple's generated ``__new__`` (with
    defaults) costs about 0.3 µs, a noticeable part of a one-copy step."""
    return _new_tuple(
        StepResult, (obs, reward, terminated, truncated, final_obs, info, final_state, final_mask)
    )


class BatchedCore(ABC):
    """Base of every environment core.

    Subclasses set ``config_cls``, build ``observation_space`` and ``action_space``
    (per agent, shared by all agents) from the config, and implement the hooks
    :meth:`_init_state` and :meth:`_step`, and :meth:`render_copy`.  A core whose global
    state is more than its observations also overrides :meth:`final_global_state`; a
    core with masks, :meth:`final_action_mask`.  Callers use the public methods only
    (:meth:`start` and :meth:`step_validated` are the hooks' public faces).

    Parameters
    ----------
    config : EnvConfig
        The core's validated, frozen configuration.
    """

    config_cls: ClassVar[type[EnvConfig]]
    observation_space: spaces.Box
    action_space: spaces.Discrete | spaces.MultiDiscrete | spaces.Box
    state_space: spaces.Box | None = None
    masked_actions: ClassVar[bool] = False
    """True when some actions can be unavailable: :meth:`action_mask` returns the masks,
    :meth:`step` rejects a masked action and the faces hand the masks out."""
    agents_can_die: ClassVar[bool] = False
    """True when agents can leave before the episode ends (see :meth:`alive`)."""
    episode_info: ClassVar[tuple[str, ...]] = ()
    """Keys of ``StepResult.info`` holding one number per copy that describes how an
    episode ended (Survival: ``food_left``, ``survivors``); learners report their value
    on each episode's last step."""
    min_parallel: int = 2**62
    """Smallest batch a step spreads over several threads: the batch from which 2 threads
    beat 1 in ``benchmarks/bench_threads.py`` (particle tasks 4096, Skirmish 1024); a
    core whose step runs one kernel over the copies sets it.  An instance may lower it
    (the tests do, to run the threaded path on small batches)."""

    def __init__(self, config: EnvConfig) -> None:
        if not isinstance(config, self.config_cls):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_cls.__name__}, "
                f"got {type(config).__name__}"
            )
        self.config = config
        self._threads: int | None = None
        cls = type(self)
        self.default_global_state = (
            cls.global_state is BatchedCore.global_state
            and cls.final_global_state is BatchedCore.final_global_state
        )
        """True when :meth:`global_state` and :meth:`final_global_state` are the base
        class's: the final global state is then a view of ``final_obs``."""

    @property
    def threads(self) -> int | None:
        """Threads a step of ``min_parallel`` copies or more runs on (this one included);
        None follows :func:`metaenvs.threads.get_num_threads`.  Settable; the result of
        a step does not depend on it."""
        return self._threads

    @threads.setter
    def threads(self, value: int | None) -> None:
        self._threads = None if value is None else check_threads(value)

    def step_copies(self, step: Any, args: tuple, batch: int) -> None:
        """Run a ``nogil`` step kernel ``step(*args, lo, hi)`` over all ``batch`` copies on
        the core's threads (see :mod:`metaenvs.threads`)."""
        run_copies(step, args, batch, self.min_parallel, self._threads)

    @classmethod
    def from_kwargs(cls, threads: int | None = None, **kwargs: Any) -> BatchedCore:
        """Build the core from config keywords (unknown keywords raise ``TypeError``) and
        its ``threads``."""
        core = cls(cls.config_cls.from_kwargs(**kwargs))
        core.threads = threads
        return core

    # -- description -------------------------------------------------------------------
    @property
    @abstractmethod
    def agent_names(self) -> tuple[str, ...]:
        """Names of the N agents, in slot order."""

    @property
    def n_agents(self) -> int:
        """Number of agents N."""
        return len(self.agent_names)

    def describe(self) -> dict[str, str]:
        """Human-readable description (used by ``metaenvs info`` and the docs)."""
        return {
            "agents": ", ".join(self.agent_names),
            "observation_space (per agent)": repr(self.observation_space),
            "action_space (per agent)": repr(self.action_space),
            "reward": self.reward_description,
        }

    reward_description: ClassVar[str] = ""

    # -- dynamics ----------------------------------------------------------------------
    def reset(self, batch: int, seed: int | list[int] | np.ndarray | None = None) -> CoreState:
        """Start ``batch`` fresh copies; an int seed gives copy ``b`` the seed ``seed + b``.

        Parameters
        ----------
        batch : int
            Number of copies B.
        seed : int, sequence of B ints or None
            An int in ``[0, 2**64)`` (copy ``b`` gets ``(seed + b) mod 2**64``), one such
            int per copy, or None for fresh entropy (see :mod:`metaenvs.rng`).

        Returns
        -------
        CoreState
            The batched state; call :meth:`observe` for the first observations.

        Raises
        ------
        ValueError, TypeError
            For a bad batch size or seed (see :func:`metaenvs.rng.check_seed`).
        """
        batch = check_batch_size(batch)
        return self.start(batch, seed_streams(seeds_for_batch(batch, seed)))

    def restart(self, state: CoreState) -> CoreState:
        """Fresh episodes in every copy of ``state``, continuing each copy's random stream.

        The new episodes start exactly as auto-reset would have started them, so a face
        that resets without a seed follows the core's trajectory.
        """
        return self.start(state.batch, state.rng.copy())

    def start(self, batch: int, streams: np.ndarray) -> CoreState:
        """Fresh state for ``batch`` copies drawing from the given random streams.

        What a wrapper calls to start the core it wraps on the streams it was given (its
        own state then shares them); :meth:`reset` is ``start`` on streams made from
        seeds.

        Parameters
        ----------
        batch : int
            Number of copies B.
        streams : np.ndarray
            ``(B,)`` uint64 stream states, one per copy (from
            :func:`metaenvs.rng.seed_streams`, or a state's ``rng``).  The state takes
            this array as its ``rng`` (not a copy) and advances it.

        Returns
        -------
        CoreState
            The batched state, its ``obs`` holding the first observations.

        Raises
        ------
        ValueError, TypeError
            For a bad batch size, or streams that are not a ``(B,)`` uint64 array.
        """
        batch = check_batch_size(batch)
        if not isinstance(streams, np.ndarray) or streams.dtype != np.uint64:
            raise TypeError(
                f"streams must be a uint64 array (see metaenvs.rng.seed_streams), got "
                f"{getattr(streams, 'dtype', type(streams).__name__)}"
            )
        if streams.shape != (batch,):
            raise ValueError(f"streams must have shape {(batch,)} (B,), got {streams.shape}")
        return self._init_state(batch, streams)

    def sample_actions(self, batch: int, rng: np.random.Generator) -> np.ndarray:
        """Uniformly random valid actions for ``batch`` copies: ``(B, N)`` or ``(B, N, *shape)``."""
        return random_actions(self.action_space, (batch, self.n_agents), rng)

    def output_buffers(self, batch: int) -> dict[str, np.ndarray]:
        """Zeroed ``obs``, ``reward``, ``terminated``, ``truncated``, ``final_obs`` for a state."""
        obs_shape = (batch, self.n_agents, *self.observation_space.shape)
        return {
            "obs": np.zeros(obs_shape, dtype=self.observation_space.dtype),
            "reward": np.zeros((batch, self.n_agents), dtype=np.float32),
            "terminated": np.zeros(batch, dtype=np.bool_),
            "truncated": np.zeros(batch, dtype=np.bool_),
            "final_obs": np.zeros(obs_shape, dtype=self.observation_space.dtype),
        }

    @abstractmethod
    def _init_state(self, batch: int, rng: np.ndarray) -> CoreState:
        """Fresh state for ``batch`` copies with the given per-copy streams.

        Fills ``obs`` with the first observations.
        """

    def observe(self, state: CoreState) -> np.ndarray:
        """Current observations ``(B, N, *obs_shape)`` (the state's buffer, not a copy)."""
        return state.obs

    def step(self, state: CoreState, actions: Any, invalid_action: str = "raise") -> StepResult:
        """Validate ``actions`` for all copies, then advance every copy by one step.

        Parameters
        ----------
        state : CoreState
            Updated in place.
        actions : array_like
            ``(B, N)`` integers for a discrete action space, ``(B, N, *shape)`` floats
            for a box.
        invalid_action : {"raise", "noop"}
            What a masked (unavailable) action does (:data:`INVALID_ACTIONS`): raise
            (default) or become the agent's first available action, its lowest
            available index (:func:`first_available_where_masked`).  Every face passes
            its own ``invalid_action`` here, so all faces replace masked actions alike.
            No effect on a core without masks.

        Raises
        ------
        ValueError, TypeError
            For a wrong shape, dtype, non-finite or out-of-range action, a masked action
            with ``invalid_action="raise"`` or an unknown ``invalid_action``; raised
            before the state changes.
        """
        if invalid_action not in INVALID_ACTIONS:
            check_choice("invalid_action", invalid_action, INVALID_ACTIONS)
        actions = self.validate_actions(state.batch, actions)
        if self.masked_actions:
            mask = self.action_mask(state)
            if invalid_action == "noop":
                actions = first_available_where_masked(mask, actions)
            else:
                check_masked_actions(mask, actions, self.agent_names)
        return self.step_validated(state, actions)

    def step_validated(self, state: CoreState, actions: np.ndarray) -> StepResult:
        """Advance every copy by one step with actions already checked: :meth:`step`
        without its checks.

        For wrappers that validated a larger action (the inner moves are part of it) and
        must not pay for the check twice.  The actions must be what
        :meth:`validate_actions` returns for them, and available under
        :meth:`action_mask`; nothing is checked here.

        Parameters
        ----------
        state : CoreState
            Updated in place.
        actions : np.ndarray
            ``(B, N)`` int64 (discrete) or ``(B, N, *shape)`` of the action space's dtype.

        Returns
        -------
        StepResult
            With ``final_state`` and ``final_mask`` filled (see :class:`StepResult`).
        """
        result = self._step(state, actions)
        if result[6] is not None:
            return result
        final_state = self.final_global_state(state)
        return step_result(*result[:6], final_state, self.final_action_mask(state))

    def action_mask(self, state: CoreState) -> np.ndarray | None:
        """Available actions ``(B, N, n_actions)`` int8 (1 = available), or None if every
        action is always available (``masked_actions`` False)."""
        return None

    def alive(self, state: CoreState) -> np.ndarray | None:
        """``(B, N)`` bool, the agents still in their copy's episode, or None if agents
        never leave before the episode ends (``agents_can_die`` False).

        A dead agent keeps its slot in the batched arrays: zero observation and reward,
        and (with masks) only action 0 available."""
        return None

    @abstractmethod
    def _step(self, state: CoreState, actions: np.ndarray) -> StepResult:
        """Kernel call with actions already validated.

        May leave ``final_state`` and ``final_mask`` None: :meth:`step_validated` fills
        them from :meth:`final_global_state` and :meth:`final_action_mask`.
        """

    def global_state(self, state: CoreState) -> np.ndarray:
        """Global state ``(B, *state_shape)`` for centralised training.

        The default concatenates all agents' observations.
        """
        obs = self.observe(state)
        return obs.reshape(obs.shape[0], -1)

    def final_global_state(self, state: CoreState) -> np.ndarray:
        """Global states ``(B, *state_shape)`` of the episodes the last step finished.

        Rows of copies with ``terminated | truncated`` at the last step hold the global
        state at the end of the finished episode (what :meth:`global_state` showed
        before the auto-reset); other rows are unspecified.

        The default is :meth:`global_state` of ``state`` with its observations replaced
        by ``state.final_obs``: right for every core whose global state is a function of
        its observations (the default :meth:`global_state` included).  A core whose
        global state holds more (Skirmish) overrides this, usually by reading a buffer
        its kernel fills before the auto-reset; so does a core that overrides
        :meth:`global_state` (the generic path copies the state at every step).
        """
        if type(self).global_state is BatchedCore.global_state:  # a view: no copy per step
            return state.final_obs.reshape(state.final_obs.shape[0], -1)
        final = copy.copy(state)
        final.obs = state.final_obs
        return self.global_state(final)

    def final_action_mask(self, state: CoreState) -> np.ndarray | None:
        """Action masks ``(B, N, n_actions)`` int8 of the finished episodes' last
        observations (rows as in :meth:`final_global_state`), or None without masks.

        The default is None; a core with ``masked_actions`` must override it
        (:func:`metaenvs.testing.check_space_conformance` fails otherwise).
        """
        return None

    @property
    def global_state_space(self) -> spaces.Box:
        """Space of one copy's :meth:`global_state`."""
        if self.state_space is not None:
            return self.state_space
        low = np.broadcast_to(self.observation_space.low, self._obs_stack_shape()).reshape(-1)
        high = np.broadcast_to(self.observation_space.high, self._obs_stack_shape()).reshape(-1)
        return spaces.Box(low, high, dtype=self.observation_space.dtype)

    def _obs_stack_shape(self) -> tuple[int, ...]:
        return (self.n_agents, *self.observation_space.shape)

    # -- rendering ---------------------------------------------------------------------
    @abstractmethod
    def render_copy(self, state: CoreState, index: int = 0) -> np.ndarray:
        """An ``(H, W, 3)`` uint8 picture of copy ``index``."""

    # -- validation --------------------------------------------------------------------
    def validate_actions(self, batch: int, actions: Any) -> np.ndarray:
        """Check a batch of actions against the action space; return them as an array.

        One vectorised check for the whole batch, so its cost does not grow in Python
        with B or N.
        """
        return check_actions(self.action_space, actions, batch, self.agent_names)


class NeighbourStructure(ABC):
    """Declares that a core's agents have up to d neighbours each, at every step.

    A core inherits this mixin (``class MyCore(BatchedCore, NeighbourStructure)``) to
    declare its neighbour structure; every particle core does.  Wrappers that need the
    structure (the communication topology of :mod:`meta_wrappers.comm`) check
    ``isinstance(core, NeighbourStructure)`` and raise ``TypeError`` otherwise.  A class
    that cannot inherit it may be declared with ``NeighbourStructure.register(cls)``.

    The structure must be readable from an observation alone, so that a wrapper can read
    it from any observation, the ``final_obs`` of a finished episode included.

    Examples
    --------
    >>> import metaenvs
    >>> from metaenvs.core import NeighbourStructure
    >>> isinstance(metaenvs.make_core("navigation_N3_l3"), NeighbourStructure)
    True
    >>> isinstance(metaenvs.make_core("ipd"), NeighbourStructure)
    False
    """

    @property
    @abstractmethod
    def neighbour_slots(self) -> int:
        """d, the neighbour slots of every agent (some may be empty at a step)."""

    @abstractmethod
    def neighbours_in(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The neighbour structure an observation carries.

        Parameters
        ----------
        obs : np.ndarray
            Observations ``(..., *obs_shape)`` of the core (any leading axes).

        Returns
        -------
        ids : np.ndarray
            ``(..., d)`` int64, the agent slot in each neighbour slot, -1 when empty.
        rel : np.ndarray
            ``(..., d, 2)`` float, each neighbour's position relative to the agent (0
            in empty slots).
        """


def check_actions(
    space: spaces.Space, actions: Any, batch: int, names: tuple[str, ...], what: str = "actions"
) -> np.ndarray:
    """Check actions ``(B, n)`` (discrete) or ``(B, n, *shape)`` (multi-discrete, box) of ``names``.

    Returns the actions as int64 (discrete, multi-discrete) or ``space.dtype`` (box).

    Raises
    ------
    ValueError, TypeError
        For a wrong shape, dtype, non-finite or out-of-range action; ``what`` opens the
        message.
    """
    if isinstance(space, spaces.Discrete):
        expected = (batch, len(names))
        lo, hi = int(space.start), int(space.start + space.n)
        if (
            type(actions) is np.ndarray
            and actions.dtype == np.int64
            and actions.shape == expected
            and actions.flags.c_contiguous  # the one layout compiled (and warmed up)
            and (_first_outside_c or _load_first_outside_c())(actions, lo, hi) < 0
        ):
            return actions  # the common case in one compiled pass; else the checks below
        arr = np.asarray(actions)
        if arr.shape != expected:
            raise ValueError(f"{what} must have shape {expected} (B, N), got {arr.shape}")
        _check_integers(arr, f"discrete {what}")
        if arr.size and (arr.min() < lo or arr.max() >= hi):
            bad = np.argwhere((arr < lo) | (arr >= hi))[0]
            raise ValueError(
                f"{what}: {arr[tuple(bad)]} of copy {bad[0]}, agent "
                f"{names[bad[1]]!r} is out of range [{lo}, {hi})"
            )
        return arr.astype(np.int64, copy=False)
    arr = np.asarray(actions)
    if isinstance(space, spaces.MultiDiscrete):
        expected = (batch, len(names), *space.shape)
        if arr.shape != expected:
            raise ValueError(f"{what} must have shape {expected} (B, N, k), got {arr.shape}")
        _check_integers(arr, f"multi-discrete {what}")
        out = (arr < space.start) | (arr >= space.start + space.nvec)
        if out.any():
            b, i, k = np.argwhere(out)[0]
            raise ValueError(
                f"{what}: component {k} = {arr[b, i, k]} of copy {b}, agent {names[i]!r} is "
                f"out of range [{space.start[k]}, {space.start[k] + space.nvec[k]})"
            )
        return arr.astype(np.int64, copy=False)
    expected = (batch, len(names), *space.shape)
    if (
        type(actions) is np.ndarray
        and actions.dtype == np.float32
        and space.dtype == np.float32
        and actions.shape == expected
        and actions.ndim == 3
        and actions.flags.c_contiguous  # the one layout compiled (and warmed up)
        and (_first_outside_box_c or _load_first_outside_box_c())(actions, space.low, space.high)
        < 0
    ):
        return actions  # the common case in one compiled pass; else the checks below
    if arr.shape != expected:
        raise ValueError(f"{what} must have shape {expected} (B, N, ...), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"continuous {what} must be floats, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contain NaN or infinity")
    if (arr < space.low).any() or (arr > space.high).any():
        raise ValueError(
            f"{what} outside the action space bounds [{space.low.min()}, {space.high.max()}]"
        )
    return arr.astype(space.dtype, copy=False)


def check_agent_action(space: spaces.Space, action: Any, name: str) -> np.ndarray:
    """Check one agent's action against its ``space``; return it as a validated array.

    The per-agent check of the faces that take one action per agent (PettingZoo, the
    single-agent views): the shape must be ``space.shape`` exactly (no broadcasting, no
    upcasting with other agents' actions), then :func:`check_actions` applies.

    Parameters
    ----------
    space : gymnasium.spaces.Space
        The agent's action space (discrete, multi-discrete or box).
    action : array_like
        The agent's action.
    name : str
        The agent, named in every message.

    Returns
    -------
    np.ndarray
        Shape ``space.shape``: int64 (discrete, multi-discrete) or ``space.dtype`` (box).

    Raises
    ------
    ValueError, TypeError
        For a wrong shape, dtype, non-finite or out-of-range action.
    """
    arr = np.asarray(action)
    what = f"action of agent {name!r}"
    if arr.shape != space.shape:
        raise ValueError(f"{what} must have shape {space.shape}, got {arr.shape}: {action!r}")
    return check_actions(space, arr[None, None], 1, (name,), what=what)[0, 0]


def check_masked_actions(mask: np.ndarray, actions: np.ndarray, names: tuple[str, ...]) -> None:
    """Raise ``ValueError`` if any of the discrete ``actions (B, N)`` is masked in ``mask``."""
    ok = np.take_along_axis(mask, actions[..., None], axis=-1)[..., 0]
    if not ok.all():
        b, i = np.argwhere(ok == 0)[0]
        available = np.flatnonzero(mask[b, i]).tolist()
        raise ValueError(
            f"action {actions[b, i]} of agent {names[i]!r} in copy {b} is not available "
            f"(masked); available now: {available}"
        )


def first_available_where_masked(mask: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """``actions (B, N)`` (validated discrete actions) with each masked one replaced by
    the agent's first available action, the lowest index ``mask (B, N, A)`` allows.

    For Skirmish that is ``stop`` (1) for a live unit (as in SMAC, ``no-op`` (0) is
    available only to dead ones).  Available actions are kept; the array is returned as
    given when none is masked.  One vectorised pass whatever B and N.
    """
    ok = np.take_along_axis(mask, actions[..., None], axis=-1)[..., 0]
    if ok.all():
        return actions
    return np.where(ok == 0, mask.argmax(axis=-1), actions)


@numba.njit(cache=True)
def first_outside(actions: np.ndarray, lo: int, hi: int) -> int:
    """Flat index of the first of ``actions (B, N)`` outside ``[lo, hi)``, -1 if none."""
    for b in range(actions.shape[0]):
        for i in range(actions.shape[1]):
            if actions[b, i] < lo or actions[b, i] >= hi:
                return b * actions.shape[1] + i
    return -1


@numba.njit(cache=True)
def first_outside_box(actions: np.ndarray, low: np.ndarray, high: np.ndarray) -> int:
    """Flat index of the first of ``actions (B, N, K)`` that is not finite or outside
    ``[low[k], high[k]]``, -1 if none."""
    n, k = actions.shape[1], actions.shape[2]
    for b in range(actions.shape[0]):
        for i in range(n):
            for j in range(k):
                a = actions[b, i, j]
                if not (np.isfinite(a) and low[j] <= a <= high[j]):
                    return (b * n + i) * k + j
    return -1


def entry_point(kernel: Any, sig: tuple) -> Any:
    """The compiled entry point of the Numba ``kernel`` for the argument types ``sig`` (from
    the cache, or compiled now), or the plain function under ``NUMBA_DISABLE_JIT=1``.

    Calling it skips Numba's per-call type dispatch (microseconds with many arguments);
    the caller must pass exactly those types.
    """
    if not hasattr(kernel, "overloads"):  # NUMBA_DISABLE_JIT=1: a plain function
        return kernel
    kernel.compile(sig)
    return kernel.overloads[sig].entry_point


_first_outside_c: Any = None  # first_outside's compiled (B, N) int64 C-contiguous entry point
_first_outside_box_c: Any = None  # first_outside_box's, (B, N, K) float32 C-contiguous


def _load_first_outside_c() -> Any:
    """The entry point of :func:`first_outside` for C-contiguous int64 ``(B, N)``.
    :func:`check_actions` calls it only after checking exactly those types."""
    global _first_outside_c
    sig = (numba.types.Array(numba.types.int64, 2, "C"), numba.types.int64, numba.types.int64)
    _first_outside_c = entry_point(first_outside, sig)
    return _first_outside_c


def _load_first_outside_box_c() -> Any:
    """The entry point of :func:`first_outside_box` for C-contiguous float32 ``(B, N, K)``
    actions and 1-d float32 bounds (a Box space's ``low`` and ``high``, of any layout)."""
    global _first_outside_box_c
    bound = numba.types.Array(numba.types.float32, 1, "A")
    sig = (numba.types.Array(numba.types.float32, 3, "C"), bound, bound)
    _first_outside_box_c = entry_point(first_outside_box, sig)
    return _first_outside_box_c


def _check_integers(arr: np.ndarray, what: str) -> None:
    """Raise ``TypeError`` unless ``arr`` holds integers (not bools), naming NaN if present."""
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        floating = np.issubdtype(arr.dtype, np.floating)
        nan = " (it contains NaN)" if floating and np.isnan(arr).any() else ""
        raise TypeError(f"{what} must be integers, got dtype {arr.dtype}{nan}")
