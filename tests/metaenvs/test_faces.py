"""Faces over the batched core: PettingZoo, Gymnasium vector, SB3, SuperSuit, pickling."""

import multiprocessing
import pickle

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from pettingzoo.utils.conversions import parallel_to_aec

import metaenvs


def test_vector_face_layout_and_same_step_autoreset():
    venv = metaenvs.make_vec("ipd", num_envs=3, horizon=2)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert venv.single_observation_space.shape == (2, 5)
    assert venv.action_space.shape == (3, 2)
    obs, _ = venv.reset(seed=0)
    obs, rew, term, trunc, info = venv.step(np.array([[0, 0], [0, 1], [1, 1]]))
    assert rew.shape == (3, 2) and not trunc.any() and "final_obs" not in info
    obs, rew, term, trunc, info = venv.step(np.array([[1, 0], [1, 0], [1, 0]]))
    assert trunc.all() and not term.any()
    assert info["_final_obs"].all()
    assert (info["final_obs"][:, :, 1 + 2 * 1 + 0] == 1).all()  # last state: (D, C)
    assert (obs[:, :, 0] == 1).all()  # already reset to s_0
    np.testing.assert_array_equal(rew, [[1.5, -1.5]] * 3)


def test_vector_face_infos_carry_the_final_state_and_masks():
    venv = metaenvs.make_vec("skirmish_3m", num_envs=4, time_limit=3)
    core = venv.core
    obs, infos = venv.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(3):
        before = venv.state.copy()
        actions = core.random_legal_actions(venv.state, rng)
        obs, rew, term, trunc, infos = venv.step(actions)
    done = term | trunc
    assert done.all()
    for key in ("final_obs", "final_state", "final_action_mask"):
        np.testing.assert_array_equal(infos[f"_{key}"], done)
    assert infos["final_state"].shape == (4, *core.global_state_space.shape)
    assert infos["final_action_mask"].shape == (4, core.n_agents, core.n_actions)
    # the same step on a core with a longer time limit shows them as its current ones
    longer = metaenvs.make_core("skirmish_3m", time_limit=10)
    r = longer.step(before, actions)
    assert not (r.terminated | r.truncated)[trunc].any()
    np.testing.assert_array_equal(infos["final_state"][trunc], longer.global_state(before)[trunc])
    np.testing.assert_array_equal(
        infos["final_action_mask"][trunc], longer.action_mask(before)[trunc]
    )
    # a core without masks: the final state only
    venv = metaenvs.make_vec("ipd", num_envs=2, horizon=1)
    venv.reset(seed=0)
    *_, infos = venv.step(np.zeros((2, 2), dtype=np.int64))
    assert infos["_final_state"].all() and "final_action_mask" not in infos
    np.testing.assert_array_equal(infos["final_state"], infos["final_obs"][:, 0])


def test_parallel_face_episode_end_and_errors():
    env = metaenvs.make("rps", horizon=2)
    with pytest.raises(RuntimeError, match="reset"):
        env.step({"player_0": 0, "player_1": 0})
    env.reset(seed=1)
    with pytest.raises(ValueError, match="missing"):
        env.step({"player_0": 0})
    with pytest.raises(ValueError, match="out of range"):
        env.step({"player_0": 0, "player_1": 3})
    env.step({"player_0": 0, "player_1": 2})
    obs, rew, term, trunc, _ = env.step({"player_0": 1, "player_1": 0})
    assert trunc == {"player_0": True, "player_1": True} and not any(term.values())
    assert rew == {"player_0": 1.0, "player_1": -1.0}
    assert obs["player_0"].argmax() == 1 + 1 * 3 + 0  # final observation, not the reset one
    assert env.agents == []
    with pytest.raises(RuntimeError, match="episode ended"):
        env.step({"player_0": 0, "player_1": 0})
    assert env.state().shape == env.state_space.shape


def test_aec_conversion_plays_an_episode():
    env = parallel_to_aec(metaenvs.make("ipd", horizon=3))
    env.reset(seed=0)
    steps = 0
    for _ in env.agent_iter():
        _, _, term, trunc, _ = env.last()
        env.step(None if term or trunc else 1)
        steps += 1
    assert steps == 3 * 2 + 2  # 3 rounds of 2 agents, then each agent's final None


def test_render_rgb_array_on_each_face():
    env = metaenvs.make("ipd", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    venv = metaenvs.make_vec("rps_3p", num_envs=2, render_mode="rgb_array")
    venv.reset(seed=0)
    assert len(venv.render()) == 2
    with pytest.raises(ValueError, match="render_mode"):
        metaenvs.make("ipd", render_mode="human-ish")


def _step_in_worker(payload):
    venv, actions = pickle.loads(payload)
    return [venv.step(a)[:2] for a in actions]


def test_faces_pickle_mid_episode_and_run_in_another_process():
    venv = metaenvs.make_vec("rps", num_envs=4)
    venv.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(7):
        venv.step(rng.integers(0, 3, (4, 2)))
    actions = rng.integers(0, 3, (5, 4, 2))
    payload = pickle.dumps((venv, actions))
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        remote = pool.apply(_step_in_worker, (payload,))
    local = [venv.step(a)[:2] for a in actions]
    for (o1, r1), (o2, r2) in zip(local, remote):
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)
    penv = metaenvs.make("ipd")
    penv.reset(seed=0)
    penv.step({"player_0": 1, "player_1": 1})
    clone = pickle.loads(pickle.dumps(penv))
    a = {"player_0": 0, "player_1": 1}
    assert [v.tolist() for v in clone.step(a)[0].values()] == [
        v.tolist() for v in penv.step(a)[0].values()
    ]


def test_seeding_is_per_copy_at_every_batch_size():
    big = metaenvs.make_vec("ipd", num_envs=6)
    small = metaenvs.make_vec("ipd", num_envs=1)
    big.reset(seed=10)
    small.reset(seed=14)
    np.testing.assert_array_equal(big.state.rng[4], small.state.rng[0])
    big.reset(seed=list(range(100, 106)))
    small.reset(seed=[105])
    np.testing.assert_array_equal(big.state.rng[5], small.state.rng[0])
    with pytest.raises(ValueError, match="sequence of 6"):
        big.reset(seed=[1, 2])
    with pytest.raises(ValueError, match="non-negative"):
        big.reset(seed=-1)


def test_faces_hand_out_arrays_the_caller_owns():
    venv = metaenvs.make_vec("ipd", num_envs=2)
    first, _ = venv.reset(seed=0)
    obs1, rew1, *_ = venv.step(np.array([[0, 1], [1, 1]]))
    kept = obs1.copy(), rew1.copy()
    venv.step(np.array([[1, 0], [0, 0]]))
    np.testing.assert_array_equal(obs1, kept[0])
    np.testing.assert_array_equal(rew1, kept[1])
    assert (first[:, :, 0] == 1).all()
    fast = metaenvs.make_vec("ipd", num_envs=2, copy=False)
    obs, _ = fast.reset(seed=0)
    assert obs is fast.state.obs  # documented: buffers, overwritten by the next step


@pytest.mark.parametrize("bad", [0, -3, 2.0, True, "4"])
def test_batch_sizes_must_be_positive_ints(bad):
    with pytest.raises(ValueError, match="positive int"):
        metaenvs.make_vec("ipd", num_envs=bad)
    with pytest.raises(ValueError, match="positive int"):
        metaenvs.make_core("ipd").reset(bad, seed=0)
