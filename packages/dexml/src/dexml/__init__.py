"""DEXML (Gupta et al., ICLR 2024): dual encoders for extreme multi-label classification."""
