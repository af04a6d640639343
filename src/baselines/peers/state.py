"""What the learning-peers meta-agents (matrix games, HalfCheetah) checkpoint, written once."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch


class MetaAgentState:
    """Checkpointing for a meta-agent holding ``actor`` and ``value`` parameter dicts,
    learned inner rates ``inner_lr``, their three optimisers and an ``iteration`` counter."""

    actor: dict[str, torch.Tensor]
    value: dict[str, torch.Tensor]
    inner_lr: torch.Tensor
    actor_opt: torch.optim.Optimizer
    lr_opt: torch.optim.Optimizer
    value_opt: torch.optim.Optimizer
    iteration: int

    def state_dict(self) -> dict[str, Any]:
        """Copies of the parameters, the optimisers' states and the iteration."""
        return {
            "actor": {k: v.detach().clone() for k, v in self.actor.items()},
            "value": {k: v.detach().clone() for k, v in self.value.items()},
            "inner_lr": self.inner_lr.detach().clone(),
            # copies: a state dict shares the optimiser's live moment tensors
            "actor_opt": copy.deepcopy(self.actor_opt.state_dict()),
            "lr_opt": copy.deepcopy(self.lr_opt.state_dict()),
            "value_opt": copy.deepcopy(self.value_opt.state_dict()),
            "iteration": self.iteration,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; checked before anything changes.

        Raises
        ------
        ValueError
            If a tensor's name or shape differs from this learner's, or an optimiser's
            eps (``SharedAdam``'s 1e-3, PyTorch's Adam's 1e-8) does.
        """
        for group in ("actor", "value"):
            mine, theirs = getattr(self, group), state[group]
            if set(mine) != set(theirs) or any(mine[k].shape != theirs[k].shape for k in mine):
                raise ValueError(f"checkpoint's {group} parameters do not fit this learner")
        if state["inner_lr"].shape != self.inner_lr.shape:
            raise ValueError("checkpoint's inner learning rates do not fit this chain length")
        for name in ("actor_opt", "lr_opt", "value_opt"):
            mine = getattr(self, name).param_groups[0]["eps"]
            theirs = {group["eps"] for group in state[name]["param_groups"]}
            if theirs != {mine}:
                raise ValueError(
                    f"checkpoint's {name} has eps {sorted(theirs)}, this learner's {mine}: "
                    "another outer optimiser"
                )
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.lr_opt.load_state_dict(state["lr_opt"])
        self.value_opt.load_state_dict(state["value_opt"])
        with torch.no_grad():
            for k, v in state["actor"].items():
                self.actor[k].copy_(v)
            for k, v in state["value"].items():
                self.value[k].copy_(v)
            self.inner_lr.copy_(state["inner_lr"])
        self.iteration = int(state["iteration"])


def clip_rows(per_chain: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Each row of ``(C, D)`` scaled down to norm ``max_norm`` at most (clip per chain)."""
    norms = per_chain.norm(dim=1, keepdim=True)
    return per_chain * (max_norm / (norms + 1e-12)).clamp(max=1.0)


def step_each(optimizer: torch.optim.Optimizer, targets: list[torch.Tensor], steps: Any) -> None:
    """One ``optimizer.step()`` per flat gradient of ``steps`` (rows ``(D,)``), each set as
    the ``.grad`` of ``targets`` in their order."""
    for step in steps:
        offset = 0
        for target in targets:
            target.grad = step[offset : offset + target.numel()].reshape(target.shape).clone()
            offset += target.numel()
        optimizer.step()


def mix_seed(seed: int, index: int) -> int:
    """A seed for draw ``index`` of a run seeded ``seed`` (distinct, non-negative)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint32)[0])
