"""The wrappers' warm-up (``meta_wrappers.warmup``) and the kernel signatures learners use.

Learners must call the kernels with the argument types ``metaenvs warmup`` compiled, or
their first run compiles again: these tests give the wrappers' public functions the
arrays learners have (strided views, read-only arrays, other dtypes) and check that the
kernels get the one type the warm-up compiled (C-contiguous, writable, the kernel's
dtype).  They check the arrays, not Numba's cache: what a cache holds depends on what
ran before.
"""

from __future__ import annotations

import numpy as np

import meta_wrappers.peers as peers_module
import metaenvs
from meta_wrappers.comm import make_comm_core
from meta_wrappers.peers import PeerChain, PeerChainConfig, feature_baselines
from meta_wrappers.warmup import tasks

CHAIN = {"game": "ipd", "k": 2, "length": 1, "horizon": 3}


def play_joint_policy(chain, n_chains=2):
    state = chain.reset(n_chains, seed=1)
    out = None
    while out is None or out.batch is None:
        out = chain.step(state, np.ones((n_chains, chain.config.k), dtype=np.int64))
    return out.batch


def task_names(ids):
    return [t.name for t in tasks([metaenvs.spec(i) for i in ids])]


def test_tasks_cover_the_wrappers_of_the_requested_ids_only():
    assert task_names(["ipd", "navigation_N3_l3", "push_N3"]) == [
        "comm (navigation)",
        "comm (push)",
        "peers (ipd)",
    ]
    assert task_names(["skirmish_3m"]) == []
    assert task_names(["rps_3p", "ipd"]) == ["peers (ipd, rps_3p)"]  # IPD first: cheapest MLPs


def array_types(args):
    """What Numba compiles a signature for: dtype, dimensions, layout, writability."""
    return [
        (a.dtype, a.ndim, a.flags.c_contiguous, a.flags.writeable)
        for a in args
        if isinstance(a, np.ndarray)
    ]


def test_feature_baselines_are_the_peers_own_and_take_one_signature(monkeypatch):
    chain = PeerChain(PeerChainConfig(**CHAIN))
    batch = play_joint_policy(chain)
    gamma, n_states = chain.config.gamma, chain.n_states
    for p in range(chain.n_peers):  # the env's update fitted the same baselines
        _, baseline = feature_baselines(batch.states, batch.rewards[..., p + 1], gamma, n_states)
        np.testing.assert_allclose(baseline, batch.baseline[:, p], rtol=1e-12, atol=1e-12)

    seen = []
    kernel = peers_module.fit_baselines
    monkeypatch.setattr(
        peers_module, "fit_baselines", lambda *a: (seen.append(array_types(a)), kernel(*a))
    )
    rewards = np.ascontiguousarray(batch.rewards[..., 0])
    readonly = rewards.copy()
    readonly.setflags(write=False)
    for r, s in [
        (rewards, batch.states),
        (batch.rewards[..., 0], batch.states),  # a strided view, as learners slice it
        (readonly, batch.states),
        (rewards.astype(np.float32), batch.states.astype(np.int32)),
        (rewards.tolist(), batch.states.tolist()),
    ]:
        feature_baselines(s, r, gamma, n_states)
    assert all(types == seen[0] for types in seen), seen
    assert all(c and w for *_, c, w in seen[0])


def test_mlp_and_tabular_peers_hand_the_kernels_the_same_array_types():
    tabular = PeerChain(PeerChainConfig(**CHAIN))
    mlp = PeerChain(PeerChainConfig(**CHAIN, peer_model="mlp", peer_hidden=1))
    assert array_types([mlp.persona_params, mlp.persona_tables]) == array_types(
        [tabular.persona_params, tabular.persona_tables]
    )


def test_comm_act_hands_the_core_contiguous_actions(monkeypatch):
    core = make_comm_core("navigation_N3_l3", env_kwargs={"continuous_actions": True})
    seen = []
    step = core.inner.step_validated
    monkeypatch.setattr(
        core.inner, "step_validated", lambda s, a: (seen.append(array_types([a])), step(s, a))[1]
    )
    state = core.reset(3, seed=0)
    core.request(state, np.ones((3, core.n_agents, core.d), dtype=np.bool_))
    wide = np.zeros((3, core.n_agents, 10), dtype=np.float32)  # a policy's output, sliced
    core.act(state, wide[..., ::2])
    assert seen == [[(np.dtype(np.float32), 3, True, True)]]
