"""The 2-agent HalfCheetah against its references: Gymnasium's HalfCheetah-v5 (state,
reward, observation, info, step for step) and MaMuJoCo's 2x3 partition (joint order,
what each agent observes).  Determinism over batch sizes and faces is the conformance
suite's."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

import metaenvs

mujoco = pytest.importorskip("mujoco")
pytest.importorskip("imageio", reason="Gymnasium's MuJoCo envs import imageio")

import gymnasium  # noqa: E402

from metaenvs.games.halfcheetah import PARTITION, STATE_SPEC, HalfCheetahCore  # noqa: E402

ID = "halfcheetah_2x3"


def quietly(make, *args, **kwargs):
    """``make(*args, **kwargs)`` with MuJoCo's warnings collected: Gymnasium's and
    MaMuJoCo's model loads warn about ``settotalmass``, which MuJoCo would otherwise write
    to MUJOCO_LOG.TXT in the working directory."""
    seen: list[str] = []
    mujoco.set_mju_user_warning(seen.append)
    try:
        return make(*args, **kwargs)
    finally:
        mujoco.set_mju_user_warning(None)


def gym_cheetahs(core, state, seed):
    """One Gymnasium HalfCheetah-v5 per copy of ``state``, set to that copy's MuJoCo state."""
    envs = []
    for b in range(state.batch):
        env = quietly(gymnasium.make, "HalfCheetah-v5", max_episode_steps=10_000)
        env.reset(seed=seed + b)
        u = env.unwrapped
        mujoco.mj_setState(u.model, u.data, state.physics[b], STATE_SPEC)
        envs.append(env)
    return envs


def gym_state(env):
    u = env.unwrapped
    out = np.empty(mujoco.mj_stateSize(u.model, STATE_SPEC))
    mujoco.mj_getState(u.model, u.data, out, STATE_SPEC)
    return out


def test_same_state_and_actions_as_gymnasium_halfcheetah_v5_give_the_same_trajectory():
    """300 steps of random actions in 4 copies (threaded path) against 4 HalfCheetah-v5:
    MuJoCo state (positions, velocities, warm start), reward, observation and info agree to
    1e-6 at every step (in practice bit for bit)."""
    core = metaenvs.make_core(ID, horizon=1000, threads=2)
    core.min_parallel = 2  # chunks on two threads, one MjData each
    state = core.reset(4, seed=11)
    envs = gym_cheetahs(core, state, seed=100)
    for env, obs in zip(envs, state.obs):
        ref = env.unwrapped._get_obs()
        np.testing.assert_allclose(obs[0], ref, rtol=1e-6, atol=1e-6)
    rng = np.random.default_rng(0)
    worst = {"state": 0.0, "reward": 0.0, "obs": 0.0}
    for t in range(300):
        actions = rng.uniform(-1, 1, (4, 2, 3)).astype(np.float32)
        r = core.step(state, actions)
        for b, env in enumerate(envs):
            obs, reward, terminated, truncated, info = env.step(actions[b].reshape(6))
            assert not (terminated or truncated or r.terminated[b] or r.truncated[b])
            diff = np.abs(gym_state(env) - state.physics[b]).max()
            worst["state"] = max(worst["state"], diff)
            worst["reward"] = max(worst["reward"], abs(float(r.reward[b, 0]) - reward))
            worst["obs"] = max(worst["obs"], np.abs(r.obs[b] - obs).max())
            assert r.reward[b, 0] == r.reward[b, 1]
            for key in ("x_position", "x_velocity", "reward_forward", "reward_ctrl"):
                assert abs(r.info[key][b] - info[key]) <= 1e-6, (t, b, key)
        assert worst["state"] <= 1e-6 and worst["reward"] <= 1e-6, (t, worst)
        assert worst["obs"] <= 1e-6 * max(1.0, float(np.abs(r.obs).max())), (t, worst)
    assert np.abs(state.qpos[:, 0]).max() > 0.5  # the cheetahs moved


def test_the_check_would_see_a_wrong_step():
    """Guard (the cross-check can fail): a cheetah stepped with frame skip 4 parts from
    HalfCheetah-v5 at once."""
    core = metaenvs.make_core(ID)
    state = core.reset(1, seed=3)
    (env,) = gym_cheetahs(core, state, seed=0)
    action = np.full(6, 0.5, dtype=np.float32)
    env.step(action)
    u = env.unwrapped
    mujoco.mj_setState(core.model, data := mujoco.MjData(core.model), state.physics[0], STATE_SPEC)
    data.ctrl[:] = action
    mujoco.mj_step(core.model, data, 4)
    assert np.abs(data.qpos - u.data.qpos).max() > 1e-4


