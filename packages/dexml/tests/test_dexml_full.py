"""--scale full end to end on a 3-document XC fixture in the official raw-text layout and a tiny random
DistilBERT saved with save_pretrained, both written by the test (nothing is downloaded)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from dexml.full import encode, grad_cached_step, load_xc, read_xc_sparse, run_full, tokenize
from dexml.losses import compute_loss

from xentlab.repro.local_data import MissingLocalData
from xentlab.testing.reproduce_module import load_reproduce

WORDS = "the treaty on fishing rights customs tariff agriculture aid import export quota member state".split()
LABELS = ["fishing", "customs tariff", "agriculture", "import quota", "member state aid", "export"]
TRAIN = [("the treaty on fishing rights of a member state", [0, 4]),
         ("customs tariff on import quota", [1, 3]),
         ("agriculture aid and export", [2, 4, 5])]  # fmt: skip
TEST = [("fishing rights treaty", [0]), ("import export tariff", [1, 3, 5]), ("state aid", [])]


def _csr(rows, n_labels):
    y = np.zeros((len(rows), n_labels))
    for i, (_, js) in enumerate(rows):
        y[i, js] = 1.0
    return sp.csr_matrix(y)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    from transformers import BertTokenizerFast, DistilBertConfig, DistilBertModel

    root = tmp_path_factory.mktemp("dexml")
    data = root / "EURLex-4K"
    (data / "raw").mkdir(parents=True)
    (data / "raw" / "trn_X.txt").write_text("\n".join(t for t, _ in TRAIN) + "\n")
    (data / "raw" / "tst_X.txt").write_text("\n".join(t for t, _ in TEST) + "\n")
    (data / "raw" / "Y.txt").write_text("\n".join(LABELS) + "\n")
    sp.save_npz(data / "Y.trn.npz", _csr(TRAIN, len(LABELS)))
    sp.save_npz(data / "Y.tst.npz", _csr(TEST, len(LABELS)))
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS)), "of", "a",
                                "and"]))  # fmt: skip
    model_dir = root / "distilbert"
    BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True).save_pretrained(model_dir)
    torch.manual_seed(0)
    cfg = DistilBertConfig(
        vocab_size=30, dim=16, n_layers=1, n_heads=2, hidden_dim=32, max_position_embeddings=64
    )
    DistilBertModel(cfg).save_pretrained(model_dir)
    return SimpleNamespace(data=data, model=model_dir)


def _ctx(tmp_path):
    return SimpleNamespace(
        device=torch.device("cpu"), scale="full", log=lambda **k: None, progress=lambda it, **k: it,
        unit_dir=tmp_path,
    )  # fmt: skip


def _cfg(local, loss="ds", **over):
    full = load_reproduce(Path(__file__).parents[1] / "reproduce.py").EXPERIMENTS[0].configs["full"]
    small = dict(data_root=str(local.data), model=str(local.model), max_len=16, batch_size=2, gc_batch=2,
                 epochs=2, eval_batch=2)  # fmt: skip
    return {**full, "loss": loss, **small, **over}


def test_full_config_is_the_official_eurlex_config():
    full = load_reproduce(Path(__file__).parents[1] / "reproduce.py").EXPERIMENTS[0].configs["full"]
    assert (full["tau"], full["batch_size"], full["lr"], full["weight_decay"]) == (0.05, 512, 5e-5, 0.01)
    assert (full["warmup"], full["epochs"], full["max_len"]) == (0.1, 100, 128)


@pytest.mark.parametrize("loss", ["softmax", "bce", "ds", "ds_sample", "softmax_sample"])
def test_full_end_to_end(local, tmp_path, loss):
    out = run_full(_cfg(local, loss), seed=0, ctx=_ctx(tmp_path))
    assert (out["n_train"], out["n_test"], out["n_labels"]) == (3, 3, 6)
    for m in ("p_at_1", "p_at_5", "ndcg_at_5"):
        assert 0.0 <= out[m] <= 1.0
    assert out["p_at_5"] <= 0.6 + 1e-9  # at most 3 positives per test row: P@5 <= 3/5
    assert math.isfinite(out["final_loss"])


def test_xc_loading_npz_and_sparse_text_agree(local, tmp_path):
    a = load_xc(local.data)
    assert a.train_texts[1] == TRAIN[1][0] and a.label_texts == LABELS
    assert a.test_targets[1].nonzero().flatten().tolist() == [1, 3, 5] and not a.test_targets[2].any()
    # the same labels as XC sparse text (header, then label:value pairs; an empty line = no labels)
    txt = tmp_path / "tst_X_Y.txt"
    txt.write_text("3 6\n0:1\n1:1 3:1.0 5:1\n\n")
    assert torch.equal(read_xc_sparse(txt), a.test_targets)


def test_gradient_cache_equals_direct_backprop_with_dropout(local):
    """The chunked, RNG-replayed backward must give the gradients of one big forward (dropout on)."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(local.model))
    model = AutoModel.from_pretrained(str(local.model), dropout=0.3, attention_dropout=0.3).train()
    q, lab = tokenize(tok, [t for t, _ in TRAIN], 16), tokenize(tok, LABELS, 16)
    targets = torch.from_numpy(_csr(TRAIN, len(LABELS)).toarray() > 0)

    def loss_fn(qe, le):
        return compute_loss("ds", qe @ le.T / 0.05, targets)

    torch.manual_seed(1)
    q_chunks = [q.batch(np.array([0, 1]), "cpu"), q.batch(np.array([2]), "cpu")]
    l_chunks = [lab.batch(np.arange(0, 4), "cpu"), lab.batch(np.arange(4, 6), "cpu")]
    cached = grad_cached_step(model, q_chunks, l_chunks, loss_fn, None)
    g_cached = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch.manual_seed(1)  # the same dropout draws, chunk by chunk, with one graph over everything
    embs = [encode(model, b, None) for b in (*q_chunks, *l_chunks)]
    direct = loss_fn(torch.cat(embs[:2]), torch.cat(embs[2:]))
    direct.backward()
    assert cached == pytest.approx(direct.item(), rel=1e-6)
    for gc, p in zip(g_cached, model.parameters()):
        torch.testing.assert_close(gc, p.grad, rtol=1e-4, atol=1e-6)


