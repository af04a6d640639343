import importlib.util
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


@pytest.fixture(autouse=True)
def _skip_ids_without_their_optional_dependency(request):
    """A test parametrized by ``env_id`` skips when that id's core needs an optional package
    that is not installed (mujoco for halfcheetah_2x3): the id stays registered and
    listed, its tests say why they did not run."""
    callspec = getattr(request.node, "callspec", None)
    env_id = callspec.params.get("env_id") if callspec is not None else None
    if isinstance(env_id, str):
        import metaenvs.testing as mt

        if env_id not in mt.env_ids():  # a Gymnasium id of a view, or a bad id under test
            return
        missing = mt.missing_dependency(env_id)
        if missing:
            pytest.skip(f"{env_id} needs {missing} (not installed)")


@pytest.fixture
def run_example(capsys, monkeypatch):
    """``run_example(name, *argv)`` runs ``examples/<name>.py``'s ``main(argv)`` in this
    process (so a test shares its Ray or torch start-up) and returns the summary it
    returns and the text it printed.  The script is in ``sys.modules`` while the test
    runs, so that what it defines pickles (BenchMARL pickles its callbacks)."""
    folder = Path(__file__).resolve().parents[1] / "examples"

    def run(name: str, *argv: str) -> tuple[dict, str]:
        spec = importlib.util.spec_from_file_location(f"example_{name}", folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, spec.name, module)
        spec.loader.exec_module(module)
        summary = module.main(list(argv))
        return summary, capsys.readouterr().out

    return run
