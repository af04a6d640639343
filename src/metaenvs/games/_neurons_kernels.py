"""Numba kernels of the neurons-as-agents env: B feed-forward networks trained by their neurons.

Shapes (B copies, L weight layers, layer sizes ``R_0 .. R_L``, N samples in a minibatch,
K agents ``= R_0 + ... + R_{L-1}``, D ``= max_l R_{l+1}`` action width, O observation width):

- ``net`` (:data:`Net`): the student's ``sizes (L+1,)``, ``woff (L+1,)`` (``W_l[j, i]`` is
  ``weights[b, woff[l] + i * R_{l+1} + j]``: the draft's ``W_l`` stored transposed, row i
  the outgoing weights of neuron i, the agent's own, contiguous), ``aoff (L+2,)`` (layer
  l's activations are the columns ``aoff[l]:aoff[l+1]`` of an activation row),
  ``agent_layer, agent_unit (K,)`` (agent k is neuron ``agent_unit[k]`` of layer
  ``agent_layer[k]``), and the teacher's ``tsizes, twoff, taoff``;
- ``data`` (:data:`Data`): the digits' ``train_x (n_train, R_0)``, ``train_y (n_train,
  R_L)`` (one-hot), ``test_x, test_y`` float64 (no rows in the student-teacher task);
- ``par`` (:data:`Params`): the scalars;
- the state: ``t (B,)`` int64, ``rng (B,)`` uint64 (the copies' streams), ``eval_rng
  (B,)`` uint64 (each episode's stream of held-out inputs, drawn at its start), ``weights
  (B, P)``, ``teacher (B, P_t)``, ``x (B, N, R_0)``, ``y (B, N, R_L)`` (the current
  minibatch), ``loss (B,)`` float64; ``obs, final_obs (B, K, O)`` float32, ``reward (B,
  K)`` float32, ``terminated, truncated (B,)`` bool, ``test_loss, test_accuracy (B,)``
  float64.

Observation columns of agent k (layer l, unit i): :func:`obs_layout`.
"""

from __future__ import annotations

from collections import namedtuple

import numba
import numpy as np

from metaenvs._rng import next_uniform

Net = namedtuple(
    "Net", ["sizes", "woff", "aoff", "agent_layer", "agent_unit", "tsizes", "twoff", "taoff"]
)
"""The student's and the teacher's architecture as offset arrays (see the module docstring)."""
Data = namedtuple("Data", ["train_x", "train_y", "test_x", "test_y"])
"""The digits' splits (inputs and one-hot targets); empty for the student-teacher task."""
Params = namedtuple(
    "Params",
    [
        "horizon",  # int, updates per episode T
        "sigma",  # float, perturbation standard deviation
        "action_scale",  # float, the weight change of an action of 1
        "init_scale",  # float, student weights N(0, init_scale**2 / fan_in)
        "relu",  # bool, ReLU hidden units (else tanh)
        "classify",  # bool, digits (cross-entropy) or student-teacher (MSE)
        "node",  # bool, draw node perturbations
        "weight",  # bool, draw weight perturbations
        "n_eval",  # int, held-out teacher inputs per evaluation
    ],
)
"""The kernels' scalars."""


def obs_layout(n_layers: int, width: int) -> dict[str, slice]:
    """Columns of one agent's observation, by name (``n_layers`` L, action ``width`` D)."""
    L, D = n_layers, width
    w0 = L + 6
    return {
        "layer": slice(0, L),
        "progress": slice(L, L + 1),
        "loss": slice(L + 1, L + 2),
        "node_signal": slice(L + 2, L + 3),
        "weight_signal": slice(L + 3, L + 4),
        "activity_mean": slice(L + 4, L + 5),
        "activity_std": slice(L + 5, L + 6),
        "weights": slice(w0, w0 + D),
        "node_trace": slice(w0 + D, w0 + 2 * D),
        "weight_noise": slice(w0 + 2 * D, w0 + 3 * D),
        "mask": slice(w0 + 3 * D, w0 + 4 * D),
    }


