"""Meta-MAPG's cooperative HalfCheetah experiment (baselines.peers.cheetah)."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("mujoco")

from baselines.peers import cheetah, teammates  # noqa: E402
from baselines.peers.cheetah import CheetahArgs, CheetahLearner  # noqa: E402
from baselines.peers.estimators import discounted_returns  # noqa: E402

TINY_POP = teammates.TeammateArgs(iterations=3, trajectories=2, horizon=8, hidden=8, keep=(0, 1, 2))
# the three checkpoints stand for one teammate of each split
STAND_INS = [teammates.SPLITS[s][0] for s in ("train", "val", "test")]


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = teammates.train(TINY_POP, progress=False)
    result["kept"] = np.array(STAND_INS, dtype=np.int64)
    return teammates.save(result, tmp_path_factory.mktemp("teammates") / "pop.npz")


def tiny(pop: Path, **changes: object) -> CheetahArgs:
    # K H = 64 samples > the 38 features of the linear baseline (fewer: it fits the returns)
    fields = dict(population=str(pop), k=4, horizon=16, length=2, chains=2, hidden=8)
    fields.update(iterations=2, eval_every=1)
    fields.update(changes)
    return CheetahArgs(**fields)


def test_the_teammates_in_chain_update_is_a_hand_computed_policy_gradient_step(population):
    """phi_1^-i, read back from the teammate's log-densities at position 1, is the
    REINFORCE step with the linear baseline, computed with the teammates module's own
    (unbatched) policy."""
    args = tiny(population, method="meta_mapg", reward_scale=1.0, peer_lr=0.05)
    learner = CheetahLearner(args)
    ids = [STAND_INS[0], STAND_INS[1]]
    positions, _ = learner.play_chain(ids, seed=3, train=True)
    first, second = positions[0], positions[1]
    baseline = cheetah.linear_baseline(first, args.gamma)
    returns = discounted_returns(first.rewards, args.gamma)
    discount = args.gamma ** torch.arange(args.horizon, dtype=torch.float32)
    weights = discount * (returns - baseline)  # gamma^t (G_t - b_t)
    for c, checkpoint in enumerate(ids):
        params = {k: v.requires_grad_() for k, v in learner.population.params(checkpoint).items()}
        logp = teammates.log_prob(params, first.obs[c], first.peer_actions[c])
        surrogate = (logp * weights[c]).sum(-1).mean()
        grads = torch.autograd.grad(surrogate, list(params.values()))
        stepped = {k: (v + args.peer_lr * g).detach() for (k, v), g in zip(params.items(), grads)}
        assert any(g.abs().max() > 1e-3 for g in grads)  # the step moves the teammate
        expected = teammates.log_prob(stepped, second.obs[c], second.peer_actions[c])
        torch.testing.assert_close(second.peer_lp[c].detach(), expected, rtol=1e-4, atol=1e-4)
        before = teammates.log_prob(params, second.obs[c], second.peer_actions[c]).detach()
        assert (before - expected).abs().max() > 1e-3  # so the check can fail


def test_pg_step_ignores_the_other_agents_nodes_in_value() -> None:
    gen = torch.Generator().manual_seed(0)
    params = {"w": torch.randn(2, 3, generator=gen, requires_grad=True)}
    other = torch.randn(2, 4, 5, generator=gen, requires_grad=True)
    own = (params["w"].sum(-1)[:, None, None] * torch.randn(2, 4, 5, generator=gen)).tanh()
    rewards, baseline = torch.randn(2, 4, 5, generator=gen), torch.randn(2, 4, 5, generator=gen)
    alone = cheetah.pg_step(params, own, rewards, baseline, 0.1, 0.9, create_graph=False)
    joint = cheetah.pg_step(params, own + other, rewards, baseline, 0.1, 0.9, create_graph=True)
    torch.testing.assert_close(alone["w"], joint["w"].detach())
    assert joint["w"].grad_fn is not None and alone["w"].grad_fn is None


@pytest.mark.parametrize("method, peer_term", [("meta_mapg", True), ("meta_pg", False)])
def test_the_peer_learning_term_exists_for_meta_mapg_only(population, method, peer_term):
    learner = CheetahLearner(tiny(population, method=method))
    positions, leaves = learner.play_chain([STAND_INS[0]] * 2, seed=5, train=True)
    theta = [v for k, v in leaves.items() if k != "inner_lr"]
    for pos in positions[1:]:
        grads = torch.autograd.grad(pos.peer_lp.sum(), theta, allow_unused=True, retain_graph=True)
        norm = sum(float(g.norm()) for g in grads if g is not None)
        if peer_term:
            assert norm > 1e-6  # phi_l^-i depends on theta through the replayed update
        else:
            assert norm == 0.0
    # and the outer loss differs by that term only
    value = {k: v.detach().repeat(2, *[1] * v.dim()) for k, v in learner.value.items()}
    loss, _ = learner.outer_losses(positions, value)
    learner.method = dataclasses.replace(learner.method, peer=False)
    without, _ = learner.outer_losses(positions, value)
    assert torch.equal(loss, without) != peer_term


@pytest.mark.parametrize(
    "method, own", [("meta_pg", True), ("reinforce", False), ("lola_dice", False)]
)
def test_the_own_learning_term_differentiates_through_the_inner_steps(population, method, own):
    """phi_1 depends on theta through alpha grad J(theta) for the meta methods (so on the
    inner rates); the stationary methods cut that graph (phi_1 = theta + const)."""
    learner = CheetahLearner(tiny(population, method=method))
    positions, leaves = learner.play_chain([STAND_INS[0]] * 2, seed=5, train=True)
    (grad,) = torch.autograd.grad(
        positions[1].meta_lp.sum(), [leaves["inner_lr"]], allow_unused=True, retain_graph=True
    )
    assert (grad is not None and float(grad.abs().sum()) > 0) == own
    theta = [v for k, v in leaves.items() if k != "inner_lr"]
    grads = torch.autograd.grad(positions[1].meta_lp.sum(), theta, allow_unused=True)
    assert all(g is not None for g in grads)  # every method trains theta on position 1


@pytest.mark.parametrize("method, learns", [("reinforce", False), ("meta_pg", True)])
def test_only_meta_methods_learn_their_inner_rates(population, method, learns):
    learner = CheetahLearner(tiny(population, method=method))
    before = learner.inner_lr.detach().clone()
    learner.train_iteration()
    assert torch.equal(learner.inner_lr.detach(), before) != learns


def test_the_outer_optimiser_is_the_codes_shared_adam(population):
    """misc/shared_adam.py: AMSGrad, eps 1e-3 added before the bias correction (PyTorch's
    Adam adds its eps, 1e-8 by default, after it)."""
    learner = CheetahLearner(tiny(population))
    for opt in (learner.actor_opt, learner.lr_opt, learner.value_opt):
        assert isinstance(opt, cheetah.SharedAdam)
        assert opt.defaults["eps"] == 1e-3 and opt.defaults["amsgrad"]
    param = torch.zeros(3, requires_grad=True)
    opt = cheetah.SharedAdam([param], lr=0.1)
    grads = [[1e-3, -2e-4, 5e-2], [-1e-4, 3e-4, 1e-2], [2e-3, -1e-3, 0.0]]
    m, v, v_max, expected = (torch.zeros(3, dtype=torch.float64) for _ in range(4))
    for n, g in enumerate(grads, start=1):
        g = torch.tensor(g, dtype=torch.float64)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        v_max = torch.maximum(v_max, v)
        expected -= 0.1 * (1 - 0.999**n) ** 0.5 / (1 - 0.9**n) * m / (v_max.sqrt() + 1e-3)
        param.grad = g.float()
        opt.step()
        torch.testing.assert_close(param.detach().double(), expected, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("method", list(cheetah.METHODS))
def test_same_seed_same_metrics_and_parameters(population, method):
    a, b = (CheetahLearner(tiny(population, method=method, seed=4)) for _ in range(2))
    for _ in range(2):
        assert a.train_iteration() == b.train_iteration()
    for k in a.actor:
        assert torch.equal(a.actor[k], b.actor[k])
    ev_a, ev_b = a.evaluate("val"), b.evaluate("val")
    np.testing.assert_array_equal(ev_a.returns, ev_b.returns)
    assert ev_a.returns.shape == (3,) and ev_a.checkpoints == [STAND_INS[1]]
    first = CheetahLearner(tiny(population, method=method, seed=4)).train_iteration()
    assert CheetahLearner(tiny(population, method=method, seed=5)).train_iteration() != first


def read_metrics(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key in ("wall_s", "env_steps_per_s"):
            row.pop(key)
    return rows


def test_a_resumed_run_matches_an_uninterrupted_one(population, tmp_path):
    args = tiny(population, method="meta_mapg", iterations=3, eval_every=1)
    whole = cheetah.EXPERIMENT.run(args, tmp_path / "a", progress=False)
    cheetah.EXPERIMENT.run(dataclasses.replace(args, iterations=1), tmp_path / "b", progress=False)
    resumed = cheetah.EXPERIMENT.run(args, tmp_path / "b", progress=False)
    rows_a, rows_b = read_metrics(whole / "metrics.csv"), read_metrics(resumed / "metrics.csv")
    assert [r["iteration"] for r in rows_a] == ["0", "1", "2", "3"]
    assert rows_a == rows_b
    test_a, test_b = (json.loads((d / "test.json").read_text()) for d in (whole, resumed))
    assert test_a["returns"] == test_b["returns"] and len(test_a["returns"]) == 3
    assert test_a["checkpoints"] == [STAND_INS[2]]
    assert (whole / "chain.png").is_file()
    assert cheetah.main(["compare", str(tmp_path / "a" / "halfcheetah_2x3")]) == 0
    assert (tmp_path / "a" / "halfcheetah_2x3" / "adaptation.png").is_file()
    table = (tmp_path / "a" / "halfcheetah_2x3" / "adaptation.md").read_text()
    assert "| meta_mapg | 1 | 3 |" in table and "Meta-MAPG performs similarly" in table
    # the last validation row (iteration 3) as a second table, its numbers from metrics.csv
    last = read_metrics(whole / "metrics.csv")[-1]
    assert last["iteration"] == "3"
    assert f"| meta_mapg | 1 | 3 | 3 | {float(last['val_r0']):.1f} |" in table


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"method": "maml"}, "method must be one of"),
        ({"env": "halfcheetah"}, "env must be 'halfcheetah_2x3'"),
        ({"k": 0}, "k must be an int >= 1"),
        ({"length": 0}, "length must be an int >= 1"),
        ({"horizon": 2.5}, "horizon must be an int >= 1"),
        ({"gamma": 1.5}, "gamma must be in"),
        ({"peer_lr": 0.0}, "peer_lr=0.0"),
        ({"direction": 0.5}, "direction must be"),
        ({"iterations": -1}, "iterations must be"),
        ({"eval_chains": 0}, "eval_chains must be"),
        ({"population": "/nonexistent/pop.npz"}, "no teammate population file"),
    ],
)
def test_bad_args_raise_clear_errors(population, changes, message):
    with pytest.raises(ValueError, match=message):
        tiny(population, **changes)


def test_bad_splits_and_checkpoints_raise(population, tmp_path):
    learner = CheetahLearner(tiny(population))
    with pytest.raises(ValueError, match="split must be one of"):
        learner.evaluate("meta-test")
    state = learner.state_dict()
    state["inner_lr"] = torch.zeros(5)
    with pytest.raises(ValueError, match="inner learning rates"):
        learner.load_state_dict(state)
    result = teammates.train(TINY_POP, progress=False)
    result["kept"] = np.array([STAND_INS[1]] * 3, dtype=np.int64)  # no train teammate
    path = teammates.save(result, tmp_path / "val_only.npz")
    with pytest.raises(ValueError, match="no checkpoint of the train split"):
        CheetahLearner(tiny(path))


def test_cli_help_lists_the_fields(capsys):
    with pytest.raises(SystemExit):
        cheetah.main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--peer-lr" in out and "--population" in out and "meta_mapg" in out
