"""linear_cross_entropy(impl="triton"): the Triton kernels against float64 with the official
criterion.  Without CUDA they run under the Triton interpreter (TRITON_INTERPRET=1, set here
before the kernels module is first imported) at small shapes; bf16 grids and speed are GPU tests."""

import os
import time

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

triton = pytest.importorskip("triton")

from xentlab.kernels import (  # noqa: E402
    linear_cross_entropy,
    naive_linear_cross_entropy,
    triton_lce,  # noqa: E402
)
from xentlab.kernels.checks import check_against_reference, lce, make_inputs  # noqa: E402
from xentlab.testing import assert_close  # noqa: E402

ON_GPU = torch.cuda.is_available()
DEVICE = "cuda" if ON_GPU else "cpu"
gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not ON_GPU, reason="needs CUDA")

# Deliberate: the interpreter flag is read once, when triton_lce is first imported. The root
# conftest.py sets TRITON_INTERPRET=1 before anything imports it, so in the repo's test run this
# never fires (CI runs the interpreter tests); it only guards a pytest session started elsewhere
# that imported the kernels first, where compiling for a missing GPU would fail with noise.
if not ON_GPU and not triton_lce.INTERPRET:
    pytest.skip(
        "xentlab.kernels.triton_lce was imported before TRITON_INTERPRET=1 was set; "
        "run this file on its own (or set TRITON_INTERPRET=1 in the environment)",
        allow_module_level=True,
    )

# Several programs along every axis, two vocabulary splits, odd D: exercises masks, the grouped
# launch order, the split LSE merge and the per-(block, D-slice) locks.
SMALL = triton_lce.TritonConfig(
    fwd_block_b=32,
    fwd_block_v=64,
    fwd_block_d=16,
    bwd_block_b=32,
    bwd_block_v=64,
    bwd_block_d=16,
    bwd_grad_block_d=32,
    group_b=2,
    dot_block_b=32,
    dot_block_d=16,
    splits=2,
)


def _to(dev, *xs):
    return [None if x is None else x.to(dev) for x in xs]


@pytest.mark.parametrize(
    "dtype, reduction, softcap, has_bias, shift, invalids",
    [
        (torch.float32, "mean", None, False, 0, False),
        (torch.float32, "sum", 20.0, True, 1, True),
        (torch.float32, "none", 20.0, True, 2, True),
        (torch.float16, "mean", 20.0, True, 1, True),
        (torch.float16, "none", None, False, 0, True),
    ],
)
@pytest.mark.parametrize("filter_eps", ["auto", None])
def test_kernels_match_float64(dtype, reduction, softcap, has_bias, shift, invalids, filter_eps):
    # N, V, D = 124, 300, 50: odd V and D (masked columns, D not a multiple of the block)
    e, c, t, b = _to(DEVICE, *make_inputs(124, 300, 50, bias=has_bias, invalids=invalids))
    fn = lce("triton", filter_eps=filter_eps)
    check_against_reference(fn, e, c, t, b, dtype, reduction, softcap=softcap, shift=shift)


def test_small_blocks_many_programs():
    e, c, t, b = _to(DEVICE, *make_inputs(100, 200, 40, bias=True, invalids=True))
    fn = lce("triton", triton_config=SMALL)
    check_against_reference(fn, e, c, t, b, torch.float32, "none", softcap=20.0, shift=1)


@pytest.mark.parametrize("sort_vocab", [True, False])
def test_filtering_on_peaked_softmax(sort_vocab):
    # Zipf-like prior (see make_inputs): sorted, most 128 x 128 tiles are below fp16 eps/32 and
    # are skipped; the gradient still meets the criterion.  fp32 with eps = 2^-15 makes the skip
    # visible: classes whose every tile was skipped get dC == 0 exactly, unlike the exact backward.
    e, c, t, b = _to(DEVICE, *make_inputs(128, 1024, 32, zipf=3.0))
    check_against_reference(lce("triton", sort_vocab=sort_vocab), e, c, t, b, torch.float16, "mean")
    dcs = {}
    for eps in (None, 2.0**-15):
        cc = c.float().requires_grad_()
        linear_cross_entropy(
            e.float(), cc, t, bias=b.float(), impl="triton", filter_eps=eps, sort_vocab=sort_vocab
        ).backward()
        dcs[eps] = cc.grad
    zero = (dcs[2.0**-15] == 0).all(1)
    if sort_vocab:
        assert zero.float().mean() > 0.5 and not (dcs[None][zero] == 0).all()
    else:
        assert not zero.any()  # random class order: every tile holds a likely class, none is skipped
    assert_close(dcs[2.0**-15], dcs[None], atol=1e-6, rtol=0, name="dC filtered vs exact")


