"""Scaling Laws for Autoregressive Generative Modeling: what is specific to this paper (everything shared lives in xentlab)."""
