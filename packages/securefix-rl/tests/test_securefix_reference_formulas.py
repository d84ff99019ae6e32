"""Pins of the reference formulas the reward is built from (second fidelity audit; the paper has no
official code, so the references are CodeBLEU's and BERTScore's own definitions).

* CodeBLEU (Ren et al. 2020, Eq. 1; official ``calc_code_bleu.py`` and PyPI ``codebleu``):
  CodeBLEU = 0.25 BLEU + 0.25 weighted BLEU + 0.25 AST match + 0.25 data-flow match.
* BERTScore (Zhang et al. 2020, Eq. 1-3; ``bert_score``'s ``greedy_cos_idf`` with idf off): cosine of
  unit-norm token embeddings, P = mean over candidate tokens of the best match, R = mean over
  reference tokens, F = 2PR / (P + R); special tokens carry no weight.
"""

from __future__ import annotations

import math
import random

import pytest
import torch
from securefix_rl.codebleu_score import WEIGHTS, corpus_codebleu
from securefix_rl.lang import make_pair
from securefix_rl.semantic import SemScorer, greedy_f1


def test_codebleu_is_the_equal_weight_sum_of_its_four_parts():
    assert WEIGHTS == (0.25, 0.25, 0.25, 0.25)  # the CodeBLEU paper's and the package's defaults
    p, q = make_pair(random.Random(4), "sql"), make_pair(random.Random(5), "null")
    c = corpus_codebleu([p.vuln, q.fixed], [p.fixed, q.fixed])
    parts = ("ngram_match_score", "weighted_ngram_match_score", "syntax_match_score", "dataflow_match_score")
    assert 0.0 < c["codebleu"] < 1.0
    assert c["codebleu"] == pytest.approx(0.25 * sum(c[k] for k in parts), rel=1e-12)


def test_greedy_f1_by_hand_float64():
    # candidate x1 = (1, 0), x2 = (0, 1), x3 = (0.6, 0.8); reference y1 = (1, 0), y2 = (0.8, 0.6)
    # cosines: x1: (1, 0.8), x2: (0, 0.6), x3: (0.6, 0.96)
    # P = (1 + 0.6 + 0.96) / 3 = 2.56 / 3 (best reference match of each candidate token)
    # R = (max(1, 0, 0.6) + max(0.8, 0.6, 0.96)) / 2 = 0.98 (best candidate match of each reference token)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0], [0.8, 0.6]], dtype=torch.float64)
    p, r = 2.56 / 3, 0.98
    assert greedy_f1(x, y) == pytest.approx(2 * p * r / (p + r), rel=1e-12)
    # reference y1 alone: P = (1 + 0 + 0.6) / 3 (mean over the 3 candidate tokens), R = 1
    p1 = 1.6 / 3
    assert greedy_f1(x, y[:1]) == pytest.approx(2 * p1 / (p1 + 1), rel=1e-12)
    assert math.isclose(greedy_f1(y, y), 1.0, rel_tol=1e-12)


def test_sem_scorer_embeds_only_the_text_tokens_and_is_frozen():
    from xentlab.data.tokenizer import get_byte_tokenizer
    from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm

    tok = get_byte_tokenizer()
    cfg = TinyLMConfig(hidden=16, layers=1, heads=2, kv_heads=1, intermediate=32, vocab_size=len(tok))
    model = build_tiny_lm(cfg, tok, seed=0)
    sem = SemScorer(model, tok)
    texts = ["x = 1\n", "return y\n"]
    emb = sem.embed(texts)
    # one row per text token: the <s> position BERTScore-style scoring drops ([CLS] gets no weight)
    for t, e in zip(texts, emb):
        assert e.shape[0] == len(tok(t, add_special_tokens=False)["input_ids"])
        torch.testing.assert_close(e.norm(dim=-1), torch.ones(e.shape[0]))
    assert sem.f1(texts, texts) == pytest.approx([1.0, 1.0], abs=1e-6)
    before = sem.f1(texts[:1], texts[1:])
    with torch.no_grad():  # training the policy must not move the frozen scorer (it is a copy)
        for prm in model.parameters():
            prm.add_(0.5)
    assert sem.f1(texts[:1], texts[1:]) == before
