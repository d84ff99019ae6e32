"""--scale full end to end on a tiny random Llama + tiny CoNLL03-format files written here."""

import json
from types import SimpleNamespace

import pytest
import torch
from ls_llama.full import CONLL_LABELS, IGNORE, encode, run_full

from xentlab.data.tokenizer import train_bpe_tokenizer
from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm
from xentlab.repro.local_data import MissingLocalData

WORDS = [
    "EU",
    "rejects",
    "German",
    "call",
    "to",
    "boycott",
    "British",
    "lamb",
    "Peter",
    "Blackburn",
    "in",
    "Paris",
]
TAGS = ["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "B-PER", "I-PER", "O", "B-LOC"]


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    root = tmp_path_factory.mktemp("full")
    tok = train_bpe_tokenizer([" ".join(WORDS)] * 4, vocab_size=300)
    lm = build_tiny_lm(
        TinyLMConfig(vocab_size=len(tok), hidden=32, layers=1, heads=2, kv_heads=1, intermediate=64),
        tok,
        seed=0,
    )
    lm.save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    (root / "data").mkdir()
    rows = [{"tokens": WORDS[i : i + 6], "ner_tags": TAGS[i : i + 6]} for i in range(0, 7, 2)]
    for split in ("train", "validation", "test"):
        (root / "data" / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    return root, tok


def test_first_subtoken_labelling(local):
    _, tok = local
    ids, labels = encode(tok, [(WORDS, [CONLL_LABELS.index(t) for t in TAGS])], max_length=64)
    enc = tok(WORDS, is_split_into_words=True)
    first = [
        i for i, w in enumerate(enc.word_ids()) if w is not None and (i == 0 or enc.word_ids()[i - 1] != w)
    ]
    assert [labels[0][i] for i in first] == [CONLL_LABELS.index(t) for t in TAGS]
    assert sum(lab != IGNORE for lab in labels[0]) == len(WORDS) < len(ids[0])  # multi-piece words exist


def test_full_runs_end_to_end(local):
    root, _ = local
    cfg = {"model_path": str(root / "model"), "data_dir": str(root / "data"), "arms": ["causal", "unmasked"],
           "epochs": 2, "batch_size": 2, "lr": 1e-3, "weight_decay": 0.01, "max_length": 64,
           "lora_r": 12, "lora_alpha": 32, "lora_dropout": 0.1, "bf16": True}  # fmt: skip
    ctx = SimpleNamespace(device=torch.device("cpu"), log=lambda **k: None)
    out = run_full(cfg, 0, ctx)
    assert 0 <= out["f1_causal"] <= 100 and 0 <= out["f1_unmasked"] <= 100
    assert len(out["val_curve_unmasked"]) == 2 and "gap_f1" in out


def test_full_arm_does_not_depend_on_the_arms_before_it(local):
    # each arm seeds its own dropout stream (README "Fidelity audit, second reader (audit 2)"): the unmasked
    # arm's per-epoch losses are the same alone and after the causal arm
    root, _ = local
    base = {"model_path": str(root / "model"), "data_dir": str(root / "data"), "epochs": 2,
            "batch_size": 2, "lr": 1e-3, "weight_decay": 0.01, "max_length": 64, "lora_r": 12,
            "lora_alpha": 32, "lora_dropout": 0.1, "bf16": False}  # fmt: skip

    def unmasked_losses(arms):
        logs = []
        ctx = SimpleNamespace(device=torch.device("cpu"), log=lambda **k: logs.append(k))
        torch.manual_seed(0)
        run_full({**base, "arms": arms}, 0, ctx)
        return [k["loss"] for k in logs if k["arm"] == "unmasked"]

    alone = unmasked_losses(["unmasked"])
    assert len(alone) == 2 and alone == unmasked_losses(["causal", "unmasked"])


def test_missing_paths_fail_clearly(monkeypatch, tmp_path):
    monkeypatch.delenv("LS_LLAMA_MODEL", raising=False)
    with pytest.raises(MissingLocalData, match="LS_LLAMA_MODEL"):
        run_full({"model_path": None, "data_dir": None}, 0, SimpleNamespace(device=torch.device("cpu")))