# -- random numbers -------------------------------------------------------------------------
@numba.njit(cache=True)
def fill_normals(rng: np.ndarray, b: int, out: np.ndarray) -> None:
    """Fill the 1-D ``out`` with standard normals from stream ``b``, two at a time
    (Marsaglia's polar method: no trigonometry, a pair of uniforms accepted with
    probability pi / 4; an odd last one is the first of a pair)."""
    n = out.shape[0]
    for k in range(0, n, 2):
        while True:
            u = 2.0 * next_uniform(rng, b) - 1.0
            v = 2.0 * next_uniform(rng, b) - 1.0
            r2 = u * u + v * v
            if 0.0 < r2 < 1.0:
                break
        f = np.sqrt(-2.0 * np.log(r2) / r2)
        out[k] = u * f
        if k + 1 < n:
            out[k + 1] = v * f


@numba.njit(cache=True, inline="always")
def draw_index(rng: np.ndarray, b: int, n: int) -> int:
    """A uniform int in ``[0, n)`` from stream ``b``."""
    return min(int(next_uniform(rng, b) * n), n - 1)


# -- the network ----------------------------------------------------------------------------
@numba.njit(cache=True)
def forward(w, sizes, woff, aoff, n, acts, relu, xi, sig_node):
    """Forward pass of equation (1) on the first ``n`` rows of ``acts``.

    ``acts[:n, aoff[0]:aoff[1]]`` holds the inputs; layer ``l + 1`` gets
    ``act(X^(l) W_l^T + sig_node * xi^(l+1))`` (hidden layers ``act`` = ReLU or tanh, the
    output layer linear).  With ``sig_node = 0`` ``xi`` is not read.

    Parameters
    ----------
    w : np.ndarray
        ``(P,)`` float64, one copy's flat weights.
    sizes, woff, aoff : np.ndarray
        The architecture (see the module docstring).
    n : int
        Rows (samples) to compute.
    acts : np.ndarray
        ``(>= n, A)`` float64 activations; written from layer 1 on.
    relu : bool
        ReLU hidden units, else tanh.
    xi : np.ndarray
        ``(>= n, A)`` standard normals, the node perturbations at the columns of layers
        ``1..L``.
    sig_node : float
        Their standard deviation (0: no perturbation).
    """
    n_layers = sizes.shape[0] - 1
    h = np.empty(sizes[1:].max())
    for lay in range(n_layers):
        rin, rout = sizes[lay], sizes[lay + 1]
        a0, a1, w0 = aoff[lay], aoff[lay + 1], woff[lay]
        hidden = lay < n_layers - 1
        for s in range(n):
            for j in range(rout):
                h[j] = 0.0
            hs = h[:rout]
            if rout >= 8:  # h += x_i W_l[:, i] (neuron i's outgoing weights: one row)
                for i in range(rin):
                    a = acts[s, a0 + i]
                    if a != 0.0:
                        wi = w[w0 + i * rout : w0 + (i + 1) * rout]  # slices: SIMD
                        for j in range(rout):
                            hs[j] += a * wi[j]
            else:  # a narrow layer: one dot product per unit, the same sums in the same order
                for j in range(rout):
                    v = 0.0
                    for i in range(rin):
                        v += w[w0 + i * rout + j] * acts[s, a0 + i]
                    hs[j] = v
            for j in range(rout):
                v = h[j]
                if sig_node != 0.0:
                    v += sig_node * xi[s, a1 + j]
                if hidden:
                    v = (v if v > 0.0 else 0.0) if relu else np.tanh(v)
                acts[s, a1 + j] = v


@numba.njit(cache=True)
def softmax_scale(acts, s, out0, r_out):
    """``(m, z)`` of sample s's logits ``acts[s, out0:out0 + r_out]``: their maximum and
    ``sum_r exp(logit_r - m)``, so ``softmax_r = exp(logit_r - m) / z`` and
    ``logsumexp = m + log z`` without overflow."""
    top = acts[s, out0]
    for r in range(1, r_out):
        top = max(top, acts[s, out0 + r])
    z = 0.0
    for r in range(r_out):
        z += np.exp(acts[s, out0 + r] - top)
    return top, z


