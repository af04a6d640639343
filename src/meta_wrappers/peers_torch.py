"""The learning peers' update as a differentiable torch function (DiCE).

Paper: meta-mapg-learning-peers, section 3.3 and appendix C.2; DiCE: Foerster et al.
(2018c).  Imported only by learners (``torch`` is not needed by :mod:`meta_wrappers.peers`).

The peers' policy-gradient step of :mod:`meta_wrappers.peers` is the gradient of the
DiCE objective

``J = 1/K sum_k sum_t box(sum_{t' <= t} sum_j log pi_j(a_j,t' | s_t')) gamma^t r_t
      + 1/K sum_k sum_t (1 - box(sum_j log pi_j(a_j,t | s_t))) gamma^t b_t``

(``box(x) = exp(x - stop_gradient(x))``, b the linear feature baseline).  Its value
and first derivative equal the score-function estimator, so the update here gives the
same ``phi_{l+1}`` as the env; and when the meta-agent's log-probabilities join the
stochastic nodes (``meta_logprobs``), ``phi_{l+1}`` carries the gradient with respect
to the meta-agent's parameters, the peer-learning term of Meta-MAPG.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from meta_wrappers.peers import feature_baselines


def magic_box(x: torch.Tensor) -> torch.Tensor:
    """DiCE's ``box(x) = exp(x - stop_gradient(x))``: value 1, gradient that of x."""
    return torch.exp(x - x.detach())


def tabular_logprobs(logits: torch.Tensor, states: Any, actions: Any) -> torch.Tensor:
    """``log softmax(logits)[s, a]`` along trajectories.

    Parameters
    ----------
    logits : torch.Tensor
        ``(C, S, A)`` one table per chain.
    states, actions : array_like
        ``(C, K, H)`` integer state ids and actions.

    Returns
    -------
    torch.Tensor
        ``(C, K, H)`` log-probabilities.
    """
    n_chains, _, n_actions = logits.shape
    flat = torch.log_softmax(logits, dim=-1).reshape(n_chains, -1)
    index = torch.as_tensor(np.asarray(states) * n_actions + np.asarray(actions))
    return flat.gather(1, index.reshape(n_chains, -1)).reshape(index.shape)


