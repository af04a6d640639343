"""Numba kernels of the learning-peers chain: peer sampling, the linear feature
baseline, the tabular policy-gradient update and the batched chain step.
"""

from __future__ import annotations

import numba
import numpy as np

from metaenvs.games.matrix import move_one_hot, play_round
from metaenvs.rng import next_uniform

BASELINE_REG = 1e-5
"""Ridge term of the linear feature baseline's normal equations (Duan et al. 2016)."""


@numba.njit(cache=True)
def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """``G[k, t] = sum_{t' >= t} gamma^(t' - t) r[k, t']`` for rewards ``(K, H)``."""
    n_traj, horizon = rewards.shape
    out = np.empty((n_traj, horizon))
    for k in range(n_traj):
        acc = 0.0
        for t in range(horizon - 1, -1, -1):
            acc = rewards[k, t] + gamma * acc
            out[k, t] = acc
    return out


@numba.njit(cache=True, inline="always")
def _features(state: int, t: int, n_states: int, out: np.ndarray) -> None:
    """Duan et al.'s features ``[o, o**2, t/100, (t/100)**2, (t/100)**3, 1]`` of one-hot o."""
    out[:] = 0.0
    out[state] = 1.0
    out[n_states + state] = 1.0
    x = t / 100.0
    out[2 * n_states] = x
    out[2 * n_states + 1] = x * x
    out[2 * n_states + 2] = x * x * x
    out[2 * n_states + 3] = 1.0


@numba.njit(cache=True)
def _cholesky_solve(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, bool]:
    """Solve ``a x = b`` for symmetric positive definite ``a``; ``ok`` is False if it is not."""
    n = a.shape[0]
    low = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            s = a[i, j]
            for m in range(j):
                s -= low[i, m] * low[j, m]
            if i == j:
                if s <= 0.0:
                    return b.copy(), False
                low[i, i] = np.sqrt(s)
            else:
                low[i, j] = s / low[j, j]
    y = np.empty(n)
    for i in range(n):
        s = b[i]
        for m in range(i):
            s -= low[i, m] * y[m]
        y[i] = s / low[i, i]
    x = np.empty(n)
    for i in range(n - 1, -1, -1):
        s = y[i]
        for m in range(i + 1, n):
            s -= low[m, i] * x[m]
        x[i] = s / low[i, i]
    return x, True


@numba.njit(cache=True)
def linear_baseline(states: np.ndarray, returns: np.ndarray, n_states: int) -> np.ndarray:
    """Least-squares fit of the returns on the linear features; the fitted values.

    Parameters
    ----------
    states : np.ndarray
        ``(K, H)`` int64 state ids the agent acted on.
    returns : np.ndarray
        ``(K, H)`` float64 discounted returns to fit.
    n_states : int
        S, the one-hot width.

    Returns
    -------
    np.ndarray
        ``(K, H)`` baseline values.  The ridge term starts at :data:`BASELINE_REG` and
        grows tenfold (up to 5 times) while the normal equations are not positive definite;
        if they never are, the baseline is zero.
    """
    n_traj, horizon = states.shape
    n_feat = 2 * n_states + 4
    xtx = np.zeros((n_feat, n_feat))
    xty = np.zeros(n_feat)
    f = np.empty(n_feat)
    for k in range(n_traj):
        for t in range(horizon):
            _features(states[k, t], t, n_states, f)
            for i in range(n_feat):
                if f[i] != 0.0:
                    xty[i] += f[i] * returns[k, t]
                    for j in range(n_feat):
                        xtx[i, j] += f[i] * f[j]
    reg = BASELINE_REG
    weights = np.zeros(n_feat)
    ok = False
    for _ in range(5):
        a = xtx.copy()
        for i in range(n_feat):
            a[i, i] += reg
        weights, ok = _cholesky_solve(a, xty)
        if ok:
            break
        reg *= 10.0
    if not ok:  # no fit: no baseline rather than a wrong one
        return np.zeros((n_traj, horizon))
    out = np.empty((n_traj, horizon))
    for k in range(n_traj):
        for t in range(horizon):
            _features(states[k, t], t, n_states, f)
            total = 0.0  # a loop, not np.dot: BLAS inside Numba would need SciPy
            for i in range(n_feat):
                total += f[i] * weights[i]
            out[k, t] = total
    return out


@numba.njit(cache=True)
def fit_baselines(
    states: np.ndarray,  # (C, K, H) int64
    rewards: np.ndarray,  # (C, K, H) float64, one player's
    gamma: float,
    n_states: int,
    returns: np.ndarray,  # (C, K, H); written: the discounted returns
    baseline: np.ndarray,  # (C, K, H); written: their linear feature baselines
) -> None:
    """:func:`discounted_returns` and :func:`linear_baseline` of one player in every chain."""
    for c in range(states.shape[0]):
        returns[c] = discounted_returns(rewards[c], gamma)
        baseline[c] = linear_baseline(states[c], returns[c], n_states)