def test_full_names_the_missing_variables(local, tmp_path, monkeypatch):
    monkeypatch.delenv("DEXML_DATA_ROOT", raising=False)
    monkeypatch.delenv("DEXML_MODEL", raising=False)
    with pytest.raises(MissingLocalData, match="DEXML_DATA_ROOT"):
        run_full(_cfg(local, data_root=None), seed=0, ctx=_ctx(tmp_path))
    with pytest.raises(MissingLocalData, match="DEXML_MODEL"):
        run_full(_cfg(local, model=None), seed=0, ctx=_ctx(tmp_path))
    (tmp_path / "raw").mkdir()
    with pytest.raises(MissingLocalData, match=r"trn_X\.txt"):
        load_xc(tmp_path)  # the error names the expected layout


def test_full_scale_through_the_cli(local, tmp_path):
    """reproduce.py --scale full with the fixture's paths and sizes: result.json, claims, the figure."""
    import json

    from xentlab.testing.smoke import validate_result

    repro = load_reproduce(Path(__file__).parents[1] / "reproduce.py")
    for e in repro.EXPERIMENTS:
        e.configs["full"].update({k: v for k, v in _cfg(local).items() if k != "loss"})
    repro.run_cli(repro.PAPER, repro.EXPERIMENTS, repro.CLAIMS, derived=repro.DERIVED, figures=repro.figures,
                  default_seeds={"full": [0]}, package_dir=Path(__file__).parents[1],
                  argv=["--scale", "full", "--out", str(tmp_path), "--quiet", "--device", "cpu"])  # fmt: skip
    result = json.loads((tmp_path / "result.json").read_text())
    validate_result(result)
    assert len(result["claims"]) == 3 and (tmp_path / "precision.png").is_file()
