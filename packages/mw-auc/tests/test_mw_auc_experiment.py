"""The retrieval splits, the batch layout, the validation-only temperature choice, determinism, smoke."""

from pathlib import Path

import numpy as np
import pytest
from mw_auc.data import SplitConfig, build_retrieval
from mw_auc.experiment import RunConfig, batch_columns, run, select_tag, tau_of_tag, tau_tag

from xentlab.data.taxonomy import TaxonomyConfig, make_taxonomy
from xentlab.testing import run_smoke

REPRO = Path(__file__).parents[1] / "reproduce.py"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path_factory.getbasetemp() / "xentlab-cache"))


@pytest.fixture(scope="module")
def tax_and_data():
    tax = make_taxonomy(TaxonomyConfig(n_domains=3, depth=3), seed=0)
    return tax, build_retrieval(tax, SplitConfig(ood_domains=1, max_eval_docs=30), seed=0)


def test_splits_are_disjoint_and_queries_point_at_their_gloss(tax_and_data):
    tax, data = tax_and_data
    splits = (data.train, data.val, data.test_id, data.test_ood)
    concept_sets = [set(s.doc_concept.tolist()) for s in splits]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not concept_sets[i] & concept_sets[j]
    assert {tax.concepts[c].domain for c in concept_sets[3]} == {2}  # OOD = the last branch only
    assert all(tax.concepts[c].domain in (0, 1) for s in concept_sets[:3] for c in s)
    assert len(data.test_ood.docs) <= 30  # capped evaluation corpus
    for s in splits:
        for q, d in zip(s.queries, s.query_doc):
            c = tax.concepts[s.doc_concept[d]]
            assert q in c.examples and s.docs[d] == c.gloss


def test_hard_candidates_are_closest_relatives(tax_and_data):
    tax, data = tax_and_data
    ids = data.train.doc_concept
    for j, cand in enumerate(data.hard_candidates):
        c = tax.concepts[ids[j]]
        assert len(cand) and j not in cand
        if c.parent is not None:
            # the nearest ancestor that has other train concepts under it
            for a in reversed(c.ancestors):
                under = [
                    k for k, x in enumerate(ids) if k != j and (a in tax.concepts[x].ancestors or x == a)
                ]
                if under:
                    assert sorted(cand.tolist()) == under
                    break


def test_batch_columns_layout_and_mask():
    rng = np.random.default_rng(0)
    pos_docs = np.array([3, 5, 3])  # two queries of the same document
    cands = [np.array([5])] * 6
    cols, pos_index, neg_mask = batch_columns(pos_docs, cands, 1, rng)
    assert cols.tolist() == [3, 5, 3, 5, 5, 5] and pos_index.tolist() == [0, 1, 2]
    assert neg_mask.tolist() == [
        [False, True, False, True, True, True],
        [True, False, True, False, False, False],
        [False, True, False, True, True, True],
    ]


def test_select_tag_reads_validation_only():
    m = {}
    for arm in ("infonce", "mw_global", "mw_per_query"):
        for tau, val in ((0.01, 0.4), (0.05, 0.5)):
            m[f"{arm}/val_mrr_{tau_tag(tau)}"] = val
            m[f"{arm}/auc_id_{tau_tag(tau)}"] = 1.0 - val  # test numbers favour the other tau
    assert select_tag(m) == "tau0050" and tau_of_tag("tau0050") == 0.05
    m["mw_global/val_mrr_tau0010"] = 0.7  # mean over arms: 0.5 vs 0.5 -> tie goes to the smaller tau
    assert select_tag(m) == "tau0010"


def test_run_is_deterministic_and_metrics_are_sane():
    cfg = RunConfig(loss="mw_global", n_domains=3, depth=3, taus=(0.05,), epochs=2, batch_size=16,
                    n_buckets=2**10, emb_dim=16, hidden=(16,), out_dim=16, max_eval_docs=40)  # fmt: skip
    a, b = run(cfg, seed=1), run(cfg, seed=1)
    assert a == b
    for k in ("auc_id", "auc_ood", "mrr10_id", "r10_ood", "f1_id", "val_mrr"):
        assert 0.0 <= a[f"{k}_tau0050"] <= 1.0
    with pytest.raises(ValueError, match="loss"):
        run(RunConfig(loss="bce"), seed=0)


def test_smoke(tmp_path):
    result = run_smoke(REPRO, tmp_path)
    assert set(result["config"]) == {"infonce", "mw_global", "mw_per_query"}
    assert "gain/mwg_vs_nce_auc_id" in result["metrics"] and "sel/tau" in result["metrics"]
