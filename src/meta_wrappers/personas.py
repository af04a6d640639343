"""Persona populations: the initial policies ``p(phi_0^-i)`` of learning peers.

Paper: meta-mapg-learning-peers, appendix E.  A persona is a tabular policy of an
iterated matrix game, ``probs[state, action]`` over the game's ``A**N + 1`` states.

- **IPD**: cooperating personas draw P(cooperate) uniformly from [0.5, 1] in every
  state, defecting ones from [0, 0.5]; 240 of each, 480 in all.
- **RPS** (2 to 4 players): rock, paper and scissors personas draw the preferred
  action's probability uniformly from [1/3, 1] in every state and split the rest
  uniformly between the two other actions, redrawn until the preferred one is the
  largest; 240 of each, 720 in all.

Splits are stratified by kind (every kind has the same share of each split):

- ``distribution="in"`` (the paper's Figure 3b): train / validation / test drawn at
  random, 400 / 40 / 40 (IPD) and 600 / 60 / 60 (RPS).
- ``distribution="out"`` (Figure 3c): within each kind the personas are ranked by the
  mean probability of their preferred action (IPD: cooperate for cooperating personas,
  defect for defecting ones) and the most extreme ones form the test split; train and
  validation are drawn at random from the rest.  Test personas therefore lie outside
  the training range of mean preference, with the same split sizes.

These numbers (kinds, ranges, counts, split sizes) are each game's
:class:`~metaenvs.games.matrix_profiles.PersonaSpec` in its profile
(:mod:`metaenvs.games.matrix_profiles`); this module only knows how to draw them
(:data:`SAMPLERS`), not which game wants what.

Everything is a pure function of the seed (NumPy's PCG64), so a population is
regenerated on demand instead of being stored; :meth:`Population.save` writes one to
an ``.npz`` file for tools that want the numbers.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np

import metaenvs
from metaenvs.games.matrix_profiles import PersonaSpec, matrix_profile

SPLITS = ("train", "val", "test")
DISTRIBUTIONS = ("in", "out")
PROB_FLOOR = 1e-3
"""Probabilities are clipped to ``[PROB_FLOOR, 1 - PROB_FLOOR]`` before taking logits."""


@dataclasses.dataclass(frozen=True, eq=False)
class Population:
    """A persona population with its stratified splits.

    Attributes
    ----------
    game : str
        ``"ipd"``, ``"rps"``, ``"rps_3p"`` or ``"rps_4p"``.
    probs : np.ndarray
        ``(P, S, A)`` float64 action probabilities of the P personas.
    kinds : tuple of str
        Kind of each persona (``"cooperating"``, ``"defecting"``, ``"rock"``, ...).
    seed : int
        Seed the population was drawn from.
    split_ids : dict
        ``split_ids[distribution][split]`` is the sorted int64 array of persona ids.
    """

    game: str
    probs: np.ndarray
    kinds: tuple[str, ...]
    seed: int
    split_ids: dict[str, dict[str, np.ndarray]]

    def __len__(self) -> int:
        return self.probs.shape[0]

    @property
    def logits(self) -> np.ndarray:
        """``(P, S, A)`` log-probabilities, clipped at :data:`PROB_FLOOR`: the peers' parameters."""
        p = np.clip(self.probs, PROB_FLOOR, 1.0 - PROB_FLOOR)
        return np.log(p / p.sum(axis=-1, keepdims=True))

    def split(self, name: str, distribution: str = "in") -> np.ndarray:
        """Persona ids of split ``name`` (``"train"``, ``"val"``, ``"test"``, or ``"all"``).

        Raises
        ------
        ValueError
            For an unknown split or distribution.
        """
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
        if name == "all":
            return np.arange(len(self), dtype=np.int64)
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS + ('all',)}, got {name!r}")
        return self.split_ids[distribution][name]

    def mlp_params(self, hidden: int) -> np.ndarray:
        """``(P, D)`` parameters of small MLP peers fitted to the personas (cached).

        See :func:`fit_mlp_personas`; the fit is a pure function of the population.
        """
        return _fitted_mlps(self.game, self.seed, hidden)

    def save(self, path: str | Path) -> None:
        """Write probabilities, kinds and every split to an ``.npz`` file."""
        arrays = {"probs": self.probs, "kinds": np.array(self.kinds)}
        for dist, splits in self.split_ids.items():
            for name, ids in splits.items():
                arrays[f"{dist}_{name}"] = ids
        np.savez(path, **arrays)


