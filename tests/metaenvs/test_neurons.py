"""Neurons as agents: the network, losses, gradients, actions and episodes against NumPy.

The references below are written from the draft's equations (forward pass (1), the MSE
and cross-entropy losses), independently of the kernels.
"""

import numpy as np
import pytest

import metaenvs
from metaenvs.games.neurons import NeuronsConfig, digits_splits, load_digits


def small(**kwargs):
    """A 3-5-2 network (15 + 10 weights) on a minibatch of 4 (student-teacher)."""
    config = {"n_inputs": 3, "hidden": (5,), "n_outputs": 2, "batch_size": 4, **kwargs}
    return metaenvs.make_core("neurons", **config)


# -- the NumPy references ------------------------------------------------------------------
def reference_forward(weights, x, activation, node_noise=None):
    """Equation (1): ``X^(l+1) = act(X^(l) W_l^T [+ xi^(l+1)])``, the output layer linear."""
    act = (lambda h: np.maximum(h, 0.0)) if activation == "relu" else np.tanh
    out = x
    for lay, w in enumerate(weights):
        h = out @ w.T
        if node_noise is not None:
            h = h + node_noise[lay]
        out = act(h) if lay < len(weights) - 1 else h
    return out


def reference_loss(out, y, task):
    """The draft's MSE ``1/(N R_L) 1/2 ||X - Y||^2`` or cross-entropy of the softmax."""
    if task == "teacher":
        return 0.5 * ((out - y) ** 2).sum() / out.size
    top = out.max(axis=1, keepdims=True)
    log_p = out - top - np.log(np.exp(out - top).sum(axis=1, keepdims=True))
    return -(y * log_p).sum() / len(out)


def weights_of(core, state, b=0):
    return [w.copy() for w in core.layer_weights(state, b)]


def teacher_weights(core, state, b=0):
    sizes, flat, out, at = core.config.teacher_sizes, state.teacher[b], [], 0
    for lay in range(len(sizes) - 1):
        n = sizes[lay + 1] * sizes[lay]
        out.append(flat[at : at + n].reshape(sizes[lay], sizes[lay + 1]).T)  # stored W^T
        at += n
    return out


# -- registry and data ---------------------------------------------------------------------
def test_ids_build_the_drafts_tasks():
    cases = {
        "neurons_teacher": ((16, 32, 4), "teacher"),
        "neurons_digits": ((64, 32, 10), "digits"),
        "neurons_digits_pca10": ((10, 32, 10), "digits"),
    }
    for env_id, (sizes, task) in cases.items():
        core = metaenvs.make_core(env_id)
        assert core.sizes == sizes and core.config.task == task
        assert core.n_agents == sum(sizes[:-1]) and core.action_space.shape == (max(sizes[1:]),)
        assert (
            core.agent_names[0] == "neuron_0_0"
            and core.agent_names[-1] == f"neuron_1_{sizes[1] - 1}"
        )
    core = metaenvs.make_core("neurons", hidden=(8, 6), n_inputs=5, n_outputs=3)
    assert core.sizes == (5, 8, 6, 3) and core.n_agents == 19 and core.width == 8


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="task"):
        NeuronsConfig(task="mnist")
    with pytest.raises(ValueError, match="pca"):
        NeuronsConfig(task="teacher", pca=10)
    with pytest.raises(ValueError, match="teacher_hidden"):
        NeuronsConfig(hidden=(4, 4), teacher_hidden=(4,))
    with pytest.raises(TypeError, match="Did you mean"):
        metaenvs.make_core("neurons", hiden=(4,))


def test_digits_are_shipped_and_split():
    pixels, labels = load_digits()
    assert pixels.shape == (1797, 64) and pixels.max() == 16 and pixels.min() == 0
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    train_x, train_y, test_x, test_y, kept = digits_splits(10, 0.3, 0)
    assert len(test_x) == 539 and len(train_x) == 1797 - 539 and kept < 1.0
    assert np.allclose(train_x.mean(axis=0), 0.0, atol=1e-12)
    assert np.allclose(train_x.std(axis=0), 1.0)  # whitened on the training split
    assert (train_y.sum(axis=1) == 1).all() and train_y.shape[1] == 10
    raw = digits_splits(None, 0.3, 0)
    assert raw[0].shape == (1258, 64) and raw[0].max() == 1.0 and raw[4] == 1.0


