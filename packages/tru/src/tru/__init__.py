"""TRU: reasoning-based unlearning targets (arXiv 2603.09980) on the xentlab tiny-LM stack."""
