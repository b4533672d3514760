"""Denoisers: exact oracles for synthetic laws (and, later, trained transformers and adapters)."""

from unmask.models.oracle import HiddenMarkov, ProductMixture, TabularJoint

__all__ = ["HiddenMarkov", "ProductMixture", "TabularJoint"]
