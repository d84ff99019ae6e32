"""Units of the cce package: the memory probe, the in-process benchmark, the tiny LM, the
filtering study."""

from pathlib import Path

import torch
from cce.bench import MemProbe, measure
from cce.experiments import _train, filtering_study, train_skip_fraction
from cce.tinylm import TinyGPT, TinyGPTConfig, batches, word_corpus


class _Ctx:
    def log(self, **kw):
        pass

    def progress(self, it, desc=""):
        return it


def test_mem_probe_sees_an_allocation():
    probe = MemProbe(torch.device("cpu"))
    probe.start()
    x = torch.ones(16 * 2**20)  # 64 MiB, touched
    assert probe.peak_mb() >= 60
    del x


def test_measure_in_process_reports_memory_time_and_fp64_errors():
    rows = measure("cce_torch", 64, 16, [512], torch.float32, torch.device("cpu"), 0, 1, 16)
    (r,) = rows
    assert r["v"] == 512 and r["lower_bound_mb"] == (64 + 512) * 16 * 4 / 2**20
    assert r["fw_ms"] > 0 and r["bw_ms"] > 0
    assert r["de_err"] < 1e-6 and r["dc_err"] < 1e-6 and r["loss_err"] < 1e-5


def test_word_corpus_and_model_shapes():
    train, val, itos = word_corpus(256)
    assert len(itos) == 256 and itos[0] == "<unk>" and int(train.max()) < 256 and len(val) > 1000
    model = TinyGPT(TinyGPTConfig(vocab=256, hidden=16, layers=1, heads=2, context=8))
    (ids,) = list(batches(train, 3, 8, 1, seed=0))
    assert model(ids).shape == (3, 8, 16)


# a tiny LM config for the training tests (4 steps, well under a second)
TINY_LM = {
    "vocab": 128,
    "hidden": 16,
    "layers": 1,
    "heads": 2,
    "context": 16,
    "batch": 4,
    "steps": 4,
    "lr": 1e-2,
}


def test_training_is_deterministic_and_cce_matches_naive():
    cfg = TINY_LM
    train, _, _ = word_corpus(128)
    _, a, _ = _train(cfg, train, 0, "cce", _Ctx())
    _, b, _ = _train(cfg, train, 0, "cce", _Ctx())
    _, n, _ = _train(cfg, train, 0, "naive", _Ctx())
    assert a == b
    assert max(abs(x - y) for x, y in zip(a, n)) < 1e-5


def test_filtering_study_limits():
    # eps = 0 keeps every tile (no error); eps above every |S - onehot| skips all of them, and the
    # filtered gradient is then exactly zero: relative error 1
    g = torch.Generator().manual_seed(0)
    e, c = torch.randn(200, 8, generator=g), torch.randn(300, 8, generator=g)
    t = torch.randint(0, 300, (200,), generator=g)
    out = filtering_study(e, c, t, {"zero": 0.0, "huge": 2.0})
    for tag in ("sorted", "unsorted"):
        assert out[f"skip_{tag}_zero"] == 0.0 and out[f"grad_rel_err_{tag}_zero"] < 1e-6
        assert out[f"skip_{tag}_huge"] == 1.0 and abs(out[f"grad_rel_err_{tag}_huge"] - 1.0) < 1e-6
    assert 0 < out["bf16_rounding_rel_err"] < out["bf16_torch_rel_err"] < 0.05


def test_float64_run_starts_from_the_same_weights_and_stays_close():
    # the yardstick of convergence-vs-fp64: same init cast exactly to float64, same batches, so the
    # first loss agrees to fp32 rounding of one forward (~1e-6 at loss ~5); after a few steps the
    # fp32 run may drift, but only at rounding scale
    cfg = TINY_LM
    train, _, _ = word_corpus(128)
    m64, c64, _ = _train(cfg, train, 0, "naive_fp64", _Ctx())
    _, c32, _ = _train(cfg, train, 0, "naive", _Ctx())
    assert m64.head.weight.dtype == torch.float64
    assert abs(c64[0] - c32[0]) < 5e-6
    assert max(abs(a - b) for a, b in zip(c64, c32)) < 1e-4


def test_filtering_study_random_order_maps_the_vocabulary_back():
    # the random-order arm walks the vocabulary in a given permutation: with the identity it is the
    # unsorted arm exactly; with any permutation and eps = 0 (nothing skipped) its gradient must be
    # the exact one, which holds only if dC is put back in the vocabulary's order
    g = torch.Generator().manual_seed(1)
    e, c = torch.randn(200, 8, generator=g), torch.randn(300, 8, generator=g)
    t = torch.randint(0, 300, (200,), generator=g)
    eps = {"zero": 0.0, "mid": 1e-3, "huge": 2.0}
    ident = filtering_study(e, c, t, eps, random_order=torch.arange(300))
    for name in eps:
        assert ident[f"skip_random_{name}"] == ident[f"skip_unsorted_{name}"]
        assert ident[f"grad_rel_err_random_{name}"] == ident[f"grad_rel_err_unsorted_{name}"]
    perm = filtering_study(e, c, t, eps, random_order=torch.randperm(300, generator=g))
    assert perm["skip_random_zero"] == 0.0 and perm["grad_rel_err_random_zero"] < 1e-6
    assert perm["skip_random_huge"] == 1.0 and abs(perm["grad_rel_err_random_huge"] - 1.0) < 1e-6


