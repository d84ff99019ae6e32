"""The fine-tuned model's cache key (--scale full, ``finetune: True``) follows the code and the inputs
(xentlab.data.cache, "The key rule"): same code, files and recipe, same key; an edit of ``full.py`` or of a
module of the LM stack (``lm_loss`` and its kernels), another loss backend, a library upgrade, a re-saved
base model or tokenizer, another recipe, precision or device, a new key (a model fine-tuned by older code
or from other weights is never loaded). Evaluation and unlearning settings stay out of it."""

import os

import pytest
import torch
from prob_unlearn import full

from xentlab.data.cache import source_digest
from xentlab.testing.cache_keys import (
    assert_key_follows,
    assert_key_follows_library,
    assert_module_edit_changes_key,
)

ROWS = [{"question": "Where was Nera Vol born?", "answer": "In Tamsk."}]
CFG = {"finetune_cfg": {"batch_size": 16, "grad_accum": 2, "lr": 2e-5, "epochs": 5, "weight_decay": 0.01,
                        "seed": 42},
       "max_length": 256, "question_start_tag": "Question: ", "question_end_tag": "\n", "answer_tag": "Answer: ",
       "amp": "bfloat16", "max_grad_norm": 1.0, "n_samples": 128, "lr": 1e-5}  # fmt: skip


@pytest.fixture(autouse=True)
def _real_code_keys(monkeypatch):
    """Undo the test's patches, then drop the memoised code key computed under them, so no later test
    (or smoke run in this process) reads a key of patched code."""
    yield
    monkeypatch.undo()
    full.finetune_code.cache_clear()


@pytest.fixture
def dirs(tmp_path):
    for name in ("model", "tok"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    (tmp_path / "model" / "model.safetensors").write_bytes(b"\0" * 64)
    return tmp_path


def _key(dirs, tok_dir=None, rows=ROWS, device="cpu", **over) -> str:
    full.finetune_code.cache_clear()
    return full.finetune_key(dirs / "model", tok_dir, {"full": rows}, {**CFG, **over}, torch.device(device))


def test_module_hashes_its_own_source():
    assert full.SOURCE_DIGEST == source_digest(full.__file__)


def test_same_inputs_same_key_and_what_shapes_the_weights_counts(dirs):
    before = _key(dirs)
    assert _key(dirs) == before
    assert _key(dirs, n_samples=8, lr=1e-3) == before  # evaluation / unlearning settings: not the weights
    assert _key(dirs, finetune_cfg={**CFG["finetune_cfg"], "lr": 1e-5}) != before
    assert _key(dirs, amp=None) != before and _key(dirs, max_grad_norm=0.5) != before
    assert _key(dirs, answer_tag="A: ") != before
    assert _key(dirs, rows=ROWS * 2) != before
    assert _key(dirs, device="meta") != before  # bf16 autocast runs on CUDA only: the device type counts
    assert _key(dirs, tok_dir=dirs / "tok") != before  # a tokenizer read from elsewhere


def test_a_resaved_model_or_tokenizer_changes_the_key(dirs):
    before, with_tok = _key(dirs), _key(dirs, tok_dir=dirs / "tok")
    os.utime(dirs / "tok" / "config.json", ns=(10**9, 10**9))
    assert _key(dirs, tok_dir=dirs / "tok") != with_tok
    (dirs / "model" / "model.safetensors").write_bytes(b"\1" * 65)  # same path, new weights
    assert _key(dirs) != before


def test_an_edit_of_full_py_changes_the_key(dirs, monkeypatch):
    assert_key_follows(lambda: _key(dirs), monkeypatch, full)


@pytest.mark.parametrize("name", ["xentlab.lm.train", "xentlab.kernels.lce", "xentlab.kernels.torch_lce"])
def test_an_edit_of_the_lm_loss_changes_the_key(dirs, monkeypatch, name):
    assert_module_edit_changes_key(lambda: _key(dirs), monkeypatch, name)


def test_the_lm_loss_backend_changes_the_key(dirs, monkeypatch):
    from xentlab.lm import train as lm_train

    before = _key(dirs)
    other = "plain" if lm_train.lm_loss_backend() == "cce" else "cce"
    monkeypatch.setattr(lm_train, "lm_loss_backend", lambda: other)
    assert _key(dirs) != before


@pytest.mark.parametrize("library", ["torch", "transformers", "tokenizers"])
def test_a_library_upgrade_changes_the_key(dirs, monkeypatch, library):
    assert_key_follows_library(lambda: _key(dirs), monkeypatch, library)
