"""Interop with the frameworks users arrive from (issue 22), against the real libraries.

Each test is one of the failures a new user hit: dead agents' actions (TorchRL's
``PettingZooWrapper``), samplers that ignore masks (PettingZoo's seed and max-cycles
tests), the unknown-keyword wording (TorchRL's ``GymEnv``), ``autoreset_mode`` and
per-agent rewards on the vector face (Gymnasium's vector wrappers), PettingZoo-style
constructors with ``max_cycles``, and SuperSuit's ``black_death_v3``.
"""

import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from pettingzoo.test import max_cycles_test, parallel_api_test, parallel_seed_test

import metaenvs
from metaenvs.registry import registered_specs

NOOP, STOP, FIRST_TARGET = 0, 1, 6


def assert_same_state(a, b):
    for key, value in a.arrays().items():
        np.testing.assert_array_equal(value, getattr(b, key), err_msg=key)


def play_until_a_death(env, seed=0):
    """Step ``env`` (Skirmish, dict observations) with legal random actions until an agent
    has left mid-episode; returns the last infos."""
    rng = np.random.default_rng(seed)
    for episode in range(20):
        _, infos = env.reset(seed=seed + episode)
        while env.agents:
            actions = {
                a: int(rng.choice(np.flatnonzero(infos[a]["action_mask"]))) for a in env.agents
            }
            _, _, _, _, infos = env.step(actions)
            if env.agents and len(env.agents) < len(env.possible_agents):
                return infos
    raise AssertionError("no agent died mid-episode in 20 episodes")


# -- dead agents, unknown names ----------------------------------------------------------------


def test_actions_of_agents_that_left_are_ignored_and_strangers_raise():
    env = metaenvs.make("skirmish_3m", time_limit=500)
    infos = play_until_a_death(env)
    gone = [a for a in env.possible_agents if a not in env.agents]
    live = {a: int(np.flatnonzero(infos[a]["action_mask"])[0]) for a in env.agents}
    # a twin stepped with the live agents' actions only must end where the env does when
    # it also gets (masked) actions for the gone agents
    twin = metaenvs.make("skirmish_3m", time_limit=500)
    twin.reset()
    twin._state, twin.agents = env._state.copy(), list(env.agents)
    before = env._state.copy()
    with pytest.raises(ValueError, match=r"unknown \['marine_9'\].*possible_agents"):
        env.step({**live, **dict.fromkeys(gone, FIRST_TARGET), "marine_9": STOP})
    assert_same_state(before, env._state)  # rejected before anything changed
    with pytest.raises(ValueError, match="missing"):
        env.step(dict.fromkeys(gone, STOP))
    obs, rewards, *_ = env.step({**live, **dict.fromkeys(gone, FIRST_TARGET)})
    expected, expected_rewards, *_ = twin.step(live)
    assert set(obs) == set(live) and rewards == expected_rewards
    assert_same_state(twin._state, env._state)


# -- invalid_action ------------------------------------------------------------------------------


def test_invalid_action_noop_plays_the_first_legal_action():
    raising = metaenvs.make("skirmish_3m")
    noop = metaenvs.make("skirmish_3m", invalid_action="noop")
    _, infos = raising.reset(seed=3)
    noop.reset(seed=3)
    assert infos["marine_0"]["action_mask"][NOOP] == 0  # no-op is for dead units only
    assert infos["marine_0"]["action_mask"][STOP] == 1  # so the first legal one is stop
    masked = dict.fromkeys(raising.agents, NOOP)
    with pytest.raises(ValueError, match="marine_0"):
        raising.step(masked)
    first_legal = {a: int(np.argmax(infos[a]["action_mask"])) for a in raising.agents}
    expected = raising.step(first_legal)
    assert noop.step(masked)[1] == expected[1]
    assert_same_state(raising._state, noop._state)
    # a legal action is kept, and an action outside the space still raises
    assert noop.invalid_action == "noop"
    before = noop._state.copy()
    with pytest.raises(ValueError, match="out of range"):
        noop.step({**dict.fromkeys(noop.agents, STOP), "marine_1": 99})
    assert_same_state(before, noop._state)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"invalid_action": "ignore"}, ValueError, "invalid_action must be one of"),
        ({"invalid_action": None}, ValueError, "invalid_action must be one of"),
        ({"mask_in_obs": "no"}, TypeError, "mask_in_obs must be a bool"),
    ],
)
def test_bad_face_options_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        metaenvs.make("skirmish_3m", **kwargs)


