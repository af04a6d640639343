"""The PPO meta-learner of neurons-as-agents: its pieces against hand computations, and a
short run through the env."""

import numpy as np
import pytest
import torch

import metaenvs
from baselines.neurons.ppo import Args, LearnedRule, Rule, RunningNorm, advantages, train


def test_advantages_are_gae_with_gamma_one_and_a_terminal_end():
    rng = np.random.default_rng(0)
    rewards, values = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    # lambda = 1: the return to go minus the value
    to_go = np.cumsum(rewards[::-1], axis=0)[::-1]
    np.testing.assert_allclose(advantages(rewards, values, 1.0), to_go - values)
    # lambda = 0: the one-step TD error, no bootstrap after the last update
    next_values = np.concatenate([values[1:], np.zeros((1, 3))])
    np.testing.assert_allclose(advantages(rewards, values, 0.0), rewards + next_values - values)


def test_running_norm_is_the_mean_and_variance_of_everything_seen():
    rng = np.random.default_rng(1)
    batches = [rng.normal(3.0, 2.0, size=(n, 4)) for n in (5, 17, 40)]
    norm = RunningNorm(4)
    for x in batches:
        norm.update(x)
    both = np.concatenate(batches)
    np.testing.assert_allclose(norm.mean, both.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(norm.var, both.var(axis=0), rtol=1e-4)


def test_the_log_probability_counts_only_real_weights():
    torch.manual_seed(0)
    rule = Rule(obs_dim=6, act_dim=4, hidden=8, init_log_std=-1.0)
    obs, actions = torch.randn(3, 6), torch.randn(3, 4)
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0]] * 3)
    logp, entropy = rule.log_prob(obs, actions, mask)
    moved = actions.clone()
    moved[:, 2:] += 5.0  # padding: ignored by the env, and so by the policy's likelihood
    assert torch.allclose(rule.log_prob(obs, moved, mask)[0], logp)
    one = torch.distributions.Normal(rule.mean(obs)[:, :2], rule.log_std.exp()[:2])
    assert torch.allclose(logp, one.log_prob(actions[:, :2]).sum(-1))
    assert torch.allclose(entropy, one.entropy().sum(-1))


def test_a_short_meta_training_run_and_its_comparison(tmp_path):
    args = Args(horizon=6, networks=2, iterations=2, eval_networks=2, out=str(tmp_path))
    result = train(args)
    assert [row["iteration"] for row in result["history"]] == [0, 1]
    assert set(result["comparison"]) == {"learned", "none", "sgd", "np", "wp"}
    for row in result["comparison"].values():
        assert np.isfinite(row["final_test_loss"]) and row["final_test_loss"] > 0
    assert (tmp_path / "metrics.json").exists() and (tmp_path / "policy.pt").exists()
    # the learned rule acts through the env like the reference rules
    core = metaenvs.make_core("neurons_teacher", horizon=6)
    state = core.reset(2, seed=0)
    rule = Rule(core.observation_space.shape[0], core.width, 8, -3.0)
    actions = LearnedRule(rule, RunningNorm(core.observation_space.shape[0]))(core, state)
    assert actions.shape == (2, core.n_agents, core.width) and actions.dtype == np.float32
    assert np.abs(actions).max() <= 1.0
    core.step(state, actions)


@pytest.mark.parametrize("bad", ["neurons_teacher_x"])
def test_an_unknown_env_raises(bad):
    with pytest.raises(metaenvs.UnknownEnvError):
        train(Args(env=bad, iterations=1))
