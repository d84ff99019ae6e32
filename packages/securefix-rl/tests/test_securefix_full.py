"""--scale full end to end on a tiny local Llama + encoder the test saves, and the missing-path errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from xentlab.repro.local_data import MissingLocalData
from xentlab.testing import load_reproduce

REPRODUCE = Path(__file__).parents[1] / "reproduce.py"

PAIRS = [
    (
        f"int get{i}(int *p) {{\n  return p[{i}];\n}}",
        f"int get{i}(int *p) {{\n  if (!p) return -1;\n  return p[{i}];\n}}",
    )
    for i in range(6)
]


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    from transformers import BertConfig, BertModel

    from xentlab.data.tokenizer import get_tokenizer
    from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm

    root = tmp_path_factory.mktemp("securefix_full")
    tok = get_tokenizer([v + "\n# fix\n" + f for v, f in PAIRS] * 4, vocab_size=300, include_pydoc=False,
                        name="securefix-full-test")  # fmt: skip
    lm = build_tiny_lm(
        TinyLMConfig(hidden=32, layers=1, heads=2, kv_heads=1, intermediate=64, vocab_size=len(tok)),
        tok,
        seed=0,
    )
    lm.save_pretrained(root / "lm")
    tok.save_pretrained(root / "lm")
    enc = BertModel(BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32, max_position_embeddings=256))  # fmt: skip
    enc.save_pretrained(root / "enc")
    tok.save_pretrained(root / "enc")
    rows = [json.dumps({"vulnerable": v, "fixed": f, "cwe": "CWE-476"}) for v, f in PAIRS]
    (root / "pairs.jsonl").write_text("\n".join(rows) + "\n")
    return root


def _cfg(local) -> dict:
    full = load_reproduce(REPRODUCE).FULL
    return {
        **full,
        "model": str(local / "lm"),
        "data": str(local / "pairs.jsonl"),
        "encoder": str(local / "enc"),
        "dtype": "fp32",
        "max_len": 128,
        "test_frac": 0.34,
        "n_eval": 2,
        "lora_r": 2,
        "lora_alpha": 4,
        "sft": {"steps": 2, "batch": 2, "lr": 1e-3},
        "rl": {
            **full["rl"],
            "steps": 1,
            "prompts_per_step": 2,
            "n": 2,
            "minibatches": 2,
            "max_new_tokens": 8,
        },
    }


def _ctx():
    return SimpleNamespace(device=torch.device("cpu"), scale="full", log=lambda **k: None)


def test_full_runs_end_to_end_on_local_files(local):
    from securefix_rl.full import run_full

    out = run_full(_cfg(local), 0, _ctx())
    assert out["n_train"] == 4 and out["n_test"] == 2
    assert out["codebleu_lang"] in ("c", "python")
    for tag in ("sft", "rl"):
        for k in ("codebleu", "exact", "sem"):
            assert 0.0 <= out[f"{tag}_{k}"] <= 1.0
        assert f"{tag}_sec_rate" not in out  # the checker applies to the synthetic language only
    assert len(out["reward_curve"]) == 1


def test_full_names_the_missing_variable(local, monkeypatch):
    from securefix_rl.full import run_full

    monkeypatch.delenv("SECUREFIX_MODEL", raising=False)
    cfg = {**_cfg(local), "model": None}
    with pytest.raises(MissingLocalData, match="SECUREFIX_MODEL"):
        run_full(cfg, 0, _ctx())
    with pytest.raises(MissingLocalData, match="SECUREFIX_DATA"):
        run_full({**_cfg(local), "data": str(local / "nope")}, 0, _ctx())


def test_pairs_file_layout_is_checked(tmp_path):
    from securefix_rl.full import load_pairs

    (tmp_path / "bad.jsonl").write_text(json.dumps({"vuln": "x"}) + "\n")
    with pytest.raises(Exception, match="vulnerable"):
        load_pairs(tmp_path / "bad.jsonl")
    with pytest.raises(MissingLocalData, match="train.jsonl"):
        load_pairs(tmp_path)


def test_full_scale_through_the_cli(local, tmp_path):
    """reproduce.py --scale full on the fixture: result.json, the CodeBLEU claim judged, the figures."""
    from xentlab.testing.smoke import validate_result

    repro = load_reproduce(REPRODUCE)
    repro.EXPERIMENTS[0].configs["full"].update(_cfg(local))
    repro.run_cli(repro.PAPER, repro.EXPERIMENTS, repro.CLAIMS, derived=repro.DERIVED, figures=repro.figures,
                  default_seeds={"full": [0]}, package_dir=Path(__file__).parents[1],
                  argv=["--scale", "full", "--out", str(tmp_path), "--quiet", "--device", "cpu"])  # fmt: skip
    result = json.loads((tmp_path / "result.json").read_text())
    validate_result(result)
    assert {c["id"] for c in result["claims"]} == {"rl-keeps-codebleu"}
    assert "gain/sec_pts" not in result["metrics"]
    assert (tmp_path / "sft_vs_rl.png").is_file() and (tmp_path / "rl_curves.png").is_file()