def test_samplers_that_ignore_masks_pass_pettingzoo_seed_test_with_noop():
    # without "noop", PettingZoo's parallel_seed_test samples masked actions and fails
    with pytest.raises(ValueError, match="not available"):
        parallel_seed_test(lambda: metaenvs.make("skirmish_3m"), num_cycles=50)
    parallel_seed_test(lambda: metaenvs.make("skirmish_3m", invalid_action="noop"))


def test_vector_face_invalid_action_raise_noop_and_bad_values():
    raising = metaenvs.make_vec("skirmish_3m", 2)
    noop = metaenvs.make_vec("skirmish_3m", 2, invalid_action="noop")
    _, infos = raising.reset(seed=3)
    noop.reset(seed=3)
    assert raising.invalid_action == "raise" and noop.invalid_action == "noop"
    masked = np.full((2, 3), NOOP)
    masked[1, 2] = STOP  # one legal action among the masked ones is kept
    before = raising.state.copy()
    with pytest.raises(ValueError, match="marine_0"):
        raising.step(masked)
    assert_same_state(before, raising.state)
    first_legal = infos["action_mask"].argmax(axis=-1)
    assert (first_legal == STOP).all()
    expected = raising.step(first_legal)
    got = noop.step(masked)
    for a, b in zip(expected[:4], got[:4]):
        np.testing.assert_array_equal(a, b)
    assert_same_state(raising.state, noop.state)
    # an action outside the action space raises either way, before anything changes
    before = noop.state.copy()
    bad = np.full((2, 3), STOP)
    bad[0, 1] = 99
    with pytest.raises(ValueError, match="out of range"):
        noop.step(bad)
    assert_same_state(before, noop.state)


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: metaenvs.make_vec("skirmish_3m", 2, **kw),
        lambda **kw: gymnasium.make_vec("metaenvs/skirmish_3m", num_envs=2, **kw),
        lambda **kw: metaenvs.make_vec("navigation_N3_l3", 2, **kw),  # checked without masks
    ],
    ids=["make_vec", "gymnasium", "no-masks"],
)
@pytest.mark.parametrize("value", ["ignore", None, "NOOP"])
def test_vector_face_bad_invalid_action_raises(make, value):
    with pytest.raises(ValueError, match="invalid_action must be one of"):
        make(invalid_action=value)


def test_core_step_bad_invalid_action_raises_before_anything_changes():
    core = metaenvs.make_core("skirmish_3m")
    state = core.reset(1, seed=0)
    before = state.copy()
    with pytest.raises(ValueError, match="invalid_action must be one of"):
        core.step(state, np.full((1, 3), STOP), invalid_action="skip")
    assert_same_state(before, state)


def test_parallel_and_vector_faces_give_the_same_trajectories_with_noop():
    """Same seeds and the same random actions (masked ones included, dead agents' too):
    the PettingZoo face (one env per copy) and the vector face (B copies) agree step by
    step over several episodes."""
    batch, seed, steps = 3, 11, 150
    venv = metaenvs.make_vec("skirmish_3m", batch, invalid_action="noop", max_cycles=25)
    envs = [
        metaenvs.make("skirmish_3m", invalid_action="noop", max_cycles=25) for _ in range(batch)
    ]
    obs, infos = venv.reset(seed=seed)
    for b, env in enumerate(envs):
        p_obs, _ = env.reset(seed=seed + b)
        for i, a in enumerate(env.possible_agents):
            np.testing.assert_array_equal(p_obs[a]["observation"], obs[b, i])
            np.testing.assert_array_equal(p_obs[a]["action_mask"], infos["action_mask"][b, i])
    rng = np.random.default_rng(0)
    n_actions = int(envs[0].core.action_space.n)
    masked_seen = episodes = deaths = 0
    for _ in range(steps):
        actions = rng.integers(0, n_actions, size=(batch, 3))
        masked_seen += int(
            (np.take_along_axis(infos["action_mask"], actions[..., None], -1) == 0).sum()
        )
        obs, rew, term, trunc, infos = venv.step(actions)
        for b, env in enumerate(envs):
            live = list(env.agents)
            p_obs, p_rew, p_term, p_trunc, _ = env.step(
                {a: int(actions[b, i]) for i, a in enumerate(env.possible_agents)}
            )
            done = bool(term[b] or trunc[b])
            seen = infos["final_obs"][b] if done else obs[b]
            for i, a in enumerate(env.possible_agents):
                if a not in live:
                    assert a not in p_obs  # left earlier: the vector face keeps a zero slot
                    np.testing.assert_array_equal(seen[i], 0)
                    continue
                np.testing.assert_array_equal(p_obs[a]["observation"], seen[i])
                assert p_rew[a] == rew[b, i]
                assert p_term[a] == (bool(term[b]) or a not in env.agents and not done)
                assert p_trunc[a] == bool(trunc[b])
            deaths += len(live) - len(env.agents) if not done else 0
            if done:
                episodes += 1
                p_obs, p_infos = env.reset()  # continues the copy's stream: the next episode
                for i, a in enumerate(env.possible_agents):
                    np.testing.assert_array_equal(p_obs[a]["observation"], obs[b, i])
                    np.testing.assert_array_equal(
                        p_infos[a]["action_mask"], infos["action_mask"][b, i]
                    )
            np.testing.assert_array_equal(env.state(), venv.global_state()[b])
    assert masked_seen > 100 and episodes >= 6 and deaths > 0  # the test covers all three


