"""Adversarial attacks for evaluation and adversarial training (L_inf PGD)."""

from xentlab.attacks.pgd import pgd_linf, robust_accuracy

__all__ = ["pgd_linf", "robust_accuracy"]
