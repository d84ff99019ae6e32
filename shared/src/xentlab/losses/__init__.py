"""Losses several papers share (CE family, SupCon/InfoNCE, gradient reversal, ...); import from the submodules."""
