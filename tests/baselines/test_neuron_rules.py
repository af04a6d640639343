"""The draft's reference rules (neurons-as-agents, section 4) run through the env, and its
claim that node and weight perturbation follow SGD in expectation.

The claim, with the constant: for perturbations of standard deviation sigma and the
draft's rate eta,

    <Delta_NP W_l> = <Delta_WP W_l> = sigma * Delta_SGD W_l,   Delta_SGD W_l = -eta dE/dW_l,

up to O(eta sigma^3) (derivation in :mod:`baselines.neurons.rules`).  It is checked by
Monte Carlo: M copies of one network on one minibatch, each drawing its own perturbations
through the env's kernels; every weight's mean update must lie within 5 standard errors of
sigma times SGD's, and the constant, estimated from the updates projected on SGD's, must
be sigma within 4 standard errors, themselves under 5% (a constant 25% off fails).
"""

import numpy as np
import pytest

import metaenvs
from baselines.neurons.rules import SGD, NodePerturbation, WeightPerturbation, run_rule

SAMPLES = 20_000


def one_network_many_draws(task, activation, samples=SAMPLES):
    """A small network copied into ``samples`` copies (same weights, minibatch and teacher),
    each with fresh perturbations."""
    kwargs = {"task": task, "activation": activation, "hidden": (5,), "batch_size": 4}
    kwargs |= {"pca": 3} if task == "digits" else {"n_inputs": 3, "n_outputs": 2}
    core = metaenvs.make_core("neurons", **kwargs)
    state = core.reset(samples, seed=0)
    for name in ("weights", "teacher", "x", "y"):
        getattr(state, name)[:] = getattr(state, name)[:1]
    core.redraw_perturbations(state)
    return core, state


def drafts_update(core, state, kind, eta):
    """The draft's update, written from the observation columns: ``(eta / sigma) (E - E_N)
    sum_n xi_n x_n^T`` (node) or ``(eta / sigma) (E - E_W) Xi`` (weight), ``(M, K, D)``."""
    obs, cols, sigma = core.observe(state).astype(np.float64), core.obs_slices, core.config.sigma
    signal = obs[..., cols[f"{kind}_signal"]] * sigma  # E - E_N or E - E_W
    noise = obs[..., cols["node_trace" if kind == "node" else "weight_noise"]] * sigma
    return eta / sigma * signal * noise


@pytest.mark.parametrize(("task", "activation"), [("teacher", "tanh"), ("digits", "relu")])
@pytest.mark.parametrize("kind", ["node", "weight"])
def test_expected_perturbation_update_is_sigma_times_sgd(task, activation, kind):
    core, state = one_network_many_draws(task, activation)
    eta, sigma = 0.5, core.config.sigma
    sgd = -eta * core.gradients(state)[0]  # (K, D), the same in every copy
    updates = drafts_update(core, state, kind, eta)
    mean = updates.mean(axis=0)
    stderr = updates.std(axis=0) / np.sqrt(len(updates))
    real = core.observe(state)[0][..., core.obs_slices["mask"]] > 0  # real weights only
    z = np.abs(mean - sigma * sgd)[real] / stderr[real]
    assert z.max() < 5.0, f"max z {z.max():.2f}: the mean update is not sigma * SGD"
    cosine = (mean * sgd)[real].sum() / np.linalg.norm(mean[real]) / np.linalg.norm(sgd[real])
    assert cosine > 0.95
    # the constant: each sample's update projected on SGD's, c = <Delta, Delta_SGD> / |Delta_SGD|^2
    c = (updates * sgd).sum(axis=(1, 2)) / (sgd**2).sum()
    ratio, ratio_err = c.mean() / sigma, c.std() / np.sqrt(len(c)) / sigma
    assert ratio_err < 0.05, "too few samples to tell the constant"  # 25% off: > 5 errors
    assert abs(ratio - 1.0) < 4 * ratio_err, f"<Delta> = {ratio:.3f} sigma Delta_SGD"


@pytest.mark.parametrize(
    ("rule", "kind"), [(NodePerturbation, "node"), (WeightPerturbation, "weight")]
)
def test_rules_are_the_drafts_updates_at_eta_lr_over_sigma(rule, kind):
    core, state = one_network_many_draws("teacher", "relu", samples=16)
    lr = 0.02
    expected = drafts_update(core, state, kind, lr / core.config.sigma)
    np.testing.assert_allclose(rule(lr=lr).deltas(core, state), expected, rtol=1e-12)
    np.testing.assert_allclose(SGD(lr=lr).deltas(core, state), -lr * core.gradients(state))


def test_a_rule_acts_through_the_env_and_moves_the_weights_by_its_update():
    core = metaenvs.make_core("neurons_teacher")
    state = core.reset(3, seed=5)
    rule = SGD(lr=0.05)
    delta = rule.deltas(core, state)
    before = [w.copy() for w in core.layer_weights(state, 2)]
    core.step(state, rule(core, state))
    assert rule.clipped == 0
    after = core.layer_weights(state, 2)
    for k, name in enumerate(core.agent_names):
        lay, i = (int(p) for p in name.split("_")[1:])
        moved = after[lay][:, i] - before[lay][:, i]
        np.testing.assert_allclose(moved, delta[2, k, : core.sizes[lay + 1]], rtol=1e-6, atol=1e-9)


def test_perturbation_rules_need_their_perturbations():
    core = metaenvs.make_core("neurons_teacher", perturb="weight")
    state = core.reset(1, seed=0)
    with pytest.raises(ValueError, match="perturb"):
        NodePerturbation(lr=0.01)(core, state)
    WeightPerturbation(lr=0.01)(core, state)


def test_all_three_rules_lower_the_student_teacher_loss():
    core = metaenvs.make_core("neurons_teacher", horizon=150)
    finals = {}
    for name, rule in (
        ("sgd", SGD(0.1)),
        ("np", NodePerturbation(0.005)),
        ("wp", WeightPerturbation(0.005)),
    ):
        out = run_rule(core, rule, batch=8, seed=0)
        assert out["loss"].shape == (1, 151, 8)
        finals[name] = out["test_loss"][0].mean()
        start = out["loss"][0, 0].mean()
        assert finals[name] < 0.8 * start, (
            f"{name} did not learn: {start:.3f} -> {finals[name]:.3f}"
        )
    assert finals["sgd"] < min(finals["np"], finals["wp"])  # SGD converges the quickest