def test_train_skip_fraction_counts_the_sorted_tiles():
    # V = 256 = two 128-wide tile columns, 127 token rows (one tile row).  The even vocabulary
    # entries get logit +10 for every token, the odd ones -10: the softmax of an odd entry is
    # ~e^-20 / 128 < 2^-12, of an even one ~1/128.  Walked in the sorted order (ascending mean
    # logit) the odd entries fill the first tile column, which is skipped: fraction 1/2.  In the
    # vocabulary's own order every tile holds even entries, so nothing would be skipped.
    d, v, t = 4, 256, 128
    w = torch.zeros(v, d)
    w[0::2, 0], w[1::2, 0] = 10.0, -10.0
    h = torch.zeros(1, t, d)
    h[..., 0] = 1.0
    ids = torch.randint(0, v // 2, (1, t), generator=torch.Generator().manual_seed(0)) * 2  # even targets
    assert train_skip_fraction(h, w, ids, 2.0**-12) == 0.5
    assert train_skip_fraction(h, w, ids, 0.0) == 0.0
    assert train_skip_fraction(h, w, ids, 2.0) == 1.0


def test_bf16_training_runs_in_bf16_and_records_skips():
    # bf16 weights (the official training script's torch_dtype), deterministic; the filtered CCE
    # run records a skip fraction every cfg["skip_every"] steps; naive and CCE start from the same
    # bf16 weights, so their first losses agree to bf16 logit rounding (naive rounds the logits to
    # bf16, ~2^-9 relative on logits of size ~0.1: far below 1e-2 on the loss)
    cfg = {**TINY_LM, "skip_every": 2}
    train, _, _ = word_corpus(128)
    skips: list = []
    m, a, _ = _train(cfg, train, 0, "cce_bf16", _Ctx(), skips=skips)
    _, b, _ = _train(cfg, train, 0, "cce_bf16", _Ctx())
    _, n, _ = _train(cfg, train, 0, "naive_bf16", _Ctx(), skips=skips)
    _, x, _ = _train(cfg, train, 0, "cce_exact_bf16", _Ctx(), skips=skips)
    assert m.head.weight.dtype == torch.bfloat16
    assert a == b
    assert [s for s, _ in skips] == [0, 2]  # only the filtered run records
    assert all(0.0 <= f <= 1.0 for _, f in skips)
    assert abs(a[0] - n[0]) < 1e-2 and abs(a[0] - x[0]) < 1e-6


def test_a_method_that_outlives_its_timeout_is_recorded_not_raised():
    # On the lent GPU one hung method (a spin lock that never opens, a compile that never ends)
    # must cost its own row only: run_fresh kills it and reports an error row, which memory_time
    # records as unavailable, instead of raising TimeoutExpired and losing the whole unit. 0.5 s is
    # less than the child's `import torch`, so this child always times out.
    from cce.bench import run_fresh

    (row,) = run_fresh("naive", 8, 4, [16], timeout=0.5)
    assert row["method"] == "naive" and "timeout" in row["error"]


def test_memory_time_passes_the_configured_method_timeout(monkeypatch):
    # the full scale bounds every method by cfg["method_timeout_s"] (the lent GPU's 10-minute command
    # holds all ten); the cpu and smoke configs keep run_fresh's default
    import cce.experiments as ex

    from xentlab.testing import load_reproduce

    seen = []

    def fake_run_fresh(method, n, d, vs, dtype, device, seed, reps, sub, **kw):
        seen.append(kw.get("timeout"))
        return [{"method": method, "error": "not run"}]

    monkeypatch.setattr(ex, "run_fresh", fake_run_fresh)
    monkeypatch.setattr(ex, "_fp64_loss", lambda *a, **k: 0.0)
    cfg = {"dtype": "float32", "device": "cpu", "ours": "cce_torch", "official": "official_cpu", "n": 4,
           "d": 2, "vs": [8], "reps": 1, "sub": 2, "methods": ["naive"], "method_timeout_s": 7}  # fmt: skip
    out = ex.memory_time(cfg, 0, _Ctx())
    assert seen == [7] and out["unavailable"] == {"naive": "not run"}
    repro = load_reproduce(Path(__file__).resolve().parents[1] / "reproduce.py")
    (exp,) = [e for e in repro.EXPERIMENTS if e.name == "memory_time"]
    assert 0 < exp.configs["full"]["method_timeout_s"] <= 150
    assert "method_timeout_s" not in exp.configs["cpu"]
