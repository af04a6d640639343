"""Exercise moves (MNMPG): a meta-agent is paid by how much one episode's data helps a learner.

Paper: mnmpg-exercise-moves, section 3.2 and Algorithm 1.  A meta-agent acts inside an
episode of an inner learner (in the paper the hierarchy policy ``pi_theta`` picks
``z_t ~ pi_theta(s_t)`` from the global state; ``z_t`` steers how the mixing network combines
the local Q values).  When the episode ends the learner takes a few "exercise moves" on that
episode's data, plays fresh episodes with the updated parameters, and the meta-agent is paid
the return after minus the return before.

`ExerciseMoveEnv` turns that loop into a plain single-agent Gymnasium env, so that any
Gymnasium / Stable-Baselines3 algorithm can be the meta-agent (``pi_theta``):

| Algorithm 1 | ``ExerciseMoveEnv`` |
|---|---|
| generate ``D0`` by executing ``pi`` | ``learner.begin(seed)`` at reset, ``learner.act(z_t)`` |
| ``R0 <- sum_t r_t`` | ``D0, R0 = learner.end()`` |
| exercise moves ``phi, zeta <- QL(D0)`` | ``n_exercise`` x ``learner.update(D0)`` |
| generate ``D1`` with the new parameters | ``D1, R1 = learner.collect(eval_episodes)`` |
| ``R <- R1 - R0`` | the reward of the episode's last step |
| ``theta <- theta + lambda grad J_meta`` | the meta-agent's own update (PPO, A2C, ...) |
| ``D_all <- D_all u D0 u D1`` | ``learner.remember(D0)``, ``learner.remember(D1)`` |
| Q-learning iterations on ``D_all`` | the learner's business, outside this env |

Every step inside the episode pays 0, and the last one pays ``R1 - R0``, so the meta-agent's
undiscounted return is exactly the meta-reward of equation 5,
``R'(pi, D1) - R(pi, D0)``, and its policy gradient with that return is the REINFORCE
estimate of equation 4 (``sum_t grad log pi_theta(z_t | s_t)`` times the meta-reward).

With ``rollback=True`` (the default) the exercise moves are only a probe: the learner's
parameters and optimiser state are put back after ``D1`` is collected, so the meta-reward
measures ``D0`` against a fixed learner and the learner changes only through its replay.
``rollback=False`` keeps the exercised parameters, as Algorithm 1 literally does.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import gymnasium
import numpy as np
from gymnasium import spaces

from metaenvs.config import check_int
from metaenvs.faces import check_reset_options
from metaenvs.rng import check_seed

__all__ = ["InnerLearner", "ExerciseMoveEnv", "BanditEpisodes", "BanditInnerLearner"]


@runtime_checkable
class InnerLearner(Protocol):
    """What `ExerciseMoveEnv` needs from an inner learner.

    One *D0 episode* runs through ``begin``, ``act`` (once per env step) and ``end``; the
    meta-agent supplies one meta-action per step.  The data objects (``D0``, ``D1``) are
    opaque to the wrapper: it only hands them back to ``update`` and ``remember``.

    Attributes
    ----------
    meta_observation_space : gymnasium.spaces.Box
        What the meta-agent sees each step (e.g. the global state ``s_t``).
    meta_action_space : gymnasium.spaces.Space
        What the meta-agent chooses each step (e.g. the hierarchy ``z_t``).
    """

    meta_observation_space: spaces.Box
    meta_action_space: spaces.Space

    def begin(self, seed: int | None) -> np.ndarray:
        """Start a D0 episode.

        Parameters
        ----------
        seed : int or None
            Seed of the learner's randomness (env and exploration); None continues the
            current stream.

        Returns
        -------
        np.ndarray
            The first meta-observation, an element of ``meta_observation_space``.
        """
        ...

    def act(self, meta_action: Any) -> tuple[np.ndarray, bool, bool]:
        """Advance the D0 episode by one env step with the meta-agent's choice.

        Parameters
        ----------
        meta_action : element of ``meta_action_space``
            Already validated by the wrapper (a Box action arrives as an array of the
            space's shape and dtype).

        Returns
        -------
        obs : np.ndarray
            The next meta-observation (the final one when the episode has ended).
        terminated, truncated : bool
            Whether the inner episode ended, and how.
        """
        ...

    def end(self) -> tuple[Any, float]:
        """Close the finished D0 episode.

        Returns
        -------
        data : Any
            The episode's data ``D0``, in whatever form ``update`` and ``remember`` take.
        R0 : float
            The episode's return.
        """
        ...

    def collect(self, n_episodes: int) -> tuple[Any, float]:
        """Run fresh episodes with the current parameters (the data ``D1``).

        The learner decides how the meta-action is filled in for these episodes (its own
        copy of the meta-policy, or a fixed default).

        Parameters
        ----------
        n_episodes : int
            How many episodes to run (at least 1).

        Returns
        -------
        data : Any
            The episodes' data ``D1``.
        R1 : float
            Their mean return.
        """
        ...

    def update(self, data: Any) -> None:
        """Take one exercise move (e.g. one Q-learning step) on ``data``."""
        ...

    def snapshot(self) -> Any:
        """Return a copy of every learnable parameter and optimiser state.

        The copy must not alias the live parameters: later updates must not change it.
        """
        ...

    def restore(self, snapshot: Any) -> None:
        """Put back the parameters and optimiser state saved by `snapshot`, exactly."""
        ...

    def remember(self, data: Any) -> None:
        """Hand episodes (``D0`` or ``D1``) to the learner's replay."""
        ...


_PROTOCOL_MEMBERS = (
    "meta_observation_space",
    "meta_action_space",
    "begin",
    "act",
    "end",
    "collect",
    "update",
    "snapshot",
    "restore",
    "remember",
)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a bool, got {value!r} ({type(value).__name__})")
    return bool(value)


class ExerciseMoveEnv(gymnasium.Env):
    """The meta-agent's view of an inner learner: act during an episode, be paid R1 - R0.

    ## Observation and action spaces

    The learner's ``meta_observation_space`` and ``meta_action_space``.  A Box action is
    checked for a real numeric dtype (ints or floats: no strings, bools, complex or
    objects), shape, finiteness and bounds before anything changes and is handed to the
    learner as an array of the space's dtype; other spaces are checked with ``contains``.

    ## Rewards

    0 on every step inside the inner episode.  On the step that ends it: ``R1 - R0``, the
    mean return of ``eval_episodes`` fresh episodes after ``n_exercise`` exercise updates on
    the episode's data, minus that episode's own return.

    ## Episode end

    With the inner episode: ``terminated`` and ``truncated`` are the learner's.  The last
    step's info has ``R0``, ``R1``, ``meta_reward`` and ``exercise_updates``.

    Parameters
    ----------
    learner : InnerLearner
        The inner learner (see the protocol).
    n_exercise : int
        Exercise updates on ``D0`` at the end of each episode (>= 1).
    rollback : bool
        Put the learner's parameters back after ``D1`` is collected (the snapshot is taken
        only in this case).
    eval_episodes : int
        Fresh episodes in ``D1`` (>= 1).
    remember : bool
        Hand ``D0`` and then ``D1`` to ``learner.remember`` after the (rolled back) update.

    Examples
    --------
    >>> env = ExerciseMoveEnv(BanditInnerLearner(seed=0), n_exercise=2)
    >>> obs, info = env.reset(seed=0)
    >>> for _ in range(4):
    ...     obs, reward, terminated, truncated, info = env.step(env.action_space.high)
    >>> terminated, reward == info["R1"] - info["R0"], info["exercise_updates"]
    (True, True, 2)
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        learner: InnerLearner,
        *,
        n_exercise: int = 1,
        rollback: bool = True,
        eval_episodes: int = 1,
        remember: bool = True,
    ) -> None:
        missing = [m for m in _PROTOCOL_MEMBERS if not hasattr(learner, m)]
        if missing:
            raise TypeError(
                f"{type(learner).__name__} does not implement InnerLearner: missing {missing}"
            )
        if not isinstance(learner.meta_observation_space, spaces.Box):
            raise TypeError(
                "learner.meta_observation_space must be a gymnasium.spaces.Box, got "
                f"{learner.meta_observation_space!r}"
            )
        if not isinstance(learner.meta_action_space, spaces.Space):
            raise TypeError(
                "learner.meta_action_space must be a gymnasium.spaces.Space, got "
                f"{learner.meta_action_space!r}"
            )
        self.learner = learner
        self.n_exercise = check_int("n_exercise", n_exercise, 1)
        self.rollback = _check_bool("rollback", rollback)
        self.eval_episodes = check_int("eval_episodes", eval_episodes, 1)
        self.remember = _check_bool("remember", remember)
        self.observation_space = learner.meta_observation_space
        self.action_space = learner.meta_action_space
        self.render_mode = None
        self._running = False  # an inner episode is under way

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a D0 episode of the learner (``learner.begin(seed)``).

        Parameters
        ----------
        seed : int or None
            An int in ``[0, 2**64)`` (see :func:`metaenvs.rng.check_seed`), handed to
            the learner as a Python int; None continues the learner's stream.
        options : None or {}
            No options are supported; others raise ``ValueError``.

        Raises
        ------
        ValueError, TypeError
            For a bad seed or non-empty options, before anything changes.
        """
        check_reset_options(options, type(self).__name__)
        seed = check_seed(seed)
        super().reset(seed=seed)
        obs = self.learner.begin(seed)
        self._running = True
        return obs, {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._running:
            raise RuntimeError(
                "step() called before reset() or after the inner episode ended; call reset()"
            )
        action = self._validated(action)
        obs, terminated, truncated = self.learner.act(action)
        terminated, truncated = bool(terminated), bool(truncated)
        if not (terminated or truncated):
            return obs, 0.0, False, False, {}
        self._running = False
        # ---- Algorithm 1: exercise moves on D0, evaluate on D1, pay R1 - R0 ----
        learner = self.learner
        d0, r0 = learner.end()
        snap = learner.snapshot() if self.rollback else None
        try:
            for _ in range(self.n_exercise):
                learner.update(d0)
            d1, r1 = learner.collect(self.eval_episodes)
        finally:
            if self.rollback:
                learner.restore(snap)
        if self.remember:
            learner.remember(d0)
            learner.remember(d1)
        r0, r1 = float(r0), float(r1)
        meta_reward = r1 - r0
        info = {
            "R0": r0,
            "R1": r1,
            "meta_reward": meta_reward,
            "exercise_updates": self.n_exercise,
        }
        return obs, meta_reward, terminated, truncated, info

    def render(self) -> None:
        return None

    def _validated(self, action: Any) -> Any:
        """Check a meta-action against the action space; raise ValueError naming the problem."""
        space = self.action_space
        if not isinstance(space, spaces.Box):
            if not space.contains(action):
                raise ValueError(f"meta-action {action!r} is not an element of {space}")
            return action
        try:
            a = np.asarray(action)
        except (TypeError, ValueError) as err:  # e.g. ragged nested sequences
            raise ValueError(f"meta-action {action!r} is not numeric: {err}") from None
        if np.issubdtype(a.dtype, np.complexfloating):
            raise ValueError(
                f"meta-action {action!r} is complex (dtype {a.dtype}); a Box meta-action "
                "must hold real numbers"
            )
        if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.number):
            raise ValueError(
                f"meta-action {action!r} is not numeric (dtype {a.dtype}); a Box meta-action "
                "must hold real numbers (ints or floats)"
            )
        a = a.astype(np.float64)
        if a.shape != space.shape:
            raise ValueError(f"meta-action has shape {a.shape}, the action space {space.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"meta-action has non-finite entries (NaN or inf): {a}")
        low_ok, high_ok = a >= space.low, a <= space.high
        if not (low_ok.all() and high_ok.all()):
            bad = np.flatnonzero(~(low_ok & high_ok))
            raise ValueError(
                f"meta-action out of bounds at flat indices {bad.tolist()}: "
                f"{a.ravel()[bad].tolist()} not in [{space.low.ravel()[bad].tolist()}, "
                f"{space.high.ravel()[bad].tolist()}]"
            )
        return a.astype(space.dtype)


# ---------------------------------------------------------------------------------------------
# A toy inner learner: a bandit whose exercise update is weighted by the meta-agent.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BanditEpisodes:
    """A batch of `BanditInnerLearner` episodes.

    Attributes
    ----------
    arm : np.ndarray
        ``(n, horizon)`` int64, the arm pulled at each step.
    reward : np.ndarray
        ``(n, horizon)`` float64, the reward it paid.
    weight : np.ndarray
        ``(n, horizon)`` float64, the meta-action's weight of that step in the exercise
        update (1.0 for episodes from `BanditInnerLearner.collect`).
    """

    arm: np.ndarray
    reward: np.ndarray
    weight: np.ndarray

    @property
    def returns(self) -> np.ndarray:
        """``(n,)`` return of each episode."""
        return self.reward.sum(axis=1)


class BanditInnerLearner:
    """Toy `InnerLearner`: a softmax bandit learner whose exercise update the meta-agent weights.

    A reference for tests and docs, not a benchmark.  The learner keeps one value estimate
    ``q[k]`` per arm and pulls arms from ``softmax(q / temperature)``.  An episode is
    ``horizon`` pulls (it ends by termination).  Before each pull the meta-agent sees the arm
    the learner is about to pull and chooses a weight ``w`` in [0, 1] for that step; the
    exercise update moves ``q[arm] += step_size * w * (reward - q[arm])`` over the episode's
    steps in order.  The meta-action does not change the pulls or their rewards (``R0``),
    only what the update learns, as the hierarchy ``z_t`` of MNMPG changes only how the
    Q-learning update mixes the local values.

    With the defaults (means 0.2, 0.5, 1.0 and ``q = 0``) a good meta-agent gives weight 1
    to pulls of the best arm and 0 to the others: learning that a mediocre arm pays more
    than the initial estimate 0 pulls the policy towards it.

    Meta-observation (``float32``, ``n_arms + 1`` entries in [0, 1]): one-hot of the arm
    about to be pulled (all zeros after the last pull) and the fraction of the episode
    elapsed.

    Parameters
    ----------
    arm_means : sequence of float
        Mean reward of each arm.
    reward_noise : float
        Standard deviation of the Gaussian reward noise.
    horizon : int
        Pulls per episode.
    step_size : float
        Step size of the exercise update.
    temperature : float
        Softmax temperature of the learner's policy.
    replay_capacity : int
        Batches of episodes kept by `remember` (oldest dropped first).
    seed : int
        Seed of the learner's generator (reseeded by ``begin(seed)`` when seed is not None).
    """

    def __init__(
        self,
        arm_means: tuple[float, ...] = (0.2, 0.5, 1.0),
        reward_noise: float = 0.1,
        horizon: int = 4,
        step_size: float = 0.5,
        temperature: float = 0.25,
        replay_capacity: int = 1000,
        seed: int = 0,
    ) -> None:
        self.arm_means = np.asarray(arm_means, dtype=np.float64)
        if self.arm_means.ndim != 1 or self.arm_means.size < 2:
            raise ValueError(f"arm_means must list at least 2 arms, got {arm_means!r}")
        if not np.isfinite(self.arm_means).all():
            raise ValueError(f"arm_means must be finite, got {arm_means!r}")
        if not reward_noise >= 0:
            raise ValueError(f"reward_noise must be >= 0, got {reward_noise}")
        if not temperature > 0 or not step_size > 0:
            raise ValueError(
                f"temperature and step_size must be > 0, got {temperature}, {step_size}"
            )
        self.horizon = check_int("horizon", horizon, 1)
        self.reward_noise = float(reward_noise)
        self.step_size = float(step_size)
        self.temperature = float(temperature)
        self.n_arms = self.arm_means.size
        self.q = np.zeros(self.n_arms)  # the learnable parameters
        self.replay: deque[BanditEpisodes] = deque(
            maxlen=check_int("replay_capacity", replay_capacity, 1)
        )
        self.rng = np.random.default_rng(seed)
        self.meta_observation_space = spaces.Box(0.0, 1.0, (self.n_arms + 1,), dtype=np.float32)
        self.meta_action_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self._t = -1  # -1: no episode under way

    # -- the policy ----------------------------------------------------------------------------

    def policy(self) -> np.ndarray:
        """``(n_arms,)`` probabilities of the learner's softmax policy."""
        z = self.q / self.temperature
        p = np.exp(z - z.max())
        return p / p.sum()

    def expected_return(self) -> float:
        """Expected return of one episode under the current policy (no sampling noise)."""
        return float(self.horizon * self.policy() @ self.arm_means)

    def _pull(self, arm: int) -> float:
        return float(self.arm_means[arm] + self.reward_noise * self.rng.standard_normal())

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.n_arms + 1, dtype=np.float32)
        if self._t < self.horizon:
            obs[self._arms[self._t]] = 1.0
        obs[-1] = self._t / self.horizon
        return obs

    # -- InnerLearner ---------------------------------------------------------------------------

    def begin(self, seed: int | None) -> np.ndarray:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        # the pulls do not depend on the meta-actions, so draw them all now
        self._arms = self.rng.choice(self.n_arms, size=self.horizon, p=self.policy())
        self._rewards: list[float] = []
        self._weights: list[float] = []
        self._t = 0
        return self._obs()

    def act(self, meta_action: Any) -> tuple[np.ndarray, bool, bool]:
        if not 0 <= self._t < self.horizon:
            raise RuntimeError("act() needs an episode under way; call begin()")
        self._weights.append(float(np.asarray(meta_action).reshape(-1)[0]))
        self._rewards.append(self._pull(self._arms[self._t]))
        self._t += 1
        return self._obs(), self._t == self.horizon, False

    def end(self) -> tuple[BanditEpisodes, float]:
        if self._t != self.horizon:
            raise RuntimeError("end() needs a finished episode")
        data = BanditEpisodes(
            arm=self._arms[None].astype(np.int64),
            reward=np.asarray([self._rewards]),
            weight=np.asarray([self._weights]),
        )
        self._t = -1
        return data, float(data.returns[0])

    def collect(self, n_episodes: int) -> tuple[BanditEpisodes, float]:
        n = check_int("n_episodes", n_episodes, 1)
        arms = self.rng.choice(self.n_arms, size=(n, self.horizon), p=self.policy())
        noise = self.reward_noise * self.rng.standard_normal((n, self.horizon))
        data = BanditEpisodes(
            arm=arms.astype(np.int64),
            reward=self.arm_means[arms] + noise,
            weight=np.ones((n, self.horizon)),
        )
        return data, float(data.returns.mean())

    def update(self, data: BanditEpisodes) -> None:
        q = self.q
        for arms, rewards, weights in zip(data.arm, data.reward, data.weight):
            for a, r, w in zip(arms, rewards, weights):
                q[a] += self.step_size * w * (r - q[a])

    def snapshot(self) -> dict[str, np.ndarray]:
        return {"q": self.q.copy()}

    def restore(self, snapshot: dict[str, np.ndarray]) -> None:
        q = np.asarray(snapshot["q"], dtype=np.float64)
        if q.shape != self.q.shape:
            raise ValueError(f"snapshot q has shape {q.shape}, expected {self.q.shape}")
        self.q = q.copy()

    def remember(self, data: BanditEpisodes) -> None:
        self.replay.append(data)
