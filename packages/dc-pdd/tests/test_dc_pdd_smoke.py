"""reproduce.py --scale smoke runs end to end, offline, with finite metrics and its figures; the
same seed gives the same numbers again."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from xentlab.testing import run_smoke
from xentlab.testing.reproduce_module import load_reproduce

REPRODUCE = Path(__file__).parents[1] / "reproduce.py"


def test_smoke_and_determinism(tmp_path):
    result = run_smoke(REPRODUCE, tmp_path)
    metrics = result["metrics"]
    for m in ("ppl", "zlib", "min_k", "min_k_pp", "ref_unigram", "dc_pdd"):
        assert 0.0 <= metrics[f"mia/auc_{m}"]["mean"] <= 1.0
    assert {c["id"] for c in result["claims"]} == {"dc-pdd-beats-min-k", "dc-pdd-beats-ppl"}
    for name in ("auc_per_method.png", "roc_seed.png", "auc_by_commonness.png"):
        assert (tmp_path / name).exists()

    # a second run of seed 0 in this process: identical metrics
    mod = load_reproduce(REPRODUCE)
    ctx = SimpleNamespace(
        device=torch.device("cpu"),
        log=lambda **k: None,
        progress=lambda it, **k: it,
        unit_dir=tmp_path,
        scale="smoke",
    )
    torch.manual_seed(123)  # the unit must not depend on the global RNG state
    again = mod.mia(mod.SMOKE, 0, ctx)
    for m in ("ppl", "min_k", "min_k_pp", "dc_pdd"):
        assert again[f"auc_{m}"] == pytest.approx(metrics[f"mia/auc_{m}"]["mean"], abs=1e-12)
