"""PLD (Plackett-Luce Distillation, arXiv 2506.12542): the loss and its baselines (``pld.losses``) and
the teacher -> student experiment (``pld.experiment``). Everything shared lives in xentlab."""
