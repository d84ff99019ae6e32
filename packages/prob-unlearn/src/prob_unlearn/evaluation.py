r"""The probabilistic evaluation of one model (Sec. 4 of the paper), shared by the cpu scale
(``prob_unlearn.experiment``) and ``--scale full`` (``prob_unlearn.full``).

Per forget question: one greedy answer and ``n_samples`` sampled answers (top_p, temperature as the
official notebook), each scored by ROUGE-L against the gold answer; per retain question one greedy answer.
From the n scores of one question (``xentlab.metrics.bounds``, conbo's formulas):

* M_mu = upper bound on E[ROUGE-L], M_sigma = upper bound on its standard deviation,
  ED = M_mu + 2 M_sigma (``ed_score``);
* M_bin = Clopper-Pearson upper bound on P(a sample leaks), for a binary leak event: the gold
  attribute value appears in the answer (``QA.value`` set, cpu scale) or the sample's ROUGE-L is at
  least ``leak_threshold`` (``QA.value`` None, full scale);

all one-sided at level 1 - alpha, i.e. conbo called with 2 alpha as in the official notebook, then
averaged over questions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from xentlab.metrics.bounds import binomial_bounds, expectation_bounds, std_bounds
from xentlab.metrics.rouge import rouge_l_many


@dataclass(frozen=True)
class QA:
    """One evaluation question: the model's prompt, the gold answer, the raw question (for the examples
    artifact) and, when the leak event is "the fact's value appears in the answer", that value."""

    prompt: str
    answer: str
    question: str
    value: str | None = None


def ed_score(mu_upper: np.ndarray, sigma_upper: np.ndarray, k: float = 2.0) -> np.ndarray:
    """The ED score of the paper: upper bound on the mean plus k upper bounds on the std (k = 2)."""
    return np.asarray(mu_upper) + k * np.asarray(sigma_upper)


def _leaks(texts: list[str], rouge: np.ndarray, qa: QA, threshold: float | None) -> np.ndarray:
    """The binary leak event per answer: gold value in the answer (case-insensitive), else ROUGE-L >= thr."""
    if qa.value is not None:
        return np.array([qa.value.lower() in t.lower() for t in texts], dtype=float)
    if threshold is None:
        raise ValueError("a QA without a value needs cfg['leak_threshold'] for the leak event")
    return (np.asarray(rouge) >= threshold).astype(float)


def evaluate_model(
    model: Any,
    tok: Any,
    forget: list[QA],
    retain: list[QA],
    cfg: dict,
    seed: int,
    *,
    clean: Callable[[str], str] = str.strip,
    greedy_batch: int = 512,
    context: Callable[[], Any] = contextlib.nullcontext,
) -> dict[str, Any]:
    """Greedy and sampled evaluation of one model; per-question bounds averaged over questions.

    ``cfg`` needs alpha, n_samples, max_new_tokens, temperature, top_p, gen_rows (and leak_threshold
    when a QA has no value); top_k is optional (None: no top-k cut). ``clean`` post-processes every
    generated text before scoring; ``context`` wraps generation (autocast at full scale)."""
    from xentlab.lm.generate import generate

    alpha, n = cfg["alpha"], cfg["n_samples"]
    thr = cfg.get("leak_threshold")
    kw = dict(max_new_tokens=cfg["max_new_tokens"])
    with context():
        greedy = generate(
            model, tok, [q.prompt for q in forget + retain], batch_size=greedy_batch, **kw
        ).texts
        sampled = generate(
            model,
            tok,
            [q.prompt for q in forget],
            do_sample=True,
            temperature=cfg["temperature"],
            top_p=cfg["top_p"],
            # the official sampling.py sets no top_k, so transformers' GenerationConfig default 50 applies
            # (before the nucleus cut); xentlab's generate turns top-k off when given None, which the cpu
            # configs of version 2 still do (README, deviations)
            top_k=cfg.get("top_k"),
            num_return_sequences=n,
            batch_size=max(1, cfg["gen_rows"] // n),
            seed=seed * 1000 + 17,
            **kw,
        ).texts
    g_forget = [clean(t) for t in greedy[: len(forget)]]
    g_retain = [clean(t) for t in greedy[len(forget) :]]
    rouge = np.zeros((len(forget), n))
    leaks = np.zeros((len(forget), n))
    for i, q in enumerate(forget):
        texts = [clean(t) for t in sampled[i * n : (i + 1) * n]]
        rouge[i] = rouge_l_many(texts, q.answer)
        leaks[i] = _leaks(texts, rouge[i], q, thr)
    g_rouge = np.array([rouge_l_many([t], q.answer)[0] for t, q in zip(g_forget, forget)])
    g_leak = np.array(
        [_leaks([t], g_rouge[i : i + 1], q, thr)[0] for i, (t, q) in enumerate(zip(g_forget, forget))]
    )
    r_rouge = np.array([rouge_l_many([t], q.answer)[0] for t, q in zip(g_retain, retain)])
    r_leak = np.array(
        [_leaks([t], r_rouge[i : i + 1], q, thr)[0] for i, (t, q) in enumerate(zip(g_retain, retain))]
    )
    # one-sided upper bounds at level 1 - alpha: conbo with 2 * alpha (as in the official notebook)
    mean, _, mu_up = expectation_bounds(rouge, alpha=2 * alpha)
    std, _, sd_up = std_bounds(rouge, alpha=2 * alpha)
    _, bin_up = binomial_bounds(leaks, alpha=2 * alpha)
    return {
        "greedy_rouge": float(g_rouge.mean()),
        "greedy_leak": float(g_leak.mean()),
        "sample_rouge": float(mean.mean()),
        "sample_std": float(std.mean()),
        "m_mu": float(mu_up.mean()),
        "m_sigma": float(sd_up.mean()),
        "ed": float(ed_score(mu_up, sd_up).mean()),
        "m_bin": float(bin_up.mean()),
        "sample_leak": float(leaks.mean()),
        "best_of_n_rouge": float(rouge.max(1).mean()),
        "any_leak": float(leaks.max(1).mean()),
        "retain_rouge": float(r_rouge.mean()),
        "retain_leak": float(r_leak.mean()),
        # per-question arrays for the figures
        "q_greedy_rouge": g_rouge.round(4).tolist(),
        "q_m_mu": mu_up.round(4).tolist(),
        "q_hist": np.histogram(rouge, bins=10, range=(0, 1))[0].tolist(),
        "examples": [{"q": forget[0].question, "gold": forget[0].answer, "greedy": g_forget[0]}],
    }
