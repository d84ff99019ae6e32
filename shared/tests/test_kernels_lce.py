"""linear_cross_entropy, PyTorch paths (impl="torch", "torch_token_chunks", "auto" on CPU):
values and gradients against float64, the official tolerance criterion, gradcheck, errors."""

import os

import torch

if not torch.cuda.is_available():
    # the Triton kernels module decides interpretation when first imported (see test_kernels_triton)
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

from xentlab.kernels import linear_cross_entropy, naive_linear_cross_entropy, resolve_impl, tile_keep_mask  # noqa: E402
from xentlab.kernels.checks import check_against_reference, lce, loss_and_grads, make_inputs  # noqa: E402
from xentlab.testing import assert_close, check_gradients  # noqa: E402

TORCH_IMPLS = {
    # small chunks so that V=507 spans several chunks (the defaults would use one)
    "torch": {"chunk_size": 128},
    "torch_token_chunks": {"chunk_size": 64},
}


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("impl", list(TORCH_IMPLS))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("softcap", [None, 20.0])
@pytest.mark.parametrize("has_bias", [False, True])
@pytest.mark.parametrize("shift", [0, 1])
@pytest.mark.parametrize("invalids", [False, True])
@pytest.mark.parametrize("shape", [(256, 512, 128), (252, 507, 123)])
def test_fp32_matches_float64_no_worse_than_torch(impl, reduction, softcap, has_bias, shift, invalids, shape):
    e, c, t, b = make_inputs(*shape, bias=has_bias, invalids=invalids)
    fn = lce(impl, **TORCH_IMPLS[impl])
    check_against_reference(fn, e, c, t, b, torch.float32, reduction, softcap=softcap, shift=shift)


@pytest.mark.parametrize("impl", list(TORCH_IMPLS))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_half_precision_no_worse_than_torch(impl, dtype, reduction):
    e, c, t, b = make_inputs(252, 507, 123, bias=True, invalids=True)
    fn = lce(impl, **TORCH_IMPLS[impl])
    check_against_reference(fn, e, c, t, b, dtype, reduction, softcap=20.0, shift=1)


@pytest.mark.parametrize("impl", list(TORCH_IMPLS))
def test_default_chunks_and_exact_backward(impl):
    e, c, t, b = make_inputs(252, 507, 123, bias=True, invalids=True)
    check_against_reference(lce(impl, filter_eps=None), e, c, t, b, torch.float32, "mean", shift=1)


@pytest.mark.parametrize("impl", list(TORCH_IMPLS))
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_gradcheck_float64(impl, reduction):
    e, c, t, b = make_inputs(12, 37, 5, bias=True, invalids=True, batch=2)
    chunk = 8 if impl == "torch" else 4

    def fn(e_, c_, b_):
        return linear_cross_entropy(
            e_,
            c_,
            t,
            bias=b_,
            softcap=3.0,
            shift=1,
            reduction=reduction,
            impl=impl,
            chunk_size=chunk,
            filter_eps=None,
        )

    assert check_gradients(fn, e, c, b)


def test_filtered_backward_skips_tiles_only_when_sorted_and_stays_accurate():
    # A Zipf-like prior (bias -3 log rank, targets drawn from it): most classes are unlikely for
    # every token.  Sorted by mean logit, whole 128 x 128 tiles of S - onehot fall below fp16's
    # eps/32 = 2^-15; in the original (random) class order no tile does.
    e, c, t, b = make_inputs(256, 1024, 64, zipf=3.0)
    z = e.reshape(-1, 64) @ c.T + b
    g = torch.softmax(z, 1) - torch.nn.functional.one_hot(t.reshape(-1), 1024)
    eps = torch.finfo(torch.float16).eps / 32
    skipped_sorted = 1 - tile_keep_mask(g[:, torch.argsort(z.mean(0))], eps).float().mean().item()
    skipped_plain = 1 - tile_keep_mask(g, eps).float().mean().item()
    assert skipped_sorted >= 0.5 and skipped_plain == 0.0

    # the filtered backward (fp16, auto eps) is no worse than plain fp16 PyTorch + margin ...
    check_against_reference(lce("torch", chunk_size=256), e, c, t, b, torch.float16, "mean")
    # ... and really drops tiles: in fp32 with eps = 2^-15 the skipped classes get dC = 0 exactly
    grads = {}
    for eps_ in (None, 2.0**-15):
        cc = c.float().requires_grad_()
        linear_cross_entropy(e.float(), cc, t, bias=b.float(), impl="torch", filter_eps=eps_).backward()
        grads[eps_] = cc.grad
    zero_rows = (grads[2.0**-15] == 0).all(1)
    assert zero_rows.float().mean() > 0.5 and not (grads[None][zero_rows] == 0).all()
    assert_close(grads[2.0**-15], grads[None], atol=1e-6, rtol=0, name="dC filtered vs exact")


