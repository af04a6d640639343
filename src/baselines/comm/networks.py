"""Networks of the paper's Figure 1, one set of parameters per agent, all agents in one call.

Shapes: ``N`` agents, ``d`` neighbour slots, ``D`` observation size, ``A`` action size.
Per-agent layers hold ``(N, in, out)`` weights and run agent-major (``(N, M, in)`` rows,
one batched matrix product for all agents), so the cost in Python does not grow with N.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from baselines.lstm_cell import gate_scale, lstm_cell

Params = dict[str, torch.Tensor]


def to_agents(x: torch.Tensor) -> torch.Tensor:
    """``(..., N, k) -> (N, M, k)``: agent-major rows for a batched product per agent."""
    n, k = x.shape[-2:]
    return x.reshape(-1, n, k).transpose(0, 1)


def from_agents(y: torch.Tensor, lead: torch.Size) -> torch.Tensor:
    """Inverse of :func:`to_agents`: ``(N, M, k) -> (*lead, N, k)``."""
    return y.transpose(0, 1).reshape(*lead, y.shape[0], y.shape[-1])


def agent_mlp(x: torch.Tensor, layers: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Agent-major MLP: ReLU between the ``(weight (N, in, out), bias (N, out))`` layers."""
    for index, (weight, bias) in enumerate(layers):
        x = torch.baddbmm(bias[:, None, :], x, weight)
        if index < len(layers) - 1:
            x = torch.relu(x)
    return x


