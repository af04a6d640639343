"""Bad input raises a clear error, naming the problem, before any state changes.

Every case checks the error (type and message) and then plays on beside a twin env that
never saw the bad input: both must give the same trajectory.  Faces are driven through
small adapters so that one test covers the core, PettingZoo, Gymnasium-vector and SB3
faces, the communication wrapper's faces and the single-agent views.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces

import metaenvs
from meta_wrappers.comm import make_comm_core, make_comm_env, make_comm_vec
from meta_wrappers.exercise import BanditInnerLearner, ExerciseMoveEnv
from meta_wrappers.focal import make_focal_env
from meta_wrappers.peers import make_peer_env
from metaenvs._rng import check_seed, seeds_for_batch

GAME = "navigation_N3_l3"  # random starts: a seed that slipped through shows in the obs
BATCH = 2


def action_of(space: spaces.Space, k: int) -> Any:
    """A valid action of ``space``, the same for the same ``k`` (env and twin agree)."""
    space.seed(k)
    return space.sample()


def assert_same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        np.testing.assert_array_equal(x, y, err_msg=f"item {i}")


# -- one interface over every face ---------------------------------------------------------
class CoreFace:
    """A batched core (B = 2) as a face: ``reset`` and ``play`` return arrays."""

    def __init__(self, make: Callable[[], metaenvs.BatchedCore] = lambda: metaenvs.make_core(GAME)):
        self.core = make()
        self.state = None

    def reset(self, seed: Any = None) -> list:
        self.state = self.core.reset(BATCH, seed)
        return [self.core.observe(self.state).copy(), self.state.rng.copy()]

    def play(self, steps: int = 3) -> list:
        rng, out = np.random.default_rng(0), []
        for _ in range(steps):
            result = self.core.step(self.state, self.core.sample_actions(BATCH, rng))
            out += [result.obs.copy(), result.reward.copy()]
        return [*out, self.state.rng.copy()]


class ParallelFace:
    """The PettingZoo face (one copy)."""

    def __init__(self, make: Callable = lambda: metaenvs.make(GAME)):
        self.env = make()

    def reset(self, seed: Any = None, **kwargs: Any) -> list:
        obs, _ = self.env.reset(seed=seed, **kwargs)
        return [obs[a] for a in sorted(obs)]

    def play(self, steps: int = 3) -> list:
        out = []
        for t in range(steps):
            agents = self.env.agents
            actions = {
                a: action_of(self.env.action_space(a), 10 * t + i) for i, a in enumerate(agents)
            }
            obs, rewards, *_ = self.env.step(actions)
            out += [*(obs[a] for a in agents), np.array([rewards[a] for a in agents])]
        return [*out, self.env._state.rng.copy()]


class VectorFace:
    """The Gymnasium vector face (B = 2)."""

    def __init__(self, make: Callable = lambda: metaenvs.make_vec(GAME, BATCH)):
        self.env = make()

    def reset(self, seed: Any = None, **kwargs: Any) -> list:
        obs, _ = self.env.reset(seed=seed, **kwargs)
        return [obs]

    def play(self, steps: int = 3) -> list:
        out = []
        for t in range(steps):
            obs, reward, *_ = self.env.step(action_of(self.env.action_space, t))
            out += [obs, reward]
        return [*out, self.env.state.rng.copy()]


class SB3Face:
    """The SB3 face (B = 2 copies of N slots); a seed goes through ``seed()``."""

    def __init__(self):
        pytest.importorskip("stable_baselines3")
        self.env = metaenvs.make_sb3_vec(GAME, BATCH)

    def reset(self, seed: Any = None) -> list:
        if seed is not None:
            self.env.seed(seed)
        return [self.env.reset()]

    def play(self, steps: int = 3) -> list:
        out = []
        for t in range(steps):
            actions = np.stack([action_of(self.env.action_space, 10 * t + i) for i in range(6)])
            self.env.step_async(actions)
            obs, reward, *_ = self.env.step_wait()
            out += [obs, reward]
        return [*out, self.env._state.rng.copy()]


class ViewFace:
    """A single-agent Gymnasium view (focal, peers, exercise)."""

    def __init__(self, make: Callable):
        self.env = make()

    def reset(self, seed: Any = None, **kwargs: Any) -> list:
        obs, _ = self.env.reset(seed=seed, **kwargs)
        return [obs]

    def play(self, steps: int = 3) -> list:
        out = []
        for t in range(steps):
            obs, reward, terminated, truncated, info = self.env.step(
                action_of(self.env.action_space, t)
            )
            out += [obs, reward, *(v for k, v in sorted(info.items()) if k == "peer_actions")]
            if terminated or truncated:
                break
        return out


FACES: dict[str, Callable[[], Any]] = {
    "core": CoreFace,
    "parallel": ParallelFace,
    "vector": VectorFace,
    "sb3": SB3Face,
    "comm_core": lambda: CoreFace(lambda: make_comm_core(GAME)),
    "comm_parallel": lambda: ParallelFace(lambda: make_comm_env(GAME)),
    "comm_vector": lambda: VectorFace(lambda: make_comm_vec(GAME, BATCH)),
    "focal": lambda: ViewFace(lambda: make_focal_env(GAME, peers="uniform")),
    "peers": lambda: ViewFace(lambda: make_peer_env("ipd", k=2)),
    "exercise": lambda: ViewFace(lambda: ExerciseMoveEnv(BanditInnerLearner(seed=0))),
}


def twins(face: str, seed: int = 3, steps: int = 2) -> tuple[Any, Any]:
    """Two copies of ``face`` reset with ``seed`` and played ``steps`` steps alike."""
    env, twin = FACES[face](), FACES[face]()
    assert_same(env.reset(seed=seed), twin.reset(seed=seed))
    assert_same(env.play(steps), twin.play(steps))
    return env, twin


# -- seeds ---------------------------------------------------------------------------------
BAD_SEEDS = [
    (-1, ValueError),
    (2**64, ValueError),
    (2**70, ValueError),
    (True, TypeError),
    (np.True_, TypeError),
    (1.5, TypeError),
    (np.float64(2.0), TypeError),
    ("3", TypeError),
    ([3], TypeError),  # a scalar seed is asked for (the core and vector faces take lists)
]


@pytest.mark.parametrize("seed, error", BAD_SEEDS, ids=repr)
@pytest.mark.parametrize("face", list(FACES))
def test_a_bad_seed_raises_naming_it_and_changes_nothing(face, seed, error):
    if face in ("core", "comm_core", "vector", "comm_vector") and isinstance(seed, list):
        seed = [3] * (BATCH + 1)  # a per-copy list of the wrong length
        error, message = ValueError, f"sequence of {BATCH} ints"
    else:
        message = r"seed must be .*2\*\*64"
    env, twin = twins(face)
    with pytest.raises(error, match=message):
        env.reset(seed=seed)
    assert_same(env.play(3), twin.play(3))


@pytest.mark.parametrize(
    "seed, same_as",
    [
        (np.int64(5), 5),
        (np.uint32(5), 5),
        (2**63, 2**63),
        (np.uint64(2**64 - 1), 2**64 - 1),
        (2**64 - 1, 2**64 - 1),
    ],
    ids=repr,
)
@pytest.mark.parametrize("face", list(FACES))
def test_every_face_takes_numpy_and_large_seeds(face, seed, same_as):
    env, twin = FACES[face](), FACES[face]()
    assert_same(env.reset(seed=seed), twin.reset(seed=same_as))
    assert_same(env.play(3), twin.play(3))
    assert_same(env.reset(seed=seed), twin.reset(seed=same_as))  # the same seed repeats


GOLDEN = 0x9E3779B97F4A7C15


def splitmix_state(seed: int) -> int:
    """Reference in Python ints: the stream state of a copy whose seed is ``seed``."""
    z = (seed + GOLDEN) % 2**64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return z ^ (z >> 31)


@pytest.mark.parametrize("seed", [0, 5, 2**62, 2**64 - 2])
def test_per_copy_seeds_are_seed_plus_b_modulo_2_64(seed):
    core = metaenvs.make_core("rps")
    expected = [splitmix_state((seed + b) % 2**64) for b in range(3)]
    assert core.reset(3, seed).rng.tolist() == expected  # ordinary seeds: the streams of old
    singles = [int(core.reset(1, (seed + b) % 2**64).rng[0]) for b in range(3)]
    assert singles == expected  # a copy's stream does not depend on the batch size
    assert seeds_for_batch(3, seed).tolist() == [(seed + b) % 2**64 for b in range(3)]


def test_sb3_seed_returns_the_wrapped_per_copy_seeds_and_rejects_floats():
    pytest.importorskip("stable_baselines3")
    venv = metaenvs.make_sb3_vec("ipd", num_envs=2)
    assert venv.seed(2**64 - 1) == [2**64 - 1, 0]
    with pytest.raises(TypeError, match=r"seed must be .*got 1\.5"):
        venv.seed(1.5)  # used to become 1
    venv.reset()  # the pending seed is the last good one
    np.testing.assert_array_equal(
        venv._state.rng, metaenvs.make_core("ipd").reset(2, 2**64 - 1).rng
    )


def test_supersuit_seed_too_close_to_2_64_is_rejected_at_seed():
    ss = pytest.importorskip("supersuit")
    pytest.importorskip("stable_baselines3")
    from metaenvs.faces.sb3 import SeedableSuperSuitVecEnv

    base = ss.pettingzoo_env_to_vec_env_v1(metaenvs.make("ipd"))
    venv = SeedableSuperSuitVecEnv(ss.concat_vec_envs_v1(base, 2, base_class="stable_baselines3"))
    with pytest.raises(ValueError, match="SuperSuit"):
        venv.seed(2**64 - 1)
    with pytest.raises(TypeError, match="seed must be"):
        venv.seed(True)
    assert venv._pending_seed is None
    assert venv.seed(2**64 - venv.num_envs) == [2**64 - venv.num_envs + i for i in range(4)]


@pytest.mark.parametrize(
    "seeds, error, message",
    [
        ([2**64, 0], ValueError, r"seed\[0\] must be .*2\*\*64"),
        ([0, True], TypeError, r"seed\[1\] must be None or an int"),
        ([0, 1.5], TypeError, r"seed\[1\]"),
        ([-1, 2**63], ValueError, r"seed\[0\]"),
        (np.array([1.0, 2.0]), TypeError, "seeds must be integers, got dtype float64"),
        (np.array([True, False]), TypeError, "seeds must be integers, got dtype bool"),
        (np.array([3, -2]), ValueError, r"non-negative, got seed\[1\] = -2"),
        ([1, 2, 3], ValueError, "sequence of 2 ints"),
    ],
    ids=repr,
)
@pytest.mark.parametrize("face", ["core", "vector", "comm_vector"])
def test_per_copy_seed_lists_follow_the_policy(face, seeds, error, message):
    env, twin = twins(face)
    with pytest.raises(error, match=message):
        env.reset(seed=seeds)
    assert_same(env.play(3), twin.play(3))
    assert_same(env.reset(seed=[2**64 - 1, 0]), twin.reset(seed=2**64 - 1))  # wraps as given


def test_check_seed_returns_python_ints():
    assert check_seed(None) is None
    assert type(check_seed(np.uint64(2**64 - 1))) is int
    assert check_seed(np.int8(7)) == 7


# -- reset options -------------------------------------------------------------------------
REJECTING = ["vector", "comm_vector", "focal", "peers", "exercise"]
WARNING = ["parallel", "comm_parallel"]


@pytest.mark.parametrize("face", REJECTING)
def test_reset_options_are_rejected_before_anything_changes(face):
    env, twin = twins(face)
    with pytest.raises(ValueError, match=r"takes no reset options, got \['horizon'\]"):
        env.reset(seed=4, options={"horizon": 3})
    with pytest.raises(TypeError, match="options must be a dict or None, got list"):
        env.reset(seed=4, options=["horizon"])
    assert_same(env.play(3), twin.play(3))
    assert_same(env.reset(seed=5, options={}), twin.reset(seed=5, options=None))
    assert_same(env.play(3), twin.play(3))


@pytest.mark.parametrize("face", WARNING)
def test_the_pettingzoo_face_warns_that_it_ignores_options(face):
    # PettingZoo's own parallel_api_test resets with options={"options": 1}: the face
    # must accept them, so it says loudly that it ignores them instead of raising
    env, twin = twins(face)
    with pytest.warns(UserWarning, match=r"ignores reset options \['horizon'\]"):
        obs = env.reset(seed=4, options={"horizon": 3})
    assert_same(obs, twin.reset(seed=4))
    assert_same(env.play(3), twin.play(3))
    with pytest.raises(TypeError, match="options must be a dict or None, got list"):
        env.reset(seed=6, options=["horizon"])
    assert_same(env.play(3), twin.play(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_same(env.reset(seed=5, options={}), twin.reset(seed=5, options=None))


# -- actions: the PettingZoo face checks each agent's own ------------------------------------
def _ipd() -> ParallelFace:
    return ParallelFace(lambda: metaenvs.make("ipd", horizon=10))


def _continuous() -> ParallelFace:
    return ParallelFace(lambda: metaenvs.make(GAME, continuous_actions=True))


@pytest.mark.parametrize(
    "make, bad, error, message",
    [
        (_ipd, {"player_0": True}, TypeError, r"agent 'player_0' must be integers, got dtype bool"),
        (_ipd, {"player_1": np.True_}, TypeError, r"agent 'player_1' must be integers"),
        (_ipd, {"player_1": 1.0}, TypeError, r"agent 'player_1' must be integers"),
        (
            _ipd,
            {"player_0": [0, 1]},
            ValueError,
            r"agent 'player_0' must have shape \(\), got \(2,\)",
        ),
        (_ipd, {"player_1": np.array([1])}, ValueError, r"agent 'player_1' must have shape \(\)"),
        (_ipd, {"player_1": 2}, ValueError, r"agent 'player_1'.* out of range \[0, 2\)"),
        (ParallelFace, {"agent_2": [[1]]}, ValueError, r"agent 'agent_2' must have shape \(\)"),
        (
            lambda: ParallelFace(lambda: make_comm_env(GAME)),
            {"agent_1": 1},
            ValueError,
            r"agent 'agent_1' must have shape \(3,\), got \(\)",
        ),
        (
            _continuous,
            {"agent_0": np.zeros(5, dtype=np.int64)},
            TypeError,
            r"agent 'agent_0' must be floats",
        ),
        (
            _continuous,
            {"agent_1": np.zeros(4)},
            ValueError,
            r"agent 'agent_1' must have shape \(5,\)",
        ),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else "",
)
def test_the_pettingzoo_face_checks_each_agents_action_and_names_it(make, bad, error, message):
    env, twin = make(), make()
    assert_same(env.reset(seed=1), twin.reset(seed=1))
    actions = {a: action_of(env.env.action_space(a), i) for i, a in enumerate(env.env.agents)}
    with pytest.raises(error, match=message):
        env.env.step(actions | bad)
    assert_same(env.play(3), twin.play(3))


# -- the focal view ------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", ["rps", "rps_3p", GAME])
@pytest.mark.parametrize(
    "action, error, message",
    [
        (99, ValueError, r"agent 'player_0'.* out of range|agent 'agent_0'.* out of range"),
        (0.5, TypeError, "must be integers, got dtype float64"),
        (True, TypeError, "must be integers, got dtype bool"),
        ([0, 1], ValueError, r"must have shape \(\), got \(2,\)"),
        ([[1]], ValueError, r"must have shape \(\), got \(1, 1\)"),
    ],
    ids=repr,
)
def test_a_rejected_focal_action_leaves_the_env_as_it_was(env_id, action, error, message):
    # the peers draw from np_random: a bad action must be caught before they act
    env, twin = (ViewFace(lambda: make_focal_env(env_id, peers="uniform")) for _ in range(2))
    assert_same(env.reset(seed=2), twin.reset(seed=2))
    with pytest.raises(error, match=message):
        env.env.step(action)
    assert_same(env.play(6), twin.play(6))


def test_the_focal_view_asks_for_reset_after_its_episode_ended():
    env = make_focal_env("rps", peers="uniform", horizon=2)
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(0)
    env.reset(seed=0)
    env.step(0)
    *_, truncated, _ = env.step(0)
    assert truncated
    for _ in range(2):
        with pytest.raises(RuntimeError, match=r"episode ended; call reset\(\)"):
            env.step(0)
    env.reset()
    assert env.step(0)[3] is False


# -- the exercise wrapper ------------------------------------------------------------------
def learner_state(learner: BanditInnerLearner) -> tuple:
    return (
        learner.q.tolist(),
        learner._t,
        list(learner._weights),
        list(learner._rewards),
        learner.rng.bit_generator.state,
    )


@pytest.mark.parametrize(
    "action, message",
    [
        ("0.5", r"is not numeric \(dtype <U3\)"),
        (["0.5"], r"is not numeric \(dtype <U3\)"),
        (np.array([0.5], dtype=object), r"is not numeric \(dtype object\)"),
        ([None], r"is not numeric \(dtype object\)"),
        ([True], r"is not numeric \(dtype bool\)"),
        (np.array([0.5 + 1j]), r"is complex \(dtype complex128\)"),
        ([0.5 + 0j], r"is complex \(dtype complex128\)"),
        (np.array([[0.5]]), r"shape \(1, 1\)"),
        (np.zeros(2), r"shape \(2,\)"),
    ],
    ids=repr,
)
def test_the_exercise_wrapper_rejects_non_real_meta_actions(action, message):
    env, twin = twins("exercise", steps=1)
    learner = env.env.learner
    before = learner_state(learner)
    with pytest.raises(ValueError, match=message):
        env.env.step(action)
    assert learner_state(learner) == before
    assert_same(env.play(5), twin.play(5))
    assert learner_state(learner) == learner_state(twin.env.learner)


# -- the peers view ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "action, error, message",
    [
        ([[1]], ValueError, r"agent 'player_0' must have shape \(\), got \(1, 1\)"),
        ([1], ValueError, r"agent 'player_0' must have shape \(\), got \(1,\)"),
        (np.array([0]), ValueError, r"must have shape \(\), got \(1,\)"),
        (1.0, TypeError, "must be integers, got dtype float64"),
        (True, TypeError, "must be integers, got dtype bool"),
        (2, ValueError, r"out of range \[0, 2\)"),
    ],
    ids=repr,
)
def test_the_peers_view_rejects_a_bad_action_before_anything_changes(action, error, message):
    env, twin = twins("peers")
    with pytest.raises(error, match=message):
        env.env.step(action)
    assert_same(env.play(4), twin.play(4))
