"""DiMA-PG (``baselines.dimapg``): the estimator against references, the batched
adaptation against one agent at a time, dead agents, Args checks and exact resumes."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")

import metaenvs  # noqa: E402
from baselines.dimapg import experiment as dimapg  # noqa: E402
from baselines.dimapg.learner import (  # noqa: E402
    DimaArgs,
    DimaLearner,
    FocalBatch,
    _concat_states,
    _mix,
    advantages,
    categorical_kl,
    conjugate_gradient,
    copy_keys,
    derive_seed,
    dimapg_objective,
    flat,
    inner_step,
    log_probs,
    select,
    unflat,
)
from baselines.dimapg.nets import init_mlp, masked_log_softmax, mlp  # noqa: E402
from baselines.experiment.report import read_metrics  # noqa: E402
from baselines.peers.estimators import fit_linear_baseline, linear_features  # noqa: E402
from metaenvs.cli import main as metaenvs_main  # noqa: E402

TINY = dict(trajectories=3, max_steps=12, hidden=(16,), eval_episodes=3)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- the batched adaptation -------------------------------------------------------------
@pytest.mark.parametrize("env", ["navigation_dimapg_N3", "predator_prey_dimapg_3v1"])
def test_batched_adaptation_equals_adapting_each_agent_alone(env):
    learner = DimaLearner(DimaArgs(env=env, **TINY))
    agents = np.arange(learner.n_agents)
    together, batches, _ = learner.adapt(agents, seed=123, train=False)
    theta = select(learner.theta, learner.slot_policy[torch.from_numpy(agents)])
    moved = max(float((together[k] - theta[k].detach()).abs().max()) for k in theta)
    assert moved > 1e-4  # the k steps did adapt
    assert len(batches) == 3
    for n in agents:
        alone, _, _ = learner.adapt(np.array([n]), seed=123, train=False)
        for k in alone:
            torch.testing.assert_close(alone[k][0], together[k][n], rtol=0, atol=1e-6)
    # the same with the graph kept (train=True), as the central step uses it
    graph, _, _ = learner.adapt(agents, seed=123, train=True)
    alone, _, _ = learner.adapt(agents[-1:], seed=123, train=True)
    for k in graph:
        assert graph[k].requires_grad
        torch.testing.assert_close(graph[k].detach(), together[k], rtol=0, atol=1e-6)
        torch.testing.assert_close(alone[k][0].detach(), together[k][-1], rtol=0, atol=1e-6)


def test_each_agents_batch_holds_its_own_rewards():
    learner = DimaLearner(DimaArgs(**TINY))  # navigation: individual rewards differ
    agents = np.arange(learner.n_agents)
    c = learner.args.trajectories
    traj = learner.play_focal(detached_theta(learner, agents), agents, seed=9)
    batch = learner.focal_batch(traj, agents, normalize=False)
    for n in agents:
        own = traj.rewards[n * c : (n + 1) * c, :, n]
        torch.testing.assert_close(batch.episode_reward[n], own.sum(1), rtol=0, atol=1e-5)
        other = traj.rewards[n * c : (n + 1) * c, :, (n + 1) % learner.n_agents]
        assert not torch.allclose(own.sum(1), other.sum(1))  # so the check can fail
        adv, ret = advantages(batch.obs[n : n + 1], own[None], batch.valid[n : n + 1],
                              learner.args.discount, "linear", False)  # fmt: skip
        torch.testing.assert_close(batch.advantages[n], adv[0])
        torch.testing.assert_close(batch.returns[n], ret[0])


def detached_theta(learner, agents):
    theta = select(learner.theta, learner.slot_policy[torch.from_numpy(agents)])
    return {k: v.detach() for k, v in theta.items()}


def test_a_focal_agent_on_theta_plays_exactly_the_plain_rollout():
    learner = DimaLearner(DimaArgs(env="predator_prey_dimapg_3v1", **TINY))
    agents = np.array([0, 3])
    keys = copy_keys(5, np.repeat(agents, 3), np.tile(np.arange(3), 2))
    plain = learner.play_all(keys)
    theta = select(learner.theta, learner.slot_policy[torch.from_numpy(agents)])
    focal = learner.play_focal(theta, agents, seed=5)
    slot = torch.tensor([0, 0, 0, 3, 3, 3])
    torch.testing.assert_close(focal.actions, plain.actions[torch.arange(6), :, slot])
    torch.testing.assert_close(focal.rewards, plain.rewards)
    # every agent's recorded observations are the ones it acted on at each step (the
    # core reuses its observation buffer: a rollout that kept views of it recorded the
    # last step's observation T times, and the baselines learned nothing)
    torch.testing.assert_close(focal.obs, plain.obs[torch.arange(6), :, slot])
    assert not torch.equal(plain.obs[:, 0], plain.obs[:, -1])
    moved = {k: v.detach() + 1.0 for k, v in theta.items()}
    assert not torch.equal(learner.play_focal(moved, agents, seed=5).rewards, plain.rewards)


# -- the linear feature baseline --------------------------------------------------------
@pytest.mark.parametrize(
    "shape, atol",
    [((2, 4, 7, 3), 1e-8),  # 28 rows, 10 features: the primal form
     ((2, 2, 3, 9), 1e-6)],  # 6 rows, 22 features: the dual form
)  # fmt: skip
def test_linear_baseline_is_the_ridge_least_squares_fit(shape, atol):
    gen = torch.Generator().manual_seed(0)
    (p_, c, steps, _), features = shape, 2 * shape[-1] + 4
    obs = torch.randn(shape, generator=gen) * 4
    returns = torch.randn(shape[:-1], generator=gen)
    valid = torch.rand(shape[:-1], generator=gen) > 0.2
    valid[:, 0, 0] = True
    fitted = fit_linear_baseline(obs, returns, valid)
    for p in range(p_):
        o = np.clip(obs[p].numpy().astype(np.float64), -10, 10)
        t = np.broadcast_to(np.arange(steps)[None, :, None] / 100.0, (c, steps, 1))
        x = np.concatenate([o, o**2, t, t**2, t**3, np.ones_like(t)], -1).reshape(-1, features)
        m = valid[p].numpy().reshape(-1)
        y = returns[p].numpy().astype(np.float64).reshape(-1)
        coef = np.linalg.solve(x[m].T @ x[m] + 1e-5 * np.eye(features), x[m].T @ y[m])
        np.testing.assert_allclose(fitted[p].numpy().reshape(-1), (x @ coef) * m, atol=atol)
        if m.sum() < features:  # fewer valid rows than features: the fit interpolates them
            np.testing.assert_allclose(fitted[p].numpy().reshape(-1)[m], y[m], atol=1e-3)
    assert linear_features(obs).shape == (*shape[:-1], features)


def test_advantages_are_rewards_to_go_less_the_baseline_and_zero_where_invalid():
    obs = torch.zeros((1, 2, 3, 1))
    rewards = torch.tensor([[[1.0, 2.0, 4.0], [1.0, 1.0, 1.0]]])
    valid = torch.tensor([[[True, True, True], [True, True, False]]])
    adv, ret = advantages(obs, rewards, valid, 0.5, "none", normalize=False)
    torch.testing.assert_close(adv, torch.tensor([[[3.0, 4.0, 4.0], [1.5, 1.0, 0.0]]]))
    torch.testing.assert_close(ret, torch.tensor([[3.0, 1.5]]))
    adv, _ = advantages(obs, rewards, valid, 0.5, "linear", normalize=True)
    assert adv[0, 1, 2] == 0 and abs(float(adv[valid].mean())) < 1e-5


# -- equation 14 against the exact gradient on an enumerable game -----------------------
def _game(alpha: float):
    """Two agents, one step, two actions; agent 0 is the focal agent."""
    gen = torch.Generator().manual_seed(3)
    obs = torch.randn((3,), generator=gen, dtype=torch.float64)
    payoff = torch.randn((2, 2), generator=gen, dtype=torch.float64)  # R_0(a_0, a_1)
    theta = {k: (v.double() * 30).requires_grad_() for k, v in init_mlp(1, (3, 2), gen).items()}
    theta["b0"] = torch.tensor([[[0.3, -0.2]]], dtype=torch.float64, requires_grad=True)
    return obs, payoff, theta, alpha


def _batch(obs, a0: int, reward: torch.Tensor) -> FocalBatch:
    r = reward.reshape(1, 1, 1)
    return FocalBatch(obs.reshape(1, 1, 1, 3), torch.tensor([[[a0]]]), None,
                      torch.ones((1, 1, 1), dtype=torch.bool), r, r[..., 0], r[..., 0])  # fmt: skip


def _expected_estimator(obs, payoff, theta, alpha, first_order=False):
    """Sum over every (tau^theta, tau^{theta,theta_n}) of its probability times the
    gradient of :func:`dimapg_objective` (the estimator's exact expectation)."""

    def probs(params):
        return torch.softmax(obs @ params["w0"][0] + params["b0"][0, 0], -1).detach()

    total = [torch.zeros_like(v) for v in theta.values()]
    p_theta = probs(theta)
    for a0, a1 in itertools.product(range(2), repeat=2):
        theta0 = select(theta, torch.tensor([0]))
        pre = _batch(obs, a0, payoff[a0, a1])
        phi = inner_step(theta0, pre, alpha, normalize=False, create_graph=not first_order)
        p_phi = probs(phi)
        for b0, b1 in itertools.product(range(2), repeat=2):
            post = _batch(obs, b0, payoff[b0, b1])
            weights = post.returns.mean(1)
            est = dimapg_objective(theta0, phi, pre, post, weights).sum()
            grads = torch.autograd.grad(est, list(theta.values()), retain_graph=True)
            p = p_theta[a0] * p_theta[a1] * p_phi[b0] * p_theta[b1]
            total = [t + p * g for t, g in zip(total, grads)]
    return total


def _exact_gradient(obs, payoff, theta, alpha, others_fixed=True):
    """grad of J(theta) = E_{tau^theta} E_{tau^{theta,theta_n}} R_0, written out, with
    theta_n = theta + alpha grad log pi_theta(a_0) R_0 (the inner REINFORCE step)."""
    w, b = theta["w0"][0], theta["b0"][0, 0]

    def pi(wt, bt):
        return torch.softmax(obs @ wt + bt, -1)

    p = pi(w, b)
    q = p.detach() if others_fixed else p  # the other agent's policy
    value = torch.zeros((), dtype=torch.float64)
    for a0, a1 in itertools.product(range(2), repeat=2):
        inner = torch.log(pi(w, b)[a0]) * payoff[a0, a1]
        gw, gb = torch.autograd.grad(inner, [w, b], create_graph=True)
        p_n = pi(w + alpha * gw, b + alpha * gb)
        after = sum(
            p_n[b0] * q[b1] * payoff[b0, b1] for b0, b1 in itertools.product(range(2), repeat=2)
        )
        value = value + p[a0] * q[a1] * after
    return torch.autograd.grad(value, [theta["w0"], theta["b0"]])


def test_equation_14_in_expectation_is_the_exact_gradient_with_the_others_fixed():
    obs, payoff, theta, alpha = _game(alpha=0.5)
    expected = _expected_estimator(obs, payoff, theta, alpha)
    exact = _exact_gradient(obs, payoff, theta, alpha)
    for e, x in zip(expected, exact):
        torch.testing.assert_close(e, x, rtol=1e-9, atol=1e-11)
    # the check can fail: without the second-order path, or with the others' scores
    first = _expected_estimator(obs, payoff, theta, alpha, first_order=True)
    assert max(float((f - x).abs().max()) for f, x in zip(first, exact)) > 1e-3
    full = _exact_gradient(obs, payoff, theta, alpha, others_fixed=False)
    assert max(float((f - x).abs().max()) for f, x in zip(full, exact)) > 1e-3


def test_term2_weight_scales_only_equation_14s_second_term():
    obs, payoff, theta, alpha = _game(alpha=0.5)
    theta0 = select(theta, torch.tensor([0]))
    pre, post = _batch(obs, 0, payoff[0, 1]), _batch(obs, 1, payoff[1, 0])
    phi = inner_step(theta0, pre, alpha, normalize=False, create_graph=True)
    weights, scale = post.returns.mean(1), torch.tensor([3.0], dtype=torch.float64)
    old = (log_probs(phi, post).detach() - 0.1, log_probs(theta0, pre).detach() + 0.2)

    def grad(w, weight, old=None):
        est = dimapg_objective(theta0, phi, pre, post, w, scale, old, weight).sum()
        return torch.autograd.grad(est, list(theta.values()), retain_graph=True)

    for o in (None, old):  # the plain and the likelihood-ratio (TRPO) form
        term1 = grad(torch.zeros_like(weights), 1.0, o)  # term 2 zeroed by its weights
        full, dropped, half = grad(weights, 1.0, o), grad(weights, 0.0, o), grad(weights, 0.5, o)
        for d, t in zip(dropped, term1):
            torch.testing.assert_close(d, t, rtol=0, atol=0)
        for h, f, t in zip(half, full, term1):
            torch.testing.assert_close(h, t + 0.5 * (f - t), rtol=1e-12, atol=1e-14)
        assert max(float((f - t).abs().max()) for f, t in zip(full, term1)) > 1e-3
        value = dimapg_objective(theta0, phi, pre, post, weights, scale, o, 1.0)
        score = log_probs(theta0, pre) if o is None else torch.exp(log_probs(theta0, pre) - o[1])
        term2 = weights * score.sum()
        torch.testing.assert_close(value - term2 / scale, dimapg_objective(
            theta0, phi, pre, post, weights, scale, o, 0.0), rtol=1e-12, atol=1e-12)  # fmt: skip


@pytest.mark.parametrize("step", ["trpo", "gradient"])
def test_term2_weight_zero_trains_as_zeroing_term_2s_weights(monkeypatch, step):
    args = DimaArgs(**TINY, central_step=step, iterations=2)
    dropped = DimaLearner(dataclasses.replace(args, term2_weight=0.0))
    default, explicit = DimaLearner(args), DimaLearner(dataclasses.replace(args, term2_weight=1.0))
    zeroed = DimaLearner(args)
    weigh = DimaLearner.central_weights

    def zero_weights(self, post, agents):
        weights, scale = weigh(self, post, agents)
        return torch.zeros_like(weights), scale

    for learner in (dropped, default, explicit):
        for _ in range(2):
            learner.train_iteration()
    monkeypatch.setattr(DimaLearner, "central_weights", zero_weights)
    for _ in range(2):
        zeroed.train_iteration()
    for k in dropped.theta:
        torch.testing.assert_close(dropped.theta[k], zeroed.theta[k], rtol=0, atol=0)
        torch.testing.assert_close(default.theta[k], explicit.theta[k], rtol=0, atol=0)
    assert any(not torch.equal(dropped.theta[k], default.theta[k]) for k in dropped.theta)


def _central_gradient(args: DimaArgs) -> list[torch.Tensor]:
    """Gradient of equation 14's surrogate at the initial theta, iteration 0's batches."""
    learner = DimaLearner(args)
    agents = learner.sample_agents()
    seed = derive_seed(args.seed, 0, 0)
    phi, batches, theta0 = learner.adapt(agents, seed, train=True)
    traj = learner.play_focal(phi, agents, derive_seed(seed, args.inner_steps))
    post = learner.focal_batch(traj, agents, normalize=False)
    weights, scale = learner.central_weights(post, agents)
    objective = dimapg_objective(theta0, phi, batches[0], post, weights, scale)
    return torch.autograd.grad(learner.policy_mean(objective, agents),
                               list(learner.theta.values()))  # fmt: skip


def test_the_central_gradient_reaches_theta_through_the_inner_steps():
    args = DimaArgs(**TINY, inner_steps=2, inner_lr=0.5)
    second = _central_gradient(args)
    first = _central_gradient(dataclasses.replace(args, first_order=True))
    assert all(torch.isfinite(g).all() for g in second)
    diff = max(float((a - b).abs().max()) for a, b in zip(second, first))
    size = max(float(a.abs().max()) for a in second)
    assert diff > 1e-4 * size  # the Hessian-vector products are in it (7e-4 here)
    again = _central_gradient(dataclasses.replace(args, first_order=True))
    assert all(torch.equal(a, b) for a, b in zip(first, again))  # and nothing else differs
    learner = DimaLearner(args)
    metrics = learner.train_iteration()
    assert np.isfinite(list(metrics.values())).all()
    assert learner.env_steps == 3 * 3 * 3 * 12 and learner.episodes == 3 * 3 * 3


# -- the TRPO central step ----------------------------------------------------------------
def test_conjugate_gradient_matches_a_direct_solve_per_population():
    gen = torch.Generator().manual_seed(1)
    theta = {k: (v.double() * 20).requires_grad_() for k, v in init_mlp(2, (3, 4, 3), gen).items()}
    obs = torch.randn((2, 50, 3), generator=gen, dtype=torch.float64)
    old = masked_log_softmax(mlp(theta, obs), None).detach()
    values = list(theta.values())
    kl = categorical_kl(old, masked_log_softmax(mlp(theta, obs), None)).mean(1).sum()
    grad = flat(torch.autograd.grad(kl, values, create_graph=True))
    damping = 1e-3

    def fvp(v):
        return flat(torch.autograd.grad((grad * v).sum(), values, retain_graph=True)) + damping * v

    n = grad.shape[1]
    b = torch.randn((2, n), generator=gen, dtype=torch.float64)
    x = conjugate_gradient(fvp, b, iters=4 * n, residual_tol=1e-28)
    for p in range(2):  # F block by block, from Fisher-vector products on unit vectors
        columns = []
        for i in range(n):
            e = torch.zeros((2, n), dtype=torch.float64)
            e[p, i] = 1.0
            columns.append(fvp(e)[p])
        fisher = torch.stack(columns, 1).numpy()
        np.testing.assert_allclose(fisher, fisher.T, atol=1e-10)
        direct = np.linalg.solve(fisher, b[p].numpy())
        np.testing.assert_allclose(x[p].numpy(), direct, rtol=1e-6, atol=1e-8)
    few = conjugate_gradient(fvp, b, iters=2)
    assert float((few - x).abs().max()) > 1e-6  # the check can fail
    assert torch.equal(unflat(x, theta)["w1"].reshape(2, -1), x[:, 16:28])  # w0, b0, w1, b1


@pytest.mark.parametrize("first_order", [False, True])
def test_trpo_step_keeps_the_kl_within_epsilon_and_improves_the_surrogate(first_order):
    args = DimaArgs(**TINY, central_lr=0.01, first_order=first_order)
    assert args.central_step == "trpo"
    learner = DimaLearner(args)
    before = {k: v.detach().clone() for k, v in learner.theta.items()}
    metrics = learner.train_iteration()
    assert metrics["train_surrogate_gain"] > 0 and metrics["train_backtracks"] < 15
    # the KL recomputed here from the same batches (iteration 0 replayed on the old theta)
    replay = DimaLearner(args)
    agents = replay.sample_agents()
    seed = derive_seed(args.seed, 0, 0)
    phi, batches, _ = replay.adapt(agents, seed, train=False)
    post = replay.focal_batch(replay.play_focal(phi, agents, derive_seed(seed, 3)), agents)
    states = _concat_states(batches[0], post)
    obs = states.obs.reshape(len(agents), -1, replay.obs_dim)
    index = replay.slot_policy[torch.from_numpy(agents)]
    old = masked_log_softmax(mlp(select(before, index), obs), None)
    new = masked_log_softmax(mlp(select(learner.theta, index), obs), None).detach()
    valid = states.valid.reshape(len(agents), -1)
    kl = float(categorical_kl(old, new)[valid].mean())
    assert 0.1 * args.central_lr < kl <= args.central_lr * (1 + 1e-5)
    assert kl == pytest.approx(metrics["train_central_kl"], rel=1e-4)


def test_trpo_steps_each_population_on_its_own():
    args = DimaArgs(env="predator_prey_dimapg_3v1", central_step="trpo", agents_per_update=1,
                    central_lr=0.01, **TINY)  # fmt: skip
    learner = DimaLearner(args)
    agents = learner.sample_agents()
    sampled = int(learner.population[agents[0]])
    before = {k: v.detach().clone() for k, v in learner.theta.items()}
    metrics = learner.train_iteration()
    assert np.isfinite(list(metrics.values())).all() and metrics["train_central_kl"] > 0
    for k, v in learner.theta.items():  # only the sampled agent's population moves
        torch.testing.assert_close(v[1 - sampled], before[k][1 - sampled], rtol=0, atol=0)
    assert any(not torch.equal(v[sampled], before[k][sampled]) for k, v in learner.theta.items())


@pytest.mark.parametrize(("method", "subsample"), [("finetune", 1), ("independent", 1),
                                                   ("finetune", 3)])  # fmt: skip
def test_trpo_finetune_and_independent_step_each_policy_within_epsilon(method, subsample):
    """Each of the k + 1 updates is a TRPO step: the KL of every policy over the states of
    the agents following it stays within epsilon (over all states, also when the Fisher
    sees every third), and the ratio surrogate improves."""
    args = DimaArgs(**TINY, method=method, central_step="trpo", central_lr=0.01, inner_steps=0,
                    fisher_subsample=subsample)  # fmt: skip
    learner = DimaLearner(args)
    before = {k: v.detach().clone() for k, v in learner.theta.items()}
    metrics = learner.train_iteration()
    assert metrics["train_surrogate_gain"] > 0 and metrics["train_backtracks"] < 15
    replay = DimaLearner(args)  # the same batch, scored under the old and the new theta
    batch = replay.all_agents_batch(replay.play_all(replay.iteration_keys(0)))
    states = _concat_states(batch)
    obs = states.obs.reshape(learner.n_agents, -1, learner.obs_dim)
    old = masked_log_softmax(mlp(select(before, learner.slot_policy), obs), None)
    new = masked_log_softmax(mlp(select(learner.theta, learner.slot_policy), obs), None)
    kl = categorical_kl(old, new.detach())
    valid = states.valid.reshape(learner.n_agents, -1)
    per_policy = [float(kl[learner.slot_policy == p][valid[learner.slot_policy == p]].mean())
                  for p in range(learner.n_policies)]  # fmt: skip
    assert len(per_policy) == (learner.n_agents if method == "independent" else 1)
    assert all(0 < k <= args.central_lr * (1 + 1e-5) for k in per_policy)
    assert np.mean(per_policy) == pytest.approx(metrics["train_central_kl"], rel=1e-4)


def test_kitchen_sink_refuses_a_trpo_central_step():
    with pytest.raises(ValueError, match="central_step"):
        DimaArgs(method="kitchen_sink", central_step="trpo")


def test_central_step_defaults_follow_the_paper():
    assert DimaArgs(env="navigation_dimapg_N10").central_step == "trpo"
    assert DimaArgs(env="predator_prey_dimapg_3v1").central_step == "gradient"
    assert DimaArgs(method="finetune").central_step == "gradient"
    assert DimaArgs(central_step="gradient").central_step == "gradient"


# -- dead agents --------------------------------------------------------------------------
def test_dead_agents_contribute_no_loss(monkeypatch):
    learner = DimaLearner(DimaArgs(**TINY))
    core = learner.core

    def alive(state):  # agent 0 is dead from the start, agent 1 from step 4 on
        mask = np.ones((state.batch, 3), dtype=bool)
        mask[:, 0] = False
        mask[:, 1] = state.t < 4
        return mask

    monkeypatch.setattr(core, "alive", alive)
    agents = np.arange(3)
    phi, batches, _ = learner.adapt(agents, seed=7, train=False)
    theta = select(learner.theta, torch.zeros(3, dtype=torch.long))
    for k in phi:  # agent 0 never acted: no gradient, theta_0 = theta
        torch.testing.assert_close(phi[k][0], theta[k][0].detach(), rtol=0, atol=0)
        assert not torch.equal(phi[k][2], theta[k][2].detach()) or k.startswith("b")
    pre = batches[0]
    assert not pre.valid[0].any() and pre.valid[1, :, :4].all() and not pre.valid[1, :, 4:].any()
    assert (pre.advantages[~pre.valid] == 0).all()
    # agent 1's update depends on its first 4 steps only
    edited = pre._replace(obs=pre.obs.clone(), actions=pre.actions.clone())
    edited.obs[1, :, 4:] += 100.0
    edited.actions[1, :, 4:] = (edited.actions[1, :, 4:] + 1) % 5
    theta1 = {k: v.detach().clone().requires_grad_() for k, v in theta.items()}
    a = inner_step(theta1, pre, 0.01, True, False)
    b = inner_step(theta1, edited, 0.01, True, False)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    traj = learner.play_focal(theta, agents, seed=1)
    assert (traj.rewards[:, :, 0] == 0).all() and (traj.rewards[:, 4:, 1] == 0).all()
    # the central objective: dead steps of both batches change nothing, agent 0 adds 0
    post = learner.focal_batch(traj, agents, normalize=False)
    edited_post = post._replace(obs=post.obs.clone(), actions=post.actions.clone())
    edited_post.obs[1, :, 4:] += 100.0
    edited_post.actions[1, :, 4:] = (edited_post.actions[1, :, 4:] + 1) % 5
    weights = torch.tensor([1.0, -2.0, 0.5])
    phi1 = inner_step(theta1, pre, 0.01, True, True)
    a = dimapg_objective(theta1, phi1, pre, post, weights)
    b = dimapg_objective(theta1, phi1, edited, edited_post, weights)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert float(a[0].detach()) == 0.0
    grads = torch.autograd.grad(a[0], list(theta1.values()), allow_unused=True)
    assert all(g is None or not g.any() for g in grads)
    old = log_probs(phi1, post).detach(), log_probs(theta1, pre).detach()
    ratio = dimapg_objective(theta1, phi1, pre, post, weights, old=old)
    assert float(ratio[0].detach()) == 0.0
    states, edited_states = _concat_states(pre, post), _concat_states(edited, edited_post)
    old_logp = torch.zeros((3, states.valid[0].numel(), 5))  # uniform old policy
    kl = learner.central_kl(learner.theta, agents, states, old_logp - np.log(5))
    kl_edited = learner.central_kl(learner.theta, agents, edited_states, old_logp - np.log(5))
    torch.testing.assert_close(kl, kl_edited, rtol=0, atol=0)


# -- Args ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [("method", "maddpg"), ("inner_lr", 0.0), ("central_lr", -1.0), ("trajectories", 0),
     ("discount", 1.5), ("populations", "teams"), ("baseline", "value"),
     ("agents_per_update", 0), ("hidden", (100, 0)), ("env", "navigation_dimapg_N4"),
     ("eval_episodes", 0), ("iterations", -1), ("central_optimizer", "rmsprop"),
     ("central_step", "ppo"), ("cg_iters", 0), ("backtrack_ratio", 1.0),
     ("max_backtracks", 0), ("cg_damping", -1.0), ("term2_weight", -0.5),
     ("term2_weight", float("nan")), ("term2_weight", float("inf"))],
)  # fmt: skip
def test_bad_args_raise_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        DimaArgs(**{field: value})


