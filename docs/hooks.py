"""MkDocs hooks that build the environment pages from code (STYLE.md point 15).

Every family in the registry (``EnvSpec.family``) gets the page ``envs/<family>.md``:

- the family module's docstring (the spec: agents, spaces, rewards, episode end, ...);
- a table of the family's registered ids (description, Gymnasium ids, defaults, fixed and
  allowed keywords), from ``metaenvs.registered_specs()``;
- the live spaces of every id (``metaenvs.make_core(id)``);
- the Arguments table of the config dataclass: field, type, default and the docstring
  that follows the field in the source (read with ``ast``);
- a rendered picture of every id (``core.render_copy(state, 0)`` after a few steps).

A family needs no docs file: if ``docs/envs/<family>.md`` is missing, the page is made
in memory, and the nav section "Environments" gets an entry for it.  A hand-written
``docs/envs/<family>.md`` is used as a frame instead: the generated part replaces its
``<!-- metaenvs:generated -->`` marker.  The pages and pictures exist only in the build
(``File.generated``); nothing is written into ``docs/``.

Problems (a config field without a docstring, a picture that does not render, a page
for a family that is not registered) are logged as warnings, so ``mkdocs build
--strict`` fails on them.

This file is also a Griffe extension (``RstRoles``, listed under the mkdocstrings
handler's ``extensions``) that turns the reST roles of the docstrings (``:class:`x```,
``:meth:`~a.b```) into Markdown code, linked where the target is rendered.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import io
import logging
import posixpath
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

import griffe

log = logging.getLogger("mkdocs.hooks.metaenvs")

ENVS_DIR = "envs"
NAV_SECTION = "Environments"
MARKER = "<!-- metaenvs:generated -->"
IDS_MARKER = "<!-- metaenvs:ids -->"
PICTURE_STEPS = 3
PICTURE_SEED = 3
PICTURE_MIN_WIDTH = 320

# family -> list of specs (filled by on_config)
_FAMILIES: dict[str, list[Any]] = {}


# -- reST roles -> Markdown ------------------------------------------------------------
_ROLE_RE = re.compile(
    r":(?:py:)?(?:class|meth|func|mod|attr|data|obj|exc|const|term):"
    r"`(?P<tilde>~?)(?P<target>[^`<>]+?)`"
)


def _is_private(path: str) -> bool:
    return any(p.startswith("_") and not p.startswith("__") for p in path.split("."))


def convert_roles(text: str, resolve: Callable[[str], str | None] | None = None) -> str:
    """Replace reST roles with code spans, wrapped in an optional autorefs link.

    ``resolve`` maps a (possibly relative) target to a full path, or None; without it
    only fully qualified ``metaenvs.`` targets are linked.  The link is "optional": it
    becomes a plain code span, without a warning, when the target is not rendered.
    """

    def repl(match: re.Match) -> str:
        target = match["target"].strip().removesuffix("()")
        title = target.rsplit(".", 1)[-1] if match["tilde"] else target
        code = f"`{title}`"
        if resolve is not None:
            ident = resolve(target)
        else:
            ident = target if target.startswith("metaenvs.") else None
        if ident is None or _is_private(ident):
            return code
        return f'<autoref identifier="{ident}" optional>{code}</autoref>'

    return _ROLE_RE.sub(repl, text)


def _griffe_objects(obj: Any) -> Iterator[Any]:
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _griffe_objects(member)


def _scope_resolver(obj: Any) -> Callable[[str], str | None]:
    def resolve(target: str) -> str | None:
        head, _, rest = target.partition(".")
        if head == obj.package.name:
            return target
        try:
            full = obj.resolve(head)
        except Exception:  # noqa: BLE001 - griffe raises several kinds; no link then
            return None
        return f"{full}.{rest}" if rest else full

    return resolve


class RstRoles(griffe.Extension):
    """Griffe extension: reST roles in docstrings become (linked) Markdown code."""

    def on_package(self, *, pkg: Any, **kwargs: Any) -> None:
        for obj in _griffe_objects(pkg):
            if obj.docstring is not None and ":" in obj.docstring.value:
                obj.docstring.value = convert_roles(obj.docstring.value, _scope_resolver(obj))


# -- reading the code ------------------------------------------------------------------
def _families() -> dict[str, list[Any]]:
    import metaenvs

    families: dict[str, list[Any]] = {}
    for spec in metaenvs.registered_specs():
        families.setdefault(spec.family, []).append(spec)
    return families


def _title(family: str) -> str:
    return family.replace("_", " ").capitalize()


def _page_uri(family: str) -> str:
    return f"{ENVS_DIR}/{family}.md"


def _image_uri(env_id: str) -> str:
    return f"{ENVS_DIR}/img/{env_id}.png"


def _escape_pipes(text: str) -> str:
    """Escape the pipes of table-cell text, except inside code spans (kept as they are)."""
    parts = text.split("`")
    return "`".join(p if i % 2 else p.replace("|", "\\|") for i, p in enumerate(parts))


def _cell(value: Any) -> str:
    """A Markdown table cell: one-line code span (a pipe in a code span stays in the cell)."""
    text = " ".join(str(value).split()).replace("`", "'")
    return f"`{text}`"


def _split_sections(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Split Markdown at its ``## `` headings: (text before, [(heading, body), ...])."""
    parts = re.split(r"^## +(.+?)\s*$", text, flags=re.MULTILINE)
    head, rest = parts[0], parts[1:]
    return head, [(rest[i], rest[i + 1]) for i in range(0, len(rest), 2)]


