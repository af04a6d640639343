"""Networks of the paper's Figure 1, one set of parameters per agent, all agents in one call.

Shapes: ``N`` agents, ``d`` neighbour slots, ``D`` observation size, ``A`` action size.
Per-agent layers hold ``(N, in, out)`` weights and apply them with one ``einsum``, so the
cost in Python does not grow with N.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class AgentLinear(nn.Module):
    """N independent linear layers: ``(..., N, fan_in) -> (..., N, fan_out)``."""

    def __init__(self, n_agents: int, fan_in: int, fan_out: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default initialisation
        self.weight = nn.Parameter(torch.empty(n_agents, fan_in, fan_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_agents, fan_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, fan_in, fan_out = self.weight.shape
        lead = x.shape[:-2]
        rows = x.reshape(-1, n, fan_in).transpose(0, 1)  # (N, M, in): one bmm for all agents
        y = torch.baddbmm(self.bias[:, None, :], rows, self.weight)
        return y.transpose(0, 1).reshape(*lead, n, fan_out)


class AgentMLP(nn.Module):
    """Per-agent ``FC(h) - FC(h) - Linear(out)`` with ReLUs."""

    def __init__(self, n_agents: int, fan_in: int, fan_out: int, hidden: int = 128) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [
                AgentLinear(n_agents, fan_in, hidden),
                AgentLinear(n_agents, hidden, hidden),
                AgentLinear(n_agents, hidden, fan_out),
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        return self.layers[-1](x)


class PolicyNet(nn.Module):
    """Deterministic policy ``a^i = pi^i(o^i, o(C^i))`` in ``[0, 1]^A``.

    The received observations are a sequence through an LSTM (slots without a message are
    skipped: the state carries over them, weighted by the mask so a relaxed mask passes
    gradients); its last hidden state is concatenated with ``o^i`` and fed to an MLP.
    """

    def __init__(self, n_agents: int, obs_dim: int, act_dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.hidden = hidden
        self.lstm_in = AgentLinear(n_agents, obs_dim, 4 * hidden)
        self.lstm_rec = AgentLinear(n_agents, hidden, 4 * hidden)
        self.head = AgentMLP(n_agents, obs_dim + hidden, act_dim, hidden)

    def forward(
        self, own: torch.Tensor, received: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Actions ``(..., N, A)`` from ``own (..., N, D)``, ``received (..., N, d, D)`` and
        the request ``mask (..., N, d)``."""
        h = own.new_zeros(*own.shape[:-1], self.hidden)
        c = torch.zeros_like(h)
        for s in range(received.shape[-2]):
            gates = self.lstm_in(received[..., s, :]) + self.lstm_rec(h)
            i, f, g, o = gates.chunk(4, dim=-1)
            c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h_new = torch.sigmoid(o) * torch.tanh(c_new)
            m = mask[..., s, None]
            h = m * h_new + (1.0 - m) * h
            c = m * c_new + (1.0 - m) * c
        return torch.sigmoid(self.head(torch.cat([own, h], dim=-1)))


class JointMLP(nn.Module):
    """``FC(h) - FC(h) - Linear(1)`` on flattened joint inputs: the critic and the baseline."""

    def __init__(self, fan_in: int, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(fan_in, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 1),
        )  # fmt: skip

    def forward(self, *parts: torch.Tensor) -> torch.Tensor:
        """Concatenate the parts (each ``(..., N, k)``, flattened over agents) -> ``(...)``."""
        x = torch.cat([p.flatten(-2) for p in parts], dim=-1)
        return self.net(x).squeeze(-1)


class UpdateRule(nn.Module):
    """The meta-learned update rule eta: a backward LSTM over a trajectory.

    Input at step t: ``[r_t, d_t, gamma, c(i<-j)(o^i_t) for every pair]``, read from the
    last step to the first; output: one advantage ``A_t(i<-j)`` per pair and step
    (``LSTM(h) - FC(h) - Linear(N d)``, the paper's Table 1).
    """

    def __init__(self, n_agents: int, slots: int, hidden: int = 128) -> None:
        super().__init__()
        self.pairs = n_agents * slots
        self.lstm = nn.LSTM(3 + self.pairs, hidden, batch_first=True)
        self.head = nn.Sequential(
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, self.pairs)
        )

    def forward(
        self, reward: torch.Tensor, done: torch.Tensor, gamma: float, probs: torch.Tensor
    ) -> torch.Tensor:
        """``reward, done (E, T)``, ``probs (E, T, N, d)`` -> advantages ``(E, T, N, d)``."""
        e, t = reward.shape
        x = torch.cat(
            [reward[..., None], done[..., None], reward.new_full((e, t, 1), gamma),
             probs.flatten(-2)], dim=-1,
        )  # fmt: skip
        out, _ = self.lstm(x.flip(1))
        return self.head(out).flip(1).reshape(probs.shape)
