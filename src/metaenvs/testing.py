"""Conformance checks, public API like ``pettingzoo.test``.

Each ``check_*`` function raises :class:`ConformanceError` (an ``AssertionError``) with
a message naming what is wrong, so it can be called from any test runner:

```python
import metaenvs.testing as mt

@mt.parametrize_env_ids()
def test_conformance(env_id):
    mt.check_all(env_id)
```

A new environment gets every check by registering; the checks take an id (with optional
config keywords) or a core you build yourself.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces

import metaenvs
from metaenvs.core import BatchedCore, CoreState, StepResult, legal_actions, within_mask
from metaenvs.faces.parallel import BatchedParallelEnv
from metaenvs.faces.vector import BatchedVectorEnv


class ConformanceError(AssertionError):
    """A conformance check failed; the message says which and why."""


def _fail_unless(ok: bool, message: str) -> None:
    if not ok:
        raise ConformanceError(message)


EnvLike = str | BatchedCore | BatchedParallelEnv | BatchedVectorEnv
"""What the checks take: a registered id, a core, or a face built on a core."""


def _core(env: EnvLike, **kwargs: Any) -> BatchedCore:
    """The core behind ``env``: itself, a face's ``core``, or ``make_core`` of an id.

    Raises
    ------
    TypeError
        For anything else, or for keywords given with an object (they configure ids only).
    """
    if isinstance(env, str):
        return metaenvs.make_core(env, **kwargs)
    if kwargs:
        raise TypeError(
            f"config keywords {sorted(kwargs)} go with an id, not with a "
            f"{type(env).__name__}: build the core with them instead"
        )
    if isinstance(env, BatchedCore):
        return env
    if isinstance(env, (BatchedParallelEnv, BatchedVectorEnv)):
        return env.core
    raise TypeError(
        "expected a registered id, a metaenvs BatchedCore, or a metaenvs PettingZoo or "
        f"vector env built on one, got {type(env).__name__}: {env!r}"
    )


def env_ids() -> list[str]:
    """Every registered id (versioned)."""
    return [s.id for s in metaenvs.registered_specs()]


def missing_dependency(env_id: str) -> str | None:
    """The optional package that ``env_id``'s core needs and that is not installed (e.g.
    ``"mujoco"``), or None when the core imports.

    Only a missing module outside metaenvs counts: a broken import inside the package
    still raises.
    """
    try:
        metaenvs.spec(env_id).core_class()
    except ModuleNotFoundError as err:
        name = (err.name or "").partition(".")[0]
        if not name or name in ("metaenvs", "meta_wrappers"):
            raise
        return name
    return None


def parametrize_env_ids(argname: str = "env_id") -> Any:
    """``pytest.mark.parametrize`` over every registered id."""
    import pytest

    return pytest.mark.parametrize(argname, env_ids())


def sample_actions(core: BatchedCore, batch: int, rng: np.random.Generator) -> np.ndarray:
    """Uniformly random valid actions for ``batch`` copies (``core.sample_actions``)."""
    return core.sample_actions(batch, rng)


def rollout(
    core: BatchedCore, batch: int, seed: int | list[int], actions: np.ndarray
) -> list[StepResult]:
    """Reset ``batch`` copies with ``seed`` and apply ``actions[t]`` at each step t.

    With action masks, each ``actions[t]`` is first moved onto the available actions
    (:func:`~metaenvs.core.legal_actions`).  Returns copies of every step's results (the
    core reuses its output buffers).
    """
    state = core.reset(batch, seed)
    return [copy_result(core.step(state, legal_actions(core, state, a))) for a in actions]


def copy_result(result: StepResult) -> StepResult:
    """A :class:`StepResult` that owns its arrays."""
    info = {k: v.copy() for k, v in result.info.items()}
    finals = (None if a is None else a.copy() for a in (result.final_state, result.final_mask))
    return StepResult(*(a.copy() for a in result[:5]), info, *finals)


# -- core checks -----------------------------------------------------------------------------
def check_space_conformance(
    env: EnvLike, batch: int = 3, steps: int = 300, seed: int = 0, **kwargs: Any
) -> None:
    """Observations, rewards and flags have the declared shapes, dtypes and bounds.

    Also checks ``final_obs`` of finished copies, the shapes of ``final_state``
    ``(B, *state_shape)`` and ``final_mask`` (``(B, N, n_actions)`` int8 with masks, else
    None), and that a copy is never both terminated and truncated.
    """
    core = _core(env, **kwargs)
    rng = np.random.default_rng(seed)
    state = core.reset(batch, seed)
    space = core.observation_space
    n = core.n_agents

    def check_obs(obs: np.ndarray, what: str) -> None:
        _fail_unless(
            obs.shape[1:] == (n, *space.shape) and obs.dtype == space.dtype,
            f"{what}: expected (B, {n}, *{space.shape}) {space.dtype}, got {obs.shape} {obs.dtype}",
        )
        for row in obs.reshape(-1, *space.shape):
            _fail_unless(space.contains(row), f"{what}: {row} is outside {space}")

    check_obs(core.observe(state), "reset observation")
    check_masks_and_deaths(core, state, None)
    for _ in range(steps):
        before = core.alive(state).copy() if core.agents_can_die else None
        r = core.step(state, legal_actions(core, state, sample_actions(core, batch, rng)))
        check_masks_and_deaths(core, state, r)
        if before is not None:
            _fail_unless(not r.reward[~before].any(), "an agent dead before the step got a reward")
        check_obs(r.obs, "step observation")
        _fail_unless(r.reward.shape == (batch, n), f"reward shape {r.reward.shape} != {(batch, n)}")
        _fail_unless(r.reward.dtype == np.float32, f"reward dtype {r.reward.dtype} != float32")
        _fail_unless(bool(np.isfinite(r.reward).all()), "reward is not finite")
        for name, flag in (("terminated", r.terminated), ("truncated", r.truncated)):
            _fail_unless(
                flag.shape == (batch,) and flag.dtype == np.bool_,
                f"{name} must be (B,) bool, got {flag.shape} {flag.dtype}",
            )
        _fail_unless(
            not (r.terminated & r.truncated).any(),
            "a copy is both terminated and truncated: a time limit is truncation only",
        )
        done = r.terminated | r.truncated
        if done.any():
            check_obs(r.final_obs[done], "final_obs")
        fs, fm = r.final_state, r.final_mask
        _fail_unless(
            isinstance(fs, np.ndarray) and fs.shape == (batch, *core.global_state_space.shape),
            f"final_state must be a {(batch, *core.global_state_space.shape)} array "
            f"(B, *state_shape), got {getattr(fs, 'shape', fs)!r}",
        )
        if core.masked_actions:
            expected = (batch, n, int(core.action_space.n))
            _fail_unless(
                isinstance(fm, np.ndarray) and fm.shape == expected and fm.dtype == np.int8,
                f"final_mask must be {expected} int8 (B, N, n_actions) for a core with masks, "
                f"got {getattr(fm, 'shape', fm)!r} {getattr(fm, 'dtype', '')}",
            )
        else:
            _fail_unless(fm is None, "final_mask must be None for a core without masks")
        for key, value in r.info.items():
            _fail_unless(value.shape[:1] == (batch,), f"info[{key!r}] has no batch axis")
        gstate = core.global_state(state)
        _fail_unless(
            gstate.shape == (batch, *core.global_state_space.shape),
            f"global_state shape {gstate.shape} != {(batch, *core.global_state_space.shape)}",
        )


def check_masks_and_deaths(core: BatchedCore, state: CoreState, r: StepResult | None) -> None:
    """Masks are ``(B, N, A)`` int8 0/1 with an available action everywhere; a dead agent
    has a zero observation and only action 0 available (its zero reward is checked by
    :func:`check_space_conformance`, which knows who was alive before the step)."""
    if core.masked_actions:
        mask = core.action_mask(state)
        expected = (state.batch, core.n_agents, int(core.action_space.n))
        _fail_unless(
            mask.shape == expected and mask.dtype == np.int8,
            f"action_mask must be {expected} int8, got {mask.shape} {mask.dtype}",
        )
        _fail_unless(bool(np.isin(mask, (0, 1)).all()), "action_mask holds values other than 0/1")
        _fail_unless(bool((mask.sum(axis=-1) > 0).all()), "an agent has no available action")
    if not core.agents_can_die:
        return
    alive = core.alive(state)
    _fail_unless(
        alive.shape == (state.batch, core.n_agents) and alive.dtype == np.bool_,
        f"alive must be (B, N) bool, got {alive.shape} {alive.dtype}",
    )
    dead = ~alive
    if r is not None:
        # copies that just finished restarted: their agents are alive again
        dead &= ~(r.terminated | r.truncated)[:, None]
    _fail_unless(not core.observe(state)[dead].any(), "a dead agent's observation is not zero")
    if core.masked_actions and dead.any():
        only_noop = np.zeros(core.action_space.n, dtype=np.int8)
        only_noop[0] = 1
        _fail_unless(
            bool((core.action_mask(state)[dead] == only_noop).all()),
            "a dead agent may take an action other than 0 (no-op)",
        )


def check_batch_determinism(
    env: EnvLike, batch: int = 4, steps: int = 300, seed: int = 7, **kwargs: Any
) -> None:
    """Copy ``b`` of a batch seeded ``s`` equals a B = 1 run seeded ``s + b``, step by step."""
    core = _core(env, **kwargs)
    rng = np.random.default_rng(seed)
    actions = np.stack([sample_actions(core, batch, rng) for _ in range(steps)])
    batched = rollout(core, batch, seed, actions)
    again = rollout(core, batch, seed, actions)
    for b in range(batch):
        single = rollout(core, 1, seed + b, actions[:, b : b + 1])
        for t, (rb, r1, ra) in enumerate(zip(batched, single, again)):
            done = bool(rb.terminated[b] or rb.truncated[b])
            for field in ("obs", "reward", "terminated", "truncated"):
                x, y, z = getattr(rb, field)[b], getattr(r1, field)[0], getattr(ra, field)[b]
                _fail_unless(
                    np.array_equal(x, z),
                    f"same seed, different {field} at step {t} (copy {b}): not reproducible",
                )
                _fail_unless(
                    np.array_equal(x, y),
                    f"copy {b} of a batch of {batch} differs from a B=1 run with seed "
                    f"{seed + b} in {field} at step {t}",
                )
            if done:
                _fail_unless(
                    np.array_equal(rb.final_obs[b], r1.final_obs[0]),
                    f"final_obs of copy {b} differs from the B=1 run at step {t}",
                )


def bad_actions(core: BatchedCore, batch: int) -> dict[str, Any]:
    """Invalid action batches, by what is wrong with them."""
    good = sample_actions(core, batch, np.random.default_rng(0))
    bad: dict[str, Any] = {
        "missing batch axis": good[0],
        "one agent too few": good[:, :-1],
        "one agent too many": np.concatenate([good, good[:, :1]], axis=1),
    }
    space = core.action_space
    if isinstance(space, spaces.Discrete):
        high = good.copy()
        high[-1, -1] = space.start + space.n
        low = good.copy()
        low[0, 0] = space.start - 1
        nan = good.astype(np.float64)
        nan[0, 0] = np.nan
        bad |= {
            "action above range": high,
            "action below range": low,
            "float dtype": good.astype(np.float64),
            "NaN": nan,
            "bool dtype": good.astype(bool),
            "string": np.full(good.shape, "a"),
        }
    elif isinstance(space, spaces.MultiDiscrete):
        high = good.copy()
        high[-1, -1, -1] = space.start[-1] + space.nvec[-1]
        low = good.copy()
        low[0, 0, 0] = space.start[0] - 1
        bad |= {
            "component above range": high,
            "component below range": low,
            "float dtype": good.astype(np.float64),
            "one component too few": good[..., :-1],
        }
    else:
        nan, inf, out = good.copy(), good.copy(), good.copy()
        nan.flat[0], inf.flat[-1] = np.nan, np.inf
        out.flat[0] = space.high.flat[0] + 1.0
        bad |= {"NaN": nan, "infinity": inf, "above bounds": out, "int dtype": good.astype(int)}
    return bad


def check_bad_input(env: EnvLike, batch: int = 3, seed: int = 0, **kwargs: Any) -> None:
    """Each invalid action batch raises ``ValueError``/``TypeError`` and changes no state."""
    core = _core(env, **kwargs)
    state = core.reset(batch, seed)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        core.step(state, legal_actions(core, state, sample_actions(core, batch, rng)))
    before = state.copy()
    bad = bad_actions(core, batch)
    if core.masked_actions:
        mask = core.action_mask(state)
        b, i, a = np.argwhere(mask == 0)[0]
        masked = legal_actions(core, state, sample_actions(core, batch, rng))
        masked[b, i] = a
        bad["masked action"] = masked
    for what, actions in bad.items():
        try:
            core.step(state, actions)
        except (ValueError, TypeError) as err:
            _fail_unless(
                type(err).__module__ == "builtins" and len(str(err)) > 10,
                f"{what}: raised {type(err).__name__}({str(err)[:200]!r}), not a clear "
                "ValueError/TypeError raised before the kernel",
            )
        except Exception as err:  # noqa: BLE001 - any other error is itself the failure
            raise ConformanceError(
                f"{what}: raised {type(err).__name__} instead of ValueError/TypeError"
            ) from err
        else:
            raise ConformanceError(f"{what}: step() accepted an invalid action batch")
        for name, arr in state.arrays().items():
            _fail_unless(
                np.array_equal(arr, before.arrays()[name]),
                f"{what}: state field {name!r} changed although step() raised",
            )


def check_pickle(env: EnvLike, batch: int = 2, steps: int = 20, **kwargs: Any) -> None:
    """Core and state survive a pickle round trip mid-episode and continue identically."""
    core = _core(env, **kwargs)
    rng = np.random.default_rng(1)
    state = core.reset(batch, 3)
    for _ in range(steps):
        core.step(state, legal_actions(core, state, sample_actions(core, batch, rng)))
    core2, state2 = pickle.loads(pickle.dumps((core, state)))
    for t in range(steps):
        a = legal_actions(core, state, sample_actions(core, batch, rng))
        r1, r2 = core.step(state, a), core2.step(state2, a)
        for field in ("obs", "reward", "terminated", "truncated"):
            _fail_unless(
                np.array_equal(getattr(r1, field), getattr(r2, field)),
                f"unpickled core diverges in {field} at step {t}",
            )


# -- face checks ---------------------------------------------------------------------------
def check_parallel_api(env_fn: Callable[[], BatchedParallelEnv], num_cycles: int = 400) -> None:
    """PettingZoo's ``parallel_api_test`` and the AEC ``api_test`` through ``parallel_to_aec``."""
    from pettingzoo.test import api_test, parallel_api_test
    from pettingzoo.utils.conversions import parallel_to_aec

    # PettingZoo's tests pass options the faces do not take, and print on success
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.filterwarnings("ignore", message=".*ignores reset options", category=UserWarning)
        parallel_api_test(env_fn(), num_cycles=num_cycles)
        api_test(parallel_to_aec(env_fn()), num_cycles=num_cycles)


