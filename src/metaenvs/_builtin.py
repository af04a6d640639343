"""Registrations of the environments that ship with metaenvs (run on ``import metaenvs``)."""

from __future__ import annotations

from metaenvs.games.matrix import IPD_ACTIONS, RPS_ACTIONS, ipd_payoffs, rps_payoffs
from metaenvs.registry import register

_MATRIX = "metaenvs.games.matrix:MatrixGameCore"
_FOCAL = {"focal": "meta_wrappers.focal:make_focal_env"}


def register_builtin() -> None:
    """Register every built-in id."""
    register(
        "ipd-v0",
        _MATRIX,
        "Iterated prisoner's dilemma, Table 1 payoffs, horizon 150 (meta-mapg)",
        family="matrix_games",
        defaults={"horizon": 150},
        fixed={"payoffs": ipd_payoffs(), "action_names": IPD_ACTIONS},
        views=_FOCAL,
    )
    for n, name in ((2, "rps"), (3, "rps_3p"), (4, "rps_4p")):
        register(
            f"{name}-v0",
            _MATRIX,
            f"Iterated rock-paper-scissors, {n} players, Table 2 payoffs "
            + ("" if n == 2 else "(mean of pairwise) ")
            + "horizon 50 (meta-mapg)",
            family="matrix_games",
            defaults={"horizon": 50},
            fixed={"payoffs": rps_payoffs(n), "action_names": RPS_ACTIONS},
            views=_FOCAL,
        )
    register(
        "matrix_game-v0",
        _MATRIX,
        "Any iterated matrix game: payoffs (A,)*N+(N,), horizon",
        family="matrix_games",
        views=_FOCAL,
    )
