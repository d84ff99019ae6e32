"""Exploratory implementations of two proposals of Li (2024), arXiv 2410.18441:
RoPE combined with ALiBi whose head slopes follow a harmonic series (``positional``), and staircase
adaptive quantisation (SAQ) of the KV cache of a multi-query-attention decoder (``kv_quant``)."""