# -- mask_in_obs and SuperSuit's black_death_v3 ---------------------------------------------------


def test_mask_in_obs_false_gives_box_observations_and_masks_in_infos():
    env = metaenvs.make("skirmish_3m", mask_in_obs=False)
    space = env.observation_space("marine_0")
    assert isinstance(space, gymnasium.spaces.Box)
    obs, infos = env.reset(seed=0)
    assert space.contains(obs["marine_0"])
    assert infos["marine_0"]["action_mask"].shape == (env.core.n_actions,)
    # PettingZoo's API test samples without reading masks from infos: with "noop" it plays
    plain = metaenvs.make("skirmish_3m", mask_in_obs=False, invalid_action="noop")
    parallel_api_test(plain, num_cycles=50)
    # the same numbers as the default dict observation
    default = metaenvs.make("skirmish_3m")
    dict_obs, dict_infos = default.reset(seed=0)
    np.testing.assert_array_equal(dict_obs["marine_0"]["observation"], obs["marine_0"])
    np.testing.assert_array_equal(
        dict_infos["marine_0"]["action_mask"], infos["marine_0"]["action_mask"]
    )


def test_supersuit_black_death_needs_box_observations():
    ss = pytest.importorskip("supersuit")
    # why the default fails: black_death_v3 zero-fills observations from a Box's bounds
    with pytest.raises(AssertionError, match="must be Box spaces"):
        ss.black_death_v3(metaenvs.make("skirmish_3m")).reset(seed=0)
    env = ss.black_death_v3(metaenvs.make("skirmish_3m", time_limit=500, mask_in_obs=False))
    inner = env.unwrapped
    rng = np.random.default_rng(0)
    zero_filled = 0
    for episode in range(10):
        obs, infos = env.reset(seed=episode)
        # stop on the inner env: SuperSuit 3.11 reports done only when an agent is both
        # terminated and truncated (fixed upstream in SuperSuit #265, not yet released)
        while inner.agents:
            assert set(obs) == set(env.possible_agents)
            gone = [a for a in env.possible_agents if a not in inner.agents]
            actions = {
                a: int(rng.choice(np.flatnonzero(infos[a]["action_mask"]))) for a in inner.agents
            }
            actions.update(dict.fromkeys(gone, FIRST_TARGET))  # ignored
            obs, rewards, _, _, infos = env.step(actions)
            for a in gone:
                assert not obs[a].any() and rewards[a] == 0.0
                zero_filled += 1
        if zero_filled:
            break
    assert zero_filled > 0


# -- max_cycles and PettingZoo-style constructors --------------------------------------------------


@pytest.mark.parametrize("env_id", ["skirmish_3m", "navigation_N3_l3", "rps_3p", "ipd"])
def test_pettingzoo_max_cycles_test(env_id):
    max_cycles_test(metaenvs.pettingzoo_module(env_id, invalid_action="noop"))