# -- the network ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("task", "activation"), [("teacher", "relu"), ("teacher", "tanh"), ("digits", "relu")]
)
def test_loss_and_targets_follow_the_drafts_equations(task, activation):
    kwargs = {"task": task, "activation": activation, "hidden": (6, 5), "batch_size": 7}
    if task == "digits":
        kwargs["pca"] = 8
    else:
        kwargs |= {"n_inputs": 4, "n_outputs": 3}
    core = metaenvs.make_core("neurons", **kwargs)
    state = core.reset(3, seed=11)
    rng = np.random.default_rng(0)
    for _ in range(4):
        core.step(state, core.sample_actions(3, rng))
    for b in range(3):
        x, y = state.x[b], state.y[b]
        if task == "teacher":
            expected_y = reference_forward(teacher_weights(core, state, b), x, activation)
            np.testing.assert_allclose(y, expected_y, rtol=1e-12, atol=1e-12)
        else:
            assert (y.sum(axis=1) == 1).all()
        out = reference_forward(weights_of(core, state, b), x, activation)
        assert state.loss[b] == pytest.approx(reference_loss(out, y, task), rel=1e-12)
        obs = core.observe(state)[b]
        assert np.allclose(obs[:, core.obs_slices["loss"]], state.loss[b], rtol=1e-6)


@pytest.mark.parametrize(("task", "activation"), [("teacher", "tanh"), ("digits", "relu")])
def test_gradients_match_finite_differences(task, activation):
    kwargs = {"task": task, "activation": activation, "hidden": (4, 3), "batch_size": 5}
    kwargs |= {"pca": 6} if task == "digits" else {"n_inputs": 3, "n_outputs": 2}
    core = metaenvs.make_core("neurons", **kwargs)
    state = core.reset(2, seed=3)
    grads = core.gradients(state)
    for b in range(2):
        weights, x, y = weights_of(core, state, b), state.x[b], state.y[b]
        for k, name in enumerate(core.agent_names):
            lay, i = (int(p) for p in name.split("_")[1:])
            fan_out = core.sizes[lay + 1]
            assert not grads[b, k, fan_out:].any()
            for j in range(fan_out):
                numeric = []
                for eps in (1e-6, -1e-6):
                    moved = [w.copy() for w in weights]
                    moved[lay][j, i] += eps
                    out = reference_forward(moved, x, activation)
                    numeric.append(reference_loss(out, y, task))
                slope = (numeric[0] - numeric[1]) / 2e-6
                assert grads[b, k, j] == pytest.approx(slope, rel=1e-5, abs=1e-9)


def test_an_agent_changes_only_its_outgoing_weights():
    core = small()
    state = core.reset(2, seed=0)
    before = state.weights.copy()
    expected = weights_of(core, state, 1)
    actions = np.zeros((2, core.n_agents, core.width), dtype=np.float32)
    k = core.agent_names.index("neuron_1_3")  # hidden neuron 3 of 5: fan-out 2, width 5
    actions[1, k] = [0.5, -1.0, 1.0, 1.0, 1.0]  # the last three are padding
    k0 = core.agent_names.index("neuron_0_2")  # input neuron 2: fan-out 5
    actions[1, k0] = [0.1, 0.2, 0.3, 0.4, 0.5]
    core.step(state, actions)
    assert np.array_equal(state.weights[0], before[0])
    scale = core.config.action_scale
    expected[1][:, 3] += scale * actions[1, k, :2].astype(np.float64)
    expected[0][:, 2] += scale * actions[1, k0].astype(np.float64)
    np.testing.assert_allclose(core.layer_weights(state, 1)[0], expected[0], rtol=1e-15)
    np.testing.assert_allclose(core.layer_weights(state, 1)[1], expected[1], rtol=1e-15)


