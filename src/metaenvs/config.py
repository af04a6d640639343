"""Typed, frozen environment configs that reject unknown keywords."""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import math
import textwrap
from typing import Any, ClassVar, TypeVar

import numpy as np

C = TypeVar("C", bound="EnvConfig")


def unknown_keyword_message(kind: str, name: str, valid: list[str]) -> str:
    """Message for an unknown id or keyword, with a "did you mean" hint and the valid names."""
    hint = difflib.get_close_matches(name, valid, n=1)
    did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
    return f"unknown {kind} {name!r}.{did_you_mean} Valid: {', '.join(sorted(valid))}"


def unexpected_keyword_message(owner: str, name: str, valid: list[str]) -> str:
    """Message of the ``TypeError`` for an unknown keyword argument, worded as Python's.

    It starts as Python's own (``<owner> got an unexpected keyword argument 'x'``), so
    that libraries which recognise that wording (TorchRL's ``GymEnv`` drops
    ``frameskip`` on it) can, followed by a "did you mean" hint and the valid keywords.

    Parameters
    ----------
    owner : str
        What was called, e.g. ``"NavigationConfig()"`` or ``"env 'ipd-v0'"``.
    name : str
        The unknown keyword.
    valid : list of str
        The keywords ``owner`` takes.
    """
    hint = difflib.get_close_matches(name, valid, n=1)
    did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
    takes = ", ".join(sorted(valid)) or "none"
    return (
        f"{owner} got an unexpected keyword argument {name!r}.{did_you_mean} "
        f"Valid keywords: {takes}"
    )


# -- field checks for configs' __post_init__ -------------------------------------------
def check_int(name: str, value: Any, low: int) -> int:
    """``value`` as an int ``>= low``, else ``TypeError`` / ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def check_float(name: str, value: Any, low: float = 0.0, strict: bool = True) -> float:
    """``value`` as a finite float ``> low`` (``>= low`` if not ``strict``), else raise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < low or (strict and value == low):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {low}")
    return value


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else ``ValueError`` listing them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def field_docs(cls: type) -> dict[str, str]:
    """The docstring of each field of a dataclass: the string literal on the line after it
    (PEP 257), as the docs, ``metaenvs info`` and the experiments' ``--help`` show it.

    Inherited fields are read from the class that defines them; a field without a
    docstring is absent.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if isinstance(tree.body[0], ast.ClassDef) else []
        for node, nxt in zip(body, body[1:]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(nxt.value.value)
    fields = {f.name for f in dataclasses.fields(cls)}  # not class variables
    return {name: doc for name, doc in docs.items() if name in fields}


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Base of every core's config: a frozen dataclass with a docstring per field."""

    horizon_field: ClassVar[str | None] = "horizon"
    """The field that sets the episode length (steps before truncation), or None for a
    config without one.  PettingZoo's ``max_cycles`` keyword is an alias of it (see
    :meth:`metaenvs.registry.EnvSpec.make_core`)."""

    @classmethod
    def field_names(cls) -> list[str]:
        """Names of the config's keyword arguments."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_kwargs(cls: type[C], **kwargs: Any) -> C:
        """Build a config, raising ``TypeError`` for any unknown keyword.

        Raises
        ------
        TypeError
            If a keyword is not a field of this config; the message lists the valid ones.
        """
        valid = cls.field_names()
        for key in kwargs:
            if key not in valid:
                raise TypeError(unexpected_keyword_message(f"{cls.__name__}()", key, valid))
        return cls(**kwargs)

    @classmethod
    def field_docs(cls) -> dict[str, str]:
        """The docstring of each field (see :func:`field_docs`)."""
        return field_docs(cls)

    @classmethod
    def field_defaults(cls) -> dict[str, str]:
        """Source-like text of each field's default (``"required"`` when it has none)."""
        out = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                out[f.name] = repr(f.default)
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = f"{f.default_factory.__name__}()"
            else:
                out[f.name] = "required"
        return out

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed (unknown keywords rejected)."""
        current = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        current.update(changes)
        return type(self).from_kwargs(**current)
