"""--scale full end to end on a tiny randomly initialised BERT and tiny CoNLL files the test writes itself."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from dice_nlp.full import read_conll, run_full

from xentlab.repro.local_data import MissingLocalData

CONLL = """-DOCSTART- -X- -X- O

John NNP B-NP B-PER
lives VBZ B-VP O
in IN B-PP O
Paris NNP B-NP B-LOC
. . O O

Acme NNP B-NP B-ORG
Corp NNP I-NP I-ORG
hired VBD B-VP O
Mary NNP B-NP B-PER
"""


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("full")
    words = sorted({line.split()[0] for line in CONLL.splitlines() if line and not line.startswith("-DOC")})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    (root / "bert").mkdir()
    (root / "bert" / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizerFast(vocab_file=str(root / "bert" / "vocab.txt"), do_lower_case=False)
    tok.save_pretrained(root / "bert")
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64)  # fmt: skip
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(root / "bert")
    (root / "conll").mkdir()
    for name in ("train.txt", "valid.txt", "test.txt"):
        (root / "conll" / name).write_text(CONLL)
    return root


def _ctx(tmp_path):
    return SimpleNamespace(device=torch.device("cpu"), log=lambda **k: None, unit_dir=tmp_path)


def test_read_conll(local):
    sents = read_conll(local / "conll" / "train.txt")
    assert sents[0] == (["John", "lives", "in", "Paris", "."], ["B-PER", "O", "O", "B-LOC", "O"])
    assert len(sents) == 2 and sents[1][1] == ["B-ORG", "I-ORG", "O", "B-PER"]


def test_full_runs_on_a_local_bert(local, tmp_path):
    out = run_full(_cfg(local, ["ce", "dsc"]), 0, _ctx(tmp_path))
    for loss in ("ce", "dsc"):
        assert 0.0 <= out[f"test_f1_{loss}"] <= 1.0
        assert len(out[f"val_curve_{loss}"]) == 2


def test_full_missing_paths_name_the_variable(local, tmp_path, monkeypatch):
    monkeypatch.delenv("DICE_NLP_CONLL03", raising=False)
    cfg = {**_cfg(local, ["ce"]), "data_root": None}
    with pytest.raises(MissingLocalData, match="DICE_NLP_CONLL03"):
        run_full(cfg, 0, _ctx(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MissingLocalData, match="train.txt"):
        run_full({**cfg, "data_root": str(empty)}, 0, _ctx(tmp_path))


def _cfg(local, losses):
    return {
        "data_root": str(local / "conll"), "model": str(local / "bert"), "losses": losses, "max_length": 32,
        "batch_size": 2, "accumulate": 1, "eval_batch_size": 4, "lr": 1e-3, "warmup": 0.0, "dropout": 0.0,
        "weight_decay": 0.01, "grad_clip": 1.0, "epochs": 2, "dice_alpha": 0.01, "dice_smooth": 1.0,
        "dice_square": True, "focal_gamma": 2.0, "wce_k": 1.0,
    }  # fmt: skip