@pytest.mark.parametrize(
    "bad",
    ["nan", "inf", "too large", "shape"],
)
def test_bad_actions_raise_before_any_weight_changes(bad):
    core = small()
    state = core.reset(2, seed=0)
    actions = np.zeros((2, core.n_agents, core.width), dtype=np.float32)
    if bad == "nan":
        actions[1, 3, 4] = np.nan  # in the padding: still refused
    elif bad == "inf":
        actions[0, 0, 0] = np.inf
    elif bad == "too large":
        actions[0, 0, 0] = 1.5
    else:
        actions = actions[:, :, :-1]
    weights, rng = state.weights.copy(), state.rng.copy()
    with pytest.raises(ValueError, match="NaN|infinity|bounds|shape"):
        core.step(state, actions)
    assert np.array_equal(state.weights, weights) and np.array_equal(state.rng, rng)


def test_observations_describe_the_neuron():
    core = small(activation="tanh", sigma=1e-2)
    state = core.reset(1, seed=4)
    core.step(state, core.sample_actions(1, np.random.default_rng(1)))
    obs, cols = core.observe(state)[0].astype(np.float64), core.obs_slices
    weights, x, y = weights_of(core, state), state.x[0], state.y[0]
    hidden = np.tanh(x @ weights[0].T)
    acts = [x, hidden]
    e_clean = reference_loss(reference_forward(weights, x, "tanh"), y, "teacher")
    # the weight perturbation's signal from its own noise columns: (E - E_W) / sigma
    noise = [np.zeros_like(w) for w in weights]
    for k, name in enumerate(core.agent_names):
        lay, i = (int(p) for p in name.split("_")[1:])
        fan_out = core.sizes[lay + 1]
        assert obs[k, cols["layer"]].tolist() == [float(lay == 0), float(lay == 1)]
        assert obs[k, cols["progress"]][0] == pytest.approx(1 / core.config.horizon)
        assert obs[k, cols["activity_mean"]][0] == pytest.approx(acts[lay][:, i].mean(), rel=1e-5)
        assert obs[k, cols["activity_std"]][0] == pytest.approx(acts[lay][:, i].std(), rel=1e-5)
        np.testing.assert_allclose(obs[k, cols["weights"]][:fan_out], weights[lay][:, i], rtol=1e-6)
        assert obs[k, cols["mask"]].tolist() == [1.0] * fan_out + [0.0] * (core.width - fan_out)
        for name_ in ("weights", "node_trace", "weight_noise"):
            assert not obs[k, cols[name_]][fan_out:].any()
        noise[lay][:, i] = state_noise = obs[k, cols["weight_noise"]][:fan_out]
        assert np.isfinite(state_noise).all()
    moved = [w + core.config.sigma * z for w, z in zip(weights, noise)]
    e_weight = reference_loss(reference_forward(moved, x, "tanh"), y, "teacher")
    signal = obs[0, cols["weight_signal"]][0]
    assert signal == pytest.approx((e_clean - e_weight) / core.config.sigma, rel=1e-4, abs=1e-5)
    assert obs[0, cols["node_signal"]][0] != 0.0
    off = small(perturb="none")
    quiet = off.observe(off.reset(1, seed=4))[0]
    for name_ in ("node_signal", "weight_signal", "node_trace", "weight_noise"):
        assert not quiet[:, cols[name_]].any()


def test_an_episode_is_one_training_run_with_a_held_out_loss():
    core = metaenvs.make_core("neurons_digits_pca10", horizon=5, batch_size=8)
    state = core.reset(2, seed=1)
    first = weights_of(core, state, 1)
    zero = np.zeros((2, core.n_agents, core.width), dtype=np.float32)
    for _ in range(4):
        result = core.step(state, zero)
        assert not result.truncated.any() and not result.terminated.any()
        assert np.array_equal(
            result.reward, -np.repeat(result.info["loss"][:, None], 42, 1).astype(np.float32)
        )
    final = weights_of(core, state, 1)
    assert all(np.array_equal(a, b) for a, b in zip(first, final))  # zero actions: no change
    expected = core.evaluate(state)
    result = core.step(state, zero)
    assert result.truncated.all() and (state.t == 0).all()
    assert result.info["test_loss"] == pytest.approx(expected["test_loss"])
    assert result.info["test_accuracy"] == pytest.approx(expected["test_accuracy"])
    _, _, test_x, test_y, _ = digits_splits(10, 0.3, 0)
    out = reference_forward(final, test_x, "relu")
    assert result.info["test_loss"][1] == pytest.approx(reference_loss(out, test_y, "digits"))
    accuracy = (out.argmax(axis=1) == test_y.argmax(axis=1)).mean()
    assert result.info["test_accuracy"][1] == pytest.approx(accuracy)
    restarted = weights_of(core, state, 1)
    assert not np.array_equal(restarted[0], final[0])  # a new network
    assert result.final_obs[1, 0, core.obs_slices["progress"]][0] == 1.0
    assert result.obs[1, 0, core.obs_slices["progress"]][0] == 0.0


