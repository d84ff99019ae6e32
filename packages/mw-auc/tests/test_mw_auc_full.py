"""--scale full end to end on a tiny random BERT (saved with save_pretrained), a small (query, positive,
hard negatives) training file and a 3-query BEIR-layout fixture, all written by the test."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mw_auc.full import batch_columns, evaluate_beir, load_beir, pool_auc, pooled_f1, rank_metrics, run_full
from mw_auc.metrics import best_threshold_f1, f1_at_threshold, relevance

from xentlab.metrics.ranking import mrr_at_k, pooled_auc
from xentlab.repro.local_data import MissingLocalData
from xentlab.testing.reproduce_module import load_reproduce

WORDS = "the cat dog sat ran on a mat log river bank tree red blue small big fish bird sings swims".split()
DOCS = {
    "d1": ("Cats", "the cat sat on a mat"),
    "d2": ("", "the dog ran on a log"),
    "d3": ("Rivers", "a fish swims in the river"),
    "d4": ("", "a red bird sings in a tree"),
    "d5": ("", "the big dog sat on the bank"),
    "q3": ("", "a blue fish"),  # its id equals a query id: BEIR ignores it for that query
}
QUERIES = {"q1": "cat on mat", "q2": "dog ran", "q3": "fish in river"}
QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\nq2\td5\t1\nq3\td3\t1\nq3\td4\t0\n"


def _write_beir(folder: Path) -> None:
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": k, "title": t, "text": x}) for k, (t, x) in DOCS.items())
    )
    (folder / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": k, "text": v}) for k, v in QUERIES.items())
    )
    (folder / "qrels" / "test.tsv").write_text(QRELS)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("mw_full")
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS)), "in", "cats",
                                "rivers", "dogs"]))  # fmt: skip
    model_dir = root / "bert"
    BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True).save_pretrained(model_dir)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32)  # fmt: skip
    BertModel(cfg).save_pretrained(model_dir)
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(10):
        w = rng.choice(WORDS, 9)
        rows.append(
            {"query": " ".join(w[:3]), "positive": " ".join(w[:5]), "negatives": [" ".join(w[5:]), "a tree"]}
        )
    rows[0] = {"anchor": rows[0]["query"], "pos": rows[0]["positive"], "negative": "a mat"}  # aliases
    (root / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    _write_beir(root / "beir" / "toyfact")
    _write_beir(root / "beir" / "toyqa")
    return SimpleNamespace(model=model_dir, train=root / "train.jsonl", beir=root / "beir", root=root)


def _ctx():
    return SimpleNamespace(device=torch.device("cpu"), scale="full", log=lambda **k: None,
                           progress=lambda it, **k: it)  # fmt: skip


def _cfg(local, loss="mw_global", **over):
    full = load_reproduce(Path(__file__).parents[1] / "reproduce.py").EXPERIMENTS[0].configs["full"]
    small = dict(model=str(local.model), train=str(local.train), id_data=str(local.beir / "toyfact"),
                 beir=str(local.beir), max_len=16, batch_size=3, hard_negatives=2, warmup_steps=1, epochs=3,
                 val_rows=2, val_frac=0.3, eval_batch=4, n_neg=3, query_chunk=2, lr=1e-3)  # fmt: skip
    return {**full, "loss": loss, **small, **over}


def test_full_config_is_the_papers_setup():
    full = load_reproduce(Path(__file__).parents[1] / "reproduce.py").EXPERIMENTS[0].configs["full"]
    assert tuple(full["taus"]) == (0.01,) and full["hard_negatives"] == 5 and full["batch_size"] == 64
    assert (full["warmup_steps"], full["epochs"], full["n_neg"]) == (500, 20, 500)


def test_beir_loading_skips_header_and_zero_scores(local):
    d = load_beir(local.beir / "toyfact")
    assert d.query_ids == ["q1", "q2", "q3"] and len(d.doc_texts) == 6
    assert d.doc_texts[0] == "Cats the cat sat on a mat"
    assert d.qrels == [{0: 1}, {1: 2, 4: 1}, {2: 1}]  # d4's score 0 is not relevant


def test_pool_auc_equals_the_matrix_auc_and_rank_metrics_by_hand():
    rng = np.random.default_rng(1)
    s = rng.normal(size=(5, 7)).round(1)  # rounding makes ties
    rel = rng.integers(0, 7, 5)
    pos = s[np.arange(5), rel]
    neg = s[np.arange(7)[None, :] != rel[:, None]]
    assert pool_auc(pos, neg) == pytest.approx(pooled_auc(*relevance(s, rel)), abs=1e-12)
    # thresholdability: the pool's best F1 is best_threshold_f1 of the matrix; at its threshold, the same
    f1, thr = best_threshold_f1(s, rel)
    assert pooled_f1(pos, neg) == pytest.approx((f1, thr))
    assert pooled_f1(pos, neg, thr)[0] == pytest.approx(f1_at_threshold(s, rel, thr))
    # one relevant document, every document a candidate: MRR@10 as at cpu scale
    s = rng.normal(size=(4, 12))
    rel = rng.integers(0, 12, 4)
    m = rank_metrics([(list(range(12)), list(row)) for row in s], [{int(r): 1} for r in rel])
    assert m["mrr10"] == pytest.approx(mrr_at_k(*relevance(s, rel), 10))
    # graded: candidates ranked 5, 2, 9, 7 with rel {2: 2, 9: 1, 7: 1}, k = 3:
    # DCG@3 = 2/log2(3) + 1/log2(4); IDCG@3 = 2 + 1/log2(3) + 1/log2(4); Recall@3 = 2/3; MRR@3 = 1/2
    m = rank_metrics([([5, 2, 9, 7], [3.0, 2.0, 1.0, 0.0])], [{2: 2, 9: 1, 7: 1}], k=3)
    assert m["mrr10"] == 0.5 and m["r10"] == pytest.approx(2 / 3)
    assert m["ndcg10"] == pytest.approx((2 / math.log2(3) + 0.5) / (2 + 1 / math.log2(3) + 0.5))


def test_beir_protocol_top_negatives_and_identical_ids(local):
    """Fixed embeddings: the pool is every positive + the n_neg best non-relevant documents per query."""
    d = load_beir(local.beir / "toyfact")
    torch.manual_seed(2)
    q, docs = torch.randn(3, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    emb = {tuple(d.query_texts): q, tuple(d.doc_texts): docs}
    enc = SimpleNamespace(embed=lambda texts: emb[tuple(texts)])
    cfg = {"n_neg": 2, "query_chunk": 2, "ignore_identical_ids": True}
    out, pool = evaluate_beir(enc, d, cfg)
    s = (q @ docs.T).numpy()
    pos, neg = [], []
    for i, qrel in enumerate(d.qrels):
        pos += [s[i, j] for j in qrel]
        cand = [j for j in np.argsort(-s[i]) if j not in qrel and not (i == 2 and j == 5)]  # q3 == doc "q3"
        neg += [s[i, j] for j in cand[:2]]
    np.testing.assert_allclose(np.sort(pool["pos"]), np.sort(pos))
    np.testing.assert_allclose(np.sort(pool["neg"]), np.sort(neg))
    assert out["auc"] == pytest.approx(pool_auc(np.array(pos), np.array(neg)))
    # ranking metrics against a loop over the whole corpus (the topk holds n_neg + 3 = 5 of the 6
    # documents, so a relevant document can lie below it): MRR@10, nDCG@10 (graded), Recall@10
    rr, nd, rc = [], [], []
    for i, qrel in enumerate(d.qrels):
        ranked = [j for j in np.argsort(-s[i]) if not (i == 2 and j == 5)][:10]
        rr.append(next((1 / (r + 1) for r, j in enumerate(ranked) if j in qrel), 0.0))
        dcg = sum(qrel.get(j, 0) / math.log2(r + 2) for r, j in enumerate(ranked))
        ideal = sorted(qrel.values(), reverse=True)
        nd.append(dcg / sum(g / math.log2(r + 2) for r, g in enumerate(ideal)))
        rc.append(sum(j in qrel for j in ranked) / len(qrel))
    assert (out["mrr10"], out["ndcg10"], out["r10"]) == pytest.approx((np.mean(rr), np.mean(nd), np.mean(rc)))


def test_batch_columns_mask_duplicate_positives():
    rows = [("q1", "p", ["n1", "p"]), ("q2", "x", ["n2", "n1"])]
    cols, pos_index, neg_mask = batch_columns(rows)
    assert cols == ["p", "x", "n1", "p", "n2", "n1"] and pos_index.tolist() == [0, 1]
    assert neg_mask.tolist() == [
        [False, True, True, False, True, True],
        [True, False, True, True, True, True],
    ]


@pytest.mark.parametrize("loss", ["infonce", "mw_global"])
def test_full_end_to_end(local, loss):
    out = run_full(_cfg(local, loss), seed=0, ctx=_ctx())
    tag = "tau0010"
    assert out["n_val_rows"] == 2 and out["n_train_rows"] == 8
    for split in ("id", "ood"):
        for m in ("auc", "mrr10", "ndcg10", "r10", "f1", "f1valthr"):
            assert 0.0 <= out[f"{m}_{split}_{tag}"] <= 1.0
    assert out[f"auc_ood_{tag}"] == pytest.approx(
        (out[f"beir_toyfact_auc_{tag}"] + out[f"beir_toyqa_auc_{tag}"]) / 2
    )
    assert 1 <= out[f"best_epoch_{tag}"] <= 3 and math.isfinite(out[f"val_loss_{tag}"])
    assert set(out["hists"][tag]) == {"id", "ood"}


def test_full_names_the_missing_variables(local, monkeypatch):
    for env in ("MW_AUC_MODEL", "MW_AUC_TRAIN", "MW_AUC_ID_DATA", "MW_AUC_BEIR"):
        monkeypatch.delenv(env, raising=False)
    with pytest.raises(MissingLocalData, match="MW_AUC_MODEL"):
        run_full(_cfg(local, model=None), seed=0, ctx=_ctx())
    with pytest.raises(MissingLocalData, match="MW_AUC_TRAIN"):
        run_full(_cfg(local, train=None), seed=0, ctx=_ctx())
    with pytest.raises(MissingLocalData, match="MW_AUC_ID_DATA.*MW_AUC_BEIR"):
        run_full(_cfg(local, id_data=None, beir=None), seed=0, ctx=_ctx())
    with pytest.raises(MissingLocalData, match=r"qrels/test\.tsv"):
        load_beir(local.root)  # the error names the expected layout


def test_full_scale_through_the_cli(local, tmp_path):
    """reproduce.py --scale full with the fixture (three arms): result.json, the four claims, figures."""
    from xentlab.testing.smoke import validate_result

    repro = load_reproduce(Path(__file__).parents[1] / "reproduce.py")
    for e in repro.EXPERIMENTS:
        e.configs["full"].update({k: v for k, v in _cfg(local, epochs=1).items() if k != "loss"})
    repro.run_cli(repro.PAPER, repro.EXPERIMENTS, repro.CLAIMS, derived=repro.DERIVED, figures=repro.figures,
                  default_seeds={"full": [0]}, package_dir=Path(__file__).parents[1],
                  argv=["--scale", "full", "--out", str(tmp_path), "--quiet", "--device", "cpu"])  # fmt: skip
    result = json.loads((tmp_path / "result.json").read_text())
    validate_result(result)
    assert len(result["claims"]) == 4 and result["metrics"]["gain/mwg_vs_nce_auc_ood"]["n"] == 1
    assert (tmp_path / "metrics.png").is_file() and (tmp_path / "score_hist.png").is_file()
