"""--scale full end to end on a tiny local model, WikiMIA-style jsonl and reference shards written
by the test itself (nothing is downloaded)."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from xentlab.repro.local_data import MissingLocalData
from xentlab.testing.reproduce_module import load_reproduce

WORDS = "the cat sat on a mat while rare quokka zebra xylophone played near river bank".split()


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    from xentlab.data.tokenizer import get_tokenizer
    from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm

    root = tmp_path_factory.mktemp("full")
    tok = get_tokenizer([" ".join(WORDS)] * 20, vocab_size=300, include_pydoc=False, name="dc-pdd-test")
    cfg = TinyLMConfig(vocab_size=len(tok), hidden=16, layers=1, heads=2, kv_heads=1, intermediate=32)
    model_dir = root / "model"
    build_tiny_lm(cfg, tok, seed=0).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    rows = [
        {"input" if i % 3 == 0 else "text": " ".join(WORDS[i : i + 6]), "label": i % 2} for i in range(12)
    ]
    (root / "wikimia.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    ref = root / "ref"
    ref.mkdir()
    (ref / "part-0000.jsonl").write_text(
        "\n".join(json.dumps({"text": " ".join(WORDS[:8])}) for _ in range(3))
    )
    with gzip.open(ref / "c4-train.00000-of-01024.json.gz", "wt") as f:
        f.write(json.dumps({"text": "the cat the mat"}) + "\n")
    return root


def _ctx(tmp_path):
    return SimpleNamespace(
        device=torch.device("cpu"), log=lambda **k: None, progress=lambda it, **k: it, unit_dir=tmp_path
    )


def _cfg(local, **over):
    full = load_reproduce(Path(__file__).parents[1] / "reproduce.py").FULL
    return {**full, "model": str(local / "model"), "data": str(local / "wikimia.jsonl"), **over} | {
        "reference": str(local / "ref"),
        "dev_frac": 0.5,
    }


def test_full_end_to_end(local, tmp_path):
    from dc_pdd.full import run_full

    out = run_full(_cfg(local, ref_model=str(local / "model")), seed=0, ctx=_ctx(tmp_path))
    for m in ("ppl", "zlib", "min_k", "min_k_pp", "ref_unigram", "ref_model", "dc_pdd"):
        assert 0.0 <= out[f"auc_{m}"] <= 1.0 and math.isfinite(out[f"tpr5_{m}"])
    assert out["a_chosen"] in {"0.01", "0.1", "1", "5", "10", "inf"}
    # the same model as its own reference: log PPL ratio is exactly 1 for every text -> AUC 0.5
    assert out["auc_ref_model"] == pytest.approx(0.5)


def test_full_names_the_missing_variable(local, tmp_path, monkeypatch):
    from dc_pdd.full import run_full

    monkeypatch.delenv("DC_PDD_MODEL", raising=False)
    with pytest.raises(MissingLocalData, match="DC_PDD_MODEL"):
        run_full(_cfg(local, model=None), seed=0, ctx=_ctx(tmp_path))


def test_full_rejects_bad_rows(local, tmp_path):
    from dc_pdd.full import run_full

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "the cat", "label": "member"}))
    with pytest.raises(ValueError, match="label"):
        run_full(_cfg(local, data=str(bad)), seed=0, ctx=_ctx(tmp_path))
