"""Registrations of the environments that ship with metaenvs (run on ``import metaenvs``)."""

from __future__ import annotations

from metaenvs.games.matrix import IPD_ACTIONS, RPS_ACTIONS, ipd_payoffs, rps_payoffs
from metaenvs.games.matrix_profiles import matrix_profile
from metaenvs.registry import register

_MATRIX = "metaenvs.games.matrix:MatrixGameCore"
_FOCAL = {"focal": "meta_wrappers.focal:make_focal_env"}
_PEERS = {**_FOCAL, "peers": "meta_wrappers.peers:make_peer_env"}
_NAVIGATION = "metaenvs.games.navigation:NavigationCore"
_PREDATOR_PREY = "metaenvs.games.predator_prey:PredatorPreyCore"
_PUSH = "metaenvs.games.push:PushCore"
_SKIRMISH = "metaenvs.games.skirmish:SkirmishCore"
_SURVIVAL = "metaenvs.games.survival:SurvivalCore"
_HALFCHEETAH = "metaenvs.games.halfcheetah:HalfCheetahCore"  # imports mujoco when made
_NEURONS = "metaenvs.games.neurons:NeuronsCore"
SKIRMISH_FAMILIES = {
    "skirmish_marines": ("3m", "8m", "5m_vs_6m", "8m_vs_9m", "10m_vs_11m", "27m_vs_30m"),
    "skirmish_protoss": ("2s3z", "3s5z", "1c3s5z", "3s5z_vs_3s6z"),
    "skirmish_mixed": ("MMM2", "6h_vs_8z", "corridor", "bane_vs_bane"),
}
"""Docs pages of the Skirmish maps (one per family) and their maps."""


def register_builtin() -> None:
    """Register every built-in id."""
    register_matrix_games()
    register_particle()
    register_skirmish()
    register_survival()
    register_halfcheetah()
    register_neurons()


def register_matrix_games() -> None:
    """Register the iterated matrix games (meta-mapg ids)."""
    register(
        "ipd-v0",
        _MATRIX,
        "Iterated prisoner's dilemma, Table 1 payoffs, horizon 150 (meta-mapg)",
        family="matrix_games",
        defaults={"horizon": matrix_profile("ipd").horizon},
        fixed={"payoffs": ipd_payoffs(), "action_names": IPD_ACTIONS},
        views=_PEERS,
    )
    for n, name in ((2, "rps"), (3, "rps_3p"), (4, "rps_4p")):
        register(
            f"{name}-v0",
            _MATRIX,
            f"Iterated rock-paper-scissors, {n} players, Table 2 payoffs "
            + ("" if n == 2 else "(mean of pairwise) ")
            + "horizon 50 (meta-mapg)",
            family="matrix_games",
            defaults={"horizon": matrix_profile(name).horizon},
            fixed={"payoffs": rps_payoffs(n), "action_names": RPS_ACTIONS},
            views=_PEERS,
        )
    register(
        "matrix_game-v0",
        _MATRIX,
        "Any iterated matrix game: payoffs (A,)*N+(N,), horizon",
        family="matrix_games",
        views=_FOCAL,
    )


def register_particle() -> None:
    """Register the particle-world tasks (comm-topology and dima-pg ids)."""
    register(
        "navigation-v0",
        _NAVIGATION,
        "Cooperative navigation, any size: N agents cover landmarks (MPE simple_spread)",
        family="navigation",
        views=_FOCAL,
    )
    for n, seen in ((3, 3), (6, 1), (6, 6)):
        register(
            f"navigation_N{n}_l{seen}-v0",
            _NAVIGATION,
            f"Cooperative navigation, {n} agents, nearest {seen} landmarks, "
            "shared reward, 25 steps (comm-topology)",
            family="navigation",
            defaults={"n_agents": n, "n_observed_landmarks": seen},
            views=_FOCAL,
        )
    for n in (3, 10):
        register(
            f"navigation_dimapg_N{n}-v0",
            _NAVIGATION,
            f"Cooperative navigation, {n} agents, individual clipped rewards, 200 steps (dima-pg)",
            family="navigation",
            defaults={"n_agents": n, "reward": "individual", "horizon": 200},
            views=_FOCAL,
        )
    register(
        "predator_prey-v0",
        _PREDATOR_PREY,
        "Predator-prey, any size: N predators chase M faster prey (MPE simple_tag)",
        family="predator_prey",
        views=_FOCAL,
    )
    for n, m, seen in ((3, 1, 3), (6, 2, 1), (6, 2, 6)):
        register(
            f"predator_prey_N{n}_M{m}_l{seen}-v0",
            _PREDATOR_PREY,
            f"Predator-prey, {n} predators vs {m} scripted prey, {n} landmarks, "
            f"nearest {seen} observed, 25 steps (comm-topology)",
            family="predator_prey",
            defaults={"n_predators": n, "n_prey": m, "n_observed": seen},
            views=_FOCAL,
        )
    for n, m, faster in ((3, 1, 1.3), (12, 4, 1.5)):
        register(
            f"predator_prey_dimapg_{n}v{m}-v0",
            _PREDATOR_PREY,
            f"Predator-prey, {n} predators vs {m} prey agents {round(faster * 100) - 100}% "
            "faster, 200 steps (dima-pg)",
            family="predator_prey",
            defaults={
                "n_predators": n,
                "n_prey": m,
                "prey": "agents",
                "horizon": 200,
                "prey_speed": faster,
                "prey_accel": 3.0 * faster,
            },
            views=_FOCAL,
        )
    register(
        "push-v0",
        _PUSH,
        "Cooperative push, any size: N agents push a heavy ball to a target",
        family="push",
        views=_FOCAL,
    )
    for n in (3, 6):
        register(
            f"push_N{n}-v0",
            _PUSH,
            f"Cooperative push, {n} agents, shared reward, 25 steps (comm-topology)",
            family="push",
            defaults={"n_agents": n},
            views=_FOCAL,
        )


