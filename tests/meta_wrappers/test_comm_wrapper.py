"""The communication-topology wrapper: conformance on every particle task, message
delivery against a numpy reference, both timings, fixed rules, bandwidth, SB3 and SuperSuit."""

import numpy as np
import pytest

import metaenvs
import metaenvs.testing as mt
from meta_wrappers.comm import CommConfig, CommCore, make_comm_core, make_comm_env, make_comm_vec
from metaenvs.core import NeighbourStructure
from metaenvs.faces.parallel import BatchedParallelEnv

PARTICLE_IDS = [
    s.id for s in metaenvs.registered_specs() if issubclass(s.core_class(), NeighbourStructure)
]


def test_every_particle_task_is_covered():
    assert len(PARTICLE_IDS) == 15  # 3 families, 8 paper ids, 4 dima-pg ids
    assert "navigation_N3_l3-v0" in PARTICLE_IDS and "predator_prey_dimapg_12v4-v0" in PARTICLE_IDS


@pytest.mark.parametrize("timing", ["same_step", "next_step"])
@pytest.mark.parametrize("env_id", PARTICLE_IDS)
def test_conformance_learned_topology(env_id, timing):
    core = make_comm_core(env_id, topology="learned", timing=timing)
    mt.check_space_conformance(core, steps=120)
    mt.check_batch_determinism(core, steps=120)
    mt.check_bad_input(core)
    mt.check_pickle(core)
    mt.check_render(core)
    mt.check_faces_agree(core, steps=120)
    # a fresh core per env: the seeding test seeds each env's own action spaces
    mt.check_parallel_api(lambda: make_comm_env(env_id, timing=timing), num_cycles=120)
    mt.check_parallel_seeding(lambda: make_comm_env(env_id, timing=timing), num_cycles=120)
    mt.check_vector_env(make_comm_vec(env_id, 3, timing=timing), steps=120)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(topology="none"),
        dict(topology="full", timing="next_step"),
        dict(topology="k_nearest", k=1),
        dict(topology="radius", radius=0.7, timing="next_step"),
    ],
    ids=["none", "full-next", "k_nearest", "radius-next"],
)
@pytest.mark.parametrize("continuous", [False, True])
def test_conformance_fixed_topologies(kwargs, continuous):
    core = make_comm_core(
        "predator_prey_N6_M2_l1", env_kwargs={"continuous_actions": continuous}, **kwargs
    )
    assert core.action_space == core.inner.action_space
    mt.check_space_conformance(core, steps=60)
    mt.check_batch_determinism(core, steps=60)
    mt.check_bad_input(core)
    mt.check_faces_agree(core, steps=60)
    mt.check_parallel_api(lambda: BatchedParallelEnv(core), num_cycles=60)


# -- delivery against a numpy reference ------------------------------------------------------
def reference_received(core, inner_obs, mask):
    """Numpy: agent i's slot s holds o^j for j = ids[i, s] if requested and filled."""
    ids, _ = core.inner.neighbours_in(inner_obs)
    b_n, n, d = ids.shape
    received = np.zeros((b_n, n, d, core.obs_size), dtype=np.float32)
    senders = np.full((b_n, n, d), -1)
    for b in range(b_n):
        for i in range(n):
            for s in range(d):
                if mask[b, i, s] and ids[b, i, s] >= 0:
                    received[b, i, s] = inner_obs[b, ids[b, i, s]]
                    senders[b, i, s] = ids[b, i, s]
    return received, senders


def random_mask(core, batch, rng):
    return rng.random((batch, core.n_agents, core.d)) < 0.5


@pytest.mark.parametrize("env_id", ["navigation_N6_l1", "predator_prey_N3_M1_l3", "push_N3"])
def test_same_step_request_delivers_current_observations(env_id):
    core = make_comm_core(env_id, topology="learned")
    state = core.reset(4, 0)
    rng = np.random.default_rng(0)
    for _ in range(30):
        inner_obs = core.inner.observe(state.inner).copy()
        mask = random_mask(core, 4, rng)
        obs = core.request(state, mask)
        parts = core.split_observation(obs)
        received, senders = reference_received(core, inner_obs, mask)
        np.testing.assert_array_equal(parts["own"], inner_obs)
        np.testing.assert_array_equal(parts["received"], received)
        np.testing.assert_array_equal(parts["ids"], senders)
        np.testing.assert_array_equal(parts["valid"], senders >= 0)
        assert (parts["phase"] == 1).all()
        result = core.act(state, core.inner.sample_actions(4, rng))
        after = core.split_observation(result.obs)
        assert (after["phase"] == 0).all() and (after["valid"] == 0).all()
        assert (after["ids"] == -1).all() and not after["received"].any()