def test_dimapg_needs_an_inner_step_and_other_methods_do_not():
    with pytest.raises(ValueError, match="inner_steps"):
        DimaArgs(inner_steps=0)
    assert DimaArgs(method="finetune", inner_steps=0).inner_steps == 0


def test_populations_by_name_give_predators_and_prey_their_own_theta():
    learner = DimaLearner(DimaArgs(env="predator_prey_dimapg_3v1", **TINY))
    assert learner.population_names == ["predator", "prey"]
    assert learner.theta["w0"].shape[0] == 2
    assert learner.slot_policy.tolist() == [0, 0, 0, 1]
    assert dimapg.eval_columns(learner.args)[:4] == (
        "eval_min_theta", "eval_mean_theta", "eval_predator_theta", "eval_prey_theta"
    )  # fmt: skip
    one = DimaLearner(DimaArgs(env="predator_prey_dimapg_3v1", populations="one", **TINY))
    assert one.theta["w0"].shape[0] == 1


# -- Survival's Table 2 counts ----------------------------------------------------------------
def test_survival_food_left_and_survivors_are_read_at_each_episodes_end():
    args = DimaArgs(env="survival", method="finetune", trajectories=2, max_steps=5, hidden=(8,))
    learner = DimaLearner(args)
    learner.core = metaenvs.make_core("survival", horizon=3, n_food=6, map_size=10)
    keys = copy_keys(7, np.zeros(4, dtype=np.int64), np.arange(4))
    traj = learner.play_all(keys)
    assert traj.actions.shape[1] == 3  # one episode per copy: the horizon ends them all
    # the same episodes replayed on the core: the counts after step 3, the episode's last
    core = metaenvs.make_core("survival", horizon=3, n_food=6, map_size=10)
    state = core.reset(4, _mix(keys ^ np.uint64(0x5EED)))
    for t in range(3):
        result = core.step(state, traj.actions[:, t].numpy())
    assert result.truncated.all()
    for key in ("food_left", "survivors"):
        np.testing.assert_array_equal(traj.episode_info[key].numpy(), result.info[key])
    assert (traj.episode_info["food_left"] <= 6).all()
    # an episode the learner's max_steps cuts short reports its counts at the cut
    learner.core, learner.steps = core, 2
    cut = learner.play_all(keys)
    state = core.reset(4, _mix(keys ^ np.uint64(0x5EED)))
    for t in range(2):
        result = core.step(state, cut.actions[:, t].numpy())
    assert not result.truncated.any()
    np.testing.assert_array_equal(cut.episode_info["survivors"].numpy(), result.info["survivors"])