def first_action_probs(
    rng: np.random.Generator, spec: PersonaSpec, n_states: int, n_actions: int
) -> np.ndarray:
    """The ``"first_action_range"`` sampler: ``(K n, S, 2)`` personas, kind by kind.

    A persona of kind j draws ``P(action 0)`` uniformly from ``spec.ranges[j]`` in every
    state; action 1 takes the rest (IPD: cooperating, then defecting personas).

    Parameters
    ----------
    rng : np.random.Generator
        Source of the draws (advanced).
    spec : PersonaSpec
        The game's persona spec (K kinds, ``n = spec.per_kind``).
    n_states, n_actions : int
        The game's S and A (A must be 2).

    Returns
    -------
    np.ndarray
        ``(K n, S, 2)`` float64 action probabilities.
    """
    if n_actions != 2:
        raise ValueError(f"the first_action_range sampler needs 2 actions, got {n_actions}")
    size = (spec.per_kind, n_states)
    p_first = np.concatenate([rng.uniform(low, high, size=size) for low, high in spec.ranges])
    return np.stack([p_first, 1.0 - p_first], axis=-1)


def preferred_action_probs(
    rng: np.random.Generator, spec: PersonaSpec, n_states: int, n_actions: int
) -> np.ndarray:
    """The ``"preferred_action"`` sampler: ``(K n, S, 3)`` personas, kind by kind.

    A persona of kind j draws its preferred action's probability uniformly from
    ``spec.ranges[j]`` in every state and splits the rest uniformly between the two
    other actions, redrawn until the preferred one is the largest (RPS: rock, paper,
    then scissors personas).

    Parameters
    ----------
    rng : np.random.Generator
        Source of the draws (advanced).
    spec : PersonaSpec
        The game's persona spec (K kinds, ``n = spec.per_kind``).
    n_states, n_actions : int
        The game's S and A (A must be 3).

    Returns
    -------
    np.ndarray
        ``(K n, S, 3)`` float64 action probabilities.
    """
    if n_actions != 3:
        raise ValueError(f"the preferred_action sampler needs 3 actions, got {n_actions}")
    n_each = spec.per_kind
    out = np.empty((len(spec.kinds) * n_each, n_states, 3))
    for kind, (preferred, (low, high)) in enumerate(zip(spec.preferred, spec.ranges)):
        block = out[kind * n_each : (kind + 1) * n_each]
        todo = np.ones((n_each, n_states), dtype=bool)
        others = [a for a in range(3) if a != preferred]
        while todo.any():
            count = int(todo.sum())
            top = rng.uniform(low, high, size=count)
            share = rng.uniform(0.0, 1.0, size=count)
            rest = 1.0 - top
            row = np.empty((count, 3))
            row[:, preferred] = top
            row[:, others[0]] = rest * share
            row[:, others[1]] = rest * (1.0 - share)
            block[todo] = row
            todo[todo] = row[:, others].max(axis=1) >= top
    return out


SAMPLERS = {"first_action_range": first_action_probs, "preferred_action": preferred_action_probs}
"""The persona samplers by :attr:`~metaenvs.games.matrix_profiles.PersonaSpec.sampler` name."""