def test_two_phase_reads_only_its_part_of_the_action():
    core = make_comm_core("navigation_N3_l3", topology="learned")
    plain = metaenvs.make_core("navigation_N3_l3")
    state, ref = core.reset(2, 3), plain.reset(2, 3)
    rng = np.random.default_rng(1)
    for t in range(2 * 25):
        actions = core.sample_actions(2, rng)
        r = core.step(state, actions)
        if t % 2 == 0:  # request phase: moves are ignored, nothing happens in the game
            assert not r.truncated.any() and (r.reward == 0).all()
            np.testing.assert_array_equal(
                core.split_observation(r.obs)["valid"], actions[..., 1:] * (core._ids(state) >= 0)
            )
        else:  # act phase: requests are ignored, the game steps with the moves
            rr = plain.step(ref, actions[..., 0])
            np.testing.assert_array_equal(core.split_observation(r.obs)["own"], rr.obs)
            np.testing.assert_array_equal(r.reward, rr.reward)
            np.testing.assert_array_equal(r.truncated, rr.truncated)
    assert r.truncated.all()  # 25 env steps = 50 wrapper steps


def test_next_step_delivers_last_steps_observations_one_step_late():
    core = make_comm_core("navigation_N6_l6", topology="learned", timing="next_step")
    state = core.reset(3, 5)
    rng = np.random.default_rng(2)
    assert not core.split_observation(core.observe(state))["valid"].any()
    for _ in range(60):
        before = core.inner.observe(state.inner).copy()
        actions = core.sample_actions(3, rng)
        r = core.step(state, actions)
        received, senders = reference_received(core, before, actions[..., 1:].astype(bool))
        done = r.terminated | r.truncated
        live = core.split_observation(r.obs)
        final = core.split_observation(r.final_obs)
        for b in range(3):
            got = final if done[b] else live
            np.testing.assert_array_equal(got["received"][b], received[b])
            np.testing.assert_array_equal(got["ids"][b], senders[b])
            if done[b]:  # the next episode starts with nothing received
                assert (live["ids"][b] == -1).all() and not live["received"][b].any()
        np.testing.assert_array_equal(r.info["messages"], (senders >= 0).sum(-1))


def test_fixed_rules_match_their_definitions():
    rng = np.random.default_rng(0)
    for topology, kw in [
        ("none", {}),
        ("full", {}),
        ("k_nearest", {"k": 2}),
        ("radius", {"radius": 0.6}),
    ]:
        core = make_comm_core("navigation_N6_l6", topology=topology, **kw)
        state = core.reset(5, 1)
        for _ in range(10):
            core.step(state, core.sample_actions(5, rng))
        inner_obs = core.inner.observe(state.inner)
        ids, rel = core.inner.neighbours_in(inner_obs)
        dist = np.linalg.norm(rel, axis=-1)
        expected = {
            "none": np.zeros_like(ids, dtype=bool),
            "full": ids >= 0,
            "k_nearest": np.argsort(np.argsort(dist, axis=-1, kind="stable"), axis=-1) < 2,
            "radius": dist <= 0.6,
        }[topology]
        received, senders = reference_received(core, inner_obs, expected)
        parts = core.split_observation(core.observe(state))
        np.testing.assert_array_equal(parts["ids"], senders)
        np.testing.assert_array_equal(parts["received"], received)