def test_model_and_constants_are_halfcheetah_v5s():
    core = metaenvs.make_core(ID)
    env = quietly(gymnasium.make, "HalfCheetah-v5").unwrapped
    assert core.dt == env.dt == 0.05
    assert core.joint_names == tuple(env.model.joint(j).name for j in range(env.model.njnt))
    assert core.model.nq == env.model.nq == 9 and core.model.nu == env.model.nu == 6
    np.testing.assert_array_equal(core.model.body_mass, env.model.body_mass)
    assert core.observation_space.shape == (17,) == env.observation_space.shape
    assert core.horizon == 200  # the paper's H (Tables 5, 8, 11); HalfCheetah-v5: 1000
    assert metaenvs.make_core(ID, horizon=1000).horizon == 1000


def test_reset_noise_is_halfcheetah_v5s():
    """qpos0 + U(-0.1, 0.1) and 0.1 N(0, 1), from each copy's own stream."""
    core = metaenvs.make_core(ID)
    state = core.reset(4000, seed=0)
    qpos, qvel = state.qpos - core.model.qpos0, state.qvel
    assert np.abs(qpos).max() <= 0.1 and np.abs(qpos).max() > 0.099
    assert abs(qpos.mean()) < 0.002 and abs(qpos.std() - 0.1 / np.sqrt(3)) < 0.002
    assert abs(qvel.mean()) < 0.002 and abs(qvel.std() - 0.1) < 0.002
    assert np.all(state.physics[:, 0] == 0.0) and np.all(state.physics[:, 19:] == 0.0)
    again = core.reset(3, seed=2)
    np.testing.assert_array_equal(again.physics, state.physics[2:5])  # copy b: seed + b
    no_noise = metaenvs.make_core(ID, reset_noise_scale=0.0).reset(2, seed=0)
    assert np.all(no_noise.qpos == core.model.qpos0) and np.all(no_noise.qvel == 0)


def test_truncated_at_the_horizon_never_terminated_and_auto_reset():
    core = metaenvs.make_core(ID, horizon=7)
    state = core.reset(2, seed=0)
    actions = np.zeros((2, 2, 3), dtype=np.float32)
    for _ in range(7):
        r = core.step(state, actions)
        assert not r.terminated.any()
    assert r.truncated.all() and np.all(state.t == 0)
    assert not np.array_equal(r.final_obs, r.obs)
    assert np.all(np.abs(state.qpos[:, 0]) <= 0.1)  # a fresh start
    np.testing.assert_array_equal(core.final_global_state(state), r.final_obs[:, 0])


# -- the partition ---------------------------------------------------------------------
def test_agents_drive_the_back_and_the_front_leg():
    """Agent 0's actions are actuators 0-2 (bthigh, bshin, bfoot), agent 1's 3-5."""
    core = metaenvs.make_core(ID)
    names = [core.model.actuator(u).name for u in range(core.model.nu)]
    assert names == ["bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot"]
    assert PARTITION == (tuple(names[:3]), tuple(names[3:]))
    state = core.reset(1, seed=0)
    actions = np.array([[[0.1, 0.2, 0.3], [-0.4, -0.5, -0.6]]], dtype=np.float32)
    core.step(state, actions)
    np.testing.assert_array_equal(state.physics[0, -6:], actions.reshape(6))
    assert core.agent_names == ("agent_0", "agent_1")
    assert "agent_0: bthigh, bshin, bfoot; agent_1: fthigh, fshin, ffoot" in str(core.describe())


