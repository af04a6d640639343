"""The registry: ids, their cores and default keywords, and the ``make`` functions.

Ids are versioned (``ipd-v0``); the unversioned name (``ipd``) means the latest
version and ``metaenvs/ipd-v0`` (the Gymnasium id) is accepted too.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import re
import types
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from metaenvs.config import unexpected_keyword_message
from metaenvs.core import BatchedCore
from metaenvs.faces.parallel import BatchedParallelEnv
from metaenvs.faces.vector import BatchedVectorEnv

if TYPE_CHECKING:
    from metaenvs.faces.sb3 import SB3VecEnv

NAMESPACE = "metaenvs"
ENV_ID_RE = re.compile(r"^(?:metaenvs/)?(?P<name>[a-z][A-Za-z0-9_]*)(?:-v(?P<version>\d+))?$")


class UnknownEnvError(ValueError):
    """Raised for an id that is not registered; the message lists the valid ids."""


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """One registered environment.

    Attributes
    ----------
    id : str
        Versioned id, e.g. ``"ipd-v0"``.
    core : str
        ``"module:Class"`` of the :class:`~metaenvs.core.BatchedCore` (imported lazily).
    description : str
        One line for ``metaenvs list``.
    family : str
        The docs page / family the id belongs to.
    defaults : Mapping
        Config keywords the id sets and a user may override.
    fixed : Mapping
        Config keywords the id sets and a user may not override (e.g. the payoffs of ``ipd``).
    views : Mapping
        Single-agent Gymnasium views: suffix -> ``"module:function"`` entry point.
    """

    id: str
    core: str
    description: str
    family: str
    defaults: MappingProxyType = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    fixed: MappingProxyType = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    views: MappingProxyType = dataclasses.field(default_factory=lambda: MappingProxyType({}))

    @property
    def name(self) -> str:
        return self.id.rsplit("-v", 1)[0]

    @property
    def gymnasium_id(self) -> str:
        return f"{NAMESPACE}/{self.id}"

    @property
    def version(self) -> int:
        return int(self.id.rsplit("-v", 1)[1])

    def view_ids(self) -> dict[str, str]:
        """Gymnasium ids of the single-agent views, e.g. ``metaenvs/ipd-focal-v0``, by suffix."""
        return {sfx: f"{NAMESPACE}/{self.name}-{sfx}-v{self.version}" for sfx in self.views}

    def core_class(self) -> type[BatchedCore]:
        module, _, attr = self.core.partition(":")
        return getattr(importlib.import_module(module), attr)

    def keywords(self) -> list[str]:
        """Keywords a user may pass to ``make`` for this id."""
        return [k for k in self.core_class().config_cls.field_names() if k not in self.fixed]

    def horizon_keyword(self) -> str | None:
        """The keyword that sets the episode length (``horizon``, Skirmish's
        ``time_limit``), which ``max_cycles`` stands for; None if the id has none."""
        field = self.core_class().config_cls.horizon_field
        return field if field in self.keywords() else None

    def make_core(self, threads: int | None = None, **kwargs: Any) -> BatchedCore:
        """Build the core with the id's settings, the user's keywords and ``threads``
        (see :attr:`BatchedCore.threads`).

        ``max_cycles`` (PettingZoo's name for the episode length) is accepted as an alias
        of the id's :meth:`horizon_keyword`: the episode is truncated after that many
        steps.

        Raises
        ------
        TypeError
            For a keyword the id does not take (worded as Python's ``got an unexpected
            keyword argument``), one it fixes, or ``max_cycles`` together with the
            keyword it stands for.
        """
        if "max_cycles" in kwargs:
            kwargs = self._alias_max_cycles(kwargs)
        valid = self.keywords()
        for key in kwargs:
            if key in self.fixed:
                raise TypeError(
                    f"{key!r} is fixed by {self.id!r} and cannot be passed (keywords it "
                    f"takes: {', '.join(sorted(valid)) or 'none'}); `metaenvs list` shows the "
                    "family ids that take any value"
                )
            if key not in valid:
                raise TypeError(unexpected_keyword_message(f"env {self.id!r}", key, valid))
        config = {**self.defaults, **kwargs, **self.fixed}
        return self.core_class().from_kwargs(threads=threads, **config)

    def _alias_max_cycles(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs`` with ``max_cycles`` renamed to the horizon keyword."""
        field = self.horizon_keyword()
        if field is None:
            raise TypeError(
                unexpected_keyword_message(f"env {self.id!r}", "max_cycles", self.keywords())
                + " (max_cycles stands for the episode length, which this id does not take)"
            )
        if field in kwargs:
            raise TypeError(
                f"env {self.id!r} got both max_cycles and {field}: max_cycles is an alias "
                f"of {field}, pass one of them"
            )
        return {(field if k == "max_cycles" else k): v for k, v in kwargs.items()}


_REGISTRY: dict[str, EnvSpec] = {}


def register(
    id: str,
    core: str,
    description: str,
    family: str,
    defaults: dict[str, Any] | None = None,
    fixed: dict[str, Any] | None = None,
    views: dict[str, str] | None = None,
) -> EnvSpec:
    """Register an environment id (and its Gymnasium ids, if Gymnasium registration ran).

    Raises
    ------
    ValueError
        If the id is malformed, unversioned or already registered.
    """
    match = ENV_ID_RE.match(id)
    if match is None or match["version"] is None or id.startswith(NAMESPACE + "/"):
        raise ValueError(f"id must look like 'name-v0' (starting lower case), got {id!r}")
    if id in _REGISTRY:
        raise ValueError(f"id {id!r} is already registered")
    spec = EnvSpec(
        id=id,
        core=core,
        description=description,
        family=family,
        defaults=MappingProxyType(dict(defaults or {})),
        fixed=MappingProxyType(dict(fixed or {})),
        views=MappingProxyType(dict(views or {})),
    )
    _REGISTRY[id] = spec
    _register_with_gymnasium(spec)
    return spec


def spec(env_id: str) -> EnvSpec:
    """The spec of ``env_id`` (versioned, unversioned or with the ``metaenvs/`` namespace).

    Raises
    ------
    UnknownEnvError
        With a "did you mean" hint and the list of valid ids.
    """
    match = ENV_ID_RE.match(env_id) if isinstance(env_id, str) else None
    if match is not None:
        name, version = match["name"], match["version"]
        if version is not None:
            found = _REGISTRY.get(f"{name}-v{version}")
        else:
            versions = [s for s in _REGISTRY.values() if s.name == name]
            found = max(versions, key=lambda s: s.version, default=None)
        if found is not None:
            return found
    raise UnknownEnvError(unknown_id_message(env_id))


def unknown_id_message(env_id: Any) -> str:
    """The close matches of an unknown id (not all of them: there are dozens)."""
    if not isinstance(env_id, str):
        return (
            f"an environment id is a string such as 'ipd' or 'ipd-v0', got "
            f"{type(env_id).__name__} {env_id!r}"
        )
    names = sorted({s.name for s in _REGISTRY.values()} | set(_REGISTRY))
    match = ENV_ID_RE.match(env_id)
    key = match["name"] if match else env_id.removeprefix(f"{NAMESPACE}/")
    hints = difflib.get_close_matches(key, names, n=5, cutoff=0.5)
    hint = f" Did you mean {', '.join(map(repr, hints))}?" if hints else ""
    return (
        f"unknown environment id {env_id!r}.{hint} `metaenvs list` or metaenvs.list_envs() "
        f"shows all {len(_REGISTRY)} ids."
    )


def list_envs() -> dict[str, str]:
    """All registered ids with their one-line descriptions, sorted by id."""
    return {k: _REGISTRY[k].description for k in sorted(_REGISTRY)}


def registered_specs() -> list[EnvSpec]:
    """All registered specs, sorted by id."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def make_core(env_id: str, threads: int | None = None, **kwargs: Any) -> BatchedCore:
    """The batched core of ``env_id`` (for learners and wrappers that drive arrays directly).

    Parameters
    ----------
    env_id : str
        A registered id (``metaenvs.list_envs()``).
    threads : int or None
        Threads a large batch steps on (this one included); None follows
        :func:`metaenvs.threads.get_num_threads`.  Every ``make*`` takes it.  Results do
        not depend on it.
    **kwargs
        Config keywords of the id; unknown ones raise ``TypeError`` listing the valid ones.
    """
    return spec(env_id).make_core(threads=threads, **kwargs)


def make(
    env_id: str,
    render_mode: str | None = None,
    *,
    invalid_action: str = "raise",
    mask_in_obs: bool = True,
    **kwargs: Any,
) -> BatchedParallelEnv:
    """A PettingZoo ``ParallelEnv`` of ``env_id`` (one copy).

    Parameters
    ----------
    env_id : str
        A registered id (``metaenvs.list_envs()``).
    render_mode : {"rgb_array", None}
    invalid_action : {"raise", "noop"}
        What a masked action does (see :class:`~metaenvs.faces.parallel.BatchedParallelEnv`):
        raise (default) or become the agent's first legal action.
    mask_in_obs : bool
        With action masks: in the observations (default, ``Dict`` observations) or only in
        ``infos[agent]["action_mask"]`` (plain ``Box`` observations, e.g. for SuperSuit's
        ``black_death_v3``).
    **kwargs
        Config keywords of the id, and ``max_cycles`` for its episode length
        (see :meth:`EnvSpec.make_core`); unknown ones raise ``TypeError`` listing the
        valid ones.
    """
    s = spec(env_id)
    return BatchedParallelEnv(
        s.make_core(**kwargs),
        render_mode=render_mode,
        name=s.id,
        invalid_action=invalid_action,
        mask_in_obs=mask_in_obs,
    )


def parallel_env(env_id: str, **kwargs: Any) -> BatchedParallelEnv:
    """PettingZoo's name for :func:`make`: the ``ParallelEnv`` of ``env_id``.

    >>> env = parallel_env("navigation_N3_l3", max_cycles=50)
    >>> env.core.config.horizon
    50
    """
    return make(env_id, **kwargs)


def env(env_id: str, **kwargs: Any) -> Any:
    """PettingZoo's AEC form of :func:`make` (``parallel_to_aec``, order-enforcing)."""
    from pettingzoo.utils.conversions import parallel_to_aec

    return parallel_to_aec(make(env_id, **kwargs))


def pettingzoo_module(env_id: str, **defaults: Any) -> types.SimpleNamespace:
    """A stand-in for a PettingZoo environment module (``pettingzoo.mpe.simple_v3``).

    Its ``parallel_env(**kwargs)`` and ``env(**kwargs)`` make ``env_id`` with
    ``defaults`` updated by ``kwargs``, which is what module-based tools call, such as
    ``pettingzoo.test.max_cycles_test(mod)``.

    >>> mod = pettingzoo_module("skirmish_3m", invalid_action="noop")
    >>> mod.parallel_env(max_cycles=4).core.time_limit
    4

    Raises
    ------
    UnknownEnvError
        For an unknown id (checked here, not at the first call).
    """
    s = spec(env_id)
    return types.SimpleNamespace(
        __name__=f"metaenvs.{s.name}",
        parallel_env=lambda **kwargs: make(s.id, **{**defaults, **kwargs}),
        env=lambda **kwargs: env(s.id, **{**defaults, **kwargs}),
    )


def make_vec(
    env_id: str,
    num_envs: int,
    render_mode: str | None = None,
    copy: bool = True,
    *,
    invalid_action: str = "raise",
    **kwargs: Any,
) -> BatchedVectorEnv:
    """A Gymnasium ``VectorEnv`` of ``num_envs`` copies of ``env_id`` (agents stacked).

    ``copy=False`` returns the core's output buffers (overwritten by the next step);
    ``invalid_action`` (``"raise"`` or ``"noop"``) is :func:`make`'s; ``threads`` and the
    config keywords are :func:`make_core`'s.
    """
    s = spec(env_id)
    venv = BatchedVectorEnv(
        s.make_core(**kwargs),
        num_envs,
        render_mode=render_mode,
        copy=copy,
        invalid_action=invalid_action,
    )
    venv.metadata = {**venv.metadata, "name": s.id}
    return venv


def make_sb3_vec(
    env_id: str,
    num_envs: int,
    render_mode: str | None = None,
    *,
    invalid_action: str = "raise",
    **kwargs: Any,
) -> SB3VecEnv:
    """A Stable-Baselines3 ``VecEnv`` of ``num_envs`` copies x N agents (parameter sharing).

    ``invalid_action`` (``"raise"`` or ``"noop"``) is :func:`make`'s.  Needs
    ``stable-baselines3`` (``pip install metaenvs[sb3]``).
    """
    from metaenvs.faces.sb3 import SB3VecEnv

    return SB3VecEnv(
        make_core(env_id, **kwargs),
        num_envs,
        render_mode=render_mode,
        invalid_action=invalid_action,
    )


# -- Gymnasium --------------------------------------------------------------------------
def gymnasium_vector_entry_point(
    num_envs: int, env_id: str, render_mode: str | None = None, **kwargs: Any
) -> BatchedVectorEnv:
    """``vector_entry_point`` of every ``metaenvs/<id>`` Gymnasium id."""
    return make_vec(env_id, num_envs, render_mode=render_mode, **kwargs)


def gymnasium_entry_point(env_id: str, **kwargs: Any) -> Any:
    """``entry_point`` of every multi-agent ``metaenvs/<id>``: says which call to use instead.

    A multi-agent env is no single Gymnasium ``Env``; ``gymnasium.make`` would otherwise say
    only that the entry point is not specified.

    Raises
    ------
    TypeError
        Always, naming the vector id, the PettingZoo call and the single-agent views.
    """
    s = spec(env_id)
    views = [f"gymnasium.make('{NAMESPACE}:{v}')" for v in s.view_ids().values()]
    single = f"; single-agent views: {', '.join(views)}" if views else ""
    raise TypeError(
        f"{s.gymnasium_id} is a multi-agent env, not a single-agent gymnasium.Env: use "
        f"gymnasium.make_vec('{NAMESPACE}:{s.gymnasium_id}', num_envs=...) for the vector env "
        f"or metaenvs.make({s.name!r}) for PettingZoo{single}"
    )


def _register_with_gymnasium(s: EnvSpec) -> None:
    import gymnasium

    gymnasium.register(
        id=s.gymnasium_id,
        entry_point="metaenvs.registry:gymnasium_entry_point",
        vector_entry_point="metaenvs.registry:gymnasium_vector_entry_point",
        kwargs={"env_id": s.id},
    )
    for suffix, view_id in s.view_ids().items():
        gymnasium.register(
            id=view_id,
            entry_point=s.views[suffix],
            kwargs={"env_id": s.id},
        )
