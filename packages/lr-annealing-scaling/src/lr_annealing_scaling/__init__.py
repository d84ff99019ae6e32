"""Scaling Law with Learning Rate Annealing (Tissue, Wang, Wang; arXiv 2408.11029)."""
