"""LSTM policy and value function of appendix C.1, as pure functions of a parameter dict.

``FC(64) -> LSTM(64) -> Linear(out)``, the LSTM state zeroed at the start of every
trajectory.  Parameters are a ``dict[str, Tensor]``: the meta-agent's initial
parameters ``theta`` have no leading axis, its adapted parameters ``phi_l`` one per
chain (leading axis C), so all chains run in one batched matmul while each adapts on
its own data.
"""

from __future__ import annotations

import math

import torch

Params = dict[str, torch.Tensor]


def init_lstm_net(n_in: int, n_out: int, hidden: int, generator: torch.Generator) -> Params:
    """PyTorch-default uniform initialisation of ``FC -> LSTM -> Linear`` parameters."""

    def uniform(shape: tuple[int, ...], fan_in: int) -> torch.Tensor:
        bound = 1.0 / math.sqrt(fan_in)
        return (torch.rand(shape, generator=generator) * 2.0 - 1.0) * bound

    return {
        "fc_w": uniform((n_in, hidden), n_in),
        "fc_b": uniform((hidden,), n_in),
        "ih_w": uniform((hidden, 4 * hidden), hidden),
        "hh_w": uniform((hidden, 4 * hidden), hidden),
        "lstm_b": uniform((4 * hidden,), hidden),
        "out_w": uniform((hidden, n_out), hidden),
        "out_b": uniform((n_out,), hidden),
    }


def per_chain(params: Params, n_chains: int) -> Params:
    """Give every tensor a leading chain axis (a view: gradients flow back to ``params``)."""
    return {k: v.expand(n_chains, *v.shape) for k, v in params.items()}


class LSTMRunner:
    """Step an LSTM net through a trajectory batch one round at a time.

    Parameters
    ----------
    params : Params
        Per-chain parameters (leading axis C).
    n_traj : int
        K trajectories per chain.
    """

    def __init__(self, params: Params, n_traj: int) -> None:
        self.params = params
        n_chains, hidden = params["fc_b"].shape
        self.h = params["fc_b"].new_zeros(n_chains, n_traj, hidden)
        self.c = torch.zeros_like(self.h)

    def __call__(self, states: torch.Tensor) -> torch.Tensor:
        """Outputs ``(C, K, out)`` for one round of one-hot states given as ids ``(C, K)``."""
        p = self.params
        index = states[..., None].expand(*states.shape, p["fc_w"].shape[-1])
        x = torch.relu(p["fc_w"].gather(1, index) + p["fc_b"][:, None])  # one-hot input
        gates = torch.baddbmm(p["lstm_b"][:, None], x, p["ih_w"]) + torch.bmm(self.h, p["hh_w"])
        i, f, g, o = gates.chunk(4, dim=-1)
        self.c = torch.sigmoid(f) * self.c + torch.sigmoid(i) * torch.tanh(g)
        self.h = torch.sigmoid(o) * torch.tanh(self.c)
        return torch.baddbmm(p["out_b"][:, None], self.h, p["out_w"])


def run_sequence(params: Params, states: torch.Tensor) -> torch.Tensor:
    """Outputs ``(C, K, H, out)`` of a whole trajectory batch of state ids ``(C, K, H)``."""
    runner = LSTMRunner(params, states.shape[1])
    return torch.stack([runner(states[:, :, t]) for t in range(states.shape[2])], dim=2)
