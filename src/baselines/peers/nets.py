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

from baselines.lstm_cell import gate_scale, lstm_cell

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

    The input is a one-hot state, so ``relu(FC(x)) @ W_ih + b`` takes one of S values:
    they are computed once as a ``(C * S, 4 hidden)`` table and each round selects its
    rows, leaving one matrix product (the recurrent one) per round.  The cell is
    :func:`baselines.lstm_cell.lstm_cell`: one sigmoid for all four gates (``tanh`` as
    ``2 sigmoid(2x) - 1``), the cell state held doubled.  Fewer operations per round
    matter more than their size here: the outer gradient differentiates every round of
    every inner step a second time.

    Parameters
    ----------
    params : Params
        Per-chain parameters (leading axis C).
    n_traj : int
        K trajectories per chain.
    """

    def __init__(self, params: Params, n_traj: int) -> None:
        n_chains, hidden = params["fc_b"].shape
        n_states = params["fc_w"].shape[1]
        scale = gate_scale(hidden)  # tanh(g) = 2 sigmoid(2g) - 1
        inputs = torch.relu(params["fc_w"] + params["fc_b"][:, None])  # (C, S, hidden)
        table = torch.baddbmm(params["lstm_b"][:, None], inputs, params["ih_w"]) * scale
        self.table = table.reshape(n_chains * n_states, 4 * hidden)
        self.hh_w = params["hh_w"] * scale
        self.offset = (torch.arange(n_chains) * n_states)[:, None]
        self.shape = (n_chains, n_traj)
        self.h = params["fc_b"].new_zeros(n_chains, n_traj, hidden)
        self.c = torch.zeros_like(self.h)
        self.out_w, self.out_b = params["out_w"], params["out_b"][:, None]

    def step(self, states: torch.Tensor) -> torch.Tensor:
        """Advance one round on state ids ``(C, K)``; the new hidden state ``(C, K, hidden)``."""
        rows = self.table.index_select(0, (states + self.offset).reshape(-1))
        gates = torch.baddbmm(rows.reshape(*self.shape, -1), self.h, self.hh_w)
        self.h, self.c = lstm_cell(gates, self.c)  # self.c holds 2c
        return self.h

    def output(self, hidden: torch.Tensor) -> torch.Tensor:
        """The output layer on hidden states ``(C, M, hidden)``: ``(C, M, out)``."""
        if self.out_w.shape[-1] == 1:  # a value: a product with one column is slow as a bmm
            return (hidden * self.out_w[..., 0][:, None]).sum(-1, keepdim=True) + self.out_b
        return torch.baddbmm(self.out_b, hidden, self.out_w)

    def __call__(self, states: torch.Tensor) -> torch.Tensor:
        """Outputs ``(C, K, out)`` for one round of one-hot states given as ids ``(C, K)``."""
        return self.output(self.step(states))


def run_sequence(params: Params, states: torch.Tensor) -> torch.Tensor:
    """Outputs ``(C, K, H, out)`` of a whole trajectory batch of state ids ``(C, K, H)``.

    Each round's output is taken at once, so only the small outputs are stacked (the
    stacked hidden states of a value batch run to hundreds of megabytes).
    """
    runner = LSTMRunner(params, states.shape[1])
    return torch.stack([runner(states[:, :, t]) for t in range(states.shape[2])], dim=2)