def test_tile_keep_mask_by_hand():
    # 3 x 5 matrix, tiles of 2 x 2: tile (0, 1) holds the only entry >= eps; padding never keeps
    g = torch.zeros(3, 5)
    g[1, 3] = -0.5
    g[2, 4] = 1e-9
    keep = tile_keep_mask(g, 1e-6, block_b=2, block_v=2)
    assert keep.tolist() == [[False, True, False], [False, False, False]]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_check_helper_keeps_every_tensor_on_the_inputs_device(reduction):
    # The GPU tier runs check_against_reference on CUDA inputs. Its per-token weights for
    # reduction="none" were drawn on the CPU, so every "none" case would have failed there with a
    # device mismatch that no CPU run can show. The "meta" device stands in for CUDA: any CPU tensor
    # mixed into the computation raises, as it would on the GPU.
    e, c, t, b = (x.to("meta") for x in make_inputs(8, 10, 4, bias=True, invalids=True))
    loss, grads = loss_and_grads(naive_linear_cross_entropy, e, c, t, b, torch.float32, reduction, shift=1)
    assert loss.device.type == "meta" and all(g.device.type == "meta" for g in grads)


def test_check_helper_none_weights_by_hand():
    # The per-token weights of reduction="none" come from a CPU generator seeded 1 wherever the
    # loss lives, so the CPU and the GPU runs of the criterion weight the same tokens alike. Hand
    # derivation: for the per-token "loss" l_i = sum_d e_id, the objective sum_i w_i l_i / #counted
    # has d/de_id = w_i / #counted, with 8 counted tokens here.
    e, c, t, _ = make_inputs(8, 10, 4)

    def linear(e, c, t, bias=None, reduction="none", shift=0):
        return e.sum(-1) + 0 * c.sum()  # c takes part, so that it gets a (zero) gradient

    _, (de, _) = loss_and_grads(linear, e, c, t, None, torch.float64, "none")
    w = torch.rand((4, 2), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert de.shape == (4, 2, 4)
    assert torch.equal(de, (w / 8)[..., None].expand(4, 2, 4))


def test_reduction_none_shape_and_ignored_positions_are_zero():
    e, c, t, _ = make_inputs(64, 100, 16, invalids=True)
    out = linear_cross_entropy(e.float(), c.float(), t, reduction="none", shift=2, impl="torch")
    assert out.shape == (4, 14) and out.dtype == torch.float32
    assert (out[t[:, 2:] == -100] == 0).all()
    assert_close(out, naive_linear_cross_entropy(e, c, t, reduction="none", shift=2), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("impl", list(TORCH_IMPLS))
def test_all_targets_ignored(impl):
    e, c, t, _ = make_inputs(16, 40, 8)
    t = torch.full_like(t, -100)
    ee = e.float().requires_grad_()
    assert torch.isnan(linear_cross_entropy(ee, c.float(), t, impl=impl))  # as F.cross_entropy: 0/0
    s = linear_cross_entropy(ee, c.float(), t, impl=impl, reduction="sum")
    assert s.item() == 0.0
    s.backward()
    assert (ee.grad == 0).all()


def test_half_inputs_give_float32_loss_and_input_dtype_grads():
    e, c, t, _ = make_inputs(32, 50, 16)
    ee, cc = e.half().requires_grad_(), c.half().requires_grad_()
    loss = linear_cross_entropy(ee, cc, t, impl="torch")
    assert loss.dtype == torch.float32
    loss.backward()
    assert ee.grad.dtype == torch.float16 and cc.grad.dtype == torch.float16


def test_only_classifier_grad():
    e, c, t, _ = make_inputs(32, 50, 16)
    cc = c.float().requires_grad_()
    linear_cross_entropy(e.float(), cc, t, impl="torch", chunk_size=16).backward()
    cr = c.float().requires_grad_()
    naive_linear_cross_entropy(e.float(), cr, t).backward()
    assert_close(cc.grad, cr.grad, atol=1e-6, rtol=1e-5)


def test_deterministic():
    e, c, t, b = make_inputs(64, 300, 32, bias=True, invalids=True)
    outs = []
    for _ in range(2):
        ee = e.float().requires_grad_()
        loss = linear_cross_entropy(ee, c.float(), t, bias=b.float(), shift=1, impl="torch", chunk_size=128)
        loss.backward()
        outs.append((loss.detach(), ee.grad))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])


