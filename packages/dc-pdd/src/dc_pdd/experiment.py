"""One cpu-scale unit: train a tiny causal LM on members + filler, score dev and test, report metrics.

Protocol (Sec. 4 of the paper, scaled down): the target model is trained on the member documents
(for ``member_epochs`` passes) mixed into a larger filler set; reference frequencies f(v) come from a
disjoint public-corpus analogue (never the members: that would leak labels); DC-PDD's clipping
threshold a is chosen on the dev split by AUC; every method is then scored once on test.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from dc_pdd.lm_scoring import token_stats
from dc_pdd.metrics import detection_metrics, roc_points
from dc_pdd.scores import (
    count_tokens,
    dc_pdd_score,
    min_k_plus_score,
    min_k_score,
    ppl_score,
    ref_ratio_score,
    token_frequencies,
    zlib_score,
)
from dc_pdd.synthetic import CorpusConfig, Docs, as_text, make_corpus, with_bos
from xentlab.lm.train import Example, LMTrainConfig, fit_lm
from xentlab.models.tiny_lm import build_tiny_lm, count_parameters, preset

# the methods in report order; "dc_pdd" is DC-PDD at the a chosen on dev
METHODS = ("ppl", "zlib", "min_k", "min_k_pp", "ref_unigram", "dc_pdd")
A_GRID = (0.01, 0.1, 1.0, 5.0, 10.0, math.inf)


# ablations of DC-PDD (each with its own a chosen on dev): "no_first" scores every position, not
# only first occurrences; "uniform_f" replaces f(v) by 1/|V| (no frequency calibration: the score
# becomes a clipped mean token probability)
VARIANTS = ("dc_pdd", "dc_pdd_no_first", "dc_pdd_uniform_f")


def score_texts(stats, texts, freq, a_grid=A_GRID, k: float = 0.2) -> dict[str, np.ndarray]:
    """Every method's score (higher = member) for each text; DC-PDD and its ablations once per a in
    ``a_grid`` (keys "<variant>@<a>"). ``stats``: TokenStats of the scored tokens; ``texts``: for zlib."""
    out: dict[str, list[float]] = {m: [] for m in METHODS[:-1]}
    out |= {f"{v}@{a:g}": [] for v in VARIANTS for a in a_grid}
    uniform = np.full_like(freq, 1.0 / freq.size)
    for st, text in zip(stats, texts, strict=True):
        out["ppl"].append(ppl_score(st.logp))
        out["zlib"].append(zlib_score(st.logp, text))
        out["min_k"].append(min_k_score(st.logp, k))
        out["min_k_pp"].append(min_k_plus_score(st.logp, st.mu, st.var, k))
        # reference "model" = the unigram model f(v) of the reference corpus (see README deviations)
        out["ref_unigram"].append(ref_ratio_score(st.logp, np.log(freq[st.ids])))
        # all positions distinct: the first-occurrence rule keeps every one of them
        positions = np.arange(st.ids.size)
        for a in a_grid:
            out[f"dc_pdd@{a:g}"].append(dc_pdd_score(st.logp, st.ids, freq, a))
            out[f"dc_pdd_no_first@{a:g}"].append(_dc_pdd_every_position(st.logp, st.ids, freq, a, positions))
            out[f"dc_pdd_uniform_f@{a:g}"].append(dc_pdd_score(st.logp, st.ids, uniform, a))
    return {k_: np.asarray(v) for k_, v in out.items()}


def _dc_pdd_every_position(logp, ids, freq, a, positions) -> float:
    """DC-PDD without the first-occurrence rule (ablation): every scored token counts."""
    alpha = np.exp(logp[positions]) * -np.log(freq[ids[positions]])
    return float(np.mean(np.minimum(alpha, a)))


def choose_a(
    dev_scores: dict[str, np.ndarray], dev_labels: np.ndarray, a_grid=A_GRID, variant: str = "dc_pdd"
) -> float:
    """The a with the best dev AUC (the first of the grid on ties)."""
    aucs = [detection_metrics(dev_scores[f"{variant}@{a:g}"], dev_labels)["auc"] for a in a_grid]
    return float(a_grid[int(np.argmax(aucs))])


def _score_split(model, members: Docs, nonmembers: Docs, freq, batch_size: int):
    docs = members.ids + nonmembers.ids
    stats = token_stats(model, [with_bos(d) for d in docs], batch_size=batch_size)
    for st in stats:  # drop the </s> target: only the document's own words are scored
        st.ids, st.logp, st.mu, st.var = st.ids[:-1], st.logp[:-1], st.mu[:-1], st.var[:-1]
    labels = np.r_[np.ones(len(members.ids), int), np.zeros(len(nonmembers.ids), int)]
    common = np.r_[members.commonness, nonmembers.commonness]
    return score_texts(stats, [as_text(d) for d in docs], freq), labels, common


def run_synthetic(cfg: dict, seed: int, ctx) -> dict:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    ccfg = CorpusConfig(**cfg["corpus"])
    corpus = make_corpus(ccfg, seed)

    # the pretraining set: every member document member_epochs times, the filler once
    members = corpus["member_dev"].ids + corpus["member_test"].ids
    train_docs = members * cfg["member_epochs"] + corpus["filler"].ids
    examples = [Example(tuple(ids), (0,) + (1,) * (len(ids) - 1)) for ids in map(with_bos, train_docs)]
    steps = math.ceil(len(examples) / cfg["batch_size"])
    model = build_tiny_lm(
        preset(
            cfg["model"], vocab_size=ccfg.vocab_size, max_positions=ccfg.max_len + 2, **cfg["model_overrides"]
        ),
        seed=seed,
    )
    history = fit_lm(
        model,
        examples,
        LMTrainConfig(steps=steps, batch_size=cfg["batch_size"], lr=cfg["lr"], log_every=max(1, steps // 5)),
        pad_id=0,
        seed=seed,
        on_log=lambda s, row: ctx.log(step=s, loss=row["loss"]),
        progress=lambda it: ctx.progress(it, desc="train"),
    )
    train_s = time.perf_counter() - t0

    # Sec. 3.2: token frequencies of the reference corpus, Laplace-smoothed over the whole vocabulary
    freq = token_frequencies(count_tokens(corpus["reference"].ids, ccfg.vocab_size))

    dev, dev_y, _ = _score_split(
        model, corpus["member_dev"], corpus["nonmember_dev"], freq, cfg["eval_batch"]
    )
    test, test_y, test_c = _score_split(
        model, corpus["member_test"], corpus["nonmember_test"], freq, cfg["eval_batch"]
    )
    a = choose_a(dev, dev_y)
    test["dc_pdd"] = test[f"dc_pdd@{a:g}"]
    ablation_a = {v: choose_a(dev, dev_y, variant=v) for v in VARIANTS[1:]}

    out: dict = {
        "a_chosen": f"{a:g}",  # an artifact (a string: JSON has no inf)
        "log10_a_chosen": math.log10(a) if math.isfinite(a) else 3.0,  # inf (no clipping) plotted as 3
        "final_train_loss": history[-1]["loss"],
        "n_params": count_parameters(model),
        "train_steps": steps,
        "train_s": train_s,
    }
    for m in METHODS:
        for key, v in detection_metrics(test[m], test_y).items():
            out[f"{key}_{m}"] = v
    for v, a_v in ablation_a.items():
        out[f"auc_{v}"] = detection_metrics(test[f"{v}@{a_v:g}"], test_y)["auc"]
        out[f"a_chosen_{v}"] = f"{a_v:g}"
    # exploratory: DC-PDD's test AUC at every a (a is chosen on dev, never from these)
    for a_ in A_GRID:
        out[f"test_auc_dc_pdd_a={a_:g}"] = detection_metrics(test[f"dc_pdd@{a_:g}"], test_y)["auc"]

    # the confound: AUC within commonness terciles of the pooled test set, and how much each score
    # follows commonness among non-members (Spearman rho; near 0 = calibrated)
    edges = np.quantile(test_c, [1 / 3, 2 / 3])
    bins = np.digitize(test_c, edges)
    from scipy.stats import spearmanr

    for m in METHODS:
        for b, name in enumerate(("low", "mid", "high")):
            sel = bins == b
            if 0 < test_y[sel].sum() < sel.sum():
                out[f"auc_{m}_common_{name}"] = detection_metrics(test[m][sel], test_y[sel])["auc"]
        nm = test_y == 0
        out[f"rho_nonmember_commonness_{m}"] = float(spearmanr(test[m][nm], test_c[nm]).statistic)
    # artifacts for figures: ROC curves and the raw test scores
    out["roc"] = {m: roc_points(test[m], test_y) for m in METHODS}
    out["test_commonness"] = test_c.round(4).tolist()
    out["test_labels"] = test_y.tolist()
    out["test_scores"] = {m: np.round(test[m], 6).tolist() for m in METHODS}
    return out