@numba.njit(cache=True)
def tabular_pg_gradient(
    logits: np.ndarray,  # (S, A) float64
    states: np.ndarray,  # (K, H) int64
    actions: np.ndarray,  # (K, H) int64
    returns: np.ndarray,  # (K, H) float64
    baseline: np.ndarray,  # (K, H) float64
    gamma: float,
) -> np.ndarray:
    """Policy gradient of a softmax table, the gradient of the DiCE objective at its value.

    ``g[s] = 1/K sum_{k,t: s_kt = s} gamma^t (G_kt - b_kt) (onehot(a_kt) - softmax(logits[s]))``.
    """
    n_states, n_actions = logits.shape
    probs = np.empty_like(logits)
    for s in range(n_states):
        top = logits[s].max()
        total = 0.0
        for a in range(n_actions):
            probs[s, a] = np.exp(logits[s, a] - top)
            total += probs[s, a]
        probs[s] /= total
    grad = np.zeros_like(logits)
    n_traj, horizon = states.shape
    for k in range(n_traj):
        disc = 1.0
        for t in range(horizon):
            s = states[k, t]
            adv = disc * (returns[k, t] - baseline[k, t]) / n_traj
            for a in range(n_actions):
                grad[s, a] -= adv * probs[s, a]
            grad[s, actions[k, t]] += adv
            disc *= gamma
    return grad


@numba.njit(cache=True, inline="always")
def _sample_softmax(row: np.ndarray, u: float) -> int:
    """Inverse-CDF draw from ``softmax(row)`` with the uniform ``u``."""
    top = row.max()
    total = 0.0
    for a in range(row.shape[0]):
        total += np.exp(row[a] - top)
    acc = 0.0
    for a in range(row.shape[0] - 1):
        acc += np.exp(row[a] - top) / total
        if u < acc:
            return a
    return row.shape[0] - 1


@numba.njit(cache=True)
def draw_personas(
    rng: np.ndarray,  # (C,) uint64 streams
    chains: np.ndarray,  # (C,) bool, chains that start over
    pool: np.ndarray,  # (M,) int64 persona ids of the split
    persona_params: np.ndarray,  # (P_total, D) the personas' parameters
    persona_tables: np.ndarray,  # (P_total, S, A) their logit tables
    persona: np.ndarray,  # (C, P) int64; written
    params: np.ndarray,  # (C, P, D); written
    logits: np.ndarray,  # (C, P, S, A); written
) -> None:
    """Each selected chain draws every peer uniformly from ``pool`` (its own stream)."""
    for c in range(persona.shape[0]):
        if not chains[c]:
            continue
        for p in range(persona.shape[1]):
            pick = pool[int(next_uniform(rng, c) * pool.shape[0])]
            persona[c, p] = pick
            params[c, p] = persona_params[pick]
            logits[c, p] = persona_tables[pick]


@numba.njit(cache=True)
def mlp_table(params: np.ndarray, n_states: int, n_actions: int, hidden: int) -> np.ndarray:
    """Logit table ``(S, A)`` of a one-hidden-layer tanh MLP on one-hot states.

    ``params`` is ``[W1 (S, h), b1 (h), W2 (h, A), b2 (A)]`` flattened; the logits of
    state s are ``tanh(W1[s] + b1) @ W2 + b2``.
    """
    w1 = params[: n_states * hidden].reshape(n_states, hidden)
    b1 = params[n_states * hidden : n_states * hidden + hidden]
    off = n_states * hidden + hidden
    w2 = params[off : off + hidden * n_actions].reshape(hidden, n_actions)
    b2 = params[off + hidden * n_actions :]
    out = np.empty((n_states, n_actions))
    for s in range(n_states):
        h = np.tanh(w1[s] + b1)
        for a in range(n_actions):
            acc = b2[a]
            for j in range(hidden):
                acc += h[j] * w2[j, a]
            out[s, a] = acc
    return out


