"""One table per iterated matrix game: what the wrappers and learners know about it.

Paper: meta-mapg-learning-peers, Tables 3 and 4 (horizon, discount, learning rates) and
appendix E (persona populations).

The rules of a game (payoffs, states) are its :class:`~metaenvs.games.matrix.MatrixGameConfig`;
everything else that code outside :mod:`metaenvs` needs to know about it lives in its
:class:`MatrixGameProfile` here, and nowhere else: the learning-peer chain reads the
horizon and discount (:mod:`meta_wrappers.peers`), the persona population reads how to
draw its personas (:mod:`meta_wrappers.personas`) and the Meta-MAPG learner reads the
paper's learning rates (:mod:`baselines.peers.learner`).  Nothing branches on a game's
name, and a game without a profile raises (:func:`matrix_profile`) instead of silently
borrowing another game's numbers.

The profiles are plain numbers, so :mod:`metaenvs` imports nothing above it.

Adding a game
-------------
Add its profile to :data:`PROFILES`, then register its id with its payoffs under the same
name (``metaenvs._builtin`` takes the default horizon from the profile).
``tests/metaenvs/test_game_tables.py`` checks that every profile matches a registered game (same
horizon, a persona sampler that fits its action count) and that every registered game
with a ``peers`` view has a profile.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping

from metaenvs.config import unknown_keyword_message

PERSONA_SAMPLERS = ("first_action_range", "preferred_action")
"""How a persona population can be drawn (see :attr:`PersonaSpec.sampler`)."""


@dataclasses.dataclass(frozen=True)
class PersonaSpec:
    """How a game's persona population is drawn (the paper's appendix E).

    The population is ``per_kind`` personas of each kind in :attr:`kinds`, in that order;
    its splits are stratified by kind (:func:`meta_wrappers.personas.make_population`).
    """

    sampler: str
    """``"first_action_range"`` (2 actions): a persona of kind j draws the probability of
    action 0 uniformly from ``ranges[j]`` in every state, action 1 takes the rest.
    ``"preferred_action"`` (3 actions): a persona of kind j draws the probability of its
    preferred action uniformly from ``ranges[j]`` in every state and splits the rest
    uniformly between the two other actions, redrawn until the preferred one is the largest."""
    kinds: tuple[str, ...]
    """Names of the kinds of personas (``"cooperating"``, ``"rock"``, ...)."""
    preferred: tuple[int, ...]
    """Preferred action of each kind; the out-of-distribution test split holds the personas
    with the highest mean probability of it."""
    ranges: tuple[tuple[float, float], ...]
    """``(low, high)`` of each kind's drawn probability (see :attr:`sampler`)."""
    split_sizes: tuple[int, int, int]
    """Sizes of the train, validation and test splits (each a multiple of the kinds)."""
    per_kind: int = 240
    """Personas of each kind."""

    def __post_init__(self) -> None:
        if self.sampler not in PERSONA_SAMPLERS:
            raise ValueError(f"sampler must be one of {PERSONA_SAMPLERS}, got {self.sampler!r}")
        n_kinds = len(self.kinds)
        if n_kinds < 1 or len(self.preferred) != n_kinds or len(self.ranges) != n_kinds:
            raise ValueError("kinds, preferred and ranges need one entry per kind")
        for low, high in self.ranges:
            if not 0.0 <= low <= high <= 1.0:
                raise ValueError(
                    f"each range must satisfy 0 <= low <= high <= 1, got {self.ranges}"
                )
        if len(self.split_sizes) != 3 or any(size % n_kinds for size in self.split_sizes):
            raise ValueError(
                f"split_sizes must be 3 multiples of the {n_kinds} kinds, got {self.split_sizes}"
            )
        if sum(self.split_sizes) > self.per_kind * n_kinds:
            raise ValueError(f"split_sizes {self.split_sizes} need more than the personas drawn")

    @property
    def n_personas(self) -> int:
        """Size of the population."""
        return self.per_kind * len(self.kinds)

    @property
    def splits(self) -> dict[str, int]:
        """``{"train": ..., "val": ..., "test": ...}`` split sizes."""
        return dict(zip(("train", "val", "test"), self.split_sizes))


@dataclasses.dataclass(frozen=True)
class MatrixGameProfile:
    """Everything the learning-peer wrappers and learners know about one matrix game."""

    name: str
    """The registered id without its version (``"ipd"``)."""
    horizon: int
    """Rounds per trajectory H (the paper's; the registered id's default, a test checks)."""
    gamma: float
    """Discount of the peers' and the meta-agent's returns."""
    personas: PersonaSpec
    """How the game's persona population is drawn."""
    inner_lr: float
    """Initial inner learning rate alpha of the meta-agent (Meta-MAPG)."""
    actor_lr: float
    """Outer learning rate of the meta-agent's policy and of alpha."""
    critic_lr: float
    """Learning rate of the meta-agent's value function."""

    @property
    def paper_rates(self) -> dict[str, float]:
        """``inner_lr``, ``actor_lr`` and ``critic_lr`` by name."""
        return {"inner_lr": self.inner_lr, "actor_lr": self.actor_lr, "critic_lr": self.critic_lr}


_IPD_PERSONAS = PersonaSpec(
    sampler="first_action_range",
    kinds=("cooperating", "defecting"),
    preferred=(0, 1),
    ranges=((0.5, 1.0), (0.0, 0.5)),
    split_sizes=(400, 40, 40),
)
_RPS_PERSONAS = PersonaSpec(
    sampler="preferred_action",
    kinds=("rock", "paper", "scissors"),
    preferred=(0, 1, 2),
    ranges=((1.0 / 3.0, 1.0),) * 3,
    split_sizes=(600, 60, 60),
)
_RPS_RATES = {"inner_lr": 0.01, "actor_lr": 1e-5, "critic_lr": 1.5e-5}  # Table 4


def _rps(name: str) -> MatrixGameProfile:
    """RPS with any number of players: the paper's Table 4 (it gives no N-player numbers)."""
    return MatrixGameProfile(name=name, horizon=50, gamma=0.9, personas=_RPS_PERSONAS, **_RPS_RATES)


PROFILES: Mapping[str, MatrixGameProfile] = types.MappingProxyType(
    {
        "ipd": MatrixGameProfile(
            name="ipd",
            horizon=150,
            gamma=0.96,
            personas=_IPD_PERSONAS,
            inner_lr=0.1,
            actor_lr=1e-4,
            critic_lr=1.5e-4,
        ),  # Table 3
        "rps": _rps("rps"),
        "rps_3p": _rps("rps_3p"),
        "rps_4p": _rps("rps_4p"),
    }
)
"""The profile of every game a learning-peer chain can play, by registered name."""


def matrix_profile(game: str) -> MatrixGameProfile:
    """The profile of ``game``.

    Parameters
    ----------
    game : str
        A key of :data:`PROFILES` (``"ipd"``, ``"rps"``, ``"rps_3p"``, ``"rps_4p"``).

    Returns
    -------
    MatrixGameProfile

    Raises
    ------
    ValueError
        For a game without a profile; the message names the known games.

    Examples
    --------
    >>> matrix_profile("rps_3p").gamma
    0.9
    """
    if not isinstance(game, str) or game not in PROFILES:
        raise ValueError(
            unknown_keyword_message("game", str(game), list(PROFILES))
            + " (a game needs a profile in metaenvs.games.matrix_profiles)"
        )
    return PROFILES[game]
