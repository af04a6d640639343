"""Adapters that make every registered env a task of other frameworks.

Each submodule imports its framework only when it is imported itself, so
``import metaenvs`` stays free of them: ``metaenvs.integrations.torchrl`` (TorchRL).
"""
