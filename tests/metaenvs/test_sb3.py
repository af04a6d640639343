"""Stable-Baselines3: the SB3 face, SuperSuit's route, and PPO training on both."""

import numpy as np
import pytest

import metaenvs

sb3 = pytest.importorskip("stable_baselines3")
ss = pytest.importorskip("supersuit")

from stable_baselines3 import PPO  # noqa: E402

from metaenvs.faces.sb3 import SB3VecEnv, SeedableSuperSuitVecEnv  # noqa: E402


def test_sb3_face_slots_and_terminal_observation():
    venv = metaenvs.make_sb3_vec("rps_3p", num_envs=2, horizon=2)
    assert isinstance(venv, SB3VecEnv) and venv.num_envs == 2 * 3
    obs = venv.reset()
    assert obs.shape == (6, 28)
    venv.step(np.zeros(6, dtype=np.int64))
    obs, rew, dones, infos = venv.step(np.array([0, 1, 2, 2, 2, 2]))
    assert dones.all() and rew.shape == (6,)
    np.testing.assert_allclose(rew[:3], 0.0)  # R, P, S: every pairwise mean is 0
    assert infos[4]["TimeLimit.truncated"] is True
    assert infos[0]["terminal_observation"].argmax() == 1 + 0 * 9 + 1 * 3 + 2
    assert (obs[:, 0] == 1).all()
    with pytest.raises(ValueError, match="shape"):
        venv.step(np.zeros(5, dtype=np.int64))


def test_sb3_seed_applies_at_next_reset():
    venv = metaenvs.make_sb3_vec("ipd", num_envs=3)
    venv.seed(5)
    venv.reset()
    rng_a = venv._state.rng.copy()
    venv.seed(5)
    venv.reset()
    np.testing.assert_array_equal(rng_a, venv._state.rng)
    single = metaenvs.make_core("ipd").reset(1, 7)
    np.testing.assert_array_equal(rng_a[2], single.rng[0])  # copy b gets seed + b


def _params(model):
    return np.concatenate([p.detach().numpy().ravel() for p in model.policy.parameters()])


def test_ppo_trains_on_the_sb3_face_with_a_seed():
    models = []
    for _ in range(2):
        venv = metaenvs.make_sb3_vec("ipd", num_envs=4, horizon=10)
        model = PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=2, seed=0, device="cpu")
        model.learn(512)
        models.append(_params(model))
    np.testing.assert_array_equal(models[0], models[1])  # seeding reaches env and policy


def test_ppo_trains_through_supersuit_with_the_seed_fix():
    def build():
        env = ss.pettingzoo_env_to_vec_env_v1(metaenvs.make("ipd", horizon=10))
        return ss.concat_vec_envs_v1(env, 2, num_cpus=0, base_class="stable_baselines3")

    with pytest.raises(AttributeError):
        PPO("MlpPolicy", build(), seed=0)  # SuperSuit 3.11 has no seed(): the documented bug
    venv = SeedableSuperSuitVecEnv(build())
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(256)
    assert model.num_timesteps >= 256


def test_sb3_face_pickles_and_runs_in_subprocesses():
    import pickle

    from stable_baselines3.common.vec_env import SubprocVecEnv

    from meta_wrappers.focal import make_focal_env

    venv = metaenvs.make_sb3_vec("rps", num_envs=2)
    venv.seed(1)
    venv.reset()
    clone = pickle.loads(pickle.dumps(venv))
    a = np.array([0, 1, 2, 0])
    np.testing.assert_array_equal(clone.step(a)[0], venv.step(a)[0])
    sub = SubprocVecEnv([lambda: make_focal_env("ipd", peers="tit_for_tat")] * 2)
    try:
        sub.reset()
        _, rewards, _, _ = sub.step(np.array([1, 0]))
        np.testing.assert_array_equal(rewards, [1.5, 0.5])  # peer cooperates first
    finally:
        sub.close()


def test_maskable_ppo_reads_the_masks_of_the_sb3_face():
    """sb3-contrib's MaskablePPO trains on a masked game: every action it sends is
    available (the core raises on a masked one) and the masks it reads are the core's."""
    pytest.importorskip("sb3_contrib")
    from sb3_contrib import MaskablePPO
    from sb3_contrib.common.maskable.utils import get_action_masks

    venv = metaenvs.make_sb3_vec("skirmish_3m", num_envs=4)
    model = MaskablePPO("MlpPolicy", venv, n_steps=64, batch_size=128, n_epochs=1, seed=0)
    model.learn(1024)
    assert model.num_timesteps >= 1024
    masks = get_action_masks(venv)
    core_masks = venv.core.action_mask(venv._state)
    np.testing.assert_array_equal(masks, core_masks.reshape(12, -1).astype(bool))
    assert not masks.all()  # some actions are masked: the check above can tell
    # without the masks, plain sampling soon sends an unavailable action
    with pytest.raises(ValueError, match="not available"):
        for _ in range(200):
            venv.step(np.random.default_rng(0).integers(0, 9, size=12))


def test_sb3_face_invalid_action_noop_matches_the_vector_face():
    """With ``invalid_action="noop"`` plain sampling plays on a masked game, and the SB3
    face (B*N slots) steps exactly as the vector face with the same option."""
    with pytest.raises(ValueError, match="invalid_action must be one of"):
        metaenvs.make_sb3_vec("skirmish_3m", num_envs=2, invalid_action="skip")
    sb3_venv = metaenvs.make_sb3_vec("skirmish_3m", num_envs=2, invalid_action="noop")
    vec = metaenvs.make_vec("skirmish_3m", 2, invalid_action="noop")
    sb3_venv.seed(5)
    obs = sb3_venv.reset()
    np.testing.assert_array_equal(obs, vec.reset(seed=5)[0].reshape(6, -1))
    rng = np.random.default_rng(0)
    for _ in range(100):
        actions = rng.integers(0, 9, size=6)
        obs, rew, _, _ = sb3_venv.step(actions)
        v_obs, v_rew, *_ = vec.step(actions.reshape(2, 3))
        np.testing.assert_array_equal(obs, v_obs.reshape(6, -1))
        np.testing.assert_array_equal(rew, v_rew.reshape(6))
