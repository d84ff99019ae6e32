"""Fidelity audit: every score and metric against the official ``com_det_sco.py`` conventions.

The reference functions below restate the official formulas (scores "larger = non-member", ROC on
``-score``); ours are "higher = member", so each of our scores must equal minus the official one.
"""

from __future__ import annotations

import zlib

import numpy as np
from dc_pdd.metrics import detection_metrics
from dc_pdd.scores import (
    dc_pdd_score,
    min_k_plus_score,
    min_k_score,
    ppl_score,
    ref_ratio_score,
    token_frequencies,
    zlib_score,
)
from sklearn.metrics import auc, roc_curve


def _official_dc_pdd(logp, ids, counts, a):
    # cal_met: first occurrences by a running "seen" list, f from the smoothed counts
    # (fre_dis_smo = (c + 1) / (sum c + |V|)), ce = p * log(1 / f), ce[ce > a] = a, score = -mean(ce)
    seen, idx = [], []
    for i, t in enumerate(ids.tolist()):
        if t not in seen:
            seen.append(t)
            idx.append(i)
    smo = (counts + 1) / (counts.sum() + len(counts))
    ce = np.exp(logp[idx]) * np.log(1 / smo[ids[idx]])
    ce[ce > a] = a
    return -np.mean(ce)


def _official_baselines(logp, mu, var, ref_logp, text):
    # cal_met: tar_prob holds the scored positions input_ids[1:] (com_pro_dis.cal_ppl), so the
    # text's token count tar_tok_num = len(tokenizer.encode(text)) is one more than len(logp)
    # (the first token has no probability). Min-K% takes int(0.2 * tar_tok_num) tokens, Min-K%++
    # int(0.2 * len(mink_plus)) = int(0.2 * len(logp)): the two k differ when len(logp) = 4 mod 5.
    tar_tok_num = len(logp) + 1
    tar_ppl = np.exp(-np.mean(logp[:tar_tok_num]))
    ref_ppl = np.exp(-np.mean(ref_logp[:tar_tok_num]))
    k_min = int(tar_tok_num * 0.2)
    k_pp = int(len(logp) * 0.2)
    return {
        "ppl": tar_ppl,
        "zlib": np.log(tar_ppl) / len(zlib.compress(bytes(text, "utf-8"))),
        "ref": np.log(tar_ppl) / np.log(ref_ppl),
        "min_k": -np.mean(np.sort(logp[:tar_tok_num])[:k_min]),
        "min_k_pp": -np.mean(np.sort((logp - mu) / np.sqrt(var))[:k_pp]),
    }


def test_scores_equal_minus_the_official_scores():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 50, size=30).astype(np.float64)
    freq = token_frequencies(counts)
    for _ in range(20):
        n = int(rng.integers(10, 40))
        ids = rng.integers(0, 30, size=n)  # repeats: the first-occurrence rule matters
        logp = np.log(rng.uniform(1e-4, 1.0, size=n))
        mu, var = -rng.uniform(0.5, 3.0, size=n), rng.uniform(0.1, 2.0, size=n)
        ref_logp = np.log(rng.uniform(1e-4, 0.9, size=n))
        text = " ".join(f"w{t}" for t in ids)
        for a in (0.01, 0.1, 1.0, np.inf):
            np.testing.assert_allclose(
                dc_pdd_score(logp, ids, freq, a), -_official_dc_pdd(logp, ids, counts, a), rtol=1e-12
            )
        off = _official_baselines(logp, mu, var, ref_logp, text)
        # PPL is reported as PPL; ours is -log PPL, a decreasing function of it (same ranking, negated)
        np.testing.assert_allclose(ppl_score(logp), -np.log(off["ppl"]), rtol=1e-12)
        np.testing.assert_allclose(zlib_score(logp, text), -off["zlib"], rtol=1e-12)
        np.testing.assert_allclose(ref_ratio_score(logp, ref_logp), -off["ref"], rtol=1e-12)
        np.testing.assert_allclose(min_k_score(logp, 0.2), -off["min_k"], rtol=1e-12)
        np.testing.assert_allclose(min_k_plus_score(logp, mu, var, 0.2), -off["min_k_pp"], rtol=1e-12)


def _official_metrics(official_scores, labels):
    # sweep + evaluate: roc_curve(label, -score) with sklearn's default drop_intermediate=True
    fpr, tpr, _ = roc_curve(labels.astype(bool), -official_scores)
    return {
        "auc": auc(fpr, tpr),
        "acc": np.max(1 - (fpr + (1 - tpr)) / 2),
        "tpr5": tpr[np.where(fpr < 0.05)[0][-1]],
    }


def test_metrics_equal_the_official_evaluate_on_tie_free_scores():
    rng = np.random.default_rng(1)
    for _ in range(20):
        labels = np.r_[np.ones(60, int), np.zeros(80, int)]
        ours = rng.normal(size=140) + 0.7 * labels
        got, ref = detection_metrics(ours, labels), _official_metrics(-ours, labels)
        for key in ("auc", "acc", "tpr5"):
            np.testing.assert_allclose(got[key], ref[key], rtol=1e-12, err_msg=key)


def test_tpr5_with_tied_member_non_member_pairs_documented_difference():
    # 10 members, 40 non-members (one false positive = FPR 0.025). Two members alone at the top
    # (TPR 0.2, FPR 0), then two thresholds each holding one member and one non-member tied:
    # (0.025, 0.3) and (0.05, 0.4). The middle point lies on the straight segment from (0, 0.2) to
    # (0.05, 0.4), so sklearn's default drop_intermediate removes it and the official rule ("last
    # FPR < 0.05") returns 0.2; ours uses the full ROC and returns 0.3 (README, Metrics). AUC and
    # accuracy are unaffected (ties count 1/2 in both; accuracy is linear along the segment).
    mem = [1.0, 1.0, 0.9, 0.8, 0.5, 0.45, 0.4, 0.35, 0.3, 0.25]
    non = [0.9, 0.8] + [0.01 * i for i in range(38)]
    s = np.array(mem + non)
    y = np.r_[np.ones(10, int), np.zeros(40, int)]
    got, ref = detection_metrics(s, y), _official_metrics(-s, y)
    assert ref["tpr5"] == 0.2 and got["tpr5"] == 0.3
    np.testing.assert_allclose(got["auc"], ref["auc"], rtol=1e-12)
    np.testing.assert_allclose(got["acc"], ref["acc"], rtol=1e-12)
