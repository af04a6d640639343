"""Torch set-up of every learner: optimisers that do not import ``torch._dynamo``.

Importing this module applies :func:`eager_optimizers` once; the learner modules import
it before they build an optimiser.

Why: in torch 2.x, building any ``torch.optim`` optimiser and taking its first ``step``
imports ``torch._dynamo`` (the compiler stack, about 800 modules), although nothing is
compiled.  Two wrappers in ``torch/optim/optimizer.py`` do it:

- ``Optimizer.add_param_group`` (run by the constructor), ``zero_grad``, ``state_dict``
  and ``load_state_dict`` are wrapped by ``torch._disable_dynamo``, whose wrapper imports
  ``torch._dynamo`` on its first call to build ``torch._dynamo.disable(fn)``;
- every ``step`` (Adam, RMSprop, SGD, ...) is wrapped by ``_use_grad_for_differentiable``,
  which imports ``torch._dynamo`` at every call to put a ``graph_break()`` around the
  update (a no-op outside ``torch.compile``).

Measured on this project's 2-core machine (torch 2.13, CPU): ``import torch`` 1.2 s, then
the first ``torch.optim.RMSprop(...)`` 1.2 s more, of which nearly all is the import of
``torch._dynamo``; under load (two training runs on both cores) 26 s of a 68 s start-up.

What :func:`eager_optimizers` changes: each of those wrappers calls the function it wraps
directly, with the same grad mode, as long as ``torch._dynamo`` has not been imported.
Outside ``torch.compile`` both wrappers only call the function (``disable`` marks it as
not to be traced; ``graph_break`` does nothing), so the updates are the same bit for
bit.  Once anything imports ``torch._dynamo`` (a user compiling a model), every call goes
through torch's own wrappers again, so compiled code sees what torch intends.  A torch
whose wrappers look different is left alone (it then imports ``torch._dynamo`` as before).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch.optim.optimizer import Optimizer, _use_grad_for_differentiable

DYNAMO = "torch._dynamo"

_DISABLED = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")
"""``Optimizer`` methods wrapped by ``torch._disable_dynamo``."""


def _dynamo_loaded() -> bool:
    return DYNAMO in sys.modules


def _lazy_disable(fn: Callable[..., Any], recursive: bool) -> Callable[..., Any]:
    """Stands in for ``torch._dynamo.disable(fn, recursive)``: calls ``fn`` while
    ``torch._dynamo`` is not imported, the real ``disable`` once it is."""
    real: list[Callable[..., Any]] = []

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if not real:
            if not _dynamo_loaded():
                return fn(*args, **kwargs)
            import torch._dynamo

            real.append(torch._dynamo.disable(fn, recursive, wrapping=False))
        return real[0](*args, **kwargs)

    return call


def _eager_step(wrapped: Callable[..., Any], func: Callable[..., Any]) -> Callable[..., Any]:
    """``step`` as torch's ``_use_grad_for_differentiable`` runs it outside ``torch.compile``
    (grad mode from ``defaults["differentiable"]``), without importing ``torch._dynamo``;
    torch's own wrapper ``wrapped`` once it is imported."""

    @functools.wraps(func)
    def step(*args: Any, **kwargs: Any) -> Any:
        if _dynamo_loaded():
            return wrapped(*args, **kwargs)
        self = args[0]
        previous = torch.is_grad_enabled()
        try:
            torch.set_grad_enabled(self.defaults["differentiable"])
            return func(*args, **kwargs)
        finally:
            torch.set_grad_enabled(previous)

    step._eager_step = True  # type: ignore[attr-defined]
    return step


def _optimizer_classes() -> list[type]:
    """Every optimiser class ``torch.optim`` exports."""
    found = (getattr(torch.optim, name) for name in dir(torch.optim))
    return [c for c in found if isinstance(c, type) and issubclass(c, Optimizer)]


def eager_optimizers() -> int:
    """Make ``torch.optim`` optimisers build and step without importing ``torch._dynamo``.

    Idempotent; does nothing once ``torch._dynamo`` is imported (there is nothing left to
    save) and skips any wrapper whose shape it does not recognise.

    Returns
    -------
    int
        Wrappers changed by this call.
    """
    if _dynamo_loaded():
        return 0
    changed = 0
    for name in _DISABLED:
        inner = Optimizer.__dict__.get(name)
        names = getattr(getattr(inner, "__code__", None), "co_freevars", ())
        cells = dict(zip(names, getattr(inner, "__closure__", None) or ()))
        if set(cells) != {"fn", "recursive"}:
            continue
        fn = cells["fn"].cell_contents
        if getattr(fn, "__dynamo_disable", None) is None:
            fn.__dynamo_disable = _lazy_disable(fn, cells["recursive"].cell_contents)
            changed += 1
    probe = _use_grad_for_differentiable(lambda self: None).__code__
    for cls in _optimizer_classes():
        step = cls.__dict__.get("step")
        if getattr(step, "__code__", None) is probe and hasattr(step, "__wrapped__"):
            cls.step = _eager_step(step, step.__wrapped__)
            changed += 1
    return changed


eager_optimizers()