def check_parallel_seeding(env_fn: Callable[[], BatchedParallelEnv], num_cycles: int = 300) -> None:
    """PettingZoo's ``parallel_seed_test``: two envs with one seed give one trajectory."""
    from pettingzoo.test import parallel_seed_test

    if not env_fn().core.masked_actions:
        parallel_seed_test(env_fn, num_cycles=num_cycles)
        return
    # PettingZoo's seed test samples without the masks: the same test, sampling with them
    trajectories = []
    for _ in range(2):
        env = env_fn()
        obs, _ = env.reset(seed=42)
        for agent in env.possible_agents:
            env.action_space(agent).seed(42)
        trajectory: list[Any] = []
        for _ in range(num_cycles):
            if not env.agents:
                obs, _ = env.reset()
            actions = {
                a: env.action_space(a).sample(mask=obs[a]["action_mask"]) for a in env.agents
            }
            obs, rewards, terms, truncs, _ = env.step(actions)
            trajectory += [actions, {a: o["observation"] for a, o in obs.items()}, rewards]
            trajectory += [terms, truncs]
        trajectories.append(trajectory)
    for t, (x, y) in enumerate(zip(*trajectories)):
        same = x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)
        _fail_unless(same, f"same seed, different PettingZoo trajectory at item {t}")


