"""2-Agent HalfCheetah: MaMuJoCo's 2x3 cheetah on MuJoCo, B copies per step.

Paper: meta-mapg-learning-peers (question 8, appendix E.3; de Witt et al. 2020's
multiagent MuJoCo).  The model is Gymnasium's own ``half_cheetah.xml``, loaded from the
installed ``gymnasium`` package, and one step is Gymnasium's ``HalfCheetah-v5`` step (5
MuJoCo steps of 0.01 s); the two agents split its six actuators as MaMuJoCo's ``"2x3"``
partition does.  Needs the ``mujoco`` package (``pip install metaenvs[mujoco]``), imported
only when this environment is made.

## Agents
Two agents sharing one body: ``agent_0`` drives the back leg (joints ``bthigh``,
``bshin``, ``bfoot``, actuators 0-2) and ``agent_1`` the front leg (``fthigh``,
``fshin``, ``ffoot``, actuators 3-5), in MaMuJoCo's 2x3 order.

## Action Space
``Box(-1, 1, (3,), float32)`` per agent: the torques of its three joints, in the order
above (the actuators' control range; a value outside it raises ``ValueError``).

## Observation Space
``Box(-inf, inf, (17,), float32)``, the same for both agents: as in the paper ("state
observations that include information about all the joints") every agent sees the whole
state, HalfCheetah-v5's observation:

| Num | Observation | Unit |
|---|---|---|
| 0 | z of the torso (``rootz``) | m |
| 1 | angle of the torso (``rooty``) | rad |
| 2-4 | angles of ``bthigh``, ``bshin``, ``bfoot`` | rad |
| 5-7 | angles of ``fthigh``, ``fshin``, ``ffoot`` | rad |
| 8 | x velocity of the torso (``rootx``) | m/s |
| 9 | z velocity of the torso | m/s |
| 10 | angular velocity of the torso | rad/s |
| 11-13 | angular velocities of ``bthigh``, ``bshin``, ``bfoot`` | rad/s |
| 14-16 | angular velocities of ``fthigh``, ``fshin``, ``ffoot`` | rad/s |

The x position of the torso is left out (HalfCheetah-v5's default); ``infos["x_position"]``
reports it.  MaMuJoCo holds the same 17 numbers in another order when each agent observes
every joint (``agent_obsk`` of 3 or more, ``local_categories`` of ``qpos`` and ``qvel`` at
every depth): its own joints first, then the others, then the torso.  MaMuJoCo's default
(``agent_obsk=1``, 12 numbers) shows an agent only its own joints' angles and velocities,
the angle of the other leg's thigh and the torso's state.  The global state
(``state()``) is the same 17 numbers.

## Rewards
The joint reward of running forward, the same for both agents, HalfCheetah-v5's:
``forward_reward_weight * dx / dt - ctrl_cost_weight * sum(a ** 2)``, with ``dx`` the
torso's x displacement over the step (``dt = 0.05`` s) and ``a`` both agents' six
actions.  ``infos`` hold ``x_velocity``, ``reward_forward``, ``reward_ctrl`` (the
negative control cost) and ``x_position`` per copy.

## Starting State
HalfCheetah-v5's: ``qpos = qpos0 + U(-0.1, 0.1)`` and ``qvel = 0.1 * N(0, 1)``
(``reset_noise_scale``) per coordinate, from the copy's own random stream.

## Episode End
Never terminated (the cheetah cannot fall over into an end state); truncated after
``horizon`` steps: 200, the paper's H for this domain (Tables 5, 8, 11), where
Gymnasium's HalfCheetah-v5 stops at 1000 (``metaenvs.make("halfcheetah_2x3",
horizon=1000)``).

## Batching
Each copy's MuJoCo state (time, positions, velocities, the constraint solver's warm start
and controls) is a row of a ``(B, 34)`` float64 array.  A step loads a row into a MuJoCo
``MjData``, runs ``mj_step`` five times and stores the row back; large batches are cut
into chunks stepped by the package's threads (:mod:`metaenvs.threads`), one ``MjData``
per thread.  A chunk is one ``nogil`` Numba kernel: it calls MuJoCo's C functions
(``mj_setState``, ``mj_step``, ``mj_getState``) by address (:mod:`._mujoco_calls`), then
computes the rewards, observations and resets, with no Python between copies.  Where
``libmujoco`` cannot be located, each copy steps through ``mujoco``'s Python functions
instead (the same C functions, the same trajectories bit for bit, slower).  The warm
start is kept per copy so that a copy's trajectory is the one Gymnasium's HalfCheetah-v5
gives, bit for bit; ``mujoco.rollout`` does not hand the warm starts back, and without
them trajectories part from Gymnasium's within about 50 steps.

## Version History
v0: first release (Gymnasium's ``half_cheetah.xml`` and HalfCheetah-v5's step, reward and
reset; MaMuJoCo's 2x3 partition; every agent observes the whole state; horizon 200).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import warnings
from importlib import resources
from typing import Any, ClassVar

import numba
import numpy as np
from gymnasium import spaces

from metaenvs.config import EnvConfig, check_choice, check_float, check_int
from metaenvs.core import BatchedCore, CoreState, StepResult, entry_point, step_result
from metaenvs.games import _halfcheetah_kernels as hk
from metaenvs.games._mujoco_calls import function_table
from metaenvs.render import Canvas

try:  # MuJoCo reads MUJOCO_GL when its renderer first needs an OpenGL context
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl"  # headless: EGL (what Gymnasium's docs advise)
    import mujoco
except ModuleNotFoundError as err:  # pragma: no cover - the id stays registered all the same
    raise ModuleNotFoundError(
        "halfcheetah_2x3 needs the mujoco package: pip install 'metaenvs[mujoco]' "
        "(or pip install 'mujoco>=3.2')",
        name="mujoco",
    ) from err

MODEL_FILE = "envs/mujoco/assets/half_cheetah.xml"
"""The model, inside the installed ``gymnasium`` package (Gymnasium's HalfCheetah-v5)."""
FRAME_SKIP = 5
"""MuJoCo steps per environment step (HalfCheetah-v5's ``frame_skip``)."""
PARTITION = (("bthigh", "bshin", "bfoot"), ("fthigh", "fshin", "ffoot"))
"""The joints (and actuators) of agent 0 and agent 1: MaMuJoCo's HalfCheetah ``"2x3"``."""
RENDERERS = ("auto", "mujoco", "canvas")
_NO_CALLS = np.zeros(3, dtype=np.int64)
"""The C-call table's stand-in where the physics ran through ``mujoco``'s Python functions."""
STATE_SPEC = (
    mujoco.mjtState.mjSTATE_TIME
    | mujoco.mjtState.mjSTATE_QPOS
    | mujoco.mjtState.mjSTATE_QVEL
    | mujoco.mjtState.mjSTATE_ACT
    | mujoco.mjtState.mjSTATE_WARMSTART
    | mujoco.mjtState.mjSTATE_CTRL
)
"""The MuJoCo state a copy keeps between steps (``mj_getState`` / ``mj_setState``): all
that ``mj_step`` reads from the data of this model."""


def load_model() -> mujoco.MjModel:
    """Gymnasium's HalfCheetah model, compiled.

    MuJoCo's deprecation warning about the file's ``settotalmass`` is caught (it would
    otherwise be printed and written to ``MUJOCO_LOG.TXT`` in the working directory);
    other warnings are re-issued as Python warnings.
    """
    path = resources.files("gymnasium").joinpath(MODEL_FILE)
    messages: list[str] = []
    mujoco.set_mju_user_warning(messages.append)
    try:
        model = mujoco.MjModel.from_xml_path(str(path))
    finally:
        mujoco.set_mju_user_warning(None)
    for message in messages:
        if "settotalmass" not in message:
            warnings.warn(f"MuJoCo: {message}", RuntimeWarning, stacklevel=2)
    return model


@dataclasses.dataclass(frozen=True)
class HalfCheetahConfig(EnvConfig):
    """Configuration of the 2-agent HalfCheetah."""

    horizon: int = 200
    """Steps before truncation (the paper's H = 200; Gymnasium's HalfCheetah-v5: 1000)."""
    forward_reward_weight: float = 1.0
    """Weight of the torso's x velocity in the reward (HalfCheetah-v5: 1)."""
    ctrl_cost_weight: float = 0.1
    """Weight of the sum of squared actions subtracted from the reward (HalfCheetah-v5: 0.1)."""
    reset_noise_scale: float = 0.1
    """Half-width of the uniform noise on the start positions and standard deviation of the
    normal noise on the start velocities (HalfCheetah-v5: 0.1)."""
    renderer: str = "auto"
    """How ``render`` draws: ``"mujoco"`` (MuJoCo's renderer; needs OpenGL, headless through
    ``MUJOCO_GL=egl``), ``"canvas"`` (a flat side view drawn without OpenGL) or ``"auto"``
    (MuJoCo's renderer, else the side view with a warning)."""

    def __post_init__(self) -> None:
        check_int("horizon", self.horizon, 1)
        check_float("forward_reward_weight", self.forward_reward_weight, -np.inf, strict=False)
        check_float("ctrl_cost_weight", self.ctrl_cost_weight, strict=False)
        check_float("reset_noise_scale", self.reset_noise_scale, strict=False)
        check_choice("renderer", self.renderer, RENDERERS)


@dataclasses.dataclass
class HalfCheetahState(CoreState):
    """Batched cheetahs: one MuJoCo state row per copy (see :mod:`._halfcheetah_kernels`)."""

    physics: np.ndarray
    """``(B, 34)`` float64: time, qpos (9), qvel (9), warm start (9), ctrl (6), the layout of
    :data:`STATE_SPEC`."""
    x_velocity: np.ndarray
    """``(B,)`` float64, the torso's x velocity over the last step."""
    reward_forward: np.ndarray
    """``(B,)`` float64, the forward part of the last reward."""
    reward_ctrl: np.ndarray
    """``(B,)`` float64, the control part of the last reward (minus the control cost)."""
    x_position: np.ndarray
    """``(B,)`` float64, the torso's x position after the last step (before an auto-reset)."""
    x_before: np.ndarray
    """``(B,)`` float64 scratch: the torso's x position before the step being made."""

    @property
    def qpos(self) -> np.ndarray:
        """``(B, 9)`` joint positions (a view of ``physics``)."""
        return self.physics[:, 1:10]

    @property
    def qvel(self) -> np.ndarray:
        """``(B, 9)`` joint velocities (a view of ``physics``)."""
        return self.physics[:, 10:19]


class HalfCheetahCore(BatchedCore):
    """Batched 2-agent HalfCheetah (see the module docstring for the spec)."""

    config_cls = HalfCheetahConfig
    config: HalfCheetahConfig
    min_parallel = 8
    """Threads from 8 copies up: one copy's step is about 30 us of MuJoCo."""
    reward_description: ClassVar[str] = "forward velocity of the torso minus 0.1 x control cost"

    def __init__(self, config: HalfCheetahConfig) -> None:
        super().__init__(config)
        self._setup()

    def _setup(self) -> None:
        model = load_model()
        self.model = model
        self.nq, self.nv, self.nu = int(model.nq), int(model.nv), int(model.nu)
        self.state_size = int(mujoco.mj_stateSize(model, STATE_SPEC))
        self.dt = float(model.opt.timestep) * FRAME_SKIP
        joints = [model.joint(j).name for j in range(model.njnt)]
        actuators = [model.actuator(u).name for u in range(model.nu)]
        if actuators != [name for part in PARTITION for name in part]:
            raise RuntimeError(f"unexpected actuators in {MODEL_FILE}: {actuators}")
        self.joint_names = tuple(joints)
        self.init_qpos = np.array(model.qpos0, dtype=np.float64)
        self.init_qvel = np.zeros(self.nv)
        width = self.nq - 1 + self.nv
        self.observation_space = spaces.Box(-np.inf, np.inf, (width,), dtype=np.float32)
        self.state_space = spaces.Box(-np.inf, np.inf, (width,), dtype=np.float32)
        low, high = model.actuator_ctrlrange[:3, 0], model.actuator_ctrlrange[:3, 1]
        self.action_space = spaces.Box(low.astype(np.float32), high.astype(np.float32))
        c = self.config
        self.par = (
            self.dt,
            float(c.forward_reward_weight),
            float(c.ctrl_cost_weight),
            float(c.reset_noise_scale),
            float(c.horizon),
            float(self.nq),
            float(self.nv),
        )
        """The kernels' scalars: dt, the two weights, reset noise, horizon, nq, nv."""
        self._local = threading.local()
        self._renderer: Any = None
        self._calls = function_table()
        """MuJoCo's C functions for :func:`~._halfcheetah_kernels.advance`, or None: then
        each copy steps through ``mujoco``'s Python functions (the same results)."""
        self._advance_c: Any = None  # advance's compiled entry point, made at the first step

    def __getstate__(self) -> dict[str, Any]:
        keep = ("config", "_threads", "default_global_state")
        return {k: v for k, v in self.__dict__.items() if k in keep}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup()

    @property
    def agent_names(self) -> tuple[str, ...]:
        """``agent_0`` (back leg) and ``agent_1`` (front leg), MaMuJoCo's names."""
        return ("agent_0", "agent_1")

    @property
    def horizon(self) -> int:
        """Steps before an episode is truncated."""
        return self.config.horizon

    def describe(self) -> dict[str, str]:
        """:meth:`BatchedCore.describe` plus the partition."""
        out = super().describe()
        out["partition"] = "; ".join(
            f"{name}: {', '.join(part)}" for name, part in zip(self.agent_names, PARTITION)
        )
        return out

    # -- dynamics --------------------------------------------------------------------------
    def _data(self) -> mujoco.MjData:
        """This thread's scratch ``MjData`` (each thread steps its chunks in its own)."""
        data = getattr(self._local, "data", None)
        if data is None:
            data = self._local.data = mujoco.MjData(self.model)
        return data

    def _init_state(self, batch: int, rng: np.ndarray) -> HalfCheetahState:
        state = HalfCheetahState(
            t=np.zeros(batch, dtype=np.int64),
            rng=rng,
            physics=np.zeros((batch, self.state_size)),
            x_velocity=np.zeros(batch),
            reward_forward=np.zeros(batch),
            reward_ctrl=np.zeros(batch),
            x_position=np.zeros(batch),
            x_before=np.zeros(batch),
            **self.output_buffers(batch),
        )
        c = self.config
        hk.reset_copies(
            state.physics, state.rng, self.init_qpos, self.init_qvel,
            float(c.reset_noise_scale), self.nq, self.nv, state.t, state.obs,
        )  # fmt: skip
        state.x_position[:] = state.physics[:, 1]
        return state

    def _advance(
        self, state: HalfCheetahState, actions: np.ndarray, compiled: bool, lo: int, hi: int
    ) -> None:
        """Step copies ``lo..hi-1`` in this thread's ``MjData``: one Numba kernel calling
        MuJoCo's C functions (through its compiled entry point where ``compiled``), or
        (without them) ``mujoco``'s Python functions per copy, then the kernel for the
        rest."""
        model, data, physics = self.model, self._data(), state.physics
        stepped = self._calls is None
        if stepped:  # the fallback: the physics here, copy by copy
            hk.load_controls(physics, state.x_before, actions, lo, hi)
            for b in range(lo, hi):
                mujoco.mj_setState(model, data, physics[b], STATE_SPEC)
                mujoco.mj_step(model, data, FRAME_SKIP)
                mujoco.mj_getState(model, data, physics[b], STATE_SPEC)
        args = (
            _NO_CALLS if stepped else self._calls, model._address, data._address,
            int(STATE_SPEC), FRAME_SKIP, stepped, physics, state.x_before, actions, state.rng,
            state.t, state.obs, state.reward, state.terminated, state.truncated,
            state.final_obs, state.x_velocity, state.reward_forward, state.reward_ctrl,
            state.x_position, self.init_qpos, self.init_qvel, self.par, lo, hi,
        )  # fmt: skip
        if not compiled:  # Numba's dispatch: any layout, compiled as needed
            hk.advance(*args)
            return
        if self._advance_c is None:  # skip the dispatch for the layout _step checked
            self._advance_c = entry_point(hk.advance, tuple(map(numba.typeof, args)))
        self._advance_c(*args)

    def _step(self, state: HalfCheetahState, actions: np.ndarray) -> StepResult:
        batch = state.batch
        expected = (batch, 2, self.nu // 2)
        if actions.shape != expected:  # step_validated takes validate_actions' output
            raise ValueError(f"actions must have shape {expected}, got {actions.shape}")
        if state.physics.shape != (batch, self.state_size):  # mj_getState writes a full row
            raise ValueError(f"state.physics must have shape {(batch, self.state_size)}, got "
                             f"{state.physics.shape}: not a state of this core")  # fmt: skip
        actions = np.ascontiguousarray(actions, dtype=np.float32)
        # the compiled entry point takes the layout _init_state makes; the streams are the
        # one array a caller hands in (start), any strided or read-only view of theirs
        # goes through Numba's dispatch instead
        compiled = state.rng.flags.c_contiguous and state.rng.flags.writeable
        self.step_copies(self._advance, (state, actions, compiled), batch)
        info = {
            "x_velocity": state.x_velocity,
            "reward_forward": state.reward_forward,
            "reward_ctrl": state.reward_ctrl,
            "x_position": state.x_position,
        }
        return step_result(
            state.obs, state.reward, state.terminated, state.truncated, state.final_obs, info
        )

    def global_state(self, state: HalfCheetahState) -> np.ndarray:
        """``(B, 17)``: the whole state, which is every agent's observation."""
        return state.obs[:, 0]

    def final_global_state(self, state: HalfCheetahState) -> np.ndarray:
        """``(B, 17)``: the last observation of the episodes the last step finished."""
        return state.final_obs[:, 0]

    # -- rendering -------------------------------------------------------------------------
    render_size: ClassVar[tuple[int, int]] = (360, 480)
    """(height, width) of a picture."""

    def render_copy(self, state: HalfCheetahState, index: int = 0) -> np.ndarray:
        """Copy ``index`` seen from the side, the camera following the torso: MuJoCo's
        renderer (``renderer="mujoco"``, or ``"auto"`` where OpenGL works), else a flat
        side view (torso and legs as capsules, the ground line with a tick every metre)."""
        data = mujoco.MjData(self.model)
        mujoco.mj_setState(self.model, data, state.physics[index], STATE_SPEC)
        mujoco.mj_kinematics(self.model, data)
        mode = self.config.renderer
        if mode != "canvas" and self._renderer is not False:
            try:
                return self._mujoco_picture(data)
            except Exception as err:  # noqa: BLE001 - no OpenGL: fall back or re-raise
                if mode == "mujoco":
                    raise RuntimeError(
                        "MuJoCo's renderer needs OpenGL: set MUJOCO_GL=egl (headless GPU or "
                        "Mesa EGL) or MUJOCO_GL=osmesa before importing mujoco, or make the "
                        f"env with renderer='canvas' ({type(err).__name__}: {err})"
                    ) from err
                warnings.warn(
                    f"MuJoCo's renderer is unavailable ({type(err).__name__}: {err}); "
                    "drawing the flat side view (renderer='canvas')",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self._renderer = False
        return self._canvas_picture(data)

    def _mujoco_picture(self, data: mujoco.MjData) -> np.ndarray:
        if self._renderer is None:
            height, width = self.render_size
            self._renderer = mujoco.Renderer(self.model, height, width)
        camera = mujoco.MjvCamera()
        camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        camera.trackbodyid = 1  # the torso
        camera.distance = 4.0
        camera.elevation = -10.0
        camera.azimuth = 90.0
        camera.lookat[:] = data.xpos[1]
        self._renderer.update_scene(data, camera)
        return np.array(self._renderer.render(), dtype=np.uint8)

    def _canvas_picture(self, data: mujoco.MjData) -> np.ndarray:
        height, width = self.render_size
        scale = width / 4.0  # pixels per metre: 4 m across, centred on the torso
        cx, ground = float(data.xpos[1, 0]), height * 0.75
        canvas = Canvas(height, width, background=(222, 232, 242))
        canvas.rect(int(ground), 0, height - int(ground), width, (120, 140, 110))
        first = int(np.floor(cx - 2.0))
        for metre in range(first, first + 6):
            col = (metre - cx) * scale + width / 2
            canvas.rect(int(ground), int(col), 8, 2, (60, 70, 55))

        def pixel(p: np.ndarray) -> tuple[float, float]:
            return ground - p[2] * scale, (p[0] - cx) * scale + width / 2

        colours = {0: (200, 110, 60), 1: (60, 110, 200)}
        for g in range(self.model.ngeom):
            if self.model.geom_type[g] != mujoco.mjtGeom.mjGEOM_CAPSULE:
                continue
            body = int(self.model.geom_bodyid[g])
            half = data.geom_xmat[g].reshape(3, 3)[:, 2] * self.model.geom_size[g, 1]
            (y0, x0), (y1, x1) = pixel(data.geom_xpos[g] - half), pixel(data.geom_xpos[g] + half)
            name = self.model.body(body).name
            leg = 0 if name.startswith("b") else 1 if name.startswith("f") else None
            colour = colours.get(leg, (70, 70, 70))
            thick = max(2, int(2 * self.model.geom_size[g, 0] * scale))
            canvas.line(y0, x0, y1, x1, colour, width=thick)
        return canvas.image
