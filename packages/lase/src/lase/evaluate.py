"""Evaluation on held-out speakers, as in the official scripts (eval_secs_gap.py, bootstrap_cis.py).

Three buckets of cosine similarity between embeddings of held-out clips:

* within-script: same speaker, same language (the upper bound);
* cross-script: same speaker, different language (the test);
* across-voice: different speakers, same language (the floor).

gap = median(within) - median(cross) (0 = identity does not depend on the script), and
margin = median(cross) - median(across-voice) (how far cross-script identity stays above the floor).
200 pairs per bucket are drawn without repetition; 95% CIs come from 1000 bootstrap resamples of
each bucket's cosines (percentiles 2.5 / 97.5), as in bootstrap_cis.py.

Added at cpu scale (the issue's contract): a language probe (logistic regression on the frozen
embeddings, cross-validated over folds of *speakers*, so it must generalise to unseen voices; chance
= 1 / n_languages) and the speaker-verification EER over all held-out pairs.
"""

from __future__ import annotations

import numpy as np

from xentlab.metrics.verification import cosine_trials, eer

BUCKETS = ("within", "cross", "floor")


def sample_pairs(speaker: np.ndarray, language: np.ndarray, n_pairs: int, rng: np.random.Generator) -> dict:
    """``n_pairs`` distinct unordered pairs per bucket (all of them when a bucket has fewer)."""
    i, j = np.triu_indices(len(speaker), k=1)
    same_spk = speaker[i] == speaker[j]
    same_lang = language[i] == language[j]
    masks = {"within": same_spk & same_lang, "cross": same_spk & ~same_lang, "floor": ~same_spk & same_lang}
    out = {}
    for name, m in masks.items():
        cand = np.flatnonzero(m)
        if len(cand) == 0:
            raise ValueError(
                f"no pairs for the {name} bucket: need >= 2 speakers, >= 2 languages, >= 2 clips"
            )
        pick = rng.choice(cand, size=min(n_pairs, len(cand)), replace=False)
        out[name] = (i[pick], j[pick])
    return out


def cosines(emb: np.ndarray, pairs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    return np.einsum("nd,nd->n", e[pairs[0]], e[pairs[1]])


def gap_margin(
    within: np.ndarray, cross: np.ndarray, floor: np.ndarray, rng: np.random.Generator, n_boot: int = 1000
) -> dict[str, float]:
    """Medians, gap and margin with bootstrap 95% CIs (each bucket resampled on its own)."""
    out = {
        "within": float(np.median(within)),
        "cross": float(np.median(cross)),
        "floor": float(np.median(floor)),
    }
    out["gap"] = out["within"] - out["cross"]
    out["margin"] = out["cross"] - out["floor"]
    med = {}
    for name, v in (("within", within), ("cross", cross), ("floor", floor)):
        med[name] = np.median(v[rng.integers(0, len(v), size=(n_boot, len(v)))], axis=1)
    for name, boot in (("gap", med["within"] - med["cross"]), ("margin", med["cross"] - med["floor"])):
        lo, hi = np.percentile(boot, [2.5, 97.5])
        out[f"{name}_lo"], out[f"{name}_hi"] = float(lo), float(hi)
    return out


def language_probe(
    emb: np.ndarray, language: np.ndarray, speaker: np.ndarray, folds: int = 5, seed: int = 0
) -> float:
    """Cross-validated accuracy of a logistic-regression language classifier, folds split by speaker."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folds = min(folds, len(np.unique(speaker)))
    correct = 0
    for tr, te in GroupKFold(n_splits=folds).split(emb, language, groups=speaker):
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
        clf.fit(emb[tr], language[tr])
        correct += int((clf.predict(emb[te]) == language[te]).sum())
    return correct / len(language)


def evaluate_embeddings(
    emb: np.ndarray,
    speaker: np.ndarray,
    language: np.ndarray,
    n_languages: int,
    rng: np.random.Generator,
    n_pairs: int = 200,
    n_boot: int = 1000,
    probe_folds: int = 5,
) -> dict[str, float | bool]:
    """All held-out metrics of one set of embeddings (see the module docstring)."""
    pairs = sample_pairs(speaker, language, n_pairs, rng)
    stats = gap_margin(*(cosines(emb, pairs[b]) for b in BUCKETS), rng=rng, n_boot=n_boot)
    stats["gap_ci_includes_zero"] = bool(stats["gap_lo"] <= 0.0 <= stats["gap_hi"])
    stats["gap_ci_above_zero"] = bool(stats["gap_lo"] > 0.0)
    stats["lang_probe_acc"] = language_probe(emb, language, speaker, probe_folds)
    stats["lang_probe_chance"] = 1.0 / n_languages
    scores, labels = cosine_trials(emb, speaker)
    stats["eer"] = eer(scores, labels)
    return stats


def project_2d(emb: np.ndarray, seed: int = 0) -> np.ndarray:
    """A 2-D t-SNE map of the embeddings (cosine metric), for the before/after figure."""
    from sklearn.manifold import TSNE

    perplexity = float(min(30, max(2, (len(emb) - 1) // 3)))
    tsne = TSNE(n_components=2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed)
    return tsne.fit_transform(emb.astype(np.float64))