def test_shift_true_is_shift_one_and_auto_is_torch_on_cpu():
    e, c, t, _ = make_inputs(32, 50, 16)
    a = linear_cross_entropy(e.float(), c.float(), t, shift=True)
    b = linear_cross_entropy(e.float(), c.float(), t, shift=1, impl="torch")
    assert torch.equal(a, b)
    assert resolve_impl("auto", e) == "torch"


def _inputs():
    e, c, t, b = make_inputs(16, 40, 8, bias=True)
    return e.float(), c.float(), t, b.float()


@pytest.mark.parametrize(
    "mutate, error, match",
    [
        (lambda e, c, t, b: (e, c.double(), t, b), TypeError, "dtype of e"),
        (lambda e, c, t, b: (e, c, t, b.half()), TypeError, "bias must have the dtype"),
        (lambda e, c, t, b: (e, c, t.float(), b), TypeError, "integer"),
        (lambda e, c, t, b: (e.int(), c, t, b), TypeError, "floating"),
        (lambda e, c, t, b: (e, c[:, :5], t, b), ValueError, "disagree on D"),
        (lambda e, c, t, b: (e, c, t[:, :3], b), ValueError, "targets must have shape"),
        (lambda e, c, t, b: (e, c, t, b[:7]), ValueError, r"bias must have shape \(V,\)"),
        (lambda e, c, t, b: (e[0, 0], c, t[0, 0], b), ValueError, "at least 2 dims"),
        (lambda e, c, t, b: (e, c, t.clone().fill_(40), b), ValueError, r"in \[0, 40\)"),
        (lambda e, c, t, b: (e, c, t.clone().fill_(-3), b), ValueError, "found -3"),
        (lambda e, c, t, b: (e, c.to("meta"), t, b), ValueError, "one device"),
    ],
)
def test_clear_errors_on_bad_inputs(mutate, error, match):
    e, c, t, b = mutate(*_inputs())
    with pytest.raises(error, match=match):
        linear_cross_entropy(e, c, t, bias=b, impl="torch")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"reduction": "avg"}, ValueError, "reduction"),
        ({"impl": "cuda"}, ValueError, "impl"),
        ({"shift": 4}, ValueError, "shift"),
        ({"shift": -1}, ValueError, "shift"),
        ({"softcap": 0.0}, ValueError, "softcap"),
        ({"filter_eps": "tiny"}, ValueError, "filter_eps"),
        ({"filter_eps": -1.0}, ValueError, "filter_eps"),
        ({"chunk_size": 0}, ValueError, "chunk_size"),
    ],
)
def test_clear_errors_on_bad_options(kwargs, error, match):
    e, c, t, b = _inputs()
    with pytest.raises(error, match=match):
        linear_cross_entropy(e, c, t, **kwargs)


def test_triton_refuses_float64_and_cpu_without_interpreter(monkeypatch):
    pytest.importorskip("triton")
    from xentlab.kernels import triton_lce

    e, c, t, _ = _inputs()
    with pytest.raises(TypeError, match="float16, bfloat16 and float32"):
        linear_cross_entropy(e.double(), c.double(), t, impl="triton")
    monkeypatch.setattr(triton_lce, "INTERPRET", False)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        linear_cross_entropy(e, c, t, impl="triton")