def check_vector_env(venv: BatchedVectorEnv, steps: int = 300, seed: int = 0) -> None:
    """A Gymnasium vector face: spaces, shapes, same-step autoreset with ``final_obs``."""
    from gymnasium.vector import AutoresetMode

    _fail_unless(
        venv.metadata.get("autoreset_mode") == AutoresetMode.SAME_STEP,
        "metadata['autoreset_mode'] must be AutoresetMode.SAME_STEP",
    )
    obs, infos = venv.reset(seed=seed)
    _fail_unless(
        venv.observation_space.contains(obs), "reset observation outside observation_space"
    )
    venv.action_space.seed(seed)
    mask = infos.get("action_mask")
    _fail_unless(
        (mask is not None) == venv.core.masked_actions,
        "infos['action_mask'] must be there exactly when the core has action masks",
    )
    for t in range(steps):
        actions = within_mask(mask, venv.action_space.sample())
        obs, rew, term, trunc, infos = venv.step(actions)
        mask = infos.get("action_mask")
        _fail_unless(venv.observation_space.contains(obs), f"observation outside space at step {t}")
        _fail_unless(rew.shape == (venv.num_envs, venv.core.n_agents), f"reward shape {rew.shape}")
        done = term | trunc
        if done.any():
            _fail_unless(
                "final_obs" in infos and np.array_equal(infos["_final_obs"], done),
                f"step {t}: finished copies without infos['final_obs'] / '_final_obs'",
            )
            for row in infos["final_obs"][done]:
                _fail_unless(
                    venv.single_observation_space.contains(row), "final_obs outside the space"
                )