def _picture(spec: Any) -> bytes:
    """PNG of copy 0 of ``spec`` after a few seeded random steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image
    import numpy as np

    core = spec.make_core()
    state = core.reset(1, seed=PICTURE_SEED)
    space = core.action_space
    space.seed(PICTURE_SEED)
    for _ in range(PICTURE_STEPS):
        # with action masks, uniform over each agent's available actions
        masks = core.action_mask(state)[0] if core.masked_actions else [None] * core.n_agents
        actions = np.stack([np.asarray(space.sample(mask=m)) for m in masks])[None]
        core.step(state, actions)
    image = np.asarray(core.render_copy(state, 0))
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"render_copy must return an (H, W, 3) uint8 image, got {image.shape} {image.dtype}"
        )
    scale = max(1, -(-PICTURE_MIN_WIDTH // image.shape[1]))  # crisp integer upscaling
    if scale > 1:
        image = image.repeat(scale, axis=0).repeat(scale, axis=1)
    buf = io.BytesIO()
    matplotlib.image.imsave(buf, image, format="png")
    return buf.getvalue()


# -- writing the page ------------------------------------------------------------------
def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _view_ids(spec: Any) -> dict[str, str]:
    if hasattr(spec, "view_ids"):
        return spec.view_ids()
    version = spec.id.rsplit("-v", 1)[1]
    return {sfx: f"metaenvs/{spec.name}-{sfx}-v{version}" for sfx in spec.views}


def _ids_table(specs: list[Any]) -> list[str]:
    lines = [
        "| id | description | Gymnasium ids | defaults | fixed | keywords |",
        "|---|---|---|---|---|---|",
    ]
    for s in specs:
        gym_ids = [s.gymnasium_id]
        for suffix, view_id in _view_ids(s).items():
            if _importable(s.views[suffix].partition(":")[0]):  # views not written yet: left out
                gym_ids.append(view_id)
        defaults = ", ".join(f"{k}={v!r}" for k, v in s.defaults.items())
        description = _escape_pipes(s.description)
        lines.append(
            f"| `{s.id}` | {description} "
            f"| {'<br>'.join(_cell(g) for g in gym_ids)} "
            f"| {_cell(defaults) if defaults else '—'} "
            f"| {', '.join(_cell(k) for k in s.fixed) or '—'} "
            f"| {', '.join(_cell(k) for k in s.keywords()) or '—'} |"
        )
    return lines


def _spaces_table(specs: list[Any]) -> list[str]:
    lines = [
        "| id | agents N | observation space (per agent) | action space (per agent) "
        "| global state space |",
        "|---|---|---|---|---|",
    ]
    for s in specs:
        try:
            core = s.make_core()
        except Exception as exc:  # noqa: BLE001 - an id may need keywords
            lines.append(f"| `{s.id}` | needs keywords: {_cell(exc)} | | | |")
            continue
        lines.append(
            f"| `{s.id}` | {core.n_agents} | {_cell(repr(core.observation_space))} "
            f"| {_cell(repr(core.action_space))} | {_cell(repr(core.global_state_space))} |"
        )
    return lines


def _arguments_table(config_cls: type) -> list[str]:
    name = f"{config_cls.__module__}.{config_cls.__qualname__}"
    lines = [
        f'Keywords of <autoref identifier="{name}" optional>`{config_cls.__name__}`</autoref>, '
        "accepted by `metaenvs.make`, `make_vec`, `make_sb3_vec` and `make_core` unless the "
        "id fixes them; an unknown keyword raises `TypeError` listing the valid ones.",
        "",
        "| keyword | type | default | description |",
        "|---|---|---|---|",
    ]
    docs, defaults = config_cls.field_docs(), config_cls.field_defaults()
    for f in dataclasses.fields(config_cls):
        if f.name not in docs:
            log.warning(
                "%s.%s has no docstring: write a string literal on the line after the field",
                name,
                f.name,
            )
        doc = _escape_pipes(" ".join(docs.get(f.name, "").split()))
        default = _cell(defaults[f.name])
        lines.append(f"| `{f.name}` | {_cell(str(f.type))} | {default} | {convert_roles(doc)} |")
    return lines


def _pictures(specs: list[Any], core_classes: list[type]) -> list[str]:
    lines = []
    for cls in core_classes:
        doc = inspect.getdoc(cls.render_copy)
        if doc:
            lines += [convert_roles(doc), ""]
    lines += [
        f"Copy 0 of each id after {PICTURE_STEPS} steps of uniformly random (available) actions "
        f"(seed {PICTURE_SEED}), drawn by `core.render_copy(state, 0)`.",
        "",
        '<div class="grid" markdown>',
        "",
    ]
    for s in specs:
        lines += [
            '<figure markdown="span">',
            f"  ![{s.id}](img/{s.id}.png)",
            f"  <figcaption><code>{s.id}</code></figcaption>",
            "</figure>",
            "",
        ]
    return [*lines, "</div>"]


def family_markdown(family: str, specs: list[Any], pictures: set[str]) -> str:
    """The generated part of a family's page (everything but the H1 title)."""
    core_classes: list[type] = []
    for s in specs:
        cls = s.core_class()
        if cls not in core_classes:
            core_classes.append(cls)

    out: list[str] = []
    late: list[str] = []  # "Version History" goes last, after the generated sections
    for cls in core_classes:
        module = sys.modules[cls.__module__]
        doc = convert_roles(inspect.cleandoc(module.__doc__ or ""))
        head, sections = _split_sections(doc)
        if not head.strip():
            log.warning("module %s has no docstring (the family's spec)", module.__name__)
        if len(core_classes) > 1:  # several cores in one family: one spec after the other
            out += [f"## `{cls.__name__}`", ""]
        out += [head.strip(), ""]
        for heading, body in sections:
            target = late if heading.lower().startswith("version history") else out
            target += [f"## {heading}", "", body.strip(), ""]

    out += ["## Registered ids", "", *_ids_table(specs), ""]
    out += [
        "## Spaces",
        "",
        "Live from `metaenvs.make_core(id)` with the id's defaults.  The Gymnasium vector "
        "face stacks the agents of a copy, `(B, N, ...)`; the SB3 face gives every agent "
        "of every copy its own slot ([layouts](../concepts.md#layouts-of-the-faces)).",
        "",
        *_spaces_table(specs),
        "",
    ]
    out += ["## Arguments", ""]
    for cls in core_classes:
        out += [*_arguments_table(cls.config_cls), ""]
    drawn = [s for s in specs if s.id in pictures]
    if drawn:
        out += ["## Pictures", "", *_pictures(drawn, core_classes), ""]
    out += late
    return "\n".join(out).rstrip() + "\n"


