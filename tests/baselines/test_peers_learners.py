"""The learning-peers meta-agents (baselines.peers): gradient terms, estimators, determinism."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from baselines.peers.estimators import discounted_returns, gae, model_opponent, pcgrad  # noqa: E402
from baselines.peers.learner import METHODS, PeerArgs, PeerMetaLearner  # noqa: E402
from baselines.peers.optim import SharedAdam  # noqa: E402

TINY = {"k": 4, "horizon": 6, "length": 2, "chains": 3, "hidden": 8}


def learner(method: str, **changes) -> PeerMetaLearner:
    return PeerMetaLearner(PeerArgs(method=method, **{**TINY, **changes}))


def outer_grads(agent: PeerMetaLearner, seed: int = 3) -> dict[str, torch.Tensor]:
    """Gradients of the summed outer loss with respect to the per-chain copies of theta."""
    positions, leaves = agent.play_chain(agent.chains["train"], seed, train=True)
    loss, _ = agent.outer_losses(positions)
    names = list(leaves)
    grads = torch.autograd.grad(loss.sum(), [leaves[n] for n in names], allow_unused=True)
    return {n: (torch.zeros_like(leaves[n]) if g is None else g) for n, g in zip(names, grads)}


def test_peer_learning_term_present_in_meta_mapg_and_absent_in_meta_pg():
    mapg, pg = learner("meta_mapg"), learner("meta_pg")
    positions_mapg, _ = mapg.play_chain(mapg.chains["train"], 3, train=True)
    positions_pg, _ = pg.play_chain(pg.chains["train"], 3, train=True)
    # same parameters and seed: the same trajectories (the peer term changes gradients only)
    for a, b in zip(positions_mapg, positions_pg):
        np.testing.assert_array_equal(a.batch.actions, b.batch.actions)
    assert all(p.peer_logprobs is None for p in positions_pg)
    assert all(p.peer_logprobs is not None for p in positions_mapg)
    g_mapg, g_pg = outer_grads(mapg), outer_grads(pg)
    diff = sum((g_mapg[n] - g_pg[n]).abs().sum() for n in g_mapg if n != "inner_lr")
    assert diff > 1e-3


@pytest.mark.parametrize("peer_model", ["tabular", "mlp"])
def test_replayed_peer_parameters_follow_the_env(peer_model):
    """The differentiable replay of the peers' updates has the env's values along the chain."""
    agent = learner("meta_mapg", peer_model=peer_model)
    chain = agent.chains["train"]
    positions, _ = agent.play_chain(chain, 5, train=True)
    field = "peer_logits" if peer_model == "tabular" else "peer_params"
    peers = agent.true_peers(positions[0].batch)
    for pos in positions[:-1]:
        np.testing.assert_allclose(peers.detach().numpy(), getattr(pos.batch, field), atol=1e-4)
        peers = agent.replay_peer_update(peers, pos.batch, pos.meta_logprobs, agent.to_table)
        after = getattr(pos.batch, "next_" + field)
        np.testing.assert_allclose(peers.detach().numpy(), after, atol=1e-4)
        assert np.abs(after - getattr(pos.batch, field)).max() > 1e-3  # the peers did learn


def test_meta_methods_train_the_inner_learning_rate():
    """alpha only reaches the loss through the inner steps (kept by the meta methods)."""
    assert outer_grads(learner("meta_pg"))["inner_lr"].abs().sum() > 0
    assert outer_grads(learner("no_own"))["inner_lr"].abs().sum() > 0
    assert outer_grads(learner("reinforce"))["inner_lr"].abs().sum() == 0
    assert outer_grads(learner("lola_dice"))["inner_lr"].abs().sum() == 0


def test_own_learning_term_changes_the_gradient():
    g_mapg, g_no_own = outer_grads(learner("meta_mapg")), outer_grads(learner("no_own"))
    assert sum((g_mapg[n] - g_no_own[n]).abs().sum() for n in g_mapg) > 1e-3


def test_first_order_methods_do_not_differentiate_through_inner_steps():
    """For reinforce, the parameters after an inner step move theta's gradient one to one."""
    agent = learner("reinforce")
    positions, leaves = agent.play_chain(agent.chains["train"], 2, train=True)
    lp = positions[1].meta_logprobs.sum()
    (g_theta,) = torch.autograd.grad(lp, [leaves["out_b"]], retain_graph=True)
    assert g_theta.abs().sum() > 0  # phi_1 = theta + constant


