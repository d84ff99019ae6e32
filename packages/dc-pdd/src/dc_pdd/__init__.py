"""DC-PDD (arXiv 2409.14781): divergence-calibrated pretraining data detection, its baselines, and a
synthetic member/non-member corpus with a commonness confound (everything shared lives in xentlab)."""
