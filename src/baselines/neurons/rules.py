"""The draft's reference learning rules as policies of the neurons env (neurons-as-agents, sec. 4).

Each rule maps the env's current state to the actions of all K agents ``(B, K, D)``, so
that it runs through the same interface as a learned rule (``core.step(state,
rule(core, state))``).  Node and weight perturbation read only each neuron's own
observation (its perturbation columns and the global signal); SGD reads the
backpropagated gradient from the core (``core.gradients``), which no neuron observes: the
weight-transport problem the draft names.

With ``Delta_SGD W_l = -eta dE/dW_l`` (descent), the draft's rules are

- ``Delta_NP W_l = (eta / sigma) (E - E_N) sum_n xi_n^(l+1) x_n^(l)T``,
- ``Delta_WP W_l = (eta / sigma) (E - E_W) Xi_l``,

with perturbations of standard deviation ``sigma``.  To first order in sigma, ``E - E_N =
-sum_{n,j} (dE/dh_{n,j}) xi_{n,j}`` and ``E - E_W = -sum dE/dW * Xi``; with
``<xi xi^T> = sigma^2 I`` both expectations are

    ``<Delta_NP W_l> = <Delta_WP W_l> = sigma * Delta_SGD W_l  (+ O(eta sigma^3))``

(the second-order terms have odd Gaussian moments and vanish), so the draft's "up to a
constant" is ``sigma``: a perturbation rule at rate ``eta`` follows, on average, SGD at
rate ``eta * sigma``.  ``tests/baselines/test_neuron_rules.py`` checks this numerically.
The rules here take that SGD-equivalent rate (``lr``) and use ``eta = lr / sigma``, so that
the three rules with one ``lr`` have the same expected update.

Actions are ``weight change / action_scale`` clipped to the [-1, 1] box
(``core.weight_changes``); each rule counts the entries it clipped in ``clipped``.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np

from metaenvs.games.neurons import NeuronsCore, NeuronsState


class LearningRule(Protocol):
    """A learning rule: the actions ``(B, K, D)`` float32 of every neuron of every copy."""

    def __call__(self, core: NeuronsCore, state: NeuronsState) -> np.ndarray: ...


@dataclasses.dataclass
class Rule:
    """Base of the reference rules: the weight changes, turned into actions.

    Attributes
    ----------
    lr : float
        The SGD-equivalent learning rate: SGD's ``eta``; node and weight perturbation use
        ``eta = lr / sigma`` (their expected update is then SGD's at ``lr``).
    clipped : int
        Action entries clipped to the box so far (0 when the rule ran as written).
    """

    lr: float
    clipped: int = 0

    def deltas(self, core: NeuronsCore, state: NeuronsState) -> np.ndarray:
        """The weight changes ``(B, K, D)`` of ``W_l[:, i]`` of every agent."""
        raise NotImplementedError

    def __call__(self, core: NeuronsCore, state: NeuronsState) -> np.ndarray:
        delta = self.deltas(core, state)
        scaled = delta / core.config.action_scale
        self.clipped += int(np.count_nonzero(np.abs(scaled) > 1.0))
        return core.weight_changes(delta)


class SGD(Rule):
    """Backpropagation: ``Delta W_l = -lr dE/dW_l`` on the minibatch of the observation."""

    def deltas(self, core: NeuronsCore, state: NeuronsState) -> np.ndarray:
        return -self.lr * core.gradients(state)


def _column(core: NeuronsCore, obs: np.ndarray, name: str) -> np.ndarray:
    return obs[..., core.obs_slices[name]].astype(np.float64)


def _needs(core: NeuronsCore, kind: str) -> None:
    if core.config.perturb not in ("both", kind):
        raise ValueError(
            f"{kind} perturbation needs an env with perturb='both' or '{kind}', got "
            f"perturb={core.config.perturb!r}"
        )


class NodePerturbation(Rule):
    """``Delta W_l[:, i] = eta sigma * node_signal * node_trace`` from each neuron's own
    observation: the draft's ``(eta / sigma) (E - E_N) sum_n xi_n^(l+1) x_{n,i}^(l)``."""

    def deltas(self, core: NeuronsCore, state: NeuronsState) -> np.ndarray:
        _needs(core, "node")
        obs = core.observe(state)
        eta, sigma = self.lr / core.config.sigma, core.config.sigma
        signal = _column(core, obs, "node_signal")  # (E - E_N) / sigma, (B, K, 1)
        return eta * sigma * signal * _column(core, obs, "node_trace")


class WeightPerturbation(Rule):
    """``Delta W_l[:, i] = eta sigma * weight_signal * weight_noise`` from each neuron's own
    observation: the draft's ``(eta / sigma) (E - E_W) Xi_l[:, i]``."""

    def deltas(self, core: NeuronsCore, state: NeuronsState) -> np.ndarray:
        _needs(core, "weight")
        obs = core.observe(state)
        eta, sigma = self.lr / core.config.sigma, core.config.sigma
        signal = _column(core, obs, "weight_signal")  # (E - E_W) / sigma, (B, K, 1)
        return eta * sigma * signal * _column(core, obs, "weight_noise")


RULES = {"sgd": SGD, "np": NodePerturbation, "wp": WeightPerturbation}
"""The reference rules by short name."""


def run_rule(
    core: NeuronsCore, rule: LearningRule, batch: int, seed: int, episodes: int = 1
) -> dict[str, np.ndarray]:
    """Run ``rule`` for ``episodes`` inner training runs in each of ``batch`` copies.

    Returns
    -------
    dict
        ``"loss"`` ``(episodes, T + 1, B)``: the minibatch loss before the first update and
        after each one (minus the reward); ``"test_loss"`` ``(episodes, B)``: the held-out
        loss at each episode's end (and ``"test_accuracy"`` on digits).
    """
    horizon = core.config.horizon
    state = core.reset(batch, seed)
    losses = np.empty((episodes, horizon + 1, batch))
    finals: dict[str, list[np.ndarray]] = {}
    for e in range(episodes):
        losses[e, 0] = state.loss
        for t in range(horizon):
            result = core.step(state, rule(core, state))
            losses[e, t + 1] = -result.reward[:, 0]
        for key in ("test_loss", "test_accuracy"):
            if key in result.info:
                finals.setdefault(key, []).append(result.info[key].copy())
    return {"loss": losses, **{k: np.stack(v) for k, v in finals.items()}}
