"""The wrappers' warm-up: their kernels compiled into Numba's cache by ``metaenvs warmup``.

:func:`tasks` is the entry point of the group ``metaenvs.warmup``
(:mod:`metaenvs.warmup` finds it, so ``metaenvs`` never imports this package).  For the
requested ids it adds:

- ``comm (<kernels>)``: the communication-topology wrapper (:mod:`meta_wrappers.comm`)
  around each particle core, learned requests in both timings (the two-phase
  ``request`` / ``act`` of ``same_step`` included) and every fixed rule, with discrete
  and continuous moves, at B = 1 and at a large batch;
- ``peers (<games>)``: the learning-peers chain (:mod:`meta_wrappers.peers`) of each
  matrix game with a profile, tabular peers (and MLP peers on the first game: the types
  are the same in every game), through a whole chain (so the peers update), its Gymnasium
  face, and :func:`~meta_wrappers.peers.feature_baselines` (the
  baseline fit the learners call).

The focal view and the exercise-move wrapper add no kernels of their own: they step the
core through its public ``step``, which the core's own warm-up covers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from meta_wrappers.comm import RULES, TIMINGS, CommConfig, CommCore
from meta_wrappers.peers import (
    GAMES,
    PeerChain,
    PeerChainConfig,
    feature_baselines,
    make_peer_env,
)
from metaenvs.core import NeighbourStructure
from metaenvs.registry import EnvSpec
from metaenvs.warmup import LARGE_BATCH, WarmupTask, exercise_core, kernel_group, variants

COMM_CONFIGS = (
    *({"topology": "learned", "timing": t} for t in TIMINGS),
    *({"topology": r, "timing": t} for r in RULES for t in TIMINGS),
)
"""Every topology x timing of the communication wrapper."""

CHAIN = {"k": 2, "length": 1, "horizon": 3}
"""A small chain: two joint policies of two 3-round trajectories (one peer update)."""


def tasks(specs: Sequence[EnvSpec]) -> list[WarmupTask]:
    """The wrappers' warm-up tasks for ``specs`` (entry point of ``metaenvs.warmup``).

    Parameters
    ----------
    specs : sequence of EnvSpec
        The requested ids.

    Returns
    -------
    list of WarmupTask
        One ``comm`` task per kernel group with a neighbour structure, and one ``peers``
        task for the matrix games with a profile among ``specs``.
    """
    out: list[WarmupTask] = []
    comm: dict[str, EnvSpec] = {}
    for s in specs:
        if issubclass(s.core_class(), NeighbourStructure):
            comm.setdefault(kernel_group(s), s)
    for group, s in comm.items():
        out.append(WarmupTask(f"comm ({group})", lambda s=s: warm_comm(s)))
    games = [g for g in GAMES if g in {s.name for s in specs}]  # ipd first: cheapest MLPs
    if games:
        out.append(WarmupTask(f"peers ({', '.join(games)})", lambda: warm_peers(games)))
    return out


def warm_comm(spec: EnvSpec, batches: Sequence[int] = (1, LARGE_BATCH)) -> None:
    """Drive the communication wrapper around ``spec``'s core in every topology and timing,
    with each action type the core takes."""
    moves = []
    for kwargs in variants(spec):
        key = {k: v for k, v in kwargs.items() if k == "continuous_actions"}
        if key not in moves:
            moves.append(key)
    for kwargs in moves:
        for config in COMM_CONFIGS:
            core = CommCore(spec.make_core(**kwargs), CommConfig.from_kwargs(**config))
            exercise_core(core, batches)
            if core.config.two_phase:  # the learners' face: request, then act
                for batch in batches:
                    state = core.reset(batch, 0)
                    mask = np.ones((batch, core.n_agents, core.d), dtype=np.bool_)
                    core.request(state, mask)
                    rng = np.random.default_rng(0)
                    core.act(state, core.inner.sample_actions(batch, rng))


def warm_peers(games: Sequence[str]) -> None:
    """Play a small chain of each game step by step and slot by slot, its Gymnasium face,
    and the learners' baseline fit; MLP peers on the first game only.

    The kernels see the same types in every game and for every hidden size; fitting the
    MLP personas is what costs (seconds for IPD, half a minute for 4-player RPS), so MLP
    peers are warmed once, with one hidden unit.
    """
    for i, game in enumerate(games):
        for model in ("tabular", "mlp") if i == 0 else ("tabular",):
            config = PeerChainConfig(game=game, peer_model=model, peer_hidden=1, **CHAIN)
            chain = PeerChain(config)
            for play in (chain.step, chain.step_slot):
                width = config.k if play == chain.step else 1
                state = chain.reset(2, seed=0)
                out = None
                while out is None or not out.chain_done:
                    out = play(state, np.zeros((2, width), dtype=np.int64))
            batch = out.batch
            gamma, n_states = config.gamma, chain.n_states
            for p in range(batch.rewards.shape[-1]):  # strided views, as learners pass them
                feature_baselines(batch.states, batch.rewards[..., p], gamma, n_states)
        env = make_peer_env(game, k=CHAIN["k"], horizon=CHAIN["horizon"])
        env.reset(seed=0)
        env.step(0)
