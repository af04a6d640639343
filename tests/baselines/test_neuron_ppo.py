"""The PPO meta-learner of neurons-as-agents: its pieces against hand computations, and a
short run through the env."""

import numpy as np
import pytest
import torch

import metaenvs
from baselines.neurons.ppo import (
    Args,
    LearnedRule,
    NeuronArgs,
    NeuronLearner,
    Rule,
    RunningNorm,
    advantages,
    fit_to_rule,
    rollout,
    train,
)


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
    one = torch.distributions.Normal(rule.mean(obs, mask)[:, :2], rule.log_std.exp()[:2])
    assert torch.allclose(logp, one.log_prob(actions[:, :2]).sum(-1))
    assert torch.allclose(entropy, one.entropy().sum(-1))


def test_a_short_meta_training_run_and_its_comparison(tmp_path):
    args = Args(horizon=6, networks=2, iterations=2, eval_networks=2)
    result = train(args, str(tmp_path))
    assert [row["iteration"] for row in result["history"]] == [0, 1]
    assert set(result["comparison"]) == {"learned", "none", "sgd", "np", "wp"}
    for row in result["comparison"].values():
        assert np.isfinite(row["final_test_loss"]) and row["final_test_loss"] > 0
    assert (tmp_path / "metrics.json").exists() and (tmp_path / "policy.pt").exists()
    # the learned rule acts through the env like the reference rules
    core = metaenvs.make_core("neurons_teacher", horizon=6)
    state = core.reset(2, seed=0)
    rule = Rule(core.observation_space.shape[0], core.width, 8, -3.0, core.obs_slices)
    actions = LearnedRule(rule, RunningNorm(core.observation_space.shape[0]))(core, state)
    assert actions.shape == (2, core.n_agents, core.width) and actions.dtype == np.float32
    assert np.abs(actions).max() <= 1.0
    core.step(state, actions)


@pytest.mark.parametrize("bad", ["neurons_teacher_x"])
def test_an_unknown_env_raises(bad):
    with pytest.raises(metaenvs.UnknownEnvError):
        train(Args(env=bad, iterations=1))


def test_the_synapse_policy_applies_one_function_to_each_real_weight():
    """Permuting a neuron's real outgoing weights (their weight, trace and noise columns)
    permutes its mean actions; past the fan-out the mean is 0."""
    core = metaenvs.make_core("neurons_teacher", horizon=4)
    torch.manual_seed(0)
    rule = Rule(core.observation_space.shape[0], core.width, 8, -3.0, core.obs_slices)
    torch.nn.init.normal_(rule.mean_net[-1].weight)  # a last layer that is not ~0
    obs = core.observe(core.reset(2, seed=3)).astype(np.float32)
    mask = torch.as_tensor(obs[..., core.obs_slices["mask"]])
    x = torch.as_tensor(obs)
    mean = rule.mean(x, mask)
    hidden_neuron = core.sizes[0]  # the first neuron of layer 1: fan-out 4 of D = 32
    assert (mean[:, hidden_neuron, core.sizes[2] :] == 0).all()
    assert (mean[:, hidden_neuron, : core.sizes[2]] != 0).all()
    order = torch.randperm(core.width, generator=torch.Generator().manual_seed(1))
    permuted = x.clone()
    for name in ("weights", "node_trace", "weight_noise"):
        cols = torch.arange(core.width) + core.obs_slices[name].start
        permuted[:, : core.sizes[0], cols] = x[:, : core.sizes[0], cols[order]]
    again = rule.mean(permuted, mask)
    torch.testing.assert_close(again[:, : core.sizes[0]], mean[:, : core.sizes[0], order])


def test_the_update_sees_the_inputs_the_behaviour_policy_saw():
    """The rollout keeps the normalised observations it acted on: its log-probabilities
    are the policy's on them (a defect of the pilot, which renormalised with statistics
    updated after the rollout, so that PPO's first ratio was not 1)."""
    learner = NeuronLearner(NeuronArgs(horizon=5, networks=2, hidden=8))
    learner.train_iteration()  # the statistics move away from (0, 1)
    data = rollout(learner.core, learner.rule, learner.norm, 2, seed=7, gen=learner.gen)
    np.testing.assert_allclose(data["obs"], learner.norm(data["raw"]).astype(np.float32))
    with torch.no_grad():
        logp, _ = learner.rule.log_prob(
            torch.as_tensor(data["obs"]), torch.as_tensor(data["actions"]),
            torch.as_tensor(data["mask"]),
        )  # fmt: skip
    np.testing.assert_allclose(logp.numpy(), data["logp"], rtol=1e-5, atol=1e-4)


def fit_to_node_perturbation(layout_or_none, steps=400):
    """Held-out R^2 of a policy mean fitted (supervised) to node perturbation's actions."""
    from baselines.neurons.rules import NodePerturbation

    core = metaenvs.make_core("neurons_teacher", horizon=50)
    torch.manual_seed(0)
    layout = core.obs_slices if layout_or_none else None
    rule = Rule(core.observation_space.shape[0], core.width, 32, -3.0, layout)
    norm, gen = RunningNorm(rule.value[0].in_features), torch.Generator().manual_seed(0)
    fit_to_rule(rule, norm, core, NodePerturbation(lr=0.005), 4, seed=1, steps=steps, gen=gen)
    state, xs, ys = core.reset(4, 2), [], []  # other networks: the held-out R^2
    for _ in range(50):
        xs.append(core.observe(state).copy())
        ys.append(NodePerturbation(lr=0.005)(core, state))
        core.step(state, ys[-1])
    raw, y = np.concatenate(xs), torch.as_tensor(np.concatenate(ys))
    x, m = (
        torch.as_tensor(norm(raw), dtype=torch.float32),
        torch.as_tensor(raw[..., core.obs_slices["mask"]]),
    )
    with torch.no_grad():
        real = m > 0
        return 1.0 - float(((rule.mean(x, m) - y)[real] ** 2).mean() / y[real].var())


def test_the_synapse_policy_can_express_node_perturbation():
    """NP's update, ``signal x trace_j``, is a function of two of a synapse policy's inputs:
    fitted to NP's actions on 4 networks, it predicts them on others (R^2 about 0.98 in 400
    steps); the pilot's neuron policy, which must route each of 32 trace columns to its own
    output, gets about 0.3 in the same steps."""
    assert fit_to_node_perturbation(True) > 0.9
    assert fit_to_node_perturbation(False) < 0.6


def test_an_np_initialised_policy_learns_as_node_perturbation_before_any_ppo_step():
    """``init="np"``: at iteration 0 the learned rule's held-out loss is node perturbation's
    (close), well below the near-zero policy's (no learning)."""
    small = dict(horizon=30, networks=8, hidden=32)
    fitted = NeuronLearner(NeuronArgs(init="np", **small))
    plain = NeuronLearner(NeuronArgs(**small))
    reference = NeuronLearner(NeuronArgs(method="np", **small))
    assert fitted.init_fit > 0.9 and np.isnan(plain.init_fit)
    learners = {"np_init": fitted, "none": plain, "np": reference}
    loss = {k: v.evaluate(16, seed=10**9)["eval_test_loss"] for k, v in learners.items()}
    assert loss["np"] < loss["none"] - 0.02
    assert abs(loss["np_init"] - loss["np"]) < 0.25 * (loss["none"] - loss["np"])
    with pytest.raises(ValueError, match="init"):
        NeuronArgs(init="sgd")
