"""``linear_cross_entropy``: the cross-entropy of ``e @ c.T`` without the N x V logits.

Cut Cross-Entropy (Wijmans et al., ICLR 2025, arXiv 2411.09009).  The arguments and their
semantics follow the official ``cut_cross_entropy.linear_cross_entropy`` (apple/ml-cross-entropy):
``shift``, ``softcap``, ``filter_eps="auto"``, ``reduction`` and ``ignore_index``.
"""

from __future__ import annotations

import importlib.util

import torch

from xentlab.data.cache import source_digest
from xentlab.kernels.filtering import resolve_filter_eps
from xentlab.kernels.token_chunks import TokenChunkedLCE
from xentlab.kernels.torch_lce import VocabChunkedLCE

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache keys of what it shapes (xentlab.data.cache, "The key rule")"""

IGNORE_INDEX = -100
IMPLS = ("auto", "triton", "torch", "torch_token_chunks")
REDUCTIONS = ("mean", "sum", "none")
_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def resolve_impl(impl: str, e: torch.Tensor) -> str:
    """``auto``: the Triton kernels on CUDA, the PyTorch vocabulary-chunked path elsewhere."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl != "auto":
        return impl
    if e.is_cuda and e.dtype != torch.float64 and triton_available():
        return "triton"
    return "torch"


