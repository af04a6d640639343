"""Every ``python`` code block of the README and the docs runs as written.

The blocks of one file run in order in one namespace (a later block may use an earlier
one's imports), in a temporary working directory.  A block that is only a fragment must
say so with ``<!-- snippet: skip -->`` on the line before its fence; none does today.
"""

import re
from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("supersuit")

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"(?P<before>[^\n]*)\n```python\n(?P<code>.*?)```", re.S)


def blocks(path: Path) -> list[tuple[int, str]]:
    """``(line, code)`` of every python block of ``path`` not marked to skip."""
    text = path.read_text()
    out = []
    for match in BLOCK.finditer(text):
        if "snippet: skip" in match["before"]:
            continue
        line = text[: match.start("code")].count("\n") + 1
        out.append((line, match["code"]))
    return out


WITH_CODE = [p for p in FILES if blocks(p)]


def test_the_readme_and_docs_have_snippets():
    names = {p.relative_to(ROOT).as_posix() for p in WITH_CODE}
    assert {"README.md", "docs/index.md", "docs/custom_envs.md"} <= names


@pytest.fixture
def registries():
    """Ids a snippet registers (docs/custom_envs.md) are gone after the test."""
    from gymnasium.envs.registration import registry as gym_registry

    from metaenvs import registry

    ours, theirs = dict(registry._REGISTRY), dict(gym_registry)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(ours)
    gym_registry.clear()
    gym_registry.update(theirs)


@pytest.mark.usefixtures("registries")
@pytest.mark.parametrize("path", WITH_CODE, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_snippets_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__snippet__"}
    for line, code in blocks(path):
        try:
            exec(compile(code, f"{path.name}:{line}", "exec"), namespace)
        except Exception as err:
            raise AssertionError(
                f"{path.relative_to(ROOT)} line {line}: {type(err).__name__}: {err}"
            ) from err