def test_partition_and_observations_match_mamujoco_2x3():
    """MaMuJoCo's HalfCheetah 2x3 (Gymnasium-Robotics): the same joints per agent in the
    same order, the same reward, and, with every joint observed, the same 17 numbers per
    agent (MaMuJoCo orders them: own joints, the others, the torso)."""
    robotics = pytest.importorskip("gymnasium_robotics")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = quietly(
            robotics.mamujoco_v1.parallel_env,
            "HalfCheetah",
            "2x3",
            agent_obsk=3,
            local_categories=[["qpos", "qvel"]] * 4,
        )
    env.reset(seed=0)
    multi = env.unwrapped
    labels = tuple(tuple(node.label for node in part) for part in multi.agent_action_partitions)
    assert labels == PARTITION
    assert tuple(multi.possible_agents) == metaenvs.make_core(ID).agent_names

    core = metaenvs.make_core(ID, horizon=1000)
    state = core.reset(1, seed=4)
    single = multi.single_agent_env.unwrapped
    mujoco.mj_setState(single.model, single.data, state.physics[0], STATE_SPEC)
    rng = np.random.default_rng(1)
    for _ in range(100):
        a = rng.uniform(-1, 1, (1, 2, 3)).astype(np.float32)
        r = core.step(state, a)
        obs, rew, *_ = env.step({"agent_0": a[0, 0], "agent_1": a[0, 1]})
        for i, agent in enumerate(multi.possible_agents):
            ours = r.obs[0, i].astype(np.float64)
            mapped = multi.map_global_state_to_local_observations(ours)[agent]
            np.testing.assert_allclose(obs[agent], mapped, rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(np.sort(obs[agent]), np.sort(ours), rtol=1e-6, atol=1e-6)
            assert abs(rew[agent] - r.reward[0, i]) <= 1e-6
    global_action = multi.map_local_actions_to_global_action(
        {"agent_0": np.array([1.0, 2.0, 3.0]), "agent_1": np.array([4.0, 5.0, 6.0])}
    )
    np.testing.assert_array_equal(global_action, [1, 2, 3, 4, 5, 6])


@pytest.mark.parametrize("batch, threads", [(1, 1), (16, 2)])
def test_c_calls_step_as_mujocos_python_functions_do(batch, threads):
    """The kernel calling MuJoCo's C functions and the per-copy Python path (the fallback
    where the library is not found) give the same trajectories, bit for bit."""
    runs = []
    for calls in (True, False):
        core = metaenvs.make_core(ID, threads=threads, horizon=30)
        core.min_parallel = 2  # chunks on both threads from 4 copies
        if not calls:
            core._calls = None
        assert (core._calls is not None) == calls
        state = core.reset(batch, seed=3)
        rng = np.random.default_rng(0)
        steps = []
        for _ in range(70):  # across two auto-resets
            actions = rng.uniform(-1, 1, (batch, 2, 3)).astype(np.float32)
            result = core.step(state, actions)
            steps.append([result.obs.copy(), result.reward.copy(), result.final_obs.copy()])
        runs.append((steps, state.physics.copy()))
    (fast, fast_physics), (slow, slow_physics) = runs
    np.testing.assert_array_equal(fast_physics, slow_physics)
    for a, b in zip(fast, slow):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_strided_streams_step_as_contiguous_ones():
    """Streams handed to ``start`` as a strided view (the one state array a caller makes)
    advance in place and give the trajectories of the same streams contiguous."""
    from metaenvs.rng import seed_streams, seeds_for_batch

    runs = []
    for strided in (False, True):
        core = metaenvs.make_core(ID, horizon=3)
        core.step(core.reset(1, seed=0), np.zeros((1, 2, 3), np.float32))  # compiled first
        streams = seed_streams(seeds_for_batch(4, 5))
        big = np.zeros(8, np.uint64)
        big[::2] = streams
        state = core.start(4, big[::2] if strided else streams.copy())
        for _ in range(7):
            core.step(state, np.full((4, 2, 3), 0.3, np.float32))
        runs.append((state.physics.copy(), state.rng.copy()))
        if strided:
            np.testing.assert_array_equal(big[1::2], 0)  # nothing written between the streams
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_unchecked_steps_still_refuse_what_would_write_out_of_bounds():
    core = metaenvs.make_core(ID)
    state = core.reset(2, seed=0)
    with pytest.raises(ValueError, match="actions must have shape"):
        core.step_validated(state, np.zeros((1, 2, 3), np.float32))  # one copy short
    state.physics = state.physics[:, :20]
    with pytest.raises(ValueError, match="not a state of this core"):
        core.step_validated(state, np.zeros((2, 2, 3), np.float32))


def test_c_calls_are_checked_once_and_a_failed_check_falls_back_with_a_warning(monkeypatch):
    from metaenvs.games import _mujoco_calls as calls

    table = calls.function_table()
    assert table is not None and calls._steps_as_the_bindings_do(table)
    wrong = table.copy()
    wrong[calls.MJ_GET_STATE] = table[calls.MJ_SET_STATE]  # the state is never stored back
    assert not calls._steps_as_the_bindings_do(wrong)
    monkeypatch.setattr(calls, "_steps_as_the_bindings_do", lambda table: False)
    calls.function_table.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="mujoco's Python functions"):
            assert calls.function_table() is None
    finally:
        monkeypatch.undo()
        calls.function_table.cache_clear()
    assert calls.function_table() is not None