def dice_objective(
    dependencies: torch.Tensor,
    nodes: torch.Tensor,
    rewards: torch.Tensor,
    baseline: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """DiCE objective with a baseline, per chain.

    Parameters
    ----------
    dependencies : torch.Tensor
        ``(C, K, H)`` log-probabilities of every stochastic node the rewards depend on,
        summed over the players at each step (accumulated over time here).
    nodes : torch.Tensor
        ``(C, K, H)`` the same per-step sums (for the baseline term).
    rewards, baseline : torch.Tensor
        ``(C, K, H)`` the player's rewards and baseline values (data).
    gamma : float
        Discount.

    Returns
    -------
    torch.Tensor
        ``(C,)`` objective, mean over the K trajectories.
    """
    horizon = rewards.shape[-1]
    discount = gamma ** torch.arange(horizon, dtype=rewards.dtype)
    reward_term = (magic_box(torch.cumsum(dependencies, dim=-1)) * discount * rewards).sum(-1)
    baseline_term = ((1.0 - magic_box(nodes)) * discount * baseline).sum(-1)
    return (reward_term + baseline_term).mean(-1)


def score_surrogate(
    logprobs: torch.Tensor, rewards: torch.Tensor, baseline: torch.Tensor, gamma: float
) -> torch.Tensor:
    """The score-function surrogate with :func:`dice_objective`'s gradient, per chain.

    ``1/K sum_k sum_t log pi_kt * stop_gradient(sum_{t' >= t} gamma^t' r_kt' - gamma^t b_kt)``:
    its first derivative equals DiCE's (same nodes, same baseline), its second only
    differentiates the log-probabilities, the samples held fixed (DiCE's second
    derivative adds the score products that estimate how the samples move).

    Parameters
    ----------
    logprobs, rewards, baseline : torch.Tensor
        ``(C, K, H)``.
    gamma : float
        Discount.

    Returns
    -------
    torch.Tensor
        ``(C,)``.
    """
    horizon = rewards.shape[-1]
    discount = gamma ** torch.arange(horizon, dtype=rewards.dtype)
    to_go = (discount * rewards).flip(-1).cumsum(-1).flip(-1) - discount * baseline
    return (logprobs * to_go.detach()).sum(-1).mean(-1)


def fit_baselines(
    states: np.ndarray, rewards: np.ndarray, gamma: float, n_states: int
) -> np.ndarray:
    """Linear feature baselines ``(C, K, H)`` of one player's rewards ``(C, K, H)``.

    The same fit as the env's peer update (one Numba kernel for every chain, no
    gradient): discounted returns regressed on
    ``[onehot(s), onehot(s)**2, t/100, (t/100)**2, (t/100)**3, 1]`` per chain
    (:func:`meta_wrappers.peers.feature_baselines`).
    """
    return feature_baselines(states, rewards, gamma, n_states)[1]


def peer_baselines(
    states: np.ndarray, rewards: np.ndarray, gamma: float, n_states: int
) -> np.ndarray:
    """Linear feature baselines ``(C, P, K, H)`` of every peer (player ``p + 1``) of a batch.

    ``rewards`` is ``(C, K, H, N)``; see :func:`fit_baselines`.
    """
    n_peers = rewards.shape[-1] - 1
    return np.stack(
        [fit_baselines(states, rewards[..., p + 1], gamma, n_states) for p in range(n_peers)],
        axis=1,
    )


def mlp_tables(params: torch.Tensor, n_states: int, n_actions: int, hidden: int) -> torch.Tensor:
    """Logit tables ``(..., S, A)`` of MLP peers with flattened parameters ``(..., D)``.

    The torch twin of :func:`meta_wrappers._peer_kernels.mlp_table`:
    ``tanh(W1[s] + b1) @ W2 + b2`` with ``params = [W1 (S, h), b1 (h), W2 (h, A), b2 (A)]``.
    """
    lead = params.shape[:-1]
    sizes = [n_states * hidden, hidden, hidden * n_actions, n_actions]
    w1, b1, w2, b2 = torch.split(params, sizes, dim=-1)
    h = torch.tanh(w1.reshape(*lead, n_states, hidden) + b1[..., None, :])
    return h @ w2.reshape(*lead, hidden, n_actions) + b2[..., None, :]


def dice_peer_update(
    logits: torch.Tensor,
    states: Any,
    actions: Any,
    rewards: Any,
    baseline: Any,
    lr: float,
    gamma: float,
    meta_logprobs: torch.Tensor | None = None,
    to_table: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """The peers' next parameters ``phi_{l+1}`` as a differentiable function.

    Parameters
    ----------
    logits : torch.Tensor
        ``(C, P, S, A)`` the peers' parameters ``phi_l`` (may carry a graph); with
        ``to_table``, any ``(C, P, ...)`` parameters it maps to logit tables.
    states : array_like
        ``(C, K, H)`` state ids.
    actions : array_like
        ``(C, K, H, N)`` actions; player 0 is the meta-agent, peer p is player p + 1.
    rewards : array_like
        ``(C, K, H, N)`` rewards.
    baseline : array_like
        ``(C, P, K, H)`` the peers' baselines (:func:`peer_baselines`, or the env's
        :attr:`~meta_wrappers.peers.TrajectoryBatch.baseline`).
    lr, gamma : float
        The peers' learning rate and discount (the env's ``peer_lr`` and ``gamma``).
    meta_logprobs : torch.Tensor, optional
        ``(C, K, H)`` the meta-agent's log-probabilities of its actions.  When given they
        join the stochastic nodes, so the result depends on the meta-agent's parameters
        (the peer-learning term); without them it does not.
    to_table : callable, optional
        Maps the parameters to ``(C, P, S, A)`` logit tables (e.g. :func:`mlp_tables`
        for ``peer_model="mlp"``); the identity by default (tabular peers).

    Returns
    -------
    torch.Tensor
        ``(C, P, S, A)`` ``phi_l + lr * grad J``, built with ``create_graph=True``.
    """
    actions = np.asarray(actions)
    n_peers = logits.shape[1]
    dtype = logits.dtype
    rewards_t = torch.as_tensor(np.asarray(rewards), dtype=dtype)
    baseline_t = torch.as_tensor(np.asarray(baseline), dtype=dtype)
    tables = logits if to_table is None else to_table(logits)
    peer_lp = [tabular_logprobs(tables[:, p], states, actions[..., p + 1]) for p in range(n_peers)]
    nodes = torch.stack(peer_lp).sum(0)
    if meta_logprobs is not None:
        nodes = nodes + meta_logprobs.to(dtype)
    steps = []
    for p in range(n_peers):
        objective = dice_objective(nodes, nodes, rewards_t[..., p + 1], baseline_t[:, p], gamma)
        (grad,) = torch.autograd.grad(objective.sum(), logits, create_graph=True)
        steps.append(grad[:, p])
    return logits + lr * torch.stack(steps, dim=1)
