"""Networks of the value-decomposition learners: the recurrent utility agent and the mixers.

- :class:`RNNAgent`: QMIX's 2-layer recurrent utility network (FC-GRU-FC, 64 units), shared by
  all agents; its input is the agent's observation, its last action (one-hot) and its id.
- :class:`VDNMixer`: ``Q_tot = sum_i Q_i`` (Sunehag et al. 2018).
- :class:`QMixer`: QMIX's monotonic mixer (Rashid et al. 2018): hypernetworks turn the state
  into the weights of a 2-layer network over the ``Q_i``; the weights pass through ``abs``,
  so ``dQ_tot / dQ_i >= 0``.
- :class:`Hierarchy` and :class:`MNMPGMixer`: MNMPG (section 3.1): a global hierarchy
  ``z_t ~ N(mu_theta(s_t), sigma_theta(s_t))`` of dimension K, decoded by ``g_zeta`` and, with
  the state concatenated (unless ``use_state=False``, the ablation "w/o s"), turned into the
  non-negative weights of both mixer layers.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class RNNAgent(nn.Module):
    """QMIX's utility network: ``Q_i(tau_i, .)`` from ``(obs, last action, agent id)``.

    FC-ReLU, a GRU cell, FC (PyMARL's ``RNNAgent``).  The GRU is a one-layer ``nn.GRU``
    (the same equations as ``nn.GRUCell``), so that :meth:`sequence` runs a whole batch of
    episodes through it in one fused call instead of a Python loop over the steps.
    """

    def __init__(self, input_dim: int, n_actions: int, hidden: int = 64) -> None:
        super().__init__()
        self.hidden = hidden
        self.fc1 = nn.Linear(input_dim, hidden)
        self.rnn = nn.GRU(hidden, hidden, batch_first=True)
        self.fc2 = nn.Linear(hidden, n_actions)

    def initial_state(self, batch: int) -> torch.Tensor:
        """Zero hidden state ``(batch, hidden)``."""
        return self.fc1.weight.new_zeros(batch, self.hidden)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: ``x (M, input_dim)``, ``h (M, hidden)`` -> Q-values ``(M, A)`` and the
        new ``h``."""
        out, h = self.rnn(F.relu(self.fc1(x)).unsqueeze(1), h.unsqueeze(0))
        return self.fc2(out[:, 0]), h[0]

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        """Whole episodes from a zero state: ``x (M, T, input_dim)`` -> ``(M, T, A)``."""
        out, _ = self.rnn(F.relu(self.fc1(x)))
        return self.fc2(out)


class VDNMixer(nn.Module):
    """``Q_tot = sum_i Q_i``; the state is ignored."""

    def forward(self, qs: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """``qs (..., N)``, ``states (..., S)`` -> ``Q_tot (...)``."""
        return qs.sum(dim=-1)


class HyperMixer(nn.Module):
    """The monotonic 2-layer mixer of QMIX, its weights made by hypernetworks of ``x``.

    ``Q_tot = elu(q . |W1(x)| + b1(x)) . |w2(x)| + V(x)``: every weight that multiplies a
    ``Q_i`` is non-negative, so ``Q_tot`` is monotonic in every ``Q_i``.
    """

    def __init__(self, n_agents: int, x_dim: int, embed: int = 32, hyper: int = 64) -> None:
        super().__init__()
        self.n_agents, self.embed = n_agents, embed
        self.w1 = nn.Sequential(
            nn.Linear(x_dim, hyper), nn.ReLU(), nn.Linear(hyper, n_agents * embed)
        )
        self.b1 = nn.Linear(x_dim, embed)
        self.w2 = nn.Sequential(nn.Linear(x_dim, hyper), nn.ReLU(), nn.Linear(hyper, embed))
        self.v = nn.Sequential(nn.Linear(x_dim, embed), nn.ReLU(), nn.Linear(embed, 1))

    def mix(self, qs: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``qs (..., N)``, ``x (..., x_dim)`` -> ``Q_tot (...)``."""
        lead = qs.shape[:-1]
        q = qs.reshape(-1, 1, self.n_agents)
        x = x.reshape(-1, x.shape[-1])
        w1 = self.w1(x).abs().view(-1, self.n_agents, self.embed)
        hidden = F.elu(torch.bmm(q, w1) + self.b1(x).unsqueeze(1))
        w2 = self.w2(x).abs().view(-1, self.embed, 1)
        return (torch.bmm(hidden, w2).view(-1) + self.v(x).view(-1)).view(lead)


class QMixer(HyperMixer):
    """QMIX: the hypernetworks read the global state."""

    def __init__(self, n_agents: int, state_dim: int, embed: int = 32, hyper: int = 64) -> None:
        super().__init__(n_agents, state_dim, embed, hyper)

    def forward(self, qs: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """``qs (..., N)``, ``states (..., S)`` -> ``Q_tot (...)``."""
        return self.mix(qs, states)


class Hierarchy(nn.Module):
    """``pi_theta``: a diagonal Gaussian over the K-dimensional hierarchy ``z_t`` given ``s_t``."""

    def __init__(self, state_dim: int, k: int = 3, hidden: int = 64) -> None:
        super().__init__()
        self.k = k
        self.body = nn.Sequential(nn.Linear(state_dim, hidden), nn.ReLU())
        self.mu = nn.Linear(hidden, k)
        self.log_sigma = nn.Linear(hidden, k)

    def distribution(self, states: torch.Tensor) -> torch.distributions.Normal:
        """``N(mu_theta(s), sigma_theta(s))`` for ``states (..., S)``; sigma in [e^-2, e].

        The floor keeps ``grad log pi`` (which grows as ``1 / sigma^2``) finite: a
        hierarchy that collapsed to a point made equation 5's steps blow up to NaN."""
        h = self.body(states)
        return torch.distributions.Normal(self.mu(h), self.log_sigma(h).clamp(-2.0, 1.0).exp())

    def log_prob(self, z: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """``log pi_theta(z | s)`` summed over the K dimensions: ``(...)``."""
        return self.distribution(states).log_prob(z).sum(dim=-1)


class MNMPGMixer(HyperMixer):
    """MNMPG's mixer: the hierarchy ``z`` decoded by ``g_zeta`` (and the state, unless
    ``use_state`` is False) make the non-negative weights of both layers."""

    def __init__(
        self,
        n_agents: int,
        state_dim: int,
        k: int = 3,
        decoded: int = 32,
        use_state: bool = True,
        embed: int = 32,
        hyper: int = 64,
    ) -> None:
        super().__init__(n_agents, decoded + (state_dim if use_state else 0), embed, hyper)
        self.use_state = use_state
        self.decoder = nn.Sequential(nn.Linear(k, decoded), nn.ReLU())

    def forward(self, qs: torch.Tensor, states: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``qs (..., N)``, ``states (..., S)``, ``z (..., K)`` -> ``Q_tot (...)``."""
        x = self.decoder(z)
        if self.use_state:
            x = torch.cat([x, states], dim=-1)
        return self.mix(qs, x)