class AgentLinear(nn.Module):
    """N independent linear layers: ``(..., N, fan_in) -> (..., N, fan_out)``."""

    def __init__(self, n_agents: int, fan_in: int, fan_out: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default initialisation
        self.weight = nn.Parameter(torch.empty(n_agents, fan_in, fan_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_agents, fan_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.baddbmm(self.bias[:, None, :], to_agents(x), self.weight)
        return from_agents(y, x.shape[:-2])


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

    def forward(self, x: torch.Tensor, params: Params | None = None) -> torch.Tensor:
        """``(..., N, fan_in) -> (..., N, fan_out)``; with ``params`` (keyed as
        ``named_parameters``) in place of the module's own: a functional call."""
        return from_agents(agent_mlp(to_agents(x), self.weights(params)), x.shape[:-2])

    def weights(self, params: Params | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``(weight, bias)`` per layer, the module's own or taken from ``params``."""
        if params is None:
            return [(layer.weight, layer.bias) for layer in self.layers]
        return [
            (params[f"layers.{i}.weight"], params[f"layers.{i}.bias"])
            for i in range(len(self.layers))
        ]


class PolicyNet(nn.Module):
    """Deterministic policy ``a^i = pi^i(o^i, o(C^i))`` in ``[0, 1]^A``.

    The received observations are a sequence through an LSTM (slots without a message are
    skipped: the state carries over them, weighted by the mask so a relaxed mask passes
    gradients); its last hidden state is concatenated with ``o^i`` and fed to an MLP.

    Computed agent-major: the input projection of every slot is one batched product, the
    first slot (zero state) needs no recurrent product, and the cell is
    :func:`baselines.lstm_cell.lstm_cell` (one sigmoid for all gates).
    """

    def __init__(self, n_agents: int, obs_dim: int, act_dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.hidden = hidden
        self.lstm_in = AgentLinear(n_agents, obs_dim, 4 * hidden)
        self.lstm_rec = AgentLinear(n_agents, hidden, 4 * hidden)
        self.head = AgentMLP(n_agents, obs_dim + hidden, act_dim, hidden)
        self.register_buffer("scale", gate_scale(hidden), persistent=False)

    def forward(
        self, own: torch.Tensor, received: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Actions ``(..., N, A)`` from ``own (..., N, D)``, ``received (..., N, d, D)`` and
        the request ``mask (..., N, d)``.

        A mask that needs no gradient must be 0/1, and only the requested slots are
        computed (:meth:`_packed`); a mask with a gradient (STGS's relaxed one) runs every
        slot (:meth:`_dense`).

        Raises
        ------
        ValueError
            For a mask without a gradient that is not 0/1.
        """
        lead = own.shape[:-2]
        scale = self.scale.to(own.dtype)
        w_in, w_rec = self.lstm_in.weight * scale, self.lstm_rec.weight * scale
        bias = ((self.lstm_in.bias + self.lstm_rec.bias) * scale)[:, None, :]
        x, m = to_agents(received.flatten(-2)), to_agents(mask)  # (N, M, d D), (N, M, d)
        x = x.reshape(*m.shape, -1)
        if not mask.requires_grad and not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError("a mask without a gradient must be 0/1 (a relaxed mask needs one)")
        run = self._dense if mask.requires_grad else self._packed
        h = run(x, m, w_in, w_rec, bias)
        features = torch.cat([to_agents(own), h], dim=-1)
        return from_agents(torch.sigmoid(agent_mlp(features, self.head.weights())), lead)

    def _dense(self, x, m, w_in, w_rec, bias) -> torch.Tensor:  # noqa: ANN001
        """Every slot of every row; the state carries over unrequested slots by ``lerp``
        with the mask, so a relaxed mask gets gradients through the carry too."""
        n, rows, d, obs_dim = x.shape
        inputs = torch.baddbmm(bias, x.reshape(n, rows * d, obs_dim), w_in)
        inputs = inputs.reshape(n, rows, d, -1)
        m = m[..., None]
        h = c2 = None
        for s in range(d):
            if h is None:  # zero state: no recurrent product, nothing to carry over
                h_new, c2_new = lstm_cell(inputs[:, :, s], None)
                h, c2 = m[:, :, s] * h_new, m[:, :, s] * c2_new
            else:
                h_new, c2_new = lstm_cell(torch.baddbmm(inputs[:, :, s], h, w_rec), c2)
                h, c2 = torch.lerp(h, h_new, m[:, :, s]), torch.lerp(c2, c2_new, m[:, :, s])
        return h

    def _packed(self, x, m, w_in, w_rec, bias) -> torch.Tensor:  # noqa: ANN001
        """The same hidden state computed on requested slots only.

        Each row's requested slots move to the front (in slot order) and the rows of each
        agent are sorted by their number of requests, so step s runs on a prefix of the
        rows (the longest prefix over agents; rows in it with fewer requests keep their
        state by the mask).  Rows without a request keep the zero state.
        """
        n, rows, d, obs_dim = x.shape
        counts = m.sum(-1)  # (N, M) requests per row
        slot_order = torch.argsort(m, dim=-1, descending=True, stable=True)
        row_order = torch.argsort(counts, dim=-1, descending=True, stable=True)
        slots = torch.arange(d, device=x.device)
        active = (counts.gather(1, row_order)[..., None] > slots).to(x.dtype)
        per_step = active.sum(1).amax(0).tolist()  # prefix length of each step
        slot_order = slot_order.gather(1, row_order[..., None].expand(-1, -1, d))
        x = x.gather(1, row_order[..., None, None].expand(-1, -1, d, obs_dim))
        x = x.gather(2, slot_order[..., None].expand(-1, -1, -1, obs_dim))
        if per_step[0] == 0:
            return x.new_zeros(n, rows, w_rec.shape[1])
        prefix = int(per_step[0])
        h_run, c2 = lstm_cell(torch.baddbmm(bias, x[:, :prefix, 0], w_in), None)
        on = active[:, :prefix, :1]
        h_run, c2 = on * h_run, on * c2
        for s in range(1, d):
            p = int(per_step[s])
            if p == 0:
                break
            gates = torch.baddbmm(torch.baddbmm(bias, x[:, :p, s], w_in), h_run[:, :p], w_rec)
            h_new, c2_new = lstm_cell(gates, c2[:, :p])
            on = active[:, :p, s : s + 1]
            head = torch.lerp(h_run[:, :p], h_new, on), torch.lerp(c2[:, :p], c2_new, on)
            h_run = torch.cat([head[0], h_run[:, p:]], dim=1)
            c2 = torch.cat([head[1], c2[:, p:]], dim=1)
        h_run = torch.cat([h_run, h_run.new_zeros(n, rows - prefix, h_run.shape[-1])], dim=1)
        back = torch.argsort(row_order, dim=-1)  # sorted position of each original row
        return h_run.gather(1, back[..., None].expand_as(h_run))


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
