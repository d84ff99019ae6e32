"""Scaling Laws for Multilingual Language Models (He et al., arXiv 2410.12883) on synthetic families."""
