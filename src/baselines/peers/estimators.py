"""Shared maths of the learning-peers learners: returns, GAE, PCGrad, opponent modelling."""

from __future__ import annotations

import numpy as np
import torch


def discounted_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """``G_t = sum_{t' >= t} gamma^(t' - t) r_t'`` along the last axis."""
    out = torch.empty_like(rewards)
    acc = torch.zeros_like(rewards[..., 0])
    for t in range(rewards.shape[-1] - 1, -1, -1):
        acc = rewards[..., t] + gamma * acc
        out[..., t] = acc
    return out


def gae(rewards: torch.Tensor, values: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
    """Generalised advantage estimates along the last axis (Schulman et al. 2016).

    ``A_t = sum_l (gamma lam)^l delta_{t+l}``, ``delta_t = r_t + gamma V_{t+1} - V_t``,
    with ``V_H = 0``: a trajectory of the chain is a finite-horizon game that ends at H.
    """
    advantages = torch.empty_like(rewards)
    acc = torch.zeros_like(rewards[..., 0])
    next_value = torch.zeros_like(rewards[..., 0])
    for t in range(rewards.shape[-1] - 1, -1, -1):
        delta = rewards[..., t] + gamma * next_value - values[..., t]
        acc = delta + gamma * lam * acc
        advantages[..., t] = acc
        next_value = values[..., t]
    return advantages


RIDGE = 1e-5
"""Initial ridge term of :func:`fit_linear_baseline` (rllab's ``reg_coeff``)."""


def linear_features(obs: torch.Tensor) -> torch.Tensor:
    """rllab's linear-baseline features of ``obs`` ``(..., T, D)``: ``(..., T, 2 D + 4)``.

    ``[o, o^2, t, t^2, t^3, 1]`` with ``o`` clipped to [-10, 10] and ``t = step / 100``.
    """
    o = obs.double().clamp(-10.0, 10.0)
    steps = obs.shape[-2]
    t = torch.arange(steps, dtype=torch.float64) / 100.0
    t = t.reshape((1,) * (obs.dim() - 2) + (steps, 1)).expand(*obs.shape[:-1], 1)
    return torch.cat([o, o * o, t, t * t, t * t * t, torch.ones_like(t)], dim=-1)


def fit_linear_baseline(
    obs: torch.Tensor, returns: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """Ridge least-squares fit of the returns on :func:`linear_features`, per leading index.

    Parameters
    ----------
    obs : torch.Tensor
        ``(P, C, T, D)`` observations of P agents (one fit per agent).
    returns : torch.Tensor
        ``(P, C, T)`` discounted rewards-to-go to fit.
    valid : torch.Tensor
        ``(P, C, T)`` bool, the steps that enter the fit.

    Returns
    -------
    torch.Tensor
        ``(P, C, T)`` float64 fitted values (0 where not valid).  The ridge term starts at
        :data:`RIDGE` and grows tenfold, up to 5 times, while a system is not positive
        definite; an agent whose system never is gets no baseline (zeros).

    Notes
    -----
    With fewer rows ``C T`` than features ``F = 2 D + 4`` (Survival's short pilots:
    1,000 rows, 2,336 features) the same ridge fit is solved in its dual form,
    ``X^T (X X^T + reg I)^{-1} y`` instead of ``(X^T X + reg I)^{-1} X^T y``: a
    ``C T`` square system instead of an ``F`` square one (equal up to rounding).
    """
    n_policies = obs.shape[0]
    x = linear_features(obs).reshape(n_policies, -1, 2 * obs.shape[-1] + 4)
    w = valid.reshape(n_policies, -1, 1).double()
    y = (returns.double() * valid).reshape(n_policies, -1, 1)
    dual = x.shape[1] < x.shape[2]
    xw = x * w  # the invalid rows zeroed: they leave both forms' systems
    gram = xw @ xw.transpose(1, 2) if dual else xw.transpose(1, 2) @ x
    rhs = y if dual else xw.transpose(1, 2) @ y
    eye = torch.eye(gram.shape[-1], dtype=torch.float64)
    solution = torch.zeros_like(rhs)
    todo = torch.ones(n_policies, dtype=torch.bool)
    reg = RIDGE
    for _ in range(5):
        chol, info = torch.linalg.cholesky_ex(gram[todo] + reg * eye)
        ok = info == 0
        idx = torch.nonzero(todo).squeeze(1)
        if ok.any():
            solution[idx[ok]] = torch.cholesky_solve(rhs[idx[ok]], chol[ok])
        todo[idx[ok]] = False
        if not todo.any():
            break
        reg *= 10.0
    coef = xw.transpose(1, 2) @ solution if dual else solution
    return (x @ coef).reshape(valid.shape) * valid


def advantages_with_linear_baseline(
    obs: torch.Tensor, rewards: torch.Tensor, gamma: float
) -> torch.Tensor:
    """REINFORCE advantages of N agents sharing one reward: rewards-to-go less each agent's
    linear feature baseline (rllab's, fitted on the batch), not normalised.

    Parameters
    ----------
    obs : torch.Tensor
        ``(N, B, T, D)`` each agent's observations over B full-length episodes.
    rewards : torch.Tensor
        ``(B, T)`` the shared reward.
    gamma : float
        Discount of the rewards-to-go.

    Returns
    -------
    torch.Tensor
        ``(N, B, T)`` float32.
    """
    rtg = discounted_returns(rewards.double(), gamma).expand(obs.shape[0], *rewards.shape)
    valid = torch.ones(rtg.shape, dtype=torch.bool)
    return (rtg - fit_linear_baseline(obs, rtg, valid)).float()


def project_conflicting(grads: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """PCGrad's projection (Yu et al. 2020): every task's gradient, projected.

    Parameters
    ----------
    grads : torch.Tensor
        ``(T, D)`` one flattened gradient per task (here: per chain, i.e. per persona).
    generator : torch.Generator
        Draws the random order in which each gradient meets the others.

    Returns
    -------
    torch.Tensor
        ``(T, D)``: each ``g_i`` loses its component along every (unprojected) ``g_j``
        it conflicts with (``g_i . g_j < 0``), in a random order of j.
    """
    projected = grads.clone()
    n_tasks = grads.shape[0]
    for i in range(n_tasks):
        for j in torch.randperm(n_tasks, generator=generator).tolist():
            if j == i:
                continue
            dot = projected[i] @ grads[j]
            if dot < 0:
                projected[i] -= dot / grads[j].square().sum().clamp_min(1e-20) * grads[j]
    return projected


def pcgrad(grads: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Projecting conflicting gradients: the mean of :func:`project_conflicting`'s ``(D,)``."""
    return project_conflicting(grads, generator).mean(0)


def model_opponent(
    states: np.ndarray, actions: np.ndarray, n_states: int, n_actions: int
) -> np.ndarray:
    """Maximum-likelihood tabular policy of a peer from its actions (appendix B, eq. 15).

    The log-likelihood ``sum_t log pi(a_t | s_t, phi)`` of a softmax table is maximised
    by the empirical action frequencies per state; one pseudo-count per action keeps
    unvisited states uniform and the logits finite.

    Parameters
    ----------
    states, actions : np.ndarray
        ``(C, K, H)`` state ids and the peer's actions.

    Returns
    -------
    np.ndarray
        ``(C, S, A)`` logits (log-frequencies).
    """
    n_chains, cells = states.shape[0], n_states * n_actions
    flat = (states * n_actions + actions).reshape(n_chains, -1)
    flat = flat + cells * np.arange(n_chains)[:, None]  # one bincount for every chain
    counts = 1.0 + np.bincount(flat.ravel(), minlength=n_chains * cells)
    counts = counts.reshape(n_chains, n_states, n_actions)
    return np.log(counts / counts.sum(-1, keepdims=True))
