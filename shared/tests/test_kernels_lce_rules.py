"""xentlab.kernels (PyTorch paths): behaviour the float64 comparisons of test_kernels_lce cannot see.

Hand values of the defaults and chunk rules, the official tolerance criterion rejecting bad
implementations, the test-data recipe, a custom ``ignore_index``, the default gradient filtering and
the "no sorting" ablation.  Each test here was written to kill a mutant that the suite let through
(mutation audit, session 12)."""

import os
from types import SimpleNamespace

import torch

if not torch.cuda.is_available():
    # as test_kernels_lce: the Triton kernels module decides interpretation when first imported
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

import xentlab.kernels.lce as lce_module  # noqa: E402
from xentlab.kernels import (  # noqa: E402
    linear_cross_entropy,
    naive_linear_cross_entropy,
    resolve_filter_eps,
    resolve_impl,
    tile_keep_mask,
    vocab_order,
)
from xentlab.kernels.checks import check_against_reference, loss_and_grads, make_inputs  # noqa: E402
from xentlab.kernels.filtering import apply_tile_mask  # noqa: E402
from xentlab.kernels.token_chunks import liger_token_chunk  # noqa: E402
from xentlab.kernels.torch_lce import default_vocab_chunk  # noqa: E402
from xentlab.testing import assert_close  # noqa: E402

IMPLS = ["torch", "torch_token_chunks"]


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ------------------------------------------------------------------ reference and test data


def test_naive_reference_upcasts_half_logits_to_float32():
    # the paper's Table 1 baseline is F.cross_entropy((e @ c.T).float()): a float32 loss from half
    # inputs, equal (to float32 rounding) to the float64 loss of the half-rounded logits
    e, c, t, _ = make_inputs(32, 50, 16)
    eh, ch = e.half(), c.half()
    loss = naive_linear_cross_entropy(eh, ch, t)
    assert loss.dtype == torch.float32
    z = (eh.reshape(-1, 16) @ ch.T).double()
    assert_close(loss, torch.nn.functional.cross_entropy(z, t.reshape(-1)), atol=1e-5, rtol=1e-5)


def test_make_inputs_follows_the_official_recipe():
    # e = randn / sqrt(D) (|e_i|^2 ~ 1), the first min(N, V) / 2 classifier rows copied from e (a
    # peaked softmax: the target logit |e_i|^2 stands out), N / 5 targets set to -100, e viewed as
    # (batch, N / batch, D)
    n, v, d = 64, 100, 16
    e, c, t, b = make_inputs(n, v, d, invalids=True)
    assert e.shape == (4, 16, 16) and t.shape == (4, 16) and b is None
    e2 = e.reshape(-1, d)
    assert torch.equal(c[:32], e2[:32]) and not torch.equal(c[32:64], e2[32:64])
    assert abs(e2.pow(2).sum(1).mean().item() - 1.0) < 0.2
    assert int((t == -100).sum()) == n // 5


def test_loss_and_grads_sum_is_per_counted_token_after_the_shift():
    # Hand derivation: for the "loss" sum over predicting rows of sum_d e_id, reduction="sum" is
    # compared per counted token: obj = loss / #counted, with #counted the non-ignored targets of
    # targets[..., shift:]; d obj / d e_id = 1 / #counted on the rows that predict, 0 on the last
    # `shift` positions of each sequence (which predict nothing)
    e, c, t, _ = make_inputs(40, 10, 4, invalids=True)
    t[:, 0] = 0  # position 0 is cut by shift=1: it counts without the shift, not with it
    counted = int((t[:, 1:] != -100).sum())
    assert counted == int((t != -100).sum()) - 4

    def summed(e, c, t, bias=None, reduction="sum", shift=0):
        return e[..., : e.shape[-2] - shift, :].sum() + 0 * c.sum()

    shown, (de, dc) = loss_and_grads(summed, e, c, t, None, torch.float64, "sum", shift=1)
    assert_close(shown, e[:, :-1].sum() / counted, atol=1e-12, rtol=0)
    expected = torch.full_like(e, 1.0 / counted)
    expected[:, -1] = 0
    assert torch.equal(de, expected) and torch.equal(dc, torch.zeros_like(c))


