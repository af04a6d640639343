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