def test_survival_evaluation_reports_table_2s_columns():
    args = DimaArgs(env="survival", method="dimapg", trajectories=2, max_steps=4, hidden=(8,),
                    eval_episodes=2)  # fmt: skip
    columns = dimapg.eval_columns(args)
    for label in ("theta", "adapted"):
        assert {f"eval_food_left_{label}", f"eval_survivors_{label}"} <= set(columns)
    out = DimaLearner(args).evaluate(2, seed=3)
    assert list(out) == list(columns)
    assert 0 <= out["eval_food_left_theta"] <= 160 and 0 <= out["eval_survivors_theta"] <= 20
    assert "eval_food_left_theta" not in dimapg.eval_columns(DimaArgs())


# -- the experiment -----------------------------------------------------------------------
@pytest.mark.parametrize("method", ["dimapg", "kitchen_sink"])
def test_a_resumed_run_matches_an_uninterrupted_one(tmp_path, method):
    args = DimaArgs(method=method, iterations=4, eval_every=2, **TINY)
    whole = dimapg.EXPERIMENT.run(args, tmp_path / "a", progress=False)
    dimapg.EXPERIMENT.run(dataclasses.replace(args, iterations=2), tmp_path / "b", progress=False)
    resumed = dimapg.EXPERIMENT.run(args, tmp_path / "b", progress=False)
    a, b = (read_metrics(d / "metrics.csv") for d in (whole, resumed))
    assert list(a) == list(b) and a["iteration"].tolist() == [0, 2, 4]
    for column in a:
        if column not in ("wall_s", "env_steps_per_s"):
            np.testing.assert_array_equal(a[column], b[column], err_msg=column)