def _stratified_splits(
    rng: np.random.Generator, score: np.ndarray, kinds: np.ndarray, sizes: dict[str, int]
) -> dict[str, dict[str, np.ndarray]]:
    """In- and out-of-distribution splits, each kind contributing equal shares."""
    labels = np.unique(kinds)
    share = {name: size // len(labels) for name, size in sizes.items()}
    result: dict[str, dict[str, list[np.ndarray]]] = {
        d: {s: [] for s in SPLITS} for d in DISTRIBUTIONS
    }
    for label in labels:
        ids = np.flatnonzero(kinds == label)
        shuffled = rng.permutation(ids)
        start = 0
        for name in SPLITS:
            result["in"][name].append(shuffled[start : start + share[name]])
            start += share[name]
        # out of distribution: the most extreme preference is the test split
        by_score = ids[np.argsort(-score[ids], kind="stable")]
        test, rest = by_score[: share["test"]], rng.permutation(by_score[share["test"] :])
        result["out"]["test"].append(test)
        result["out"]["val"].append(rest[: share["val"]])
        result["out"]["train"].append(rest[share["val"] : share["val"] + share["train"]])
    return {
        d: {s: np.sort(np.concatenate(parts)).astype(np.int64) for s, parts in splits.items()}
        for d, splits in result.items()
    }


def make_population(game: str, seed: int = 0) -> Population:
    """The persona population of ``game`` drawn from ``seed`` (see the module docstring).

    Parameters
    ----------
    game : str
        A matrix game with a profile (:func:`metaenvs.games.matrix_profiles.matrix_profile`:
        ``"ipd"``, ``"rps"``, ``"rps_3p"``, ``"rps_4p"``); personas are tables over that
        game's states.
    seed : int
        Seed of the draw and of the splits.

    Raises
    ------
    ValueError
        For a game without a profile (the message names the known games).

    Examples
    --------
    >>> pop = make_population("ipd")
    >>> pop.probs.shape, len(pop.split("train")), len(pop.split("test", "out"))
    ((480, 5, 2), 400, 40)
    """
    spec = matrix_profile(game).personas
    rules = metaenvs.make_core(game).config
    rng = np.random.default_rng(seed)
    probs = SAMPLERS[spec.sampler](rng, spec, rules.n_states, rules.n_actions)
    kinds = np.repeat(spec.kinds, spec.per_kind)
    preferred = np.repeat(spec.preferred, spec.per_kind)
    score = probs[np.arange(len(probs)), :, preferred].mean(axis=1)
    probs.setflags(write=False)
    splits = _stratified_splits(rng, score, kinds, spec.splits)
    return Population(game, probs, tuple(kinds.tolist()), seed, splits)


def fit_mlp_personas(
    probs: np.ndarray, hidden: int, seed: int = 0, steps: int = 800, lr: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Fit one tanh MLP per persona to its action probabilities (small neural peers).

    Minimises the mean over states of ``KL(probs[s] || softmax(tanh(W1[s] + b1) W2 + b2))``
    by full-batch Adam from a seeded initialisation, all personas at once.

    Parameters
    ----------
    probs : np.ndarray
        ``(P, S, A)`` persona probabilities.
    hidden : int
        Hidden units h.

    Returns
    -------
    params : np.ndarray
        ``(P, D)`` flattened ``[W1, b1, W2, b2]``, ``D = S h + h + h A + A``.
    kl : np.ndarray
        ``(P,)`` the mean KL divergence of each fit.
    """
    if hidden < 1:
        raise ValueError(f"hidden must be >= 1, got {hidden}")
    rng = np.random.default_rng(seed)
    n, n_states, n_actions = probs.shape
    target = np.clip(probs, PROB_FLOOR, 1.0)
    target = target / target.sum(-1, keepdims=True)
    weights = [
        rng.normal(0.0, 0.5, (n, n_states, hidden)),
        np.zeros((n, hidden)),
        rng.normal(0.0, 1.0 / np.sqrt(hidden), (n, hidden, n_actions)),
        np.log(target.mean(axis=1)),
    ]
    moments = [(np.zeros_like(w), np.zeros_like(w)) for w in weights]
    for step in range(1, steps + 1):
        w1, b1, w2, b2 = weights
        h = np.tanh(w1 + b1[:, None])  # (P, S, h)
        logits = h @ w2 + b2[:, None]
        q = np.exp(logits - logits.max(-1, keepdims=True))
        q /= q.sum(-1, keepdims=True)
        g_logits = (q - target) / n_states  # gradient of the mean cross-entropy
        g_w2 = np.swapaxes(h, 1, 2) @ g_logits
        g_b2 = g_logits.sum(1)
        g_z = (g_logits @ np.swapaxes(w2, 1, 2)) * (1.0 - h * h)
        grads = [g_z, g_z.sum(1), g_w2, g_b2]
        for w, g, (m, v) in zip(weights, grads, moments):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            w -= lr * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    w1, b1, w2, b2 = weights
    logits = np.tanh(w1 + b1[:, None]) @ w2 + b2[:, None]
    logq = logits - logits.max(-1, keepdims=True)
    logq -= np.log(np.exp(logq).sum(-1, keepdims=True))
    kl = (target * (np.log(target) - logq)).sum(-1).mean(-1)
    params = np.concatenate([w.reshape(n, -1) for w in weights], axis=1)
    return params, kl


@functools.lru_cache(maxsize=8)
def _fitted_mlps(game: str, seed: int, hidden: int) -> np.ndarray:
    params, _ = fit_mlp_personas(make_population(game, seed).probs, hidden, seed)
    params.setflags(write=False)
    return params