def check_faces_agree(env: EnvLike, steps: int = 200, seed: int = 5, **kwargs: Any) -> None:
    """The core, the PettingZoo face and the Gymnasium vector face give one trajectory.

    For an id the faces come from ``metaenvs.make`` / ``make_vec``; for a core they wrap it.
    Agents that have left the PettingZoo face (dead) are compared by their absence.
    """
    core = _core(env, **kwargs)
    if isinstance(env, str):
        penv, venv = metaenvs.make(env, **kwargs), metaenvs.make_vec(env, num_envs=1, **kwargs)
    else:
        penv, venv = BatchedParallelEnv(core), BatchedVectorEnv(core, num_envs=1)
    rng = np.random.default_rng(seed)
    drawn = np.stack([sample_actions(core, 1, rng) for _ in range(steps)])
    state = core.reset(1, seed)
    expected, applied, core_alive = [], [], []
    for d in drawn:
        applied.append(legal_actions(core, state, d))
        expected.append(copy_result(core.step(state, applied[-1])))
        core_alive.append(core.alive(state)[0].copy() if core.agents_can_die else None)
    penv.reset(seed=seed)
    venv.reset(seed=seed)
    names = core.agent_names

    def plain(o: Any) -> np.ndarray:
        return o["observation"] if isinstance(o, dict) else o

    for t, (r, a) in enumerate(zip(expected, applied)):
        if not penv.agents:
            penv.reset()
        present = list(penv.agents)
        pobs, prew, pterm, ptrunc, _ = penv.step({n: a[0, names.index(n)] for n in present})
        vobs, vrew, vterm, vtrunc, vinfo = venv.step(a)
        done = bool(r.terminated[0] or r.truncated[0])
        last = r.final_obs[0] if done else r.obs[0]
        _fail_unless(
            list(pobs) == present,
            f"PettingZoo face step {t} returned agents {list(pobs)}, expected {present}",
        )
        slots = [names.index(n) for n in present]
        _fail_unless(
            np.array_equal(np.stack([plain(pobs[n]) for n in present]), last[slots]),
            f"PettingZoo face observation differs from the core at step {t}",
        )
        _fail_unless(
            np.allclose([prew[n] for n in present], r.reward[0, slots]),
            f"PettingZoo face reward differs at step {t}",
        )
        # an agent is terminated when its copy is, or when it died (and so left)
        died = {n: not done and n not in penv.agents for n in present}
        _fail_unless(
            all(ptrunc[n] == bool(r.truncated[0]) for n in present)
            and all(pterm[n] == (bool(r.terminated[0]) or died[n]) for n in present),
            f"PettingZoo face termination/truncation differs at step {t}",
        )
        if core.agents_can_die and not done:
            alive = core_alive[t]
            _fail_unless(
                [n for n in present if alive[names.index(n)]] == penv.agents,
                f"PettingZoo face agents {penv.agents} are not the living ones at step {t}",
            )
        _fail_unless(np.array_equal(vobs[0], r.obs[0]), f"vector face observation differs at {t}")
        _fail_unless(np.array_equal(vrew[0], r.reward[0]), f"vector face reward differs at {t}")
        _fail_unless(
            (vterm[0], vtrunc[0]) == (r.terminated[0], r.truncated[0]),
            f"vector face termination/truncation differs at step {t}",
        )
        if done:
            _fail_unless(
                np.array_equal(vinfo["final_obs"][0], r.final_obs[0]),
                f"vector face final_obs differs at step {t}",
            )