# ------------------------------------------------------------------ the official criterion


def _naive_with(change):
    """An implementation that is the naive one with ``change(loss, e, c)`` applied."""

    def fn(e, c, t, **kw):
        return change(naive_linear_cross_entropy(e, c, t, **kw), e, c)

    return fn


def test_criterion_rejects_a_loss_off_by_more_than_the_fp32_margin():
    # fp32 margin 1e-5 (official test_cce_loss_forward); a loss off by 1e-4 must fail, an exact one pass
    e, c, t, b = make_inputs(64, 100, 16, bias=True)
    check_against_reference(_naive_with(lambda loss, e, c: loss), e, c, t, b, torch.float32, "mean")
    with pytest.raises(AssertionError, match="loss: worse than plain PyTorch"):
        check_against_reference(
            _naive_with(lambda loss, e, c: loss + 1e-4), e, c, t, b, torch.float32, "mean"
        )


def test_criterion_checks_every_gradient_not_only_the_loss():
    # the same loss value with dC off by 0.01 everywhere (a zero-valued term whose gradient is 0.01)
    e, c, t, b = make_inputs(64, 100, 16, bias=True)

    def bad_dc(loss, e, c):
        return loss + 0.01 * (c.sum() - c.sum().detach())

    with pytest.raises(AssertionError, match="dC: worse than plain PyTorch"):
        check_against_reference(_naive_with(bad_dc), e, c, t, b, torch.float32, "mean")


def test_criterion_allows_only_the_error_of_plain_pytorch_plus_margin():
    # An implementation whose error is 3x that of PyTorch at bf16 (loss = ref + 2 (ref - float64),
    # errors ~1e-3 so float32 arithmetic is exact enough) fails with margin 0: |impl - gt| <=
    # |ref - gt| + margin, elementwise, with no extra factor on PyTorch's own error
    e, c, t, b = make_inputs(64, 100, 16, bias=True)
    gt = naive_linear_cross_entropy(e, c, t, bias=b, reduction="none").float()

    def tripled(loss, e_, c_):
        return loss + 2 * (loss - gt).detach()

    with pytest.raises(AssertionError, match="loss: worse than plain PyTorch"):
        check_against_reference(_naive_with(tripled), e, c, t, b, torch.bfloat16, "none", margin=0.0)


# ------------------------------------------------------------------ filtering helpers


def test_resolve_filter_eps_by_hand():
    # official _handle_eps: "auto" = eps(dtype) / 32; None = no filtering; 0 is a valid threshold
    assert resolve_filter_eps("auto", torch.bfloat16) == 2.0**-12
    assert resolve_filter_eps("auto", torch.float16) == 2.0**-15
    assert resolve_filter_eps("auto", torch.float32) == 2.0**-28
    assert resolve_filter_eps(None, torch.float32) is None
    assert resolve_filter_eps(0, torch.float32) == 0.0 and resolve_filter_eps(1e-3, torch.float16) == 1e-3
    with pytest.raises(TypeError, match="filter_eps"):
        resolve_filter_eps(True, torch.float32)


def test_tile_keep_mask_keeps_a_tile_at_exactly_eps():
    # kept where some |g| >= eps (not > eps), for either sign
    eps = 2.0**-15
    g = torch.zeros(2, 3)
    g[0, 0] = eps
    g[1, 2] = -eps
    g[1, 1] = eps * (1 - 2.0**-10)
    assert tile_keep_mask(g, eps, block_b=1, block_v=1).tolist() == [
        [True, False, False],
        [False, False, True],
    ]


def test_apply_tile_mask_uses_the_row_and_column_blocks_as_given():
    # 4 x 6 ones, tiles of 2 rows x 3 columns: keep only tiles (0, 1) and (1, 0)
    keep = torch.tensor([[False, True], [True, False]])
    g = apply_tile_mask(torch.ones(4, 6), keep, block_b=2, block_v=3)
    expected = torch.zeros(4, 6)
    expected[:2, 3:] = 1
    expected[2:, :3] = 1
    assert torch.equal(g, expected)