def test_user_rule_and_its_errors():
    def nearest_only(obs, ids, rel):
        dist = np.linalg.norm(rel, axis=-1)
        return dist == dist.min(axis=-1, keepdims=True)

    core = make_comm_core("navigation_N3_l3", topology=nearest_only)
    same = make_comm_core("navigation_N3_l3", topology="k_nearest", k=1)
    s1, s2 = core.reset(3, 0), same.reset(3, 0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = core.sample_actions(3, rng)
        np.testing.assert_array_equal(core.step(s1, a).obs, same.step(s2, a).obs)
    bad = make_comm_core("navigation_N3_l3", topology=lambda o, i, r: np.ones(3))
    with pytest.raises(ValueError, match="bool mask of shape"):
        bad.reset(2, 0)


@pytest.mark.parametrize("kwargs", [dict(topology="learned"), dict(timing="next_step")])
def test_final_state_is_the_inner_cores(kwargs):
    """The wrapped core's final global state is the inner one: for a particle task, the
    finished episodes' own observations side by side (the messages are not state)."""
    core = make_comm_core("navigation_N3_l3", env_kwargs={"horizon": 3}, **kwargs)
    state = core.reset(2, 0)
    rng = np.random.default_rng(0)
    done = np.zeros(2, dtype=bool)
    while not done.any():
        r = core.step(state, core.sample_actions(2, rng))
        done = r.terminated | r.truncated
        assert r.final_mask is None and r.final_state.shape == (2, 3 * core.obs_size)
    own = core.split_observation(r.final_obs)["own"]
    np.testing.assert_array_equal(r.final_state[done], own[done].reshape(int(done.sum()), -1))


def test_bandwidth_and_message_cost():
    free = make_comm_core("navigation_N3_l3", topology="full", timing="next_step")
    paid = make_comm_core("navigation_N3_l3", topology="full", timing="next_step", message_cost=0.1)
    s1, s2 = free.reset(2, 0), paid.reset(2, 0)
    a = np.zeros((2, 3), dtype=np.int64)
    r1 = mt.copy_result(free.step(s1, a))
    r2 = paid.step(s2, a)
    np.testing.assert_array_equal(r1.info["messages"], np.full((2, 3), 2))
    np.testing.assert_array_equal(r1.info["messages_total"], [6, 6])
    np.testing.assert_allclose(r2.reward, r1.reward - 0.2, atol=1e-6)
    learned = make_comm_core("navigation_N3_l3", message_cost=0.5)
    state = learned.reset(1, 0)
    r = learned.step(state, np.array([[[0, 1, 0], [0, 1, 1], [0, 0, 0]]]))
    np.testing.assert_array_equal(r.info["messages"], [[1, 2, 0]])
    np.testing.assert_allclose(r.reward, [[-0.5, -1.0, 0.0]])


def test_pettingzoo_infos_carry_bandwidth():
    env = make_comm_env("navigation_N3_l3", topology="full")
    env.reset(seed=0)
    _, _, _, _, infos = env.step({a: 0 for a in env.agents})
    assert infos["agent_0"]["messages_total"] == 6


def test_bad_config_and_calls_raise():
    with pytest.raises(ValueError, match="topology"):
        make_comm_core("navigation_N3_l3", topology="everyone")
    with pytest.raises(ValueError, match="timing"):
        make_comm_core("navigation_N3_l3", timing="later")
    with pytest.raises(TypeError, match="Did you mean 'timing'"):
        make_comm_core("navigation_N3_l3", timings="next_step")
    with pytest.raises(ValueError, match="message_cost"):
        make_comm_core("navigation_N3_l3", message_cost=-1.0)
    with pytest.raises(TypeError, match="neighbour structure"):
        CommCore(metaenvs.make_core("ipd"), CommConfig())
    core = make_comm_core("navigation_N3_l3")
    state = core.reset(2, 0)
    with pytest.raises(RuntimeError, match="before request"):
        core.act(state, np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"\(B, N, d\)"):
        core.request(state, np.zeros((2, 3)))
    with pytest.raises(TypeError, match="bool or 0/1"):
        core.request(state, np.full((2, 3, 2), 0.5))
    before = state.copy()
    core.request(state, np.ones((2, 3, 2), dtype=bool))
    with pytest.raises(RuntimeError, match="twice"):
        core.request(state, np.ones((2, 3, 2), dtype=bool))
    with pytest.raises(ValueError, match="out of range"):
        core.act(state, np.full((2, 3), 7))
    assert not np.array_equal(before.obs, state.obs)  # the request went through
    with pytest.raises(RuntimeError, match="learned"):
        make_comm_core("navigation_N3_l3", timing="next_step").request(state, None)


def test_render_draws_the_requests():
    core = make_comm_core("navigation_N3_l3")
    state = core.reset(1, 0)
    blank = core.render_copy(state)
    core.request(state, np.zeros((1, 3, 2), dtype=bool))
    np.testing.assert_array_equal(core.render_copy(state), blank)
    state = core.reset(1, 0)
    core.request(state, np.ones((1, 3, 2), dtype=bool))
    assert (core.render_copy(state) != blank).any(axis=-1).sum() > 100


# -- SB3 and SuperSuit --------------------------------------------------------------------------
def test_sb3_ppo_learns_to_save_bandwidth():
    """PPO on the SB3 face, learned requests with a message cost: requests must drop."""
    pytest.importorskip("stable_baselines3")
    from stable_baselines3 import PPO

    from metaenvs.faces.sb3 import SB3VecEnv

    core = make_comm_core("navigation_N3_l3", timing="next_step", message_cost=2.0)

    def request_rate(model, episodes=4):
        venv = SB3VecEnv(core, 8)
        venv.seed(123)
        obs, sent = venv.reset(), []
        for _ in range(25 * episodes):
            actions, _ = model.predict(obs, deterministic=False)
            sent.append(actions[:, 1:].mean())
            obs, *_ = venv.step(actions)
        return float(np.mean(sent))

    venv = SB3VecEnv(core, 8)
    model = PPO(
        "MlpPolicy", venv, n_steps=64, batch_size=256, learning_rate=1e-3, seed=0, device="cpu"
    )
    before = request_rate(model)
    model.learn(15_000)
    after = request_rate(model)
    assert before > 0.4 and after < 0.5 * before, (before, after)


def test_supersuit_vector_env_runs_the_wrapped_env():
    ss = pytest.importorskip("supersuit")
    env = make_comm_env("navigation_N3_l3", timing="next_step")
    venv = ss.concat_vec_envs_v1(ss.pettingzoo_env_to_vec_env_v1(env), 2, num_cpus=0)
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (6, 52)
    rng = np.random.default_rng(0)
    for _ in range(30):
        actions = np.stack([env.action_space("agent_0").sample() for _ in range(6)])
        obs, rew, term, trunc, infos = venv.step(actions)
        assert obs.shape == (6, 52) and rew.shape == (6,) and np.isfinite(rew).all()
    del rng


def test_the_comm_wrapper_passes_threads_to_the_core_it_wraps():
    core = make_comm_core("navigation_N3_l3", threads=2)
    assert (core.threads, core.inner.threads) == (2, 2)
    core.threads = 1
    assert core.inner.threads == 1
    assert make_comm_vec("navigation_N3_l3", 4, threads=3).core.inner.threads == 3
