"""MaKD: Multi-aspect Knowledge Distillation with Large Language Model (Lee et al., arXiv 2501.13341)."""
