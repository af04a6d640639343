"""Policies of DiMA-PG (appendix C.2) and of the kitchen-sink baseline, as pure functions.

A policy is an MLP ``obs -> logits`` whose parameters are a ``dict[str, Tensor]`` with a
leading *policy axis* P: ``w0`` ``(P, D, H1)``, ``b0`` ``(P, 1, H1)``, ..., so P
policies (the central ``theta`` of each population, the adapted ``theta_n`` of every
sampled agent, or one policy per agent) run in one batched matmul on inputs
``(P, M, D)``, and the gradient of a sum of per-policy losses is every policy's own
gradient, in one backward pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

Params = dict[str, torch.Tensor]


def init_mlp(
    n_policies: int,
    sizes: Sequence[int],
    generator: torch.Generator,
    out_scale: float = 0.01,
) -> Params:
    """Xavier-uniform weights, zero biases; the output layer scaled by ``out_scale``.

    Parameters
    ----------
    n_policies : int
        P, the leading policy axis (each policy drawn independently).
    sizes : sequence of int
        ``(D, H1, ..., A)``: input, hidden and output widths.
    generator : torch.Generator
        Source of the draws.
    out_scale : float
        Factor of the last layer's weights (0.01: a nearly uniform initial policy).

    Returns
    -------
    Params
        ``w{i}`` ``(P, sizes[i], sizes[i + 1])`` and ``b{i}`` ``(P, 1, sizes[i + 1])``.
    """
    params: Params = {}
    layers = len(sizes) - 1
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        bound = math.sqrt(6.0 / (n_in + n_out))
        w = (torch.rand((n_policies, n_in, n_out), generator=generator) * 2.0 - 1.0) * bound
        params[f"w{i}"] = w * (out_scale if i == layers - 1 else 1.0)
        params[f"b{i}"] = torch.zeros((n_policies, 1, n_out))
    return params


def n_layers(params: Params) -> int:
    """Number of linear layers of an :func:`init_mlp` parameter dict."""
    return len(params) // 2


def mlp(params: Params, x: torch.Tensor, activation: str = "relu") -> torch.Tensor:
    """Apply P MLPs to P row blocks: ``x`` ``(P, M, D)`` -> ``(P, M, out)``.

    ``activation`` (``"relu"`` or ``"elu"``) follows every layer but the last.
    """
    act = torch.relu if activation == "relu" else torch.nn.functional.elu
    layers = n_layers(params)
    for i in range(layers):
        x = torch.baddbmm(params[f"b{i}"], x, params[f"w{i}"])
        if i < layers - 1:
            x = act(x)
    return x


def select(params: Params, index: torch.Tensor) -> Params:
    """Policies ``index`` of ``params`` (a gather: gradients flow back to ``params``)."""
    return {k: v[index] for k, v in params.items()}


def detached(params: Params) -> Params:
    """A copy of ``params`` without graph (what rollouts act with)."""
    return {k: v.detach() for k, v in params.items()}


def masked_log_softmax(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``log_softmax`` over the last axis with unavailable actions (``mask == 0``) at -inf."""
    if mask is not None:
        logits = logits.masked_fill(mask == 0, float("-inf"))
    return torch.log_softmax(logits, dim=-1)


def action_log_probs(
    logits: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """``log pi(a | o)`` of integer ``actions`` (shape of ``logits`` less its last axis).

    A masked log-probability of -inf (a dead agent's placeholder action) comes back as 0;
    the losses mask those entries out anyway.
    """
    logp = masked_log_softmax(logits, mask).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    return torch.nan_to_num(logp, neginf=0.0)


def entropy(logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Entropy of the categorical distributions of ``logits`` (last axis)."""
    logp = masked_log_softmax(logits, mask)
    p = logp.exp()
    return -(p * torch.nan_to_num(logp, neginf=0.0)).sum(-1)
