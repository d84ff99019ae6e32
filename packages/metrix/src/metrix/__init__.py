"""Metrix: mixup for deep metric learning (Venkataramanan et al., ICLR 2022; arXiv 2106.04990)."""