def test_matches_torch_impl_with_same_filter_tiles():
    # same tile (128 x 128), same threshold, exact same skip decisions up to fp32 ties
    e, c, t, b = _to(DEVICE, *make_inputs(128, 512, 32, zipf=3.0, bias=True))
    out = {}
    for impl in ("triton", "torch"):
        cc = c.float().requires_grad_()
        loss = linear_cross_entropy(e.float(), cc, t, bias=b.float(), impl=impl, filter_eps=2.0**-15)
        loss.backward()
        out[impl] = (loss.detach(), cc.grad)
    assert_close(out["triton"][0], out["torch"][0], atol=1e-5, rtol=1e-6)
    assert_close(out["triton"][1], out["torch"][1], atol=1e-6, rtol=1e-4)


def test_bf16_in_interpreter_with_fp32_dot():
    # the interpreter's bf16 tl.dot is wrong; the kernels cast to fp32 there (DOT_FP32)
    e, c, t, b = _to(DEVICE, *make_inputs(64, 200, 32, bias=True))
    check_against_reference(lce("triton"), e, c, t, b, torch.bfloat16, "mean", softcap=20.0, shift=1)


@pytest.mark.parametrize("which", ["e", "c", "bias"])
def test_partial_gradients(which):
    e, c, t, b = _to(DEVICE, *make_inputs(64, 200, 32, bias=True))
    x = {"e": e.float(), "c": c.float(), "bias": b.float()}
    x[which].requires_grad_()
    linear_cross_entropy(x["e"], x["c"], t, bias=x["bias"], impl="triton").backward()
    y = {k: v.detach().clone().requires_grad_(k == which) for k, v in x.items()}
    naive_linear_cross_entropy(y["e"], y["c"], t, bias=y["bias"]).backward()
    assert_close(x[which].grad, y[which].grad, atol=1e-6, rtol=1e-4)
    assert all(v.grad is None for k, v in x.items() if k != which)


def test_all_targets_ignored_and_no_grad_forward():
    e, c, t, _ = _to(DEVICE, *make_inputs(32, 100, 16))
    ee = e.float().requires_grad_()
    s = linear_cross_entropy(ee, c.float(), torch.full_like(t, -100), impl="triton", reduction="sum")
    s.backward()
    assert s.item() == 0.0 and (ee.grad == 0).all()
    with torch.no_grad():
        loss = linear_cross_entropy(e.float(), c.float(), t, impl="triton")
    assert_close(loss, naive_linear_cross_entropy(e, c, t), atol=1e-5, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# GPU only: the official grid in bf16/fp16 and a speed check
# ---------------------------------------------------------------------------------------------


# The official grid (apple/ml-cross-entropy tests/test_cce_loss_backward.py: softcap, bias, shift,
# invalids, reduction, three shapes; at HEAD it runs bf16 only), for both dtypes and for the filtered
# and the exact backward. The lowest decorator varies slowest: bf16 (the paper's precision) and the
# default filtered backward come first, so a run stopped at its time limit has judged those.
@gpu
@needs_cuda
@pytest.mark.parametrize("softcap", [None, 20.0])
@pytest.mark.parametrize("has_bias", [False, True])
@pytest.mark.parametrize("shift", [0, 1])
@pytest.mark.parametrize("invalids", [False, True])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("shape", [(256, 512, 128), (252, 507, 128), (252, 507, 123)])
@pytest.mark.parametrize("filter_eps", ["auto", None])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_gpu_official_grid(dtype, softcap, has_bias, shift, invalids, reduction, shape, filter_eps):
    e, c, t, b = _to("cuda", *make_inputs(*shape, bias=has_bias, invalids=invalids))
    check_against_reference(
        lce("triton", filter_eps=filter_eps), e, c, t, b, dtype, reduction, softcap=softcap, shift=shift
    )


@gpu
@pytest.mark.bench
@needs_cuda
def test_gpu_fw_bw_within_1_25x_of_torch_compile():
    # Gemma-2-2B-like head at a quarter of the tokens. The paper's claim is CCE fw+bw <= torch.compile;
    # reproduce.py judges that (<= 1) at full scale with CUDA events. This test is a regression guard
    # with a 1.25x margin for 5-iteration wall-clock noise, so it does not itself check the claim.
    n, d, v = 2048, 2304, 256_000
    e = (torch.randn(n, d, device="cuda") / d**0.5).bfloat16().requires_grad_()
    c = torch.randn(v, d, device="cuda").bfloat16().requires_grad_()
    t = torch.randint(0, v, (n,), device="cuda")
    compiled = torch.compile(lambda e, c, t: torch.nn.functional.cross_entropy((e @ c.T).float(), t))

    def timed(fn):
        for _ in range(2):
            fn(e, c, t).backward()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(5):
            fn(e, c, t).backward()
        torch.cuda.synchronize()
        return (time.perf_counter() - t0) / 5

    ours = timed(lambda e, c, t: linear_cross_entropy(e, c, t, impl="triton"))
    ref = timed(compiled)
    assert ours <= 1.25 * ref, f"CCE fw+bw {ours * 1e3:.1f} ms vs torch.compile {ref * 1e3:.1f} ms"