def test_evaluate_leaves_the_trajectory_alone():
    core = small()
    actions = core.sample_actions(2, np.random.default_rng(2))
    plain, probed = core.reset(2, seed=9), core.reset(2, seed=9)
    first = core.evaluate(probed)["test_loss"].copy()
    assert np.array_equal(core.evaluate(probed)["test_loss"], first)  # same held-out inputs
    a = core.step(plain, actions)
    a_obs = a.obs.copy()
    b = core.step(probed, actions)
    assert np.array_equal(a_obs, b.obs) and np.array_equal(plain.rng, probed.rng)


def test_the_teacher_task_is_learnable_by_gradient_steps():
    """Actions made of minus the gradient lower the held-out loss (the env is trainable)."""
    core = metaenvs.make_core("neurons_teacher", horizon=100)
    state = core.reset(4, seed=0)
    start = core.evaluate(state)["test_loss"]
    for _ in range(99):
        core.step(state, core.weight_changes(-0.1 * core.gradients(state)))
    end = core.evaluate(state)["test_loss"]
    assert (end < 0.5 * start).all()


def test_redrawn_perturbations_keep_weights_and_minibatch():
    core = small()
    state = core.reset(3, seed=2)
    before = state.copy()
    obs = core.redraw_perturbations(state).copy()
    for name in ("weights", "x", "y", "loss", "t", "teacher"):
        assert np.array_equal(getattr(state, name), getattr(before, name))
    cols = core.obs_slices
    assert not np.array_equal(obs[..., cols["weight_noise"]], before.obs[..., cols["weight_noise"]])
    assert np.array_equal(obs[..., cols["weights"]], before.obs[..., cols["weights"]])


def test_render_shows_the_weights():
    core = small()
    state = core.reset(1, seed=0)
    frame = core.render_copy(state)
    assert frame.shape == (*core.render_size, 3) and frame.dtype == np.uint8
    state.weights[:] = 0.0
    state.weights[0, 0] = 1.0  # one strong positive weight: bluish pixels, no red ones
    blank = core.render_copy(state)[30:]  # below the progress and loss bars
    blue = (blank[..., 2] > 200) & (blank[..., 0] < 100)
    red = (blank[..., 0] > 200) & (blank[..., 2] < 100)
    assert blue.any() and not red.any()


def test_copies_are_the_same_at_every_batch_size_and_on_threads():
    """Copy b of a threaded batch equals a B = 1 run seeded ``seed + b`` (episode ends too)."""
    core = small(horizon=7)
    core.min_parallel, core.threads = 2, 2  # the threaded path on a small batch
    single = small(horizon=7)
    rng = np.random.default_rng(0)
    actions = [core.sample_actions(6, rng) for _ in range(16)]
    batch = core.reset(6, seed=40)
    ones = [single.reset(1, seed=40 + b) for b in range(6)]
    for a in actions:
        r = core.step(batch, a)
        obs, loss, test = r.obs.copy(), r.info["loss"].copy(), r.info["test_loss"].copy()
        for b, state in enumerate(ones):
            r1 = single.step(state, a[b : b + 1])
            assert np.array_equal(obs[b], r1.obs[0]) and loss[b] == r1.info["loss"][0]
            assert test[b] == r1.info["test_loss"][0]
    assert np.array_equal(core.gradients(batch)[3], single.gradients(ones[3])[0])
