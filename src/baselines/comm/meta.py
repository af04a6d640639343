"""The pieces of the communication networks' updates: Bernoulli log-likelihoods, the
REINFORCE / meta-learned surrogate (equations 4 and 5), the differentiable inner step, the
regularised meta-objective (equations 7 and 8), n-step returns for the learned baseline,
and the K-step unroll whose blended meta-gradient is equation 9.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

Params = dict[str, torch.Tensor]


def bernoulli_log_prob(logits: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
    """``log c(I | o)`` of samples ``I`` in {0, 1} under Bernoulli(sigmoid(logits))."""
    return -F.binary_cross_entropy_with_logits(logits, sample, reduction="none")


def bernoulli_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of Bernoulli(sigmoid(logits)), elementwise."""
    p = torch.sigmoid(logits)
    return F.binary_cross_entropy_with_logits(logits, p, reduction="none")


def surrogate(
    logits: torch.Tensor,
    sample: torch.Tensor,
    advantage: torch.Tensor,
    valid: torch.Tensor,
    behaviour_logp: torch.Tensor | None = None,
) -> torch.Tensor:
    """``sum_t sum_(i,j) log c(I_t(i<-j) | o_t) A_t(i<-j)`` averaged over episodes.

    All arguments are ``(E, T, N, d)``; ``advantage`` broadcasts (a shared ``G_t`` is
    ``(E, T, 1, 1)``); pairs with an empty neighbour slot (``valid`` 0) do not count.
    With ``behaviour_logp`` (``log c_b(I | o)`` of the parameters that sampled the
    requests), each term is ``c(I | o) / c_b(I | o) * A`` instead: per-decision importance
    sampling, whose gradient is the ratio times the on-policy term's (equal to it where
    the sampling parameters are the current ones).
    """
    logp = bernoulli_log_prob(logits, sample)
    weight = logp if behaviour_logp is None else torch.exp(logp - behaviour_logp)
    return (weight * advantage * valid).sum() / logits.shape[0]


def meta_objective(
    logits: torch.Tensor,
    sample: torch.Tensor,
    advantage: torch.Tensor,
    valid: torch.Tensor,
    beta: float,
    behaviour_logp: torch.Tensor | None = None,
) -> torch.Tensor:
    """Equation 8's objective at post-update parameters: the policy-gradient surrogate with
    advantage ``G^(phi,n)_t - V(o_t)`` (importance-weighted with ``behaviour_logp``, see
    :func:`surrogate`) plus ``beta`` times the summed Bernoulli entropy."""
    entropy = (bernoulli_entropy(logits) * valid).sum() / logits.shape[0]
    return surrogate(logits, sample, advantage, valid, behaviour_logp) + beta * entropy


def rmsprop_ascent(
    params: Params,
    grads: Sequence[torch.Tensor],
    square_avg: Params,
    lr: float,
    alpha: float = 0.99,
    eps: float = 1e-8,
) -> tuple[Params, Params]:
    """One RMSprop step up the gradient, differentiable in ``grads``.

    The running average of squared gradients is updated with detached gradients (it is
    optimiser state, not part of the update rule), so the step is linear in ``grads``.
    """
    new_params, new_avg = {}, {}
    for (name, p), g in zip(params.items(), grads):
        avg = alpha * square_avg[name] + (1.0 - alpha) * g.detach() ** 2
        new_params[name] = p + lr * g / (avg.sqrt() + eps)
        new_avg[name] = avg
    return new_params, new_avg


def clip_by_norm(grads: Sequence[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """``torch.nn.utils.clip_grad_norm_``'s rule (scale by ``max_norm / (norm + 1e-6)``
    when below 1), differentiably: the scale is part of the graph."""
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    scale = (max_norm / (norm + 1e-6)).clamp(max=1.0)
    return [g * scale for g in grads]


def inner_step(
    comm_logits: Callable[[Params, torch.Tensor], torch.Tensor],
    params: Params,
    square_avg: Params,
    batch: dict[str, torch.Tensor],
    advantage: torch.Tensor,
    lr: float,
    alpha: float = 0.99,
    clip: float = 0.0,
) -> tuple[Params, Params]:
    """Equation 5: ``theta_c(k) = theta_c(k-1) + RMSprop(grad surrogate)``, keeping the graph
    from ``advantage`` (the rule's output) to the new parameters; the gradient's norm is
    clipped at ``clip`` first (0: no clip), as every method's communication update is."""
    logits = comm_logits(params, batch["obs"])
    objective = surrogate(
        logits, batch["sample"], advantage, batch["valid"], batch.get("behaviour_logp")
    )
    grads = torch.autograd.grad(objective, list(params.values()), create_graph=True)
    if clip > 0:
        grads = clip_by_norm(grads, clip)
    return rmsprop_ascent(params, grads, square_avg, lr, alpha)


def n_step_returns(
    reward: torch.Tensor, values: torch.Tensor, last_value: torch.Tensor, gamma: float, n: int
) -> torch.Tensor:
    """``G^(phi,n)_t = sum_(k<n) gamma^k r_(t+k) + gamma^n V(o_(t+n))`` within one episode.

    ``reward, values (E, T)``; ``last_value (E,)`` is V of the observation after the last
    step (the episodes end by truncation, so they bootstrap there).
    """
    e, t = reward.shape
    v_ext = torch.cat([values, last_value[:, None]], dim=1)  # V(o_0) ... V(o_T)
    out = torch.empty_like(reward)
    for s in range(t):
        end = min(s + n, t)
        discounts = gamma ** torch.arange(end - s, dtype=reward.dtype)
        out[:, s] = (reward[:, s:end] * discounts).sum(1) + gamma ** (end - s) * v_ext[:, end]
    return out


def unrolled_meta_objective(
    rule: Callable[[dict[str, torch.Tensor], Params], torch.Tensor],
    comm_logits: Callable[[Params, torch.Tensor], torch.Tensor],
    params: Params,
    square_avg: Params,
    trajectories: Sequence[dict[str, torch.Tensor]],
    lr: float,
    beta: float,
    alpha: float = 0.99,
    clip: float = 0.0,
    blend: bool = True,
) -> tuple[torch.Tensor, Params, Params]:
    """Equation 9 on K + 1 trajectories: K inner steps, the objective after each, averaged
    (``blend=False``: equation 8, the objective after the K-th step alone).

    ``trajectories[k]`` was generated with ``theta_c(k)``: inner step k + 1 learns from it
    with the advantages ``rule(trajectory, theta_c(k))``, and objective k is measured on
    it.  Returns the blended objective (differentiable in the rule's parameters), the
    final parameters and the optimiser statistics.
    """
    objectives = []
    last = len(trajectories) - 1
    for k, batch in enumerate(trajectories):
        if k > 0 and (blend or k == last):
            logits = comm_logits(params, batch["obs"])
            objectives.append(
                meta_objective(
                    logits,
                    batch["sample"],
                    batch["advantage"],
                    batch["valid"],
                    beta,
                    batch.get("behaviour_logp"),
                )  # fmt: skip
            )
        if k < last:
            advantage = rule(batch, params)
            params, square_avg = inner_step(
                comm_logits, params, square_avg, batch, advantage, lr, alpha, clip
            )
    return torch.stack(objectives).mean(), params, square_avg