@numba.njit(cache=True)
def mlp_backward(
    params: np.ndarray, table_grad: np.ndarray, n_states: int, n_actions: int, hidden: int
) -> np.ndarray:
    """Gradient with respect to the MLP's ``params`` of an objective whose gradient with
    respect to the logit table (:func:`mlp_table`) is ``table_grad`` ``(S, A)``."""
    w1 = params[: n_states * hidden].reshape(n_states, hidden)
    b1 = params[n_states * hidden : n_states * hidden + hidden]
    off = n_states * hidden + hidden
    w2 = params[off : off + hidden * n_actions].reshape(hidden, n_actions)
    grad = np.zeros_like(params)
    gw1 = grad[: n_states * hidden].reshape(n_states, hidden)
    gb1 = grad[n_states * hidden : n_states * hidden + hidden]
    gw2 = grad[off : off + hidden * n_actions].reshape(hidden, n_actions)
    gb2 = grad[off + hidden * n_actions :]
    for s in range(n_states):
        h = np.tanh(w1[s] + b1)
        for a in range(n_actions):
            gb2[a] += table_grad[s, a]
            for j in range(hidden):
                gw2[j, a] += h[j] * table_grad[s, a]
        for j in range(hidden):
            dz = 0.0  # a loop, not np.dot: BLAS inside Numba would need SciPy
            for a in range(n_actions):
                dz += w2[j, a] * table_grad[s, a]
            dz *= 1.0 - h[j] * h[j]
            gw1[s, j] += dz
            gb1[j] += dz
    return grad


@numba.njit(cache=True)
def update_peers(
    params: np.ndarray,  # (C, P, D); updated in place
    logits: np.ndarray,  # (C, P, S, A); rewritten from params
    hidden: int,  # 0: tabular (params are the logit table), else MLP hidden units
    hist_states: np.ndarray,  # (C, K, H) int64
    hist_actions: np.ndarray,  # (C, K, H, N) int64, peer p is agent p + 1
    hist_rewards: np.ndarray,  # (C, K, H, N) float64
    gamma: float,
    lr: float,
    baseline_out: np.ndarray,  # (C, P, K, H); written
) -> None:
    """One policy-gradient step with the linear feature baseline for every peer of every chain."""
    n_chains, n_peers, n_states, n_actions = logits.shape
    returns = np.empty(hist_states.shape)
    for p in range(n_peers):
        fit_baselines(
            hist_states, hist_rewards[..., p + 1], gamma, n_states, returns, baseline_out[:, p]
        )
        for c in range(n_chains):
            table_grad = tabular_pg_gradient(
                logits[c, p], hist_states[c], hist_actions[c, :, :, p + 1], returns[c],
                baseline_out[c, p], gamma,
            )  # fmt: skip
            if hidden == 0:
                params[c, p] += lr * table_grad.ravel()
                logits[c, p] = params[c, p].reshape(n_states, n_actions)
            else:
                params[c, p] += lr * mlp_backward(
                    params[c, p], table_grad, n_states, n_actions, hidden
                )
                logits[c, p] = mlp_table(params[c, p], n_states, n_actions, hidden)


@numba.njit(cache=True)
def step_chains(
    meta_actions: np.ndarray,  # (C, W) int64, the meta-agent's actions for slots slot0..slot0+W
    slot0: int,
    rng: np.ndarray,  # (C,) uint64
    logits: np.ndarray,  # (C, P, S, A) float64
    game_state: np.ndarray,  # (C, K) int64
    t: np.ndarray,  # (C,) int64 round within the trajectory
    hist_states: np.ndarray,  # (C, K, H) int64
    hist_actions: np.ndarray,  # (C, K, H, N) int64
    hist_rewards: np.ndarray,  # (C, K, H, N) float64
    payoff_flat: np.ndarray,  # (A**N, N) float64
    n_actions: int,
    obs: np.ndarray,  # (C, K, S) float32 one-hot of game_state; updated for the W slots
    reward: np.ndarray,  # (C, W) float32 meta-agent reward; written
    peer_actions: np.ndarray,  # (C, W, P) int64; written
) -> None:
    """Play one round in slots ``slot0 .. slot0 + W`` of every chain and record it.

    Peers sample from ``softmax(logits[c, p, state])`` with chain c's stream, slot by
    slot, so chain c's draws do not depend on how many chains run beside it.  The round
    itself (payoffs, next state) is the matrix game's own rule,
    :func:`metaenvs.games.matrix.play_round`.
    The caller advances ``t`` handling (end of trajectory, updates) in Python.
    """
    n_chains, width = meta_actions.shape
    n_peers = logits.shape[1]
    for c in range(n_chains):
        tc = t[c]
        for w in range(width):
            k = slot0 + w
            s = game_state[c, k]
            hist_states[c, k, tc] = s
            hist_actions[c, k, tc, 0] = meta_actions[c, w]
            for p in range(n_peers):
                a = _sample_softmax(logits[c, p, s], next_uniform(rng, c))
                peer_actions[c, w, p] = a
                hist_actions[c, k, tc, p + 1] = a
            # the matrix game's rule on the joint action just recorded
            new = play_round(hist_actions[c, k, tc], payoff_flat, n_actions, hist_rewards[c, k, tc])
            reward[c, w] = hist_rewards[c, k, tc, 0]
            game_state[c, k] = new
            move_one_hot(obs[c, k], s, new)
        t[c] = tc + 1
