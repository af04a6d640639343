"""Wrappers that turn the meta-learning structures of the papers into standard env APIs."""

# metaenvs first: it sets Numba's cache directory before any kernel of ours is defined
import metaenvs  # noqa: F401