@numba.njit(cache=True)
def loss_of(acts, out0, y, n, classify):
    """The draft's loss of the outputs ``acts[:n, out0:]`` against targets ``y (n, R_L)``.

    MSE ``1 / (N R_L) * 1/2 * ||X^(L) - Y||^2`` (student-teacher) or cross-entropy
    ``-1/N sum_n sum_r y_r log softmax(x_n^(L))_r`` (digits).
    """
    r_out = y.shape[1]
    total = 0.0
    for s in range(n):
        if classify:
            top, z = softmax_scale(acts, s, out0, r_out)
            lse = top + np.log(z)
            for r in range(r_out):
                total += y[s, r] * (lse - acts[s, out0 + r])
        else:
            for r in range(r_out):
                d = acts[s, out0 + r] - y[s, r]
                total += 0.5 * d * d
    return total / n if classify else total / (n * r_out)


@numba.njit(cache=True)
def backward(w, sizes, woff, aoff, n, acts, y, relu, classify, delta, grad):
    """Backpropagation: ``grad (P,)`` = dE/dW of :func:`loss_of`, after a clean forward
    pass in ``acts``; ``delta (>= n, A)`` is scratch (dE/d pre-activation per layer)."""
    n_layers = sizes.shape[0] - 1
    r_out, out0 = sizes[n_layers], aoff[n_layers]
    for s in range(n):
        if classify:
            top, z = softmax_scale(acts, s, out0, r_out)
            ysum = 0.0
            for r in range(r_out):
                ysum += y[s, r]
            for r in range(r_out):
                p = np.exp(acts[s, out0 + r] - top) / z
                delta[s, out0 + r] = (ysum * p - y[s, r]) / n
        else:
            for r in range(r_out):
                delta[s, out0 + r] = (acts[s, out0 + r] - y[s, r]) / (n * r_out)
    for lay in range(n_layers - 1, -1, -1):
        rin, rout = sizes[lay], sizes[lay + 1]
        a0, a1, w0 = aoff[lay], aoff[lay + 1], woff[lay]
        grad[w0 : w0 + rin * rout] = 0.0
        for s in range(n):
            ds = delta[s, a1 : a1 + rout]
            for i in range(rin):
                a = acts[s, a0 + i]
                if a != 0.0:
                    gi = grad[w0 + i * rout : w0 + (i + 1) * rout]
                    for j in range(rout):
                        gi[j] += a * ds[j]
        if lay == 0:
            break
        for s in range(n):
            for i in range(rin):
                back = 0.0
                base = w0 + i * rout
                for j in range(rout):
                    back += delta[s, a1 + j] * w[base + j]
                x = acts[s, a0 + i]
                deriv = (1.0 if x > 0.0 else 0.0) if relu else 1.0 - x * x
                delta[s, a0 + i] = back * deriv


# -- episodes and minibatches ---------------------------------------------------------------
@numba.njit(cache=True)
def draw_inputs(rng, b, xb, y_out, teacher_w, net, data, par, tacts, from_split):
    """Fill ``xb (n, R_0)`` and ``y_out (n, R_L)`` with a sample from stream ``b``.

    Student-teacher: standard normal inputs, the teacher's outputs as targets; digits:
    rows of ``from_split`` (0 training, 1 test) drawn uniformly with replacement.
    """
    n = xb.shape[0]
    if par.classify:
        src_x = data.train_x if from_split == 0 else data.test_x
        src_y = data.train_y if from_split == 0 else data.test_y
        for s in range(n):
            k = draw_index(rng, b, src_x.shape[0])
            xb[s, :] = src_x[k]
            y_out[s, :] = src_y[k]
        return
    r0 = xb.shape[1]
    for s in range(n):
        fill_normals(rng, b, xb[s])
        tacts[s, :r0] = xb[s]
    forward(teacher_w, net.tsizes, net.twoff, net.taoff, n, tacts, par.relu, tacts, 0.0)
    t_out = net.taoff[net.tsizes.shape[0] - 1]
    for s in range(n):
        for r in range(y_out.shape[1]):
            y_out[s, r] = tacts[s, t_out + r]


