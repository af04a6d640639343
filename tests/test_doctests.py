"""The ``>>>`` examples in the docstrings of every module run as doctests."""

import doctest
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

PACKAGES = ("metaenvs", "meta_wrappers", "baselines")


def modules_with_examples() -> list[str]:
    """Every module of our packages whose source holds a ``>>>`` example."""
    names = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        names.append(package)
        names += [m.name for m in pkgutil.walk_packages(root.__path__, f"{package}.")]
    found = []
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec and spec.origin and ">>>" in Path(spec.origin).read_text():
            found.append(name)
    return found


MODULES = modules_with_examples()


def test_examples_were_found():
    assert {"metaenvs", "metaenvs.testing", "meta_wrappers.peers"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
