"""MuJoCo's C functions called from Numba kernels, without Python between copies.

``mujoco``'s Python functions hold the GIL between calls, and each costs about a
microsecond of binding; a batch stepped as ``mj_setState``, ``mj_step``, ``mj_getState``
per copy in Python pays that per copy and serialises the threads on the GIL.  The
kernels here call the same C functions of the ``libmujoco`` shared library that the
``mujoco`` package loaded, by address, from inside a ``nogil`` Numba loop.

The addresses are run-time arguments (an ``int64`` array from :func:`function_table`),
so the kernels stay cacheable (``cache=True``); the calls are made by two small Numba
intrinsics that cast an address to a C function pointer.  Pointers travel as 64-bit
integers, which is how the x86-64 and AArch64 C calling conventions pass them.

:func:`function_table` returns None where the library cannot be found, the platform's
pointers are not 64-bit, or its one-time check fails (a pendulum stepped through the
table must end where ``mujoco.mj_step`` takes it, bit for bit; a RuntimeWarning says
so); callers then step copy by copy through ``mujoco``'s Python functions (the same
results, bit for bit: the same C functions run).

Two differences from the bindings: a MuJoCo *error* (``mju_error``, e.g. its stack
running out, which this package's models do not come near) is handled by MuJoCo's default
handler, which ends the process, where the bindings raise ``mujoco.FatalError``; and
Numba's cache does not see edits of this module from the kernels that inline
:func:`step_rows` (delete ``__pycache__/*.nb[ic]`` after editing it).
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
import warnings

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

MJ_STEP, MJ_SET_STATE, MJ_GET_STATE = range(3)
"""Rows of :func:`function_table`."""
_NAMES = ("mj_step", "mj_setState", "mj_getState")
_LIBRARY_PATTERNS = ("libmujoco.so*", "libmujoco*.dylib", "mujoco.dll")


@functools.cache
def function_table() -> np.ndarray | None:
    """``(3,)`` int64 addresses of ``mj_step``, ``mj_setState`` and ``mj_getState`` in the
    ``libmujoco`` the ``mujoco`` package ships, or None where it is not found (or pointers
    are not 64-bit)."""
    if ctypes.sizeof(ctypes.c_void_p) != 8 or numba.config.DISABLE_JIT:  # pragma: no cover
        return None  # 32-bit pointers, or no compiled kernels to call from
    import mujoco

    folder = os.path.dirname(mujoco.__file__)
    paths = [p for pattern in _LIBRARY_PATTERNS for p in glob.glob(os.path.join(folder, pattern))]
    if not paths:  # pragma: no cover - a mujoco build without a bundled library
        return None
    # the bindings' own library: the file named for this version where several are there
    paths.sort(key=lambda p: (mujoco.__version__ not in os.path.basename(p), p))
    try:
        library = ctypes.CDLL(paths[0])  # already loaded by the bindings: the same handle
        functions = [getattr(library, name) for name in _NAMES]
    except (OSError, AttributeError):  # pragma: no cover - an unloadable library
        return None
    table = np.array([ctypes.cast(f, ctypes.c_void_p).value for f in functions], np.int64)
    if not _steps_as_the_bindings_do(table):  # pragma: no cover - another library's copy
        warnings.warn(
            "metaenvs: stepping MuJoCo through its C functions did not reproduce mujoco's own "
            "mj_step; stepping copy by copy through mujoco's Python functions instead",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return table


_CHECK_MODEL = """<mujoco><worldbody><body pos="0 0 1"><joint name="h" type="hinge" axis="0 1 0"/>
<geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.05"/></body>
<geom type="plane" size="2 2 0.1"/></worldbody><actuator><motor joint="h"/></actuator></mujoco>"""
"""A pendulum with a motor: :func:`function_table` checks the C calls on it once."""


def _steps_as_the_bindings_do(table: np.ndarray) -> bool:
    """One state row stepped 3 times by :func:`step_rows` and by ``mujoco.mj_step``."""
    import mujoco

    model = mujoco.MjModel.from_xml_string(_CHECK_MODEL)
    data = mujoco.MjData(model)
    data.qpos[0], data.qvel[0], data.ctrl[0] = 0.3, -0.5, 0.7
    spec = int(mujoco.mjtState.mjSTATE_INTEGRATION)
    row = np.zeros((1, mujoco.mj_stateSize(model, spec)))
    mujoco.mj_getState(model, data, row[0], spec)
    mujoco.mj_step(model, data, 3)  # the reference, from the same state
    expected = np.zeros_like(row[0])
    mujoco.mj_getState(model, data, expected, spec)
    scratch = mujoco.MjData(model)  # held: the kernel gets only its address
    step_rows(table, model._address, scratch._address, row, spec, 3, 0, 1)
    return bool(np.array_equal(row[0], expected))


_I64 = ir.IntType(64)
_I32 = ir.IntType(32)


@intrinsic
def _call2(typingctx, fn, a, b):  # noqa: ARG001 - Numba's intrinsic signature
    """``fn(a, b)`` for a C function ``void fn(void*, void*)`` at address ``fn``."""
    sig = types.void(types.int64, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        pointer = builder.inttoptr(
            args[0], ir.FunctionType(ir.VoidType(), [_I64, _I64]).as_pointer()
        )
        builder.call(pointer, [args[1], args[2]])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _call4(typingctx, fn, a, b, c, d):  # noqa: ARG001 - Numba's intrinsic signature
    """``fn(a, b, c, (int) d)`` for ``void fn(void*, void*, void*, int)`` at ``fn``."""
    sig = types.void(types.int64, types.int64, types.int64, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        kind = ir.FunctionType(ir.VoidType(), [_I64, _I64, _I64, _I32])
        pointer = builder.inttoptr(args[0], kind.as_pointer())
        builder.call(pointer, [args[1], args[2], args[3], builder.trunc(args[4], _I32)])
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True, nogil=True)
def step_rows(
    table: np.ndarray,
    model: int,
    data: int,
    physics: np.ndarray,
    spec: int,
    frames: int,
    lo: int,
    hi: int,
) -> None:
    """For each copy ``b`` in ``lo..hi-1``: load row ``physics[b]`` (MuJoCo state of
    ``spec``) into the ``MjData`` at ``data``, run ``mj_step`` ``frames`` times, store the
    state back in the row.

    ``physics`` must be C-contiguous float64 ``(B, mj_stateSize(model, spec))``; ``model``
    and ``data`` are the ``_address`` of an ``MjModel`` and of an ``MjData`` of it that
    no other thread uses meanwhile.
    """
    step, load, store = table[MJ_STEP], table[MJ_SET_STATE], table[MJ_GET_STATE]
    for b in range(lo, hi):
        row = physics[b].ctypes.data
        _call4(load, model, data, row, spec)
        for _ in range(frames):
            _call2(step, model, data)
        _call4(store, model, data, row, spec)
