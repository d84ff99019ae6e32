"""LASE (arXiv 2605.00777): what is specific to this paper; the corpus, frontend, SupCon, GRL and EER live in xentlab."""