def register_skirmish() -> None:
    """Register the Skirmish maps (mnmpg's SMAC maps): ``skirmish_<map>-v1`` (v1: the
    ``smac`` enemy AI, random hit order, SMAC's observation feature 0 and state last
    actions; v0 is gone, its dynamics and spaces differ)."""
    from metaenvs.games.skirmish_maps import MAPS

    register(
        "skirmish-v1",
        _SKIRMISH,
        "Skirmish on any map (map_name=...): StarCraft-style micromanagement, SMAC-like",
        family="skirmish_marines",
    )
    for family, names in SKIRMISH_FAMILIES.items():
        for name in names:
            register(
                f"skirmish_{name}-v1",
                _SKIRMISH,
                f"Skirmish {name}: {MAPS[name].description}",
                family=family,
                defaults={"map_name": name},
            )


def register_survival() -> None:
    """Register Survival (dima-pg's many-agent task): the family ``survival-v0`` (any
    ``n_agents``) and the paper's two populations."""
    register(
        "survival-v0",
        _SURVIVAL,
        "Survival, any size: N agents on a walled grid with 160 food at the centre (MAgent-like)",
        family="survival",
        views=_FOCAL,
    )
    for n in (230, 630):
        register(
            f"survival_N{n}-v0",
            _SURVIVAL,
            f"Survival, {n} agents, 160 food, 200 steps (dima-pg)",
            family="survival",
            defaults={"n_agents": n},
            views=_FOCAL,
        )


def register_halfcheetah() -> None:
    """Register the 2-agent HalfCheetah (meta-mapg's question 8, MaMuJoCo's 2x3 cheetah).

    The core's module imports ``mujoco``; the registry imports it only when the id is made.
    """
    register(
        "halfcheetah_2x3-v0",
        _HALFCHEETAH,
        "2-agent HalfCheetah on MuJoCo: back and front leg (MaMuJoCo 2x3), joint reward for "
        "running forward, horizon 200 (meta-mapg); needs mujoco",
        family="halfcheetah",
        views=_FOCAL,
    )


def register_neurons() -> None:
    """Register neurons-as-agents: the family ``neurons-v0`` (any network and task) and the
    draft's two tasks (student-teacher; digits for its MNIST, raw and PCA-projected)."""
    register(
        "neurons-v0",
        _NEURONS,
        "Neurons as agents, any network and task: each neuron changes its outgoing weights",
        family="neurons",
    )
    register(
        "neurons_teacher-v0",
        _NEURONS,
        "Neurons as agents: a 16-32-4 ReLU student learns a random teacher (MSE), "
        "200 updates (neurons-as-agents)",
        family="neurons",
        defaults={"task": "teacher"},
    )
    register(
        "neurons_digits-v0",
        _NEURONS,
        "Neurons as agents: a 64-32-10 ReLU network learns the 8x8 digits (cross-entropy), "
        "200 updates (neurons-as-agents)",
        family="neurons",
        defaults={"task": "digits"},
    )
    register(
        "neurons_digits_pca10-v0",
        _NEURONS,
        "Neurons as agents: digits on 10 principal components, a 10-32-10 network, "
        "200 updates (neurons-as-agents)",
        family="neurons",
        defaults={"task": "digits", "pca": 10},
    )