def _check(e, c, targets, bias, reduction, shift, softcap):
    if (
        not isinstance(e, torch.Tensor)
        or not isinstance(c, torch.Tensor)
        or not isinstance(targets, torch.Tensor)
    ):
        raise TypeError("e, c and targets must be torch.Tensor")
    if e.dtype not in _FLOATS:
        raise TypeError(f"e must be a floating tensor (float16/bfloat16/float32/float64), got {e.dtype}")
    if c.dtype != e.dtype:
        raise TypeError(f"c must have the dtype of e ({e.dtype}), got {c.dtype}")
    if bias is not None and bias.dtype != e.dtype:
        raise TypeError(f"bias must have the dtype of e ({e.dtype}), got {bias.dtype}")
    if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool:
        raise TypeError(f"targets must be an integer tensor, got {targets.dtype}")
    devices = {t.device for t in (e, c, targets, bias) if t is not None}
    if len(devices) > 1:
        raise ValueError(f"e, c, targets and bias must be on one device, got {sorted(map(str, devices))}")
    if e.dim() < 2:
        raise ValueError(f"e must have shape (..., D) with at least 2 dims, got {tuple(e.shape)}")
    if c.dim() != 2:
        raise ValueError(f"c must have shape (V, D), got {tuple(c.shape)}")
    if c.shape[1] != e.shape[-1]:
        raise ValueError(f"e (..., D={e.shape[-1]}) and c (V, D={c.shape[1]}) disagree on D")
    if c.shape[0] == 0:
        raise ValueError("c must have at least one row (V >= 1)")
    if tuple(targets.shape) != tuple(e.shape[:-1]):
        raise ValueError(
            f"targets must have shape e.shape[:-1] = {tuple(e.shape[:-1])}, got {tuple(targets.shape)}"
        )
    if bias is not None and tuple(bias.shape) != (c.shape[0],):
        raise ValueError(f"bias must have shape (V,) = ({c.shape[0]},), got {tuple(bias.shape)}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if softcap is not None and not softcap > 0:
        raise ValueError(f"softcap must be None or > 0, got {softcap}")
    t = targets.shape[-1]
    if isinstance(shift, bool):
        shift = int(shift)
    if not isinstance(shift, int) or not 0 <= shift < t:
        raise ValueError(f"shift must be an int in [0, {t}) (the last dim of targets), got {shift!r}")
    return shift


def select_tokens(targets: torch.Tensor, ignore_index: int, shift: int, v: int):
    """The tokens that count.  Row r of the flattened e predicts ``tgt``; the output position of
    each is ``out_pos`` in a tensor of shape ``out_shape`` (for ``reduction="none"``).

    With ``shift=k``, e[..., t, :] predicts targets[..., t + k] (next-token prediction for k=1)
    and the last k positions of each sequence have no target (official ``_build_flat_valids``).
    ``rows`` is None when every row counts, so the kernels read e in place.
    """
    t = targets.shape[-1]
    tt = targets[..., shift:] if shift else targets
    out_shape = tt.shape
    flat = tt.reshape(-1)
    valid = flat != ignore_index
    if shift == 0 and bool(valid.all()):
        pos, rows, tgt = None, None, flat
    else:
        pos = valid.nonzero().squeeze(1)
        rows = pos if shift == 0 else (pos // (t - shift)) * t + pos % (t - shift)
        tgt = flat.index_select(0, pos)
    bad = (tgt < 0) | (tgt >= v)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"targets must be in [0, {v}) or equal ignore_index={ignore_index}; found {int(tgt[i])} "
            f"(the {i}-th counted target)"
        )
    return rows, tgt.long().contiguous(), pos, out_shape


def linear_cross_entropy(
    e: torch.Tensor,
    c: torch.Tensor,
    targets: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
    softcap: float | None = None,
    reduction: str = "mean",
    shift: int | bool = 0,
    filter_eps: float | str | None = "auto",
    impl: str = "auto",
    sort_vocab: bool = True,
    chunk_size: int | None = None,
    triton_config=None,
) -> torch.Tensor:
    r"""Cross-entropy of the logits ``e @ c.T (+ bias)`` against ``targets``, never storing them.

    Computes ``F.cross_entropy((e @ c.T + bias).float(), targets, ignore_index, reduction)`` (with
    ``softcap * tanh(z / softcap)`` applied to the logits when ``softcap`` is given).

    Args:
        e: hidden states, shape (..., D).  c: classifier, shape (V, D).  bias: (V,) or None.
        targets: class ids, shape e.shape[:-1]; values in [0, V) or ``ignore_index``.
        reduction: ``"mean"`` over the counted tokens, ``"sum"``, or ``"none"`` (shape of
            ``targets[..., shift:]``, zero at ignored positions).  The loss is float32 (float64
            for float64 inputs).
        shift: e[..., t, :] predicts targets[..., t + shift]; ``shift=1`` is the causal LM loss
            from unshifted labels, with no copy of e.
        filter_eps: gradient filtering threshold; ``"auto"`` = eps(dtype)/32 (the official
            default), ``None`` = exact backward (no filtering).
        impl: ``"triton"`` (the paper's kernels; CUDA, or CPU under ``TRITON_INTERPRET=1``),
            ``"torch"`` (the same algorithm chunked over the vocabulary in PyTorch),
            ``"torch_token_chunks"`` (a Liger-style baseline that chunks over tokens and computes
            the gradients in the forward), or ``"auto"`` (triton on CUDA, torch elsewhere).
        sort_vocab: walk the vocabulary in order of mean logit in the backward (only matters with
            filtering; ``False`` is the paper's "no sorting" ablation).
        chunk_size: vocabulary chunk for ``"torch"`` / token chunk for ``"torch_token_chunks"``
            (None: the defaults, a ~4M-element chunk / Liger's rule).
        triton_config: a :class:`xentlab.kernels.triton_lce.TritonConfig` (block sizes).
    """
    shift = _check(e, c, targets, bias, reduction, shift, softcap)
    impl = resolve_impl(impl, e)
    eps = resolve_filter_eps(filter_eps, e.dtype)
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
    v = c.shape[0]
    rows, tgt, pos, out_shape = select_tokens(targets, ignore_index, shift, v)
    e2 = e.reshape(-1, e.shape[-1])
    if not e2.is_contiguous():
        e2 = e2.contiguous()
    softcap = None if softcap is None else float(softcap)

    if impl == "torch_token_chunks":
        loss = TokenChunkedLCE.apply(e2, c, bias, rows, tgt, softcap, reduction, chunk_size)
        if reduction != "none":
            return loss
        nll = loss
    elif impl == "torch":
        nll = VocabChunkedLCE.apply(e2, c, bias, rows, tgt, softcap, eps, sort_vocab, chunk_size)
    else:  # triton
        if not triton_available():
            raise RuntimeError("impl='triton' needs the triton package")
        from xentlab.kernels import triton_lce

        triton_lce.check_device(e)
        cfg = triton_config or triton_lce.default_config()
        if bias is not None and not bias.is_contiguous():
            bias = bias.contiguous()
        nll = triton_lce.TritonLCE.apply(e2, c, bias, rows, tgt, softcap, eps, sort_vocab, cfg)

    if reduction == "mean":
        return nll.mean()
    if reduction == "sum":
        return nll.sum()
    if pos is None:
        return nll.view(out_shape)
    out = nll.new_zeros(out_shape.numel())
    return out.index_put((pos,), nll).view(out_shape)