# -- bad input -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad, error, match",
    [
        (np.full((2, 2, 3), 1.5, dtype=np.float32), ValueError, "bounds"),
        (np.full((2, 2, 3), np.nan, dtype=np.float32), ValueError, "NaN"),
        (
            np.pad(
                np.zeros((2, 2, 2), np.float32), ((0, 0), (0, 0), (0, 1)), constant_values=-1.01
            ),
            ValueError,
            "bounds",
        ),  # the last action of the last agent only
        (np.full((2, 2, 3), np.inf, dtype=np.float32), ValueError, "NaN or infinity"),
        (np.zeros((2, 2, 2), dtype=np.float32), ValueError, "shape"),
        (np.zeros((2, 6), dtype=np.float32), ValueError, "shape"),
        (np.zeros((2, 2, 3), dtype=np.int64), TypeError, "floats"),
    ],
)
def test_bad_actions_raise_before_the_state_changes(bad, error, match):
    core = metaenvs.make_core(ID)
    state = core.reset(2, seed=0)
    before = state.copy()
    with pytest.raises(error, match=match):
        core.step(state, bad)
    for name, value in before.arrays().items():
        np.testing.assert_array_equal(getattr(state, name), value, err_msg=name)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"horizon": 0}, ValueError, "horizon"),
        ({"horizon": 2.5}, TypeError, "horizon"),
        ({"ctrl_cost_weight": -1.0}, ValueError, "ctrl_cost_weight"),
        ({"reset_noise_scale": float("nan")}, ValueError, "reset_noise_scale"),
        ({"renderer": "opengl"}, ValueError, "renderer"),
        ({"horizn": 5}, TypeError, "Did you mean 'horizon'"),
    ],
)
def test_bad_config_raises(kwargs, error, match):
    with pytest.raises(error, match=match):
        metaenvs.make_core(ID, **kwargs)


def test_pettingzoo_face_takes_one_leg_per_agent():
    env = metaenvs.make(ID)
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"agent_0", "agent_1"} and obs["agent_0"].shape == (17,)
    np.testing.assert_array_equal(obs["agent_0"], obs["agent_1"])
    np.testing.assert_array_equal(env.state(), obs["agent_0"])
    with pytest.raises(ValueError, match="bounds"):
        env.step({"agent_0": np.zeros(3, np.float32), "agent_1": np.full(3, 2.0, np.float32)})
    _, rew, term, trunc, info = env.step({a: np.zeros(3, np.float32) for a in env.agents})
    assert rew["agent_0"] == rew["agent_1"] and not term["agent_0"] and not trunc["agent_0"]


# -- rendering -------------------------------------------------------------------------
def test_canvas_side_view_follows_the_cheetah():
    core = metaenvs.make_core(ID, renderer="canvas")
    state = core.reset(1, seed=0)
    first = core.render_copy(state, 0)
    assert first.shape == (360, 480, 3) and first.dtype == np.uint8
    assert (first == (200, 110, 60)).all(axis=-1).any()  # the back leg
    assert (first == (60, 110, 200)).all(axis=-1).any()  # the front leg
    core.step(state, np.ones((1, 2, 3), dtype=np.float32))
    assert not np.array_equal(first, core.render_copy(state, 0))


def test_renderer_without_opengl_raises_clearly_or_falls_back(monkeypatch):
    def no_gl(*args, **kwargs):
        raise RuntimeError("no OpenGL context")

    monkeypatch.setattr(mujoco, "Renderer", no_gl)
    core = metaenvs.make_core(ID, renderer="mujoco")
    state = core.reset(1, seed=0)
    with pytest.raises(RuntimeError, match="MUJOCO_GL=egl"):
        core.render_copy(state, 0)
    auto = metaenvs.make_core(ID)
    with pytest.warns(RuntimeWarning, match="renderer='canvas'"):
        image = auto.render_copy(state, 0)
    np.testing.assert_array_equal(
        image, metaenvs.make_core(ID, renderer="canvas").render_copy(state, 0)
    )


# -- imports ---------------------------------------------------------------------------
def test_import_metaenvs_leaves_mujoco_alone_and_the_model_log_unwritten(tmp_path):
    code = (
        "import sys, metaenvs\n"
        "assert 'mujoco' not in sys.modules, 'import metaenvs imported mujoco'\n"
        "assert 'halfcheetah_2x3-v0' in metaenvs.list_envs()\n"
        "metaenvs.make_core('halfcheetah_2x3')\n"
        "assert 'mujoco' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


def test_without_mujoco_the_id_is_listed_and_making_it_says_what_to_install():
    code = (
        "import sys\n"
        "sys.modules['mujoco'] = None  # as if not installed\n"
        "import metaenvs, metaenvs.testing as mt\n"
        "assert 'halfcheetah_2x3-v0' in metaenvs.list_envs()\n"
        "assert mt.missing_dependency('halfcheetah_2x3') == 'mujoco'\n"
        "assert mt.missing_dependency('ipd') is None\n"
        "try:\n"
        "    metaenvs.make('halfcheetah_2x3')\n"
        "except ModuleNotFoundError as err:\n"
        "    assert err.name == 'mujoco' and 'metaenvs[mujoco]' in str(err), err\n"
        "else:\n"
        "    raise SystemExit('made without mujoco')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_core_class_is_the_registered_one():
    assert metaenvs.spec(ID).core_class() is HalfCheetahCore