@numba.njit(cache=True)
def init_weights(rng, b, w, sizes, woff, scale):
    """``W_l`` entries i.i.d. ``N(0, scale**2 / R_l)`` (LeCun's fan-in scaling at 1)."""
    for lay in range(sizes.shape[0] - 1):
        block = w[woff[lay] : woff[lay + 1]]
        fill_normals(rng, b, block)
        block *= scale / np.sqrt(sizes[lay])


@numba.njit(cache=True)
def clean_pass(b, weights, x, y, loss, net, par, acts):
    """Forward pass of copy ``b`` on its minibatch into ``acts``; writes ``loss[b]``."""
    n = x.shape[1]
    acts[:n, : x.shape[2]] = x[b]
    forward(weights[b], net.sizes, net.woff, net.aoff, n, acts, par.relu, acts, 0.0)
    loss[b] = loss_of(acts, net.aoff[net.sizes.shape[0] - 1], y[b], n, par.classify)


@numba.njit(cache=True)
def observe_copy(b, t, rng, weights, x, y, loss, obs, net, par, scratch):
    """Draw the perturbations of copy ``b`` and write its agents' observations.

    Needs the clean pass in ``scratch[0]`` (:func:`clean_pass`).  Draws, in this order:
    the node perturbations ``xi^(l)`` (layers 1..L, sample-major) when ``par.node``, then
    the weight perturbations ``Xi_l`` (in weight order) when ``par.weight``.
    """
    acts, pacts, xi, z, wp = scratch[0], scratch[1], scratch[2], scratch[3], scratch[4]
    sizes, woff, aoff = net.sizes, net.woff, net.aoff
    n_layers = sizes.shape[0] - 1
    n, out0, sigma = x.shape[1], aoff[n_layers], par.sigma
    e_clean = loss[b]
    r_node, r_weight = 0.0, 0.0
    if par.node:
        for s in range(n):
            fill_normals(rng, b, xi[s, aoff[1] : aoff[n_layers + 1]])
        pacts[:n, : sizes[0]] = x[b]
        forward(weights[b], sizes, woff, aoff, n, pacts, par.relu, xi, sigma)
        r_node = (e_clean - loss_of(pacts, out0, y[b], n, par.classify)) / sigma
    if par.weight:
        fill_normals(rng, b, z)
        for p in range(wp.shape[0]):
            wp[p] = weights[b, p] + sigma * z[p]
        pacts[:n, : sizes[0]] = x[b]
        forward(wp, sizes, woff, aoff, n, pacts, par.relu, xi, 0.0)
        r_weight = (e_clean - loss_of(pacts, out0, y[b], n, par.classify)) / sigma
    width = (obs.shape[2] - n_layers - 6) // 4
    c_w = n_layers + 6
    progress = t[b] / par.horizon
    for k in range(obs.shape[1]):
        lay, i = net.agent_layer[k], net.agent_unit[k]
        o = obs[b, k]
        o[:] = 0.0
        o[lay] = 1.0
        o[n_layers] = progress
        o[n_layers + 1] = e_clean
        o[n_layers + 2] = r_node
        o[n_layers + 3] = r_weight
        col = aoff[lay] + i
        mean = 0.0
        for s in range(n):
            mean += acts[s, col]
        mean /= n
        var = 0.0
        for s in range(n):
            var += (acts[s, col] - mean) ** 2
        o[n_layers + 4] = mean
        o[n_layers + 5] = np.sqrt(var / n)
        rout, a1 = sizes[lay + 1], aoff[lay + 1]
        base = woff[lay] + i * rout  # W_l[:, i], the agent's weights
        for j in range(rout):
            o[c_w + j] = weights[b, base + j]
            o[c_w + 3 * width + j] = 1.0
            if par.weight:
                o[c_w + 2 * width + j] = z[base + j]
        if par.node:
            trace = scratch[6]
            trace[:rout] = 0.0
            tr = trace[:rout]
            for s in range(n):
                a = acts[s, col]
                if a != 0.0:
                    xs = xi[s, a1 : a1 + rout]
                    for j in range(rout):
                        tr[j] += a * xs[j]
            for j in range(rout):
                o[c_w + width + j] = trace[j]


