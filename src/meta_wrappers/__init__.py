"""Wrappers that turn the meta-learning structures of the papers into standard env APIs."""
