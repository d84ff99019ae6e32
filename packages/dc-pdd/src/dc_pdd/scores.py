"""Membership scores of one text from its per-token log-probabilities (higher = member, always).

Every function takes the target model's log-probabilities of the text's own tokens,
``logp[i] = log P_M(x_i | x_<i)`` for the scored positions (float64 arrays), and returns one float.
The official code (zhang-wei-chao/DC-PDD, ``com_det_sco.py``) reports every score with the opposite
sign ("larger means non-member") and ranks with ``roc_curve(label, -score)``; here each score is
negated once so that "higher = member" holds for all of them, which leaves every AUC unchanged.

* ``dc_pdd_score``: the paper's method (Sec. 3, Eqs. 3-6): cross-entropy-like divergence between
  the model's token probabilities and the reference-corpus token frequencies, over the first
  occurrence of each distinct token, each term clipped at ``a``.
* ``ppl_score``, ``zlib_score``, ``min_k_score``, ``min_k_plus_score``, ``ref_ratio_score``: the
  baselines of the official code (PPL; log PPL / zlib length; Min-K% Prob; Min-K%++; log PPL over a
  reference model's log PPL).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable

import numpy as np

__all__ = [
    "dc_pdd_score",
    "first_occurrence_indices",
    "min_k_plus_score",
    "min_k_score",
    "ppl_score",
    "ref_ratio_score",
    "token_frequencies",
    "zlib_score",
    "zlib_text",
]


def _logp(logp, name: str = "logp") -> np.ndarray:
    x = np.asarray(logp, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-d array of token log-probs, got shape {x.shape}")
    if not np.all(np.isfinite(x)) or np.any(x > 1e-5):
        raise ValueError(f"{name} must hold finite log-probabilities (<= 0)")
    return np.minimum(x, 0.0)


def token_frequencies(counts, *, smoothing: float = 1.0) -> np.ndarray:
    """Laplace-smoothed reference frequencies f(v) = (count(v) + 1) / (sum count + |V|).

    Sec. 3.2 / ``fre_dis_smo`` of the official code: add-one smoothing, so that a token never seen
    in the reference corpus gets f = 1 / (N + |V|) > 0 and log(1/f) stays finite. ``counts`` has
    one entry per vocabulary id (|V| = len(counts)).
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"counts must be a non-empty 1-d array (one per vocabulary id), got {c.shape}")
    if np.any(c < 0) or not np.all(np.isfinite(c)):
        raise ValueError("counts must be finite and >= 0")
    if smoothing <= 0:
        raise ValueError(f"smoothing must be > 0 (f(v) must be positive), got {smoothing}")
    return (c + smoothing) / (c.sum() + smoothing * c.size)


