"""A Probabilistic Perspective on Unlearning and Alignment for LLMs (arXiv 2410.03523) at CPU scale."""