def test_metaenvs_train_and_compare_dimapg(tmp_path, capsys):
    argv = ["train", "dimapg", "--env", "navigation_dimapg_N3", "--methods", "dimapg",
            "finetune", "independent", "--seeds", "0", "--iterations", "1", "--eval-every", "1",
            "--trajectories", "2", "--max-steps", "6", "--hidden", "8", "--eval-episodes", "2",
            "--out", str(tmp_path), "--no-progress"]  # fmt: skip
    assert metaenvs_main(argv) == 0
    env_dir = tmp_path / "navigation_dimapg_N3"
    m = read_metrics(env_dir / "dimapg" / "seed0" / "metrics.csv")
    assert np.isfinite(m["eval_min_adapted"]).all() and np.isfinite(m["train_focal_post"][1:]).all()
    assert metaenvs_main(["compare", "dimapg", str(env_dir)]) == 0
    table = (env_dir / "table1.md").read_text()
    assert "| dimapg | 1 |" in table and "theta -34.8" in table and "fine tune -44.17" in table
    assert (env_dir / "adaptation.png").is_file()


def test_compare_on_survival_writes_table_2(tmp_path):
    argv = ["train", "dimapg", "--env", "survival", "--methods", "dimapg", "--seeds", "0",
            "--iterations", "1", "--eval-every", "1", "--trajectories", "2", "--max-steps", "4",
            "--hidden", "8", "--eval-episodes", "2", "--agents-per-update", "2",
            "--eval-adapted", "false", "--out", str(tmp_path), "--no-progress"]  # fmt: skip
    assert metaenvs_main(argv) == 0
    assert metaenvs_main(["compare", "dimapg", str(tmp_path / "survival")]) == 0
    m = read_metrics(tmp_path / "survival" / "dimapg" / "seed0" / "metrics.csv")
    table = (tmp_path / "survival" / "table2.md").read_text()
    survivors = np.mean(m["eval_survivors_theta"])  # one seed: the mean of both rows
    assert "| dimapg | 1 | " in table and f"| {survivors:.2f} |" in table
    assert not (tmp_path / "survival" / "table1.md").read_text().count("food")