def count_tokens(docs: Iterable, vocab_size: int, *, max_tokens: int | None = None) -> np.ndarray:
    """Token counts over a reference corpus of token-id sequences (the first ``max_tokens`` of each,
    as the official ``com_fre_dis.py`` keeps the first 1,024 tokens per document)."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for ids in docs:
        ids = np.asarray(ids, dtype=np.int64)[:max_tokens]
        if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
            raise ValueError(f"token id out of range [0, {vocab_size})")
        counts += np.bincount(ids, minlength=vocab_size)
    return counts


def first_occurrence_indices(token_ids) -> np.ndarray:
    """Positions where a token id appears for the first time in the text (Sec. 3.3, Eq. 5:
    repeated tokens are counted once, so that a text that repeats one easy token is not favoured)."""
    ids = np.asarray(token_ids)
    if ids.ndim != 1:
        raise ValueError(f"token_ids must be 1-d, got shape {ids.shape}")
    _, first = np.unique(ids, return_index=True)
    return np.sort(first)


def dc_pdd_score(logp, token_ids, freq, a: float = math.inf) -> float:
    """beta(x) = mean over first occurrences i of min(p_i * log(1/f(x_i)), a)   (higher = member).

    Eq. 3-6 of the paper: alpha_i = p_i * log(1 / f(x_i)) is token i's term of the cross-entropy
    between the model's token-probability distribution and the reference frequency distribution;
    tokens that are frequent in the reference corpus (small log 1/f) are down-weighted, so a text
    made of common words no longer looks like a member just because the model predicts it well.
    ``a`` caps each term (Eq. 5, "a" in the official code); ``a = inf`` disables the cap.
    The official code returns -beta (larger = non-member); here beta itself.
    """
    lp = _logp(logp)
    ids = np.asarray(token_ids, dtype=np.int64)
    f = np.asarray(freq, dtype=np.float64)
    if ids.shape != lp.shape:
        raise ValueError(f"token_ids {ids.shape} and logp {lp.shape} must align (one id per scored token)")
    if f.ndim != 1 or np.any(f <= 0) or np.any(f > 1):
        raise ValueError("freq must be a 1-d array of frequencies in (0, 1] (use token_frequencies)")
    if ids.min() < 0 or ids.max() >= f.size:
        raise ValueError(f"token id out of range of freq (size {f.size})")
    if not a > 0:
        raise ValueError(f"the clipping threshold a must be > 0, got {a}")
    first = first_occurrence_indices(ids)
    alpha = np.exp(lp[first]) * -np.log(f[ids[first]])
    return float(np.mean(np.minimum(alpha, a)))


def ppl_score(logp) -> float:
    """-log PPL = mean_i log p_i (the PPL attack; monotone in 1/PPL, so its AUC is PPL's)."""
    return float(np.mean(_logp(logp)))


def zlib_score(logp, text: str | bytes) -> float:
    """-log(PPL) / zlib length: the official ``tar_ppl/zlib`` score (Carlini et al. 2021), negated.

    The zlib length is the size in bytes of the zlib-compressed UTF-8 text (default level, as the
    official code's ``zlib.compress``); a text that compresses well gets its low perplexity
    discounted less than a hard-to-compress one.
    """
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    if not data:
        raise ValueError("zlib_score needs a non-empty text")
    return float(np.mean(_logp(logp)) / len(zlib.compress(data)))


def zlib_text(text: str, max_words: int = 512) -> str:
    """The text the official zlib baseline compresses: its first ``max_words`` whitespace-separated
    words joined by single spaces (``com_det_sco.py``, ``cal_met``, English: ``" ".join(text.split()
    [:max_cha])`` with ``--max_cha 512``). Newlines and runs of spaces therefore do not count."""
    if max_words < 1:
        raise ValueError(f"max_words must be >= 1, got {max_words}")
    return " ".join(text.split()[:max_words])


def _k_count(n: int, k: float) -> int:
    if not 0 < k <= 1:
        raise ValueError(f"k must be a fraction in (0, 1], got {k}")
    # int(n * k) as the official code, but at least one token: the official code averages an
    # empty slice (NaN) for texts shorter than 1/k tokens.
    return max(1, int(n * k))


def min_k_score(logp, k: float = 0.2) -> float:
    """Min-K% Prob (Shi et al. 2024): the mean of the lowest k-fraction of token log-probs
    (the official ``min_20% prob`` without its minus sign).

    The fraction is taken of the text's token count, as ``com_det_sco.py`` does
    (``k = int(tar_tok_num * 0.2)``, ``tar_tok_num = len(tokenizer.encode(text))``): that count
    includes the first token, which has no probability (``com_pro_dis.py`` scores
    ``input_ids[1:]``), so it is ``logp.size + 1``. Min-K%++ there counts the scored positions
    only (``min_k_plus_score``).
    """
    lp = _logp(logp)
    return float(np.mean(np.sort(lp)[: min(lp.size, _k_count(lp.size + 1, k))]))


def min_k_plus_score(logp, mu, var, k: float = 0.2, *, min_var: float = 1e-12) -> float:
    """Min-K%++ (Zhang et al. 2024): the mean of the lowest k-fraction of (log p_i - mu_i) / sigma_i.

    mu_i = E_{z~P_M(.|x_<i)} log P_M(z | x_<i) and var_i = Var_{z~P_M(.|x_<i)} log P_M(z | x_<i) are the
    mean and variance of the log-prob under the model's own next-token distribution at position i
    (``tar_prob_mu`` / ``tar_prob_sigma`` in ``com_pro_dis.py``; see ``next_token_moments``).
    ``min_var`` floors the variance: a (numerically) one-hot next-token distribution has variance
    0 and the official code would divide by zero.
    """
    lp = _logp(logp)
    m, v = np.asarray(mu, dtype=np.float64), np.asarray(var, dtype=np.float64)
    if m.shape != lp.shape or v.shape != lp.shape:
        raise ValueError(f"mu {m.shape} and var {v.shape} must have the shape of logp {lp.shape}")
    if np.any(v < -1e-9) or not np.all(np.isfinite(v)) or not np.all(np.isfinite(m)):
        raise ValueError("var must be finite and >= 0 and mu finite")
    z = (lp - m) / np.sqrt(np.maximum(v, min_var))
    return float(np.mean(np.sort(z)[: _k_count(lp.size, k)]))


def ref_ratio_score(logp, ref_logp) -> float:
    """-(log PPL_target / log PPL_ref): the official ``tar_ppl/ref_ppl`` (Carlini et al. 2021),
    negated. ``ref_logp`` are the same tokens' log-probs under a reference model."""
    lp, rp = _logp(logp), _logp(ref_logp, "ref_logp")
    if rp.shape != lp.shape:
        raise ValueError(f"ref_logp {rp.shape} must align with logp {lp.shape}")
    log_ppl_ref = -np.mean(rp)
    if log_ppl_ref <= 0:
        raise ValueError("the reference model's perplexity must exceed 1 (log PPL_ref > 0)")
    return float(np.mean(lp) / log_ppl_ref)


def next_token_moments(log_probs_full: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mu, var) of log P over the model's own next-token distribution, per position.

    log_probs_full: (T, V) log-softmax rows. mu = sum_z p_z log p_z, var = sum_z p_z (log p_z)^2 - mu^2
    (as ``cal_ppl`` in ``com_pro_dis.py``)."""
    lp = np.asarray(log_probs_full, dtype=np.float64)
    if lp.ndim != 2:
        raise ValueError(f"log_probs_full must be (T, V), got {lp.shape}")
    p = np.exp(lp)
    safe = np.where(p > 0, lp, 0.0)  # 0 * log 0 = 0
    mu = (p * safe).sum(-1)
    var = (p * safe**2).sum(-1) - mu**2
    return mu, np.maximum(var, 0.0)
