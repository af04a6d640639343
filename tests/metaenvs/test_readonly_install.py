"""A read-only install: kernels cache elsewhere instead of failing on import or first use.

Root can write anywhere, so "not writable" is made with files standing where Numba wants
directories: every ``__pycache__`` of a copied install is a file, and so is ``HOME``.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import metaenvs

SRC = Path(metaenvs.__file__).resolve().parents[1]

SCRIPT = """
import warnings, numpy as np, numba
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import metaenvs
print("CACHE_DIR=" + str(numba.config.CACHE_DIR))
print("WARNED=" + str([str(w.message) for w in caught if "metaenvs" in str(w.message)]))
if "--step" in __import__("sys").argv:
    core = metaenvs.make_core("ipd", horizon=3)
    state = core.reset(2, 0)
    print("REWARD=" + str(core.step(state, np.zeros((2, 2), dtype=np.int64)).reward.tolist()))
"""


def _read_only_copy(tmp_path: Path) -> Path:
    """A copy of the packages whose ``__pycache__`` folders cannot be created."""
    site = tmp_path / "site"
    for package in ("metaenvs", "meta_wrappers"):
        shutil.copytree(SRC / package, site / package, ignore=shutil.ignore_patterns("__pycache__"))
    for folder in [p for p in site.rglob("*") if p.is_dir()] + [site]:
        (folder / "__pycache__").write_text("not a directory")
    return site


def _run(tmp_path: Path, site: Path, env_extra: dict[str, str], *args: str) -> dict[str, str]:
    home = tmp_path / "home-is-a-file"
    home.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "XDG_"))}
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    env.update(PYTHONPATH=str(site), HOME=str(home), TMPDIR=str(tmp), PYTHONDONTWRITEBYTECODE="1")
    env.update(env_extra)
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


def test_unwritable_package_and_home_fall_back_to_a_temporary_cache_with_a_warning(tmp_path):
    site = _read_only_copy(tmp_path)
    result = _run(tmp_path, site, {}, "--step")
    assert result["CACHE_DIR"].startswith(str(tmp_path / "tmp" / "metaenvs-numba-"))
    assert "NUMBA_CACHE_DIR" in result["WARNED"]
    assert result["REWARD"] == "[[0.5, 0.5], [0.5, 0.5]]"  # IPD, Table 1: both cooperate
    assert any(Path(result["CACHE_DIR"]).rglob("*.nbi")), "nothing was cached"


def test_unwritable_package_uses_the_user_cache_directory_quietly(tmp_path):
    site = _read_only_copy(tmp_path)
    cache = tmp_path / "xdg"
    result = _run(tmp_path, site, {"XDG_CACHE_HOME": str(cache)})
    assert result["CACHE_DIR"] == str(cache / "metaenvs" / "numba")
    assert result["WARNED"] == "[]"


def test_a_users_numba_cache_dir_is_kept(tmp_path):
    site = _read_only_copy(tmp_path)
    result = _run(tmp_path, site, {"NUMBA_CACHE_DIR": str(tmp_path / "mine")})
    assert result["CACHE_DIR"] == str(tmp_path / "mine")
    assert result["WARNED"] == "[]"


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX file permissions")
def test_a_writable_install_keeps_numbas_own_choice():
    out = subprocess.run(
        [sys.executable, "-c", "import metaenvs, numba; print(numba.config.CACHE_DIR)"],
        env={k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and out.stdout.strip() == ""