@numba.njit(cache=True)
def evaluate_copy(b, eval_rng, weights, teacher, net, data, par, scratch):
    """Held-out loss and accuracy of copy ``b``: ``(loss, accuracy)``.

    Student-teacher: ``n_eval`` inputs of the episode's own held-out stream (the same at
    every call within an episode; accuracy 0); digits: the whole test split.  Computed
    in chunks of the minibatch size; reads nothing but the weights and streams it is given.
    """
    acts, tacts = scratch[0], scratch[5]
    n_layers = net.sizes.shape[0] - 1
    out0, r_out = net.aoff[n_layers], net.sizes[n_layers]
    chunk = acts.shape[0]
    stream = np.empty(1, dtype=np.uint64)
    stream[0] = eval_rng[b]
    total = 0.0
    correct = 0
    n_total = data.test_x.shape[0] if par.classify else par.n_eval
    xb = np.empty((chunk, net.sizes[0]))
    yb = np.empty((chunk, r_out))
    start = 0
    while start < n_total:
        m = min(chunk, n_total - start)
        if par.classify:
            for s in range(m):
                xb[s, :] = data.test_x[start + s]
                yb[s, :] = data.test_y[start + s]
        else:
            draw_inputs(stream, 0, xb[:m], yb[:m], teacher[b], net, data, par, tacts, 1)
        acts[:m, : net.sizes[0]] = xb[:m]
        forward(weights[b], net.sizes, net.woff, net.aoff, m, acts, par.relu, acts, 0.0)
        total += m * loss_of(acts, out0, yb, m, par.classify)
        if par.classify:
            for s in range(m):
                best = 0
                for r in range(1, r_out):
                    if acts[s, out0 + r] > acts[s, out0 + best]:
                        best = r
                if yb[s, best] > 0.5:
                    correct += 1
        start += m
    accuracy = correct / n_total if par.classify else 0.0
    return total / n_total, accuracy


@numba.njit(cache=True)
def start_copy(b, t, rng, eval_rng, weights, teacher, x, y, loss, obs, net, data, par, scratch):
    """A fresh episode in copy ``b``: a new teacher (student-teacher), new student weights,
    the episode's held-out stream, a minibatch, the clean pass and the observations."""
    t[b] = 0
    if not par.classify:
        init_weights(rng, b, teacher[b], net.tsizes, net.twoff, 1.0)
    init_weights(rng, b, weights[b], net.sizes, net.woff, par.init_scale)
    eval_rng[b] = np.uint64(next_uniform(rng, b) * 9007199254740992.0)
    draw_inputs(rng, b, x[b], y[b], teacher[b], net, data, par, scratch[5], 0)
    clean_pass(b, weights, x, y, loss, net, par, scratch[0])
    observe_copy(b, t, rng, weights, x, y, loss, obs, net, par, scratch)


@numba.njit(cache=True)
def make_scratch(n, net):
    """Per-call work arrays: activations, perturbed activations, node noise ``(n, A)``,
    weight noise and perturbed weights ``(P,)``, teacher activations ``(n, A_t)``, a
    neuron's node trace ``(D,)``."""
    a = net.aoff[net.aoff.shape[0] - 1]
    p = net.woff[net.woff.shape[0] - 1]
    at = net.taoff[net.taoff.shape[0] - 1]
    return (
        np.zeros((n, a)),
        np.zeros((n, a)),
        np.zeros((n, a)),
        np.zeros(p),
        np.zeros(p),
        np.zeros((n, max(at, 1))),
        np.zeros(net.sizes[1:].max()),
    )


@numba.njit(cache=True, nogil=True)
def reset_neurons(t, rng, eval_rng, weights, teacher, x, y, loss, obs, net, data, par, lo, hi):
    """Fresh episodes in copies ``lo..hi``."""
    scratch = make_scratch(x.shape[1], net)
    for b in range(lo, hi):
        start_copy(b, t, rng, eval_rng, weights, teacher, x, y, loss, obs, net, data, par, scratch)


