"""Scaling Laws for Neural Machine Translation (Ghorbani et al., ICLR 2022) at toy scale."""
