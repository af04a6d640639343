"""metaenvs.integrations.rllib against the real RLlib (run in RLlib's own venv in CI:
RLlib pins Gymnasium exactly)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ray.rllib.env.wrappers.pettingzoo_env", exc_type=ImportError)
pytest.importorskip("torch")

from metaenvs.integrations import rllib  # noqa: E402


def test_rllibs_env_checker_passes_on_masked_and_plain_games() -> None:
    from ray.rllib.utils.pre_checks.env import check_multiagent_environments

    for env_id in ("navigation_N3_l3", "skirmish_3m", "ipd"):
        check_multiagent_environments(rllib.MetaenvsMultiAgentEnv({"env_id": env_id}))


def test_masked_observations_use_rllibs_keys_and_float_masks() -> None:
    env = rllib.MetaenvsMultiAgentEnv({"env_id": "skirmish_3m", "max_cycles": 30})
    obs, _ = env.reset(seed=0)
    first = obs["marine_0"]
    assert set(first) == {"observations", "action_mask"}
    assert first["action_mask"].dtype == np.float32
    assert env.observation_space["marine_0"].contains(first)


def test_dead_agents_actions_are_ignored_until_the_episode_ends() -> None:
    env = rllib.MetaenvsMultiAgentEnv({"env_id": "skirmish_3m", "invalid_action": "raise"})
    obs, _ = env.reset(seed=1)
    rng = np.random.default_rng(0)
    everyone = list(obs)
    for _ in range(200):  # RLlib may keep sending actions for every agent it started with
        actions = {}
        for agent in everyone:
            mask = obs[agent]["action_mask"] if agent in obs else np.eye(1, 9, 0)[0]
            actions[agent] = int(rng.choice(np.flatnonzero(mask)))
        obs, _, terminated, truncated, _ = env.step(actions)
        if terminated["__all__"] or truncated["__all__"]:
            break
    else:
        pytest.fail("the episode did not end")


def test_config_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="needs 'env_id'"):
        rllib.MetaenvsMultiAgentEnv({})
    with pytest.raises(TypeError, match="unexpected keyword argument 'frameskip'"):
        rllib.MetaenvsMultiAgentEnv({"env_id": "skirmish_3m", "frameskip": 4})


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.parametrize("env_id", ["navigation_N3_l3", "skirmish_3m"])
def test_ppo_trains_one_iteration(local_ray, env_id: str) -> None:
    config = (
        rllib.ppo_config(env_id, max_cycles=25)
        .env_runners(num_env_runners=0)
        .training(train_batch_size_per_learner=200, minibatch_size=100, num_epochs=1)
    )
    algo = config.build_algo()
    try:
        result = algo.train()
    finally:
        algo.stop()
    assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 200


@pytest.mark.parametrize(
    ("name", "baseline"),
    [("rllib_ppo_navigation", "random_return"), ("rllib_masked_skirmish", "random_legal_return")],
)
def test_example_runs_at_its_smoke_budget(local_ray, run_example, name: str, baseline: str) -> None:
    summary, out = run_example(name, "--iterations", "1", "--batch", "200", "--episodes", "2")
    assert "iteration 0: 200 env steps" in out and '"greedy_return"' in out
    assert np.isfinite(summary["greedy_return"]) and np.isfinite(summary[baseline])