def test_vocab_order_is_ascending_mean_logit():
    # official argsort(logit_avg): ascending
    assert vocab_order(torch.tensor([0.3, -1.0, 2.0, 0.0])).tolist() == [1, 3, 0, 2]


# ------------------------------------------------------------------ chunk rules


def test_default_vocab_chunk_by_hand():
    # ~2^20 logits per chunk, a multiple of the 128-wide filter tile, at least one tile, at most
    # V rounded up to a tile
    assert default_vocab_chunk(256, 100_000) == 4096
    assert default_vocab_chunk(256, 1000) == 1024
    assert default_vocab_chunk(3000, 100_000) == 256  # 2^20 / 3000 = 349 -> 256
    assert default_vocab_chunk(100_000, 1000) == 128  # 2^20 / 1e5 = 10 -> the one-tile floor


def test_liger_token_chunk_by_hand():
    # next_pow2(ceil(K / ceil(V / D))): Gemma 2 2B (V 256000, D 2304) at K = 8192 gives 128;
    # V / D = 73.2 -> 74 and 4736 / 74 = 64 exactly -> 64 (with floor(V / D) = 73 it would be 128);
    # at a small D the 2^20-logit floor governs: 2^20 / 500 = 2097 -> 4096 tokens
    assert liger_token_chunk(8192, 256_000, 2304) == 128
    assert liger_token_chunk(4736, 300_000, 4096) == 64
    assert liger_token_chunk(10_000, 500, 16) == 4096
    assert liger_token_chunk(100, 500, 16) == 100  # never more than K


# ------------------------------------------------------------------ options


def test_resolve_impl_auto_picks_triton_only_for_cuda_non_float64(monkeypatch):
    monkeypatch.setattr(lce_module, "triton_available", lambda: True)
    assert resolve_impl("auto", SimpleNamespace(is_cuda=True, dtype=torch.bfloat16)) == "triton"
    assert resolve_impl("auto", SimpleNamespace(is_cuda=True, dtype=torch.float64)) == "torch"
    assert resolve_impl("auto", SimpleNamespace(is_cuda=False, dtype=torch.float32)) == "torch"
    monkeypatch.setattr(lce_module, "triton_available", lambda: False)
    assert resolve_impl("auto", SimpleNamespace(is_cuda=True, dtype=torch.float32)) == "torch"


def test_clear_errors_on_an_empty_or_3d_classifier():
    e, c, t, _ = make_inputs(16, 40, 8)
    with pytest.raises(ValueError, match="at least one row"):
        linear_cross_entropy(e, c[:0], torch.full_like(t, -100))
    with pytest.raises(ValueError, match=r"c must have shape \(V, D\)"):
        linear_cross_entropy(e, c[:, :, None], t)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_custom_ignore_index(impl, reduction):
    # ignore_index=7 (a valid class id): those targets are left out exactly as F.cross_entropy does
    e, c, t, _ = make_inputs(64, 40, 8, invalids=False)
    t[:, ::3] = 7
    e = e.clone().requires_grad_()  # (no input needing grad is test_token_chunks_reduces_without_grad)
    out = linear_cross_entropy(e, c, t, ignore_index=7, reduction=reduction, shift=1, impl=impl)
    ref = naive_linear_cross_entropy(e, c, t, ignore_index=7, reduction=reduction, shift=1)
    assert_close(out, ref, atol=1e-12, rtol=1e-12)
    if reduction == "none":
        assert (out[t[:, 1:] == 7] == 0).all()


def _zipf_dc(**kw):
    e, c, t, b = make_inputs(256, 1024, 64, zipf=3.0)
    cc = c.half().requires_grad_()
    linear_cross_entropy(e.half(), cc, t, bias=b.half(), impl="torch", **kw).backward()
    return cc.grad