def test_max_cycles_is_an_alias_of_the_horizon_keyword():
    assert metaenvs.make("navigation_N3_l3", max_cycles=50).core.config.horizon == 50
    assert metaenvs.parallel_env("skirmish_3m", max_cycles=7).core.time_limit == 7
    assert metaenvs.make_vec("ipd", 2, max_cycles=3).core.config.horizon == 3
    aec = metaenvs.env("ipd", max_cycles=2)
    aec.reset(seed=0)
    turns = 0
    for _ in aec.agent_iter():
        _, _, term, trunc, _ = aec.last()
        aec.step(None if term or trunc else 0)
        turns += 1
    assert turns == 2 * 2 + 2  # 2 rounds of 2 agents, then each agent's final None
    with pytest.raises(TypeError, match="got both max_cycles and time_limit"):
        metaenvs.make("skirmish_3m", max_cycles=5, time_limit=5)
    with pytest.raises(metaenvs.UnknownEnvError):
        metaenvs.pettingzoo_module("skirmish_3n")
    for s in registered_specs():  # every id that has an episode length takes the alias
        field = s.horizon_keyword()
        if field is not None:
            assert getattr(s.make_core(max_cycles=7).config, field) == 7, s.id
    assert {s.horizon_keyword() for s in registered_specs()} >= {"horizon", "time_limit"}


def test_max_cycles_on_an_id_without_an_episode_length_raises(monkeypatch):
    from metaenvs.games.matrix import MatrixGameConfig

    monkeypatch.setattr(MatrixGameConfig, "horizon_field", None)
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_cycles'"):
        metaenvs.make("ipd", max_cycles=5)


# -- unknown keywords as Python words them -------------------------------------------------------


VIEW_IDS = sorted(v for s in registered_specs() for v in s.view_ids().values())


@pytest.mark.parametrize("view_id", VIEW_IDS)
def test_unknown_keyword_is_pythons_type_error_through_gymnasium(view_id):
    # TorchRL's GymEnv passes frameskip and drops it only on Python's own wording
    with pytest.raises(TypeError, match="got an unexpected keyword argument 'frameskip'"):
        gymnasium.make(f"metaenvs:{view_id}", frameskip=1)


# -- the vector face under Gymnasium's vector wrappers ---------------------------------------------


def test_vector_face_declares_same_step_autoreset():
    venv = gymnasium.make_vec("metaenvs:metaenvs/ipd-v0", num_envs=2)
    assert venv.autoreset_mode == AutoresetMode.SAME_STEP
    assert venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert isinstance(venv.metadata["autoreset_mode"], AutoresetMode)


def test_gymnasium_vector_wrappers_after_summing_agents_rewards():
    from gymnasium.wrappers.vector import RecordEpisodeStatistics, TransformReward

    venv = metaenvs.make_vec("ipd", num_envs=3, horizon=2)
    # single-agent vector wrappers expect rewards (B,): sum the agents' (B, N) first
    wrapped = RecordEpisodeStatistics(TransformReward(venv, lambda r: r.sum(axis=1)))
    wrapped.reset(seed=0)
    actions = np.array([[0, 0], [0, 1], [1, 1]])
    _, r1, *_ = wrapped.step(actions)
    _, r2, term, trunc, infos = wrapped.step(actions)
    assert r1.shape == (3,) and trunc.all()
    np.testing.assert_allclose(infos["episode"]["r"], r1 + r2)
    np.testing.assert_array_equal(infos["episode"]["l"], [2, 2, 2])
    assert infos["_episode"].all()
    # on the per-agent rewards the single-agent wrapper cannot add up returns
    with pytest.raises(ValueError):
        bare = RecordEpisodeStatistics(metaenvs.make_vec("ipd", num_envs=3))
        bare.reset(seed=0)
        bare.step(actions)


# -- TorchRL ---------------------------------------------------------------------------------------


def test_torchrl_gym_env_on_a_single_agent_view():
    pytest.importorskip("torchrl")
    from torchrl.envs import GymEnv

    env = GymEnv("metaenvs:metaenvs/ipd-focal-v0")
    td = env.rollout(5)
    assert td["next", "reward"].shape == (5, 1)


def test_torchrl_pettingzoo_wrapper_with_deaths():
    pytest.importorskip("torchrl")
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper

    env = PettingZooWrapper(
        metaenvs.make("skirmish_3m", time_limit=40), use_mask=True, done_on_any=False
    )
    env.set_seed(0)
    td = env.rollout(200, break_when_any_done=False)
    alive = td["next", "marine", "mask"]
    assert (~alive).any()  # agents died, and TorchRL kept sending their actions
    assert td["next", "done"].any()  # and episodes ended and restarted
    chosen = td["marine", "action"]
    mask = td["marine", "action_mask"]
    assert mask.gather(-1, chosen[..., None]).all()  # it sampled legal actions only
