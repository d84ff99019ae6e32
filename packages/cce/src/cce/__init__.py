"""Cut Cross-Entropy reproduction: benchmark, tiny LM and filtering experiments."""
