"""Kernels with a pure-PyTorch reference for each, dispatched by device.

``linear_cross_entropy``: Cut Cross-Entropy (Wijmans et al., ICLR 2025, arXiv 2411.09009), the
cross-entropy of ``e @ c.T`` computed without materialising the N x V logits, as Triton kernels
(``triton_lce``), the same algorithm in PyTorch (``torch_lce``), a Liger-style token-chunked
baseline (``token_chunks``) and the naive reference (``reference``).  ``hf`` routes a Hugging Face
causal LM's training loss through it.

``triton_lce`` is imported only when ``impl="triton"`` is used, so importing this package does not
import triton (set ``TRITON_INTERPRET=1`` before that first use to run the kernels on CPU).
"""

from xentlab.kernels.filtering import resolve_filter_eps, tile_keep_mask, vocab_order
from xentlab.kernels.lce import IGNORE_INDEX, IMPLS, linear_cross_entropy, resolve_impl
from xentlab.kernels.reference import naive_linear_cross_entropy

__all__ = [
    "IGNORE_INDEX",
    "IMPLS",
    "linear_cross_entropy",
    "naive_linear_cross_entropy",
    "resolve_filter_eps",
    "resolve_impl",
    "tile_keep_mask",
    "vocab_order",
]
