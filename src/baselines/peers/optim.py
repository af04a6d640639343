"""The learning-peers meta-agents' outer optimisers: the authors' ``SharedAdam`` and a
choice between it and PyTorch's Adam.

The authors' code (dkkim93/meta-mapg, ``meta/meta_agent.py::share_memory``) steps the
policy, the learned inner rates and the value function with ``SharedAdam``
(``misc/shared_adam.py``) at ``amsgrad=True`` and its default ``eps=1e-3``; the policy
and the inner rates at the actor's outer rate, the value function at its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

import baselines._torch  # noqa: F401  (optimisers without torch._dynamo)

OUTER_OPTIMIZERS: tuple[str, ...] = ("shared_adam", "adam")
"""``"shared_adam"``: :class:`SharedAdam` (the authors' code); ``"adam"``: PyTorch's
``Adam(amsgrad=True)`` with its eps 1e-8."""


class SharedAdam(torch.optim.Optimizer):
    """The code's outer optimiser (``misc/shared_adam.py``): AMSGrad with ``eps=1e-3``.

    ``p -= lr sqrt(1 - beta2^n) / (1 - beta1^n) * m / (sqrt(max v) + eps)``: eps is added
    before the bias correction, where PyTorch's ``Adam(amsgrad=True)`` adds it after (an
    effective eps of ``eps / sqrt(1 - beta2^n)`` here), and the code's eps is 1e-3, not
    PyTorch's 1e-8; both matter for the small value and inner-rate gradients.
    """

    def __init__(
        self,
        params: Any,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-3,
        amsgrad: bool = True,
    ) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "amsgrad": amsgrad})

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros(())
                    for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
                        state[key] = torch.zeros_like(p)
                state["step"] += 1
                n = float(state["step"])
                m, v, v_max = state["exp_avg"], state["exp_avg_sq"], state["max_exp_avg_sq"]
                m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                if group["amsgrad"]:
                    torch.maximum(v_max, v, out=v_max)
                denom = (v_max if group["amsgrad"] else v).sqrt().add_(group["eps"])
                size = group["lr"] * math.sqrt(1 - beta2**n) / (1 - beta1**n)
                p.addcdiv_(m, denom, value=-size)


def outer_optimizer(kind: str, params: Iterable[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    """An outer optimiser of one of :data:`OUTER_OPTIMIZERS`, AMSGrad either way.

    Raises
    ------
    ValueError
        If ``kind`` is not one of :data:`OUTER_OPTIMIZERS`.
    """
    if kind == "shared_adam":
        return SharedAdam(params, lr=lr)
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, amsgrad=True)
    raise ValueError(f"outer_optimizer must be one of {OUTER_OPTIMIZERS}, got {kind!r}")
