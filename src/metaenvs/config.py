"""Typed, frozen environment configs that reject unknown keywords."""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, TypeVar

C = TypeVar("C", bound="EnvConfig")


def unknown_keyword_message(kind: str, name: str, valid: list[str]) -> str:
    """Message for an unknown id or keyword, with a "did you mean" hint and the valid names."""
    hint = difflib.get_close_matches(name, valid, n=1)
    did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
    return f"unknown {kind} {name!r}.{did_you_mean} Valid: {', '.join(sorted(valid))}"


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Base of every core's config: a frozen dataclass with a docstring per field."""

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
                raise TypeError(unknown_keyword_message(f"keyword for {cls.__name__}:", key, valid))
        return cls(**kwargs)

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed (unknown keywords rejected)."""
        current = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        current.update(changes)
        return type(self).from_kwargs(**current)
