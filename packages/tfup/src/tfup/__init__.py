"""TFUP / TFUP-T: training-free unsupervised prompts for vision-language models (arXiv 2404.16339)."""
