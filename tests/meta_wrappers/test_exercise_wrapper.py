"""Exercise-move wrapper (MNMPG, Algorithm 1) over the toy bandit learner."""

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

from meta_wrappers.exercise import (
    BanditEpisodes,
    BanditInnerLearner,
    ExerciseMoveEnv,
    InnerLearner,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "wrappers" / "exercise.md"


class RecordingLearner(BanditInnerLearner):
    """The toy learner, logging every protocol call the wrapper makes."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls: list[str] = []
        self.ended: list[tuple[BanditEpisodes, float]] = []
        self.collected: list[tuple[BanditEpisodes, float]] = []
        self.remembered: list[BanditEpisodes] = []
        self.q_at_collect: list[np.ndarray] = []

    def end(self):
        self.calls.append("end")
        self.ended.append(super().end())
        return self.ended[-1]

    def snapshot(self):
        self.calls.append("snapshot")
        return super().snapshot()

    def update(self, data):
        self.calls.append("update")
        super().update(data)

    def collect(self, n_episodes):
        self.calls.append("collect")
        self.q_at_collect.append(self.q.copy())
        self.collected.append(super().collect(n_episodes))
        return self.collected[-1]

    def restore(self, snapshot):
        self.calls.append("restore")
        super().restore(snapshot)

    def remember(self, data):
        self.calls.append("remember")
        self.remembered.append(data)
        super().remember(data)


def run_episode(env, policy=None, obs=None):
    """Play one meta-episode from the current reset (whose observation is ``obs``); return the
    rewards and the last info."""
    policy = policy or (lambda obs: env.action_space.sample())
    rewards = []
    while True:
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        rewards.append(reward)
        if terminated or truncated:
            return rewards, info


def learner_state(learner):
    return (
        learner.q.tobytes(),
        str(learner.rng.bit_generator.state),
        learner._t,
        list(learner._weights),
        list(learner._rewards),
        len(learner.replay),
    )


def test_protocol_is_implemented_by_the_toy_and_checked_by_the_wrapper():
    assert isinstance(BanditInnerLearner(), InnerLearner)

    class NotALearner:
        meta_observation_space = spaces.Box(0, 1, (2,))
        meta_action_space = spaces.Discrete(2)

        def begin(self, seed):
            return np.zeros(2, np.float32)

    assert not isinstance(NotALearner(), InnerLearner)
    with pytest.raises(TypeError, match=r"missing \['act', 'end', 'collect'"):
        ExerciseMoveEnv(NotALearner())


@pytest.mark.parametrize("rollback", [True, False])
def test_gymnasium_check_env_passes(rollback):
    env = ExerciseMoveEnv(BanditInnerLearner(seed=0), n_exercise=2, rollback=rollback)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checker warning fails the test too
        check_env(env, skip_render_check=True)
    assert env.render_mode is None


@pytest.mark.parametrize("eval_episodes", [1, 5])
def test_meta_reward_is_R1_minus_R0_and_zero_inside_the_episode(eval_episodes):
    learner = RecordingLearner(seed=3)
    env = ExerciseMoveEnv(learner, eval_episodes=eval_episodes)
    env.reset(seed=3)
    env.action_space.seed(3)
    for episode in range(6):
        rewards, info = run_episode(env)
        (d0, r0), (d1, r1) = learner.ended[episode], learner.collected[episode]
        # recomputed from the data, not taken from what the learner reported
        assert r0 == d0.reward.sum() and d0.reward.shape == (1, learner.horizon)
        assert r1 == pytest.approx(d1.reward.sum(axis=1).mean(), abs=1e-12)
        assert d1.reward.shape == (eval_episodes, learner.horizon)
        assert rewards[:-1] == [0.0] * (learner.horizon - 1)
        assert rewards[-1] == r1 - r0 == info["meta_reward"]
        assert (info["R0"], info["R1"], info["exercise_updates"]) == (r0, r1, 1)
        env.reset()
    assert len(learner.ended) == len(learner.collected) == 6


@pytest.mark.parametrize("n_exercise", [1, 3])
def test_rollback_puts_the_parameters_back_bitwise(n_exercise):
    learner = RecordingLearner(seed=1)
    learner.q = np.array([0.3, -0.1, 0.7]) / 3  # not representable exactly: no lucky zeros
    env = ExerciseMoveEnv(learner, n_exercise=n_exercise, rollback=True)
    env.reset(seed=1)
    for _ in range(4):
        before = learner.q.tobytes()
        run_episode(env, lambda obs: np.ones(1, np.float32))
        assert learner.q_at_collect[-1].tobytes() != before  # the exercise moves did move q
        assert learner.q.tobytes() == before
        env.reset()
    order = ["end", "snapshot", *["update"] * n_exercise, "collect", "restore"]
    assert learner.calls[: len(order)] == order
    assert learner.calls.count("update") == 4 * n_exercise


@pytest.mark.parametrize("n_exercise", [1, 3])
def test_without_rollback_the_exercised_parameters_are_kept(n_exercise):
    learner = RecordingLearner(seed=2)
    env = ExerciseMoveEnv(learner, n_exercise=n_exercise, rollback=False)
    env.reset(seed=2)
    for _ in range(3):
        reference = BanditInnerLearner()
        reference.restore(learner.snapshot())
        _, info = run_episode(env, lambda obs: np.ones(1, np.float32))
        for _ in range(n_exercise):
            reference.update(learner.ended[-1][0])
        assert learner.q.tobytes() == reference.q.tobytes() == learner.q_at_collect[-1].tobytes()
        assert info["exercise_updates"] == n_exercise
        env.reset()
    assert "restore" not in learner.calls
    assert learner.calls.count("update") == 3 * n_exercise


def test_rollback_also_happens_when_an_update_fails():
    class Failing(BanditInnerLearner):
        def update(self, data):
            super().update(data)
            raise FloatingPointError("diverged")

    learner = Failing(seed=0)
    env = ExerciseMoveEnv(learner)
    env.reset(seed=0)
    before = learner.q.tobytes()
    with pytest.raises(FloatingPointError):
        run_episode(env, lambda obs: np.ones(1, np.float32))
    assert learner.q.tobytes() == before


@pytest.mark.parametrize("remember", [True, False])
def test_D0_and_D1_are_handed_to_remember(remember):
    learner = RecordingLearner(seed=4)
    env = ExerciseMoveEnv(learner, eval_episodes=2, remember=remember)
    env.reset(seed=4)
    for _ in range(3):
        run_episode(env)
        env.reset()
    if remember:
        expected = [x for e, c in zip(learner.ended, learner.collected) for x in (e[0], c[0])]
        assert len(learner.remembered) == 6
        assert all(a is b for a, b in zip(learner.remembered, expected))
        assert learner.calls[-4:] == ["collect", "restore", "remember", "remember"]
        assert len(learner.replay) == 6
    else:
        assert learner.remembered == [] and len(learner.replay) == 0


@pytest.mark.parametrize(
    "action, message",
    [
        (np.zeros(2, np.float32), r"shape \(2,\)"),
        (np.float32(0.5), r"shape \(\)"),
        ([[0.5]], r"shape \(1, 1\)"),
        (np.array([np.nan], np.float32), "non-finite"),
        (np.array([np.inf]), "non-finite"),
        (np.array([1.5], np.float32), "out of bounds"),
        (np.array([-0.01]), "out of bounds"),
        (["high"], "not numeric"),
    ],
)
def test_bad_meta_actions_raise_before_any_state_change(action, message):
    learner, clean = BanditInnerLearner(seed=5), BanditInnerLearner(seed=5)
    env, clean_env = ExerciseMoveEnv(learner), ExerciseMoveEnv(clean)
    env.reset(seed=5)
    clean_env.reset(seed=5)
    good = np.array([0.25], np.float32)
    for _ in range(learner.horizon):
        state = learner_state(learner)
        with pytest.raises(ValueError, match=message):
            env.step(action)
        assert learner_state(learner) == state
        out, clean_out = env.step(good), clean_env.step(good)
        np.testing.assert_equal(out, clean_out)  # the bad action left no trace
    assert out[2] and learner_state(learner) == learner_state(clean)


def test_non_box_action_spaces_are_checked_with_contains():
    learner = BanditInnerLearner(seed=0)
    learner.meta_action_space = spaces.Discrete(2)
    env = ExerciseMoveEnv(learner)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="not an element of Discrete"):
        env.step(2)
    assert env.step(1)[1] == 0.0 and learner._weights == [1.0]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"n_exercise": 0}, ValueError, "n_exercise must be >= 1"),
        ({"n_exercise": 1.0}, TypeError, "n_exercise must be an int"),
        ({"n_exercise": True}, TypeError, "n_exercise must be an int"),
        ({"eval_episodes": 0}, ValueError, "eval_episodes must be >= 1"),
        ({"eval_episodes": "2"}, TypeError, "eval_episodes must be an int"),
        ({"rollback": 1}, TypeError, "rollback must be a bool"),
        ({"remember": None}, TypeError, "remember must be a bool"),
        ({"n_exercice": 2}, TypeError, "n_exercice"),
    ],
)
def test_bad_config_raises(kwargs, error, message):
    with pytest.raises(error, match=message):
        ExerciseMoveEnv(BanditInnerLearner(), **kwargs)


def test_step_needs_a_running_episode_and_reset_takes_no_options():
    env = ExerciseMoveEnv(BanditInnerLearner(seed=0))
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(np.ones(1, np.float32))
    with pytest.raises(ValueError, match=r"no reset options, got \['horizon'\]"):
        env.reset(seed=0, options={"horizon": 3})
    env.reset(seed=0, options={})
    run_episode(env)
    with pytest.raises(RuntimeError, match="after the inner episode ended"):
        env.step(np.ones(1, np.float32))
    env.reset()
    run_episode(env)


def meta_rewards(seed, learner_seed=0, n_episodes=8, **kwargs):
    env = ExerciseMoveEnv(BanditInnerLearner(seed=learner_seed), **kwargs)
    env.action_space.seed(seed)
    out = []
    env.reset(seed=seed)
    for _ in range(n_episodes):
        rewards, info = run_episode(env)
        out.append((rewards[-1], info["R0"], info["R1"]))
        env.reset()
    return out


@pytest.mark.parametrize("rollback", [True, False])
def test_same_seeds_give_the_same_meta_rewards(rollback):
    a = meta_rewards(7, rollback=rollback, eval_episodes=2)
    assert a == meta_rewards(7, rollback=rollback, eval_episodes=2)
    # reset(seed=...) reseeds the learner: its construction seed no longer matters
    assert a == meta_rewards(7, learner_seed=99, rollback=rollback, eval_episodes=2)
    assert a != meta_rewards(8, rollback=rollback, eval_episodes=2)


def mean_meta_reward(policy, n_episodes=300, seed=123):
    env = ExerciseMoveEnv(BanditInnerLearner(seed=seed))
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    total = 0.0
    for _ in range(n_episodes):
        rewards, _ = run_episode(env, policy, obs)
        total += sum(rewards)
        obs, _ = env.reset()
    return total / n_episodes


@pytest.fixture
def one_torch_thread():
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_sb3_ppo_learns_to_weight_the_exercise_data(one_torch_thread):
    from stable_baselines3 import PPO

    env = ExerciseMoveEnv(BanditInnerLearner(seed=0))
    model = PPO(
        "MlpPolicy", env, n_steps=256, batch_size=64, learning_rate=3e-3, seed=0, device="cpu"
    )
    model.learn(2048)
    trained = mean_meta_reward(lambda obs: model.predict(obs, deterministic=True)[0])
    random = mean_meta_reward(lambda obs: env.action_space.sample())
    # weights 1 for the best arm, 0 elsewhere, give about 1.1; uniform weights about 0.5
    assert trained > random + 0.4, (trained, random)
    weights = model.predict(np.eye(4, dtype=np.float32)[:3], deterministic=True)[0].ravel()
    assert weights[2] > 0.9 and weights[0] < 0.1, weights


def test_docs_example_runs(one_torch_thread):
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)
    assert blocks, f"no python example in {DOCS}"
    namespace: dict = {}
    exec(compile(blocks[0], str(DOCS), "exec"), namespace)  # noqa: S102
    assert namespace["trained"] > namespace["random"]