@numba.njit(cache=True, nogil=True)
def step_neurons(
    t,
    rng,
    eval_rng,
    weights,
    teacher,
    x,
    y,
    loss,
    obs,
    reward,
    terminated,
    truncated,
    final_obs,
    test_loss,
    test_accuracy,
    actions,  # (B, K, D) float32, validated
    net,
    data,
    par,
    lo,
    hi,
):
    """One update of copies ``lo..hi``.

    Each agent k (neuron i of layer l) adds ``action_scale * actions[b, k, :R_{l+1}]`` to
    its outgoing weights ``W_l[:, i]`` (the rest of its action is ignored); then a new
    minibatch is drawn, the reward of every agent is minus the clean loss of the updated
    network on it, the perturbations are drawn and the observations written.  After
    ``horizon`` updates the copy's held-out loss goes to ``test_loss`` and
    ``test_accuracy`` (the other rows keep their copy's last values), its last
    observations to ``final_obs``, and it restarts.
    """
    scratch = make_scratch(x.shape[1], net)
    sizes, woff = net.sizes, net.woff
    for b in range(lo, hi):
        for k in range(actions.shape[1]):
            lay, i = net.agent_layer[k], net.agent_unit[k]
            rout = sizes[lay + 1]
            base = woff[lay] + i * rout
            for j in range(rout):
                weights[b, base + j] += par.action_scale * actions[b, k, j]
        t[b] += 1
        draw_inputs(rng, b, x[b], y[b], teacher[b], net, data, par, scratch[5], 0)
        clean_pass(b, weights, x, y, loss, net, par, scratch[0])
        reward[b, :] = -loss[b]
        observe_copy(b, t, rng, weights, x, y, loss, obs, net, par, scratch)
        terminated[b] = False
        truncated[b] = t[b] >= par.horizon
        if truncated[b]:
            final_obs[b] = obs[b]
            test_loss[b], test_accuracy[b] = evaluate_copy(
                b, eval_rng, weights, teacher, net, data, par, scratch
            )
            start_copy(
                b, t, rng, eval_rng, weights, teacher, x, y, loss, obs, net, data, par, scratch
            )


@numba.njit(cache=True, nogil=True)
def redraw_neurons(t, rng, weights, x, y, loss, obs, net, par, lo, hi):
    """Fresh perturbations on the current weights and minibatch of copies ``lo..hi``: the
    observations are rewritten, nothing else changes but the streams."""
    scratch = make_scratch(x.shape[1], net)
    for b in range(lo, hi):
        clean_pass(b, weights, x, y, loss, net, par, scratch[0])
        observe_copy(b, t, rng, weights, x, y, loss, obs, net, par, scratch)


@numba.njit(cache=True, nogil=True)
def gradients_neurons(weights, x, y, net, par, out, lo, hi):
    """``out (B, K, D)``: dE/dW_l[:, i] of each agent on its copy's current minibatch
    (backpropagation; zero past the agent's fan-out)."""
    scratch = make_scratch(x.shape[1], net)
    acts, delta = scratch[0], scratch[1]
    grad = np.empty(weights.shape[1])
    loss = np.empty(weights.shape[0])
    sizes, woff = net.sizes, net.woff
    for b in range(lo, hi):
        clean_pass(b, weights, x, y, loss, net, par, acts)
        backward(
            weights[b], sizes, woff, net.aoff, x.shape[1], acts, y[b], par.relu,
            par.classify, delta, grad,
        )  # fmt: skip
        for k in range(out.shape[1]):
            lay, i = net.agent_layer[k], net.agent_unit[k]
            out[b, k, :] = 0.0
            base = woff[lay] + i * sizes[lay + 1]
            for j in range(sizes[lay + 1]):
                out[b, k, j] = grad[base + j]


@numba.njit(cache=True, nogil=True)
def evaluate_neurons(eval_rng, weights, teacher, x, net, data, par, out_loss, out_acc, lo, hi):
    """Held-out loss and accuracy of copies ``lo..hi`` (:func:`evaluate_copy`)."""
    scratch = make_scratch(x.shape[1], net)
    for b in range(lo, hi):
        out_loss[b], out_acc[b] = evaluate_copy(
            b, eval_rng, weights, teacher, net, data, par, scratch
        )
