"""The outer gradient of the learning-peers meta-agents against exact enumeration.

A short IPD (H rounds), K trajectories per joint policy, chain length L, tabular policies
for the meta-agent (theta: 5 states x 2 actions) and its peer.  The meta-value of the
chain as Algorithm 1 plays it,

``J(theta) = E[sum_{l=1..L} mean_k sum_t gamma^t r_l,kt]`` over every sequence of
batches, with ``phi_{l+1} = phi_l + alpha g(phi_l, batch_l)`` and ``phi^-i_{l+1} =
phi^-i_l + beta g^-i(phi^-i_l, batch_l)`` (each agent's policy-gradient step on its
sampled batch),

has ``(4^(H K))^(L + 1)`` terms, so its gradient is exact by autograd.  The learner's
estimator is built from its own pieces (``inner_step``, ``true_peers``,
``replay_peer_update``, ``peer_logprobs``, ``outer_losses``), composed as ``play_chain``
composes them, and its expectation is the same enumeration weighted by the (detached)
path probabilities.  The baselines of the inner steps are zero (a linear baseline fitted
on so few rounds would fit them exactly and leave nothing to learn), the value function
is zero and GAE's lambda is 1.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import baselines.peers.learner as peers_learner  # noqa: E402
from baselines.peers.learner import PeerArgs, PeerMetaLearner, Position  # noqa: E402
from meta_wrappers.peers import TrajectoryBatch  # noqa: E402
from meta_wrappers.peers_torch import (  # noqa: E402
    dice_peer_update,
    score_surrogate,
    tabular_logprobs,
)
from metaenvs.games.matrix import ipd_payoffs  # noqa: E402

ALPHA, BETA = 0.7, 0.9
SHAPES = [(1, 2, 1), (2, 2, 1), (1, 1, 2)]
"""(K, H, L) enumerated: one trajectory per joint policy; two (the batch moves phi as a
whole); a chain of two inner steps."""


@pytest.fixture(autouse=True)
def zero_baselines(monkeypatch):
    monkeypatch.setattr(
        peers_learner, "fit_baselines", lambda states, rewards, gamma, n: np.zeros(rewards.shape)
    )
    monkeypatch.setattr(
        peers_learner,
        "peer_baselines",
        lambda states, rewards, gamma, n: np.zeros(
            (rewards.shape[0], rewards.shape[-1] - 1, *rewards.shape[1:3])
        ),
    )


def all_batches(k: int, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every batch: states ``(M, K, H)``, actions and rewards ``(M, K, H, 2)``."""
    joint = np.array(list(itertools.product(range(4), repeat=k * horizon))).reshape(-1, k, horizon)
    actions = np.stack([joint // 2, joint % 2], axis=-1)  # player 0 most significant
    states = np.zeros(joint.shape, dtype=np.int64)
    states[..., 1:] = 1 + joint[..., :-1]  # s_{t+1} = 1 + index(a_t)
    rewards = ipd_payoffs()[actions[..., 0], actions[..., 1]]
    return states, actions, rewards


def learner(method, estimator, k, horizon, length, gamma) -> PeerMetaLearner:
    args = PeerArgs(
        game="ipd", method=method, estimator=estimator, k=k, length=length, horizon=horizon,
        gamma=gamma, chains=1, hidden=4, gae_lambda=1.0, peer_lr=BETA,
    )  # fmt: skip
    agent = PeerMetaLearner(args)
    with torch.no_grad():  # V = 0: the advantages are the rewards to go
        agent.value["out_w"].zero_()
        agent.value["out_b"].zero_()
    return agent


def make_batch(states, actions, rewards, peer_logits: np.ndarray) -> TrajectoryBatch:
    n = len(states)
    return TrajectoryBatch(
        position=np.zeros(n, dtype=np.int64),
        persona=np.zeros((n, 1), dtype=np.int64),
        states=states,
        actions=actions,
        rewards=rewards,
        peer_logits=peer_logits,
        peer_params=peer_logits.reshape(n, 1, -1),
        baseline=np.zeros((n, 1, *states.shape[1:])),
        next_peer_logits=peer_logits,
        next_peer_params=peer_logits.reshape(n, 1, -1),
    )


class Chain:
    """Every path of batches through a chain: level l holds ``M^(l + 1)`` prefixes."""

    def __init__(self, k, horizon, length, gamma, peer):
        self.data = all_batches(k, horizon)
        self.m, self.length, self.gamma = len(self.data[0]), length, gamma
        # the peers' parameters along every prefix (data: a PG step on each batch)
        self.peers = [peer.expand(self.m, 1, 5, 2).clone()]
        for level in range(length):
            s, a, r = self.level_data(level)
            leaf = self.peers[-1].clone().requires_grad_()
            zeros = np.zeros((len(s), 1, *s.shape[1:]))
            stepped = dice_peer_update(leaf, s, a, r, zeros, BETA, gamma).detach()
            self.peers.append(stepped.repeat_interleave(self.m, 0))

    def level_data(self, level: int):
        """The batches of every prefix at ``level`` (the last batch cycles fastest)."""
        return tuple(np.tile(x, (self.m**level,) + (1,) * (x.ndim - 1)) for x in self.data)

    def spread(self, x, level: int):
        """A level's per-prefix values repeated for every full path."""
        reps = self.m ** (self.length - level)
        return (
            np.repeat(x, reps, axis=0)
            if isinstance(x, np.ndarray)
            else x.repeat_interleave(reps, 0)
        )


def exact_gradient(theta, peer, k, horizon, length, gamma) -> torch.Tensor:
    """``grad J / L`` by autograd through the enumerated meta-value."""
    chain = Chain(k, horizon, length, gamma, peer)
    discount = gamma ** torch.arange(horizon, dtype=torch.float32)
    table = theta.expand(chain.m, 5, 2)
    log_path, value = torch.zeros(chain.m), torch.zeros(chain.m)
    for level in range(length + 1):
        s, a, r = chain.level_data(level)
        lp_meta = tabular_logprobs(table, s, a[..., 0])
        lp_peer = tabular_logprobs(chain.peers[level][:, 0], s, a[..., 1])
        log_path = log_path + (lp_meta + lp_peer).sum(dim=(-1, -2))
        if level > 0:
            value = value + (torch.tensor(r[..., 0], dtype=torch.float32) * discount).sum(-1).mean(
                -1
            )
        if level == length:
            break
        objective = score_surrogate(
            lp_meta, torch.tensor(r[..., 0], dtype=torch.float32), torch.zeros(lp_meta.shape), gamma
        )
        (grad,) = torch.autograd.grad(objective.sum(), table, create_graph=True)
        table = (table + ALPHA * grad).repeat_interleave(chain.m, 0)
        log_path, value = (x.repeat_interleave(chain.m, 0) for x in (log_path, value))
    # the learner's loss averages the L positions' terms ("ours" preset): compare with J / L
    return torch.autograd.grad((log_path.exp() * value).sum(), theta)[0] / length


def expected_estimate(method, estimator, theta, peer, k, horizon, length, gamma):
    """``E[estimator]``: the learner's outer gradient on every path, weighted."""
    agent = learner(method, estimator, k, horizon, length, gamma)
    chain = Chain(k, horizon, length, gamma, peer)
    peer_term = None if estimator == "sampled_chain" else agent.method.peer
    phi = {"t": theta.expand(chain.m, 5, 2)}
    peers, log_path, levels = None, torch.zeros(chain.m), []
    for level in range(length + 1):
        s, a, r = chain.level_data(level)
        batch = make_batch(s, a, r, chain.peers[level].numpy())
        lp_meta = tabular_logprobs(phi["t"], s, a[..., 0])
        lp_true_peer = tabular_logprobs(chain.peers[level][:, 0], s, a[..., 1])
        log_path = log_path + (lp_meta + lp_true_peer).sum(dim=(-1, -2))
        peer_lp = None
        if peer_term == "true":  # as play_chain: the peers' leaf, then their replayed update
            peers = agent.true_peers(batch) if peers is None else peers
            peer_lp = agent.peer_logprobs(peers, batch)
        levels.append((batch, lp_meta, peer_lp))
        if level == length:
            break
        lr = torch.full((len(s),), ALPHA)
        if peer_term == "true":
            peers = agent.replay_peer_update(peers, batch, lp_meta, None)
            peers = peers.repeat_interleave(chain.m, 0)
        phi = agent.inner_step(phi, phi, lr, batch, lp_meta, peer_lp, True)
        phi = {"t": phi["t"].repeat_interleave(chain.m, 0)}
        log_path = log_path.repeat_interleave(chain.m, 0)
    positions = []
    for level, (batch, lp_meta, peer_lp) in enumerate(levels):
        full = make_batch(*(chain.spread(x, level) for x in (*batch[2:5], batch.peer_logits)))
        spread_peer = None if peer_lp is None else chain.spread(peer_lp, level)
        entropy = torch.zeros(len(full.states), k, horizon)
        positions.append(Position(full, chain.spread(lp_meta, level), entropy, spread_peer))
    loss, _ = agent.outer_losses(positions)
    weight = log_path.exp().detach()
    return torch.autograd.grad(-(weight * loss).sum(), theta)[0]


def setting(seed: int):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(5, 2, generator=gen).requires_grad_(), torch.randn(1, 5, 2, generator=gen)


def relative_error(estimate: torch.Tensor, exact: torch.Tensor) -> float:
    return float((estimate - exact).norm() / exact.norm())


@pytest.mark.parametrize("gamma", [1.0, 0.9])
@pytest.mark.parametrize(("k", "horizon", "length"), SHAPES)
def test_sampled_chain_estimator_is_unbiased(k, horizon, length, gamma):
    theta, peer = setting(0)
    exact = exact_gradient(theta, peer, k, horizon, length, gamma)
    estimate = expected_estimate(
        "meta_mapg", "sampled_chain", theta, peer, k, horizon, length, gamma
    )
    assert relative_error(estimate, exact) < 1e-4


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("method", ["meta_mapg", "meta_pg"])
def test_the_authors_estimator_is_biased_for_the_sampled_chain(method, seed):
    """Documented in docs/wrappers/peers.md with the measured errors: DiCE's second
    derivatives in the inner steps estimate how the sampled batch moves phi_1 (and,
    replayed, the peers), which the current-policy term scores again, round t of one
    batch against round t of the next only.  gamma = 1: no discounting convention
    enters."""
    theta, peer = setting(seed)
    exact = exact_gradient(theta, peer, 1, 2, 1, 1.0)
    estimate = expected_estimate(method, "authors", theta, peer, 1, 2, 1, 1.0)
    assert relative_error(estimate, exact) > 0.05