def test_lola_inner_step_differs_from_policy_gradient_step():
    lola, rf = learner("lola_dice"), learner("reinforce")
    pos_lola, _ = lola.play_chain(lola.chains["train"], 4, train=False)
    pos_rf, _ = rf.play_chain(rf.chains["train"], 4, train=False)
    np.testing.assert_array_equal(pos_lola[0].batch.actions, pos_rf[0].batch.actions)
    assert not np.array_equal(pos_lola[-1].batch.actions, pos_rf[-1].batch.actions)


@pytest.mark.parametrize("preset", ["ours", "paper"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_trains_and_is_deterministic(method, preset):
    a, b = learner(method, preset=preset), learner(method, preset=preset)
    m1 = [a.train_iteration() for _ in range(2)]
    m2 = [b.train_iteration() for _ in range(2)]
    assert m1 == m2
    assert all(np.isfinite(v) for row in m1 for v in row.values())
    fresh = learner(method, preset=preset)
    before = {k: v.detach().clone() for k, v in fresh.actor.items()}
    assert any(not torch.equal(before[k], a.actor[k]) for k in before)
    value = {k: v.detach().clone() for k, v in fresh.value.items()}
    assert any(not torch.equal(value[k], a.value[k]) for k in value)
    ev = a.evaluate("val", max_chains=6)
    assert ev.reward.shape == (TINY["length"] + 1,)
    np.testing.assert_allclose(ev.meta_actions.sum(1), 1.0)


def test_evaluation_is_pure_and_checkpoint_round_trips():
    a = learner("meta_mapg")
    a.train_iteration()
    e1 = a.evaluate("test", seed=1, max_chains=6)
    a.train_iteration()
    b = learner("meta_mapg")
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(
        a.evaluate("val", max_chains=6).reward, b.evaluate("val", max_chains=6).reward
    )
    assert a.train_iteration() == b.train_iteration()
    c = learner("meta_mapg")
    c.train_iteration()
    np.testing.assert_array_equal(e1.reward, c.evaluate("test", seed=1, max_chains=6).reward)


def test_meta_agent_learns_to_defect_against_cooperating_peers():
    """With frozen peers (peer_lr 0) defecting is dominant: the trained agent's reward rises."""
    agent = learner("reinforce", peer_lr=0.0, actor_lr=0.03, chains=4, horizon=5, k=8)
    first = agent.evaluate("val").auc
    for _ in range(25):
        agent.train_iteration()
    ev = agent.evaluate("val")
    assert ev.auc > first + 0.3
    assert ev.meta_actions[0, 1] > 0.75  # defect


def test_gae_matches_a_naive_reference():
    rng = np.random.default_rng(0)
    r, v = rng.normal(size=(2, 7)), rng.normal(size=(2, 7))
    gamma, lam = 0.9, 0.8
    want = np.zeros_like(r)
    for b in range(2):
        for t in range(7):
            for j in range(t, 7):
                nxt = v[b, j + 1] if j + 1 < 7 else 0.0
                delta = r[b, j] + gamma * nxt - v[b, j]
                want[b, t] += (gamma * lam) ** (j - t) * delta
    got = gae(torch.tensor(r), torch.tensor(v), gamma, lam).numpy()
    np.testing.assert_allclose(got, want, atol=1e-12)
    ret = discounted_returns(torch.tensor(r), gamma).numpy()
    np.testing.assert_allclose(gae(torch.tensor(r), torch.tensor(v), gamma, 1.0).numpy(), ret - v)


def test_pcgrad_projects_only_conflicting_gradients():
    gen = torch.Generator().manual_seed(0)
    agree = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    torch.testing.assert_close(pcgrad(agree, gen), agree.mean(0))
    conflict = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    out = pcgrad(conflict, gen)
    # g1 loses its part along g2 and vice versa: g1' = (0.5, 0.5), g2' = (0, 1)
    torch.testing.assert_close(out, torch.tensor([0.25, 0.75]))


def test_opponent_model_is_the_smoothed_empirical_policy():
    rng = np.random.default_rng(1)
    states = rng.integers(0, 3, size=(2, 5, 9))
    actions = rng.integers(0, 2, size=(2, 5, 9))
    logits = model_opponent(states, actions, 3, 2)
    for c in range(2):
        for s in range(3):
            counts = np.array([np.sum((states[c] == s) & (actions[c] == a)) for a in range(2)]) + 1
            np.testing.assert_allclose(np.exp(logits[c, s]), counts / counts.sum())


def test_checkpoint_of_another_shape_is_rejected_before_any_change():
    a, b = learner("meta_mapg"), learner("meta_mapg", hidden=4)
    before = {k: v.detach().clone() for k, v in a.actor.items()}
    with pytest.raises(ValueError, match="actor"):
        a.load_state_dict(b.state_dict())
    assert all(torch.equal(before[k], a.actor[k]) for k in before)


def test_mlp_peers_train():
    agent = learner("meta_mapg", peer_model="mlp", peer_hidden=4)
    metrics = agent.train_iteration()
    assert np.isfinite(metrics["train_auc"])


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="method"):
        PeerArgs(method="maml")
    with pytest.raises(ValueError, match="chains"):
        PeerArgs(chains=0)
    with pytest.raises(ValueError, match="game"):
        PeerArgs(game="chess")


@pytest.mark.parametrize("preset", ["ours", "paper"])
def test_the_outer_optimiser_is_the_codes_shared_adam_unless_adam_is_asked(preset):
    """misc/shared_adam.py (AMSGrad, eps 1e-3 before the bias correction) for the policy,
    the inner rates and the value function; ``"adam"`` is PyTorch's (eps 1e-8, after)."""
    shared = learner("meta_mapg", preset=preset, actor_lr=0.1)
    adam = learner("meta_mapg", preset=preset, actor_lr=0.1, outer_optimizer="adam")
    assert shared.args.outer_optimizer == "shared_adam"
    for name in ("actor_opt", "lr_opt", "value_opt"):
        assert isinstance(getattr(shared, name), SharedAdam)
        assert type(getattr(adam, name)) is torch.optim.Adam
        assert getattr(adam, name).defaults["eps"] == 1e-8
        assert getattr(adam, name).defaults["amsgrad"]
    assert shared.lr_opt.defaults["lr"] == shared.actor_opt.defaults["lr"] == 0.1
    # the same first gradient g, one step: Adam moves every entry by lr * sign(g);
    # SharedAdam by lr * sqrt(1 - beta2) |g| / (sqrt(1 - beta2) |g| + eps), 33x less at 1e-3
    before = {k: v.detach().clone() for k, v in shared.actor.items()}
    assert all(torch.equal(before[k], adam.actor[k]) for k in before)  # same seed
    for agent in (shared, adam):
        n = sum(v.numel() for v in agent.actor.values())
        grad = torch.full((1, n), 1e-3)  # norm below the clip of 10
        agent._outer_step(agent.actor_opt, list(agent.actor.values()), grad, None)
    root = 0.001**0.5
    for agent, size in ((shared, 0.1 * root * 1e-3 / (root * 1e-3 + 1e-3)), (adam, 0.1)):
        for k, v in agent.actor.items():
            torch.testing.assert_close(
                v.detach() - before[k], torch.full_like(v, -size), rtol=1e-4, atol=1e-7
            )


def test_a_checkpoint_of_the_other_outer_optimiser_is_rejected_before_any_change():
    a, b = learner("meta_mapg"), learner("meta_mapg", outer_optimizer="adam")
    b.train_iteration()
    before = {k: v.detach().clone() for k, v in a.actor.items()}
    with pytest.raises(ValueError, match="actor_opt has eps"):
        a.load_state_dict(b.state_dict())
    assert all(torch.equal(before[k], a.actor[k]) for k in before) and a.iteration == 0
    c = learner("meta_mapg", outer_optimizer="adam")
    c.load_state_dict(b.state_dict())  # its own kind round-trips
    assert c.train_iteration() == b.train_iteration()


def test_a_bad_outer_optimiser_raises_before_anything_is_built(monkeypatch):
    import baselines.peers.learner as module

    def no_env(*args, **kwargs):
        raise AssertionError("built an env before checking outer_optimizer")

    monkeypatch.setattr(module.PeerArgs, "chain_config", no_env)
    with pytest.raises(ValueError, match=r"outer_optimizer must be one of \('shared_adam'"):
        PeerArgs(outer_optimizer="sgd")
    with pytest.raises(ValueError, match="outer_optimizer"):
        PeerArgs(outer_optimizer="Adam")


@pytest.mark.parametrize("n_out", [3, 1])  # a policy's logits, a value (its own path)
def test_lstm_runner_matches_torch_lstm_cell(n_out):
    """The runner's table lookup and sigmoid-form tanh compute PyTorch's LSTM, chain by
    chain with each chain's own parameters."""
    from baselines.peers.nets import LSTMRunner, init_lstm_net, run_sequence

    gen = torch.Generator().manual_seed(0)
    n_states, hidden, n_chains, n_traj, horizon = 5, 8, 3, 4, 7
    chains = [init_lstm_net(n_states, n_out, hidden, gen) for _ in range(n_chains)]
    batched = {k: torch.stack([c[k] for c in chains]) for k in chains[0]}
    states = torch.randint(0, n_states, (n_chains, n_traj, horizon), generator=gen)
    runner = LSTMRunner(batched, n_traj)
    got = torch.stack([runner(states[:, :, t]) for t in range(horizon)], dim=2)
    torch.testing.assert_close(run_sequence(batched, states), got)
    for c, params in enumerate(chains):
        cell = torch.nn.LSTMCell(hidden, hidden)
        with torch.no_grad():
            cell.weight_ih.copy_(params["ih_w"].T)
            cell.weight_hh.copy_(params["hh_w"].T)
            cell.bias_ih.copy_(params["lstm_b"])
            cell.bias_hh.zero_()
        h = cell_state = torch.zeros(n_traj, hidden)
        for t in range(horizon):
            x = torch.relu(params["fc_w"][states[c, :, t]] + params["fc_b"])
            h, cell_state = cell(x, (h, cell_state))
            expected = h @ params["out_w"] + params["out_b"]
            torch.testing.assert_close(got[c, :, t], expected, rtol=1e-5, atol=1e-6)


def test_paper_preset_is_the_authors_outer_loop():
    ours, paper = PeerArgs().resolved(), PeerArgs(preset="paper").resolved()
    assert (ours.entropy_weight, ours.value_from, ours.clip) == (0.0, 0, "after_pcgrad")
    assert (ours.averaging, ours.outer_steps, ours.auc_from) == ("length", "mean", 0)
    assert (paper.entropy_weight, paper.value_from, paper.clip) == (0.5, 1, "before_pcgrad")
    assert (paper.averaging, paper.outer_steps, paper.auc_from) == ("positions", "per_chain", 1)
    assert PeerArgs(game="rps", preset="paper").resolved().entropy_weight == 0.0  # rps.yaml
    assert PeerArgs(preset="paper", entropy_weight=0.1).resolved().entropy_weight == 0.1
    with pytest.raises(ValueError, match="preset"):
        PeerArgs(preset="authors")
    with pytest.raises(ValueError, match="clip"):
        PeerArgs(clip="never")
    with pytest.raises(ValueError, match="entropy_weight"):
        PeerArgs(entropy_weight=-1.0)


def test_outer_loss_averaging_entropy_and_value_positions():
    """Ours: policy terms / L - w H(tau_0); the authors: (terms - w H(tau_0)) / (L + 1),
    value loss from position 1 summed over positions / (L + 1)."""
    base = learner("meta_mapg", preset="paper", entropy_weight=0.0)
    positions, _ = base.play_chain(base.chains["train"], 3, train=True)
    n_pos = TINY["length"] + 1
    entropy = positions[0].entropy.sum(-1).mean(-1)
    losses = {}
    for preset in ("ours", "paper"):
        for w in (0.0, 0.5):
            agent = learner("meta_mapg", preset=preset, entropy_weight=w)
            losses[preset, w] = agent.outer_losses(positions)
    p0, v0 = losses["paper", 0.0]
    o0, ov = losses["ours", 0.0]
    torch.testing.assert_close(losses["paper", 0.5][0], p0 - 0.5 * entropy / n_pos)
    torch.testing.assert_close(losses["ours", 0.5][0], o0 - 0.5 * entropy)
    torch.testing.assert_close(p0 * n_pos, o0 * TINY["length"])  # the same terms
    # the value loss: ours the mean over every position, the authors' leaves position 0 out
    shifted = [positions[0]._replace(batch=positions[0].batch._replace(
        rewards=positions[0].batch.rewards + 5.0)), *positions[1:]]  # fmt: skip
    torch.testing.assert_close(base.outer_losses(shifted)[1], v0)
    assert not torch.allclose(learner("meta_mapg").outer_losses(shifted)[1], ov)


class _Recorder(torch.optim.Optimizer):
    """Keeps a copy of the gradient at every step, changes nothing."""

    def __init__(self, params):
        super().__init__(params, {})
        self.seen = []

    def step(self, closure=None):
        self.seen.append(
            torch.cat([p.grad.reshape(-1) for g in self.param_groups for p in g["params"]])
        )


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("ours", [[6.0, 8.0]]),  # mean (15, 20), norm 25 -> clipped to 10
        ("paper", [[10.0, 0.0], [0.0, 10.0]]),  # each clipped to 10, then its own step
    ],
)
def test_clip_and_steps_of_the_outer_update(preset, expected):
    agent = learner("meta_mapg", preset=preset, max_grad_norm=10.0)
    target = torch.zeros(2, requires_grad=True)
    recorder = _Recorder([target])
    orthogonal = torch.tensor([[30.0, 0.0], [0.0, 40.0]])  # no conflict: PCGrad keeps them
    agent._outer_step(recorder, [target], orthogonal, torch.Generator().manual_seed(0))
    torch.testing.assert_close(torch.stack(recorder.seen), torch.tensor(expected))


def test_sampled_chain_estimator_trains_and_refuses_other_methods():
    a, b = (learner("meta_mapg", estimator="sampled_chain") for _ in range(2))
    assert a.train_iteration() == b.train_iteration()
    grads = outer_grads(learner("meta_mapg", estimator="sampled_chain"))
    assert grads["inner_lr"].abs().sum() > 0  # the inner rates still get a meta-gradient
    differs = outer_grads(learner("meta_mapg"))
    assert any(not torch.allclose(grads[k], differs[k]) for k in grads)
    with pytest.raises(ValueError, match="meta_mapg"):
        PeerArgs(method="meta_pg", estimator="sampled_chain")
    with pytest.raises(ValueError, match="estimator"):
        PeerArgs(estimator="dice")