def check_render(env: EnvLike, **kwargs: Any) -> None:
    """``render_copy`` returns an ``(H, W, 3)`` uint8 image that changes as the game moves."""
    core = _core(env, **kwargs)
    state: CoreState = core.reset(1, 0)
    frame = core.render_copy(state, 0)
    _fail_unless(
        isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.shape[2] == 3,
        f"render must return (H, W, 3), got {getattr(frame, 'shape', type(frame))}",
    )
    _fail_unless(frame.dtype == np.uint8, f"render must return uint8, got {frame.dtype}")
    rng = np.random.default_rng(0)
    for _ in range(2):  # particles move from the second step on (mpe2: old velocity)
        core.step(state, legal_actions(core, state, sample_actions(core, 1, rng)))
    _fail_unless(
        not np.array_equal(frame, core.render_copy(state, 0)), "render ignores the game state"
    )


def check_all(env: EnvLike, **kwargs: Any) -> None:
    """Every check on one environment: a registered id, or an unregistered core or face.

    Parameters
    ----------
    env : str, BatchedCore, BatchedParallelEnv or BatchedVectorEnv
        A registered id (with optional config ``**kwargs``), or an object: a core you
        built yourself, or a metaenvs face over one (its ``core`` is checked).  An
        object needs no registration; the faces are built on its core, and the
        single-agent views (registered ids only) are skipped.
    **kwargs
        Config keywords of the id.

    Raises
    ------
    ConformanceError
        The first check that fails, naming what is wrong.
    TypeError
        ``env`` is none of the above, or keywords are given with an object.

    Examples
    --------
    >>> import metaenvs
    >>> import metaenvs.testing as mt
    >>> mt.check_all(metaenvs.make_core("ipd", horizon=5))  # no registration needed
    """
    core = _core(env, **kwargs)
    if isinstance(env, str):
        make_parallel = lambda: metaenvs.make(env, **kwargs)  # noqa: E731
        venv = metaenvs.make_vec(env, num_envs=3, **kwargs)
    else:
        make_parallel = lambda: BatchedParallelEnv(core)  # noqa: E731
        venv = BatchedVectorEnv(core, num_envs=3)
    check_space_conformance(core)
    check_batch_determinism(core)
    check_bad_input(core)
    check_pickle(core)
    check_render(core)
    check_parallel_api(make_parallel)
    check_parallel_seeding(make_parallel)
    check_vector_env(venv)
    check_faces_agree(env if isinstance(env, str) else core, **kwargs)
    if isinstance(env, str) and not kwargs:
        check_views(env)


def check_single_agent_env(env: Any, seed: int = 0, steps: int = 300) -> None:
    """Gymnasium's ``check_env`` plus: the same seed gives the same trajectory."""
    from gymnasium.utils.env_checker import check_env

    check_env(env.unwrapped, skip_render_check=True)
    trajectories = []
    for _ in range(2):
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        trajectory = [obs]
        for _ in range(steps):
            obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            trajectory += [obs, np.float64(reward), np.bool_(terminated), np.bool_(truncated)]
            if terminated or truncated:
                obs, _ = env.reset()
                trajectory.append(obs)
        trajectories.append(trajectory)
    for t, (x, y) in enumerate(zip(*trajectories)):
        _fail_unless(np.array_equal(x, y), f"same seed, different trajectory at item {t}")


def view_ids(env_id: str) -> list[str]:
    """Gymnasium ids of the single-agent views of ``env_id`` (e.g. ``metaenvs/ipd-focal-v0``)."""
    return list(metaenvs.spec(env_id).view_ids().values())


def check_views(env_id: str) -> None:
    """:func:`check_single_agent_env` on every single-agent view of ``env_id``."""
    import gymnasium

    for view in view_ids(env_id):
        check_single_agent_env(gymnasium.make(view))