def ids_markdown(page_uri: str) -> str:
    """Table of every registered id, linked to its family's page."""
    here = posixpath.dirname(page_uri)
    lines = ["| id | family | description |", "|---|---|---|"]
    for family in sorted(_FAMILIES):
        link = posixpath.relpath(_page_uri(family), here or ".")
        for s in _FAMILIES[family]:
            description = _escape_pipes(s.description)
            lines.append(f"| `{s.id}` | [{_title(family)}]({link}) | {description} |")
    return "\n".join(lines) + "\n"


# -- MkDocs events ---------------------------------------------------------------------
def on_config(config: Any) -> Any:
    _FAMILIES.clear()
    _FAMILIES.update(_families())
    nav = config.nav
    if nav is None:  # automatic nav picks up the generated files
        return config
    section = next((item for item in nav if isinstance(item, dict) and NAV_SECTION in item), None)
    if section is None:
        section = {NAV_SECTION: []}
        nav.append(section)
    entries = section[NAV_SECTION] or []
    if not isinstance(entries, list):
        entries = [entries]
    listed = {next(iter(e.values())) if isinstance(e, dict) else e for e in entries}
    for family in sorted(_FAMILIES):
        if _page_uri(family) not in listed:
            entries.append({_title(family): _page_uri(family)})
    section[NAV_SECTION] = entries
    return config


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for uri in [f.src_uri for f in files.documentation_pages()]:
        stem = uri.removeprefix(f"{ENVS_DIR}/").removesuffix(".md")
        if uri.startswith(f"{ENVS_DIR}/") and "/" not in stem and stem not in _FAMILIES:
            known = sorted(_FAMILIES)
            log.warning("%s has no registered family %r (families: %s)", uri, stem, known)
    for family, specs in _FAMILIES.items():
        if files.get_file_from_path(_page_uri(family)) is None:
            content = f"# {_title(family)}\n\n{MARKER}\n"
            files.append(File.generated(config, _page_uri(family), content=content))
        for s in specs:
            try:
                png = _picture(s)
            except Exception as exc:  # noqa: BLE001 - report every failure, keep building
                log.warning("no picture for %s: %s: %s", s.id, type(exc).__name__, exc)
                continue
            files.append(File.generated(config, _image_uri(s.id), content=png))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    uri = page.file.src_uri
    if IDS_MARKER in markdown:
        markdown = markdown.replace(IDS_MARKER, ids_markdown(uri))
    family = uri.removeprefix(f"{ENVS_DIR}/").removesuffix(".md")
    if not uri.startswith(f"{ENVS_DIR}/") or family not in _FAMILIES:
        return markdown
    if MARKER not in markdown:
        log.warning("%s lacks the marker %s where the generated part goes", uri, MARKER)
        return markdown
    pictures = {s.id for s in _FAMILIES[family] if files.get_file_from_path(_image_uri(s.id))}
    return markdown.replace(MARKER, family_markdown(family, _FAMILIES[family], pictures), 1)