def test_default_filter_eps_is_auto():
    # Zipf-like prior (as test_filtered_backward_skips_tiles_only_when_sorted_and_stays_accurate):
    # with fp16's eps/32 whole tiles are skipped, so the default (filter_eps="auto") backward is that
    # of "auto" bit for bit, and not the exact one
    default, auto, exact = _zipf_dc(), _zipf_dc(filter_eps="auto"), _zipf_dc(filter_eps=None)
    assert torch.equal(default, auto) and not torch.equal(default, exact)


def test_sort_vocab_false_is_the_no_sorting_ablation():
    # in the original class order no tile of S - onehot falls below eps here, so without sorting the
    # filtered backward skips nothing (it is the exact one); sorted, it zeroes whole rows of dC
    e, c, t, b = make_inputs(256, 1024, 64, zipf=3.0)
    grads = {}
    for name, eps, sort in (("exact", None, True), ("plain", 2.0**-15, False), ("sorted", 2.0**-15, True)):
        cc = c.float().requires_grad_()
        linear_cross_entropy(
            e.float(), cc, t, bias=b.float(), impl="torch", filter_eps=eps, sort_vocab=sort
        ).backward()
        grads[name] = cc.grad
    assert torch.equal(grads["plain"], grads["exact"])
    assert (grads["sorted"] == 0).all(1).float().mean() > 0.5


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_token_chunks_reduces_without_grad(reduction):
    # an evaluation call (no tensor requires grad) must give the same scalar as the naive loss
    e, c, t, _ = make_inputs(16, 40, 8)
    out = linear_cross_entropy(e, c, t, reduction=reduction, impl="torch_token_chunks")
    assert out.shape == ()
    assert_close(out, naive_linear_cross_entropy(e, c, t, reduction=reduction), atol=1e-12, rtol=1e-12)


def test_filtered_backward_skips_exactly_the_tiles_of_the_mean_logit_order():
    # Which rows of dC are zeroed is fixed by the paper's rule: walk the classes in ascending order of
    # their mean logit over the batch (float32 sums, as the implementation), cut that order into
    # 128 x 128 tiles of S - onehot, drop the tiles whose |entries| are all below eps. A class's dC
    # row is zero exactly when its tile is dropped for both 128-token blocks.
    e, c, t, b = make_inputs(256, 1024, 64, zipf=3.0)
    e32, c32, b32 = e.float().reshape(-1, 64), c.float(), b.float()
    eps = 2.0**-15
    cc = c32.clone().requires_grad_()
    linear_cross_entropy(e32, cc, t.reshape(-1), bias=b32, impl="torch", filter_eps=eps).backward()
    z = e.reshape(-1, 64) @ c.T + b
    g = torch.softmax(z, 1) - torch.nn.functional.one_hot(t.reshape(-1), 1024)
    order = torch.argsort((e32 @ c32.T + b32).sum(0))
    keep = tile_keep_mask(g[:, order], eps)  # (2, 8)
    dropped = torch.zeros(1024, dtype=torch.bool)
    dropped[order] = (~keep).all(0).repeat_interleave(128)
    assert 0.25 < dropped.float().mean() < 1
    assert torch.equal((cc.grad == 0).all(1), dropped)


@pytest.mark.parametrize("impl", IMPLS)
def test_half_inputs_accumulate_in_float32_on_cpu(impl):
    # Sec. 4.2's fp32 accumulator: the product of two fp16 numbers is exact in fp32, so on the CPU the
    # fp16 path must give the float64 loss of the fp16-rounded inputs to fp32 precision (logits
    # rounded to fp16, as a half matmul would leave them, are off by ~1e-3)
    e, c, t, b = make_inputs(64, 100, 32, bias=True)
    eh, ch, bh = e.half().requires_grad_(), c.half(), b.half()
    out = linear_cross_entropy(eh, ch, t, bias=bh, impl=impl, reduction="none")
    ref = naive_linear_cross_entropy(eh.double(), ch.double(), t, bias=bh.double(), reduction="none")
    assert_close(out, ref, atol=2e-5, rtol=2e-5)
