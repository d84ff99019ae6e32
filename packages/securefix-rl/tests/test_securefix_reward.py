"""The reward terms: PyPI CodeBLEU (offline, tree-sitter Python) and the BERTScore-style F1."""

import random

import pytest
import torch
from securefix_rl.codebleu_score import corpus_codebleu, sentence_codebleu
from securefix_rl.lang import make_pair
from securefix_rl.reward import checker_rewards, hybrid_rewards
from securefix_rl.semantic import greedy_f1


def test_codebleu_prefers_the_repair_with_the_guard():
    p = make_pair(random.Random(0), "bounds")
    assert sentence_codebleu(p.fixed, p.fixed) == pytest.approx(1.0)
    assert 0.3 < sentence_codebleu(p.vuln, p.fixed) < 1.0  # the unrepaired copy loses reward
    assert sentence_codebleu("", p.fixed) == 0.0
    c = corpus_codebleu([p.fixed, p.vuln], [p.fixed, p.fixed])
    assert set(c) >= {"codebleu", "ngram_match_score", "syntax_match_score", "dataflow_match_score"}
    with pytest.raises(ValueError):
        corpus_codebleu([], [])


def test_greedy_f1_by_hand():
    # cand = {e1, e2}, ref = {e1}: P = (1 + 0) / 2, R = 1, F = 2 * 0.5 * 1 / 1.5 = 2/3
    x = torch.eye(2)
    y = torch.tensor([[1.0, 0.0]])
    assert greedy_f1(x, y) == pytest.approx(2 / 3)
    assert greedy_f1(y, y) == pytest.approx(1.0)
    assert greedy_f1(torch.zeros(0, 2), y) == 0.0


class _ConstSem:
    def f1(self, cands, refs):
        return [0.2] * len(cands)


def test_hybrid_reward_weights_and_checker_ablation():
    p = make_pair(random.Random(1), "eval")
    r, syn, sem = hybrid_rewards([p.fixed, p.vuln], [p, p], _ConstSem(), w_syn=0.5, w_sem=0.5)
    assert syn[0] == pytest.approx(1.0) and sem == [0.2, 0.2]
    assert r[0] == pytest.approx(0.6) and r[1] == pytest.approx(0.5 * syn[1] + 0.1)
    assert checker_rewards([p.fixed, p.vuln], [p, p]) == [1.0, 0.0]


def test_guard_gap_monitor_by_hand():
    from securefix_rl.reward import guard_gap

    # guarded rewards 0.9 and 0.7 (mean 0.8), unguarded 0.5: gap 0.3
    assert guard_gap([0.9, 0.5, 0.7], [True, False, True]) == pytest.approx(0.3)
    assert guard_gap([0.9, 0.7], [True, True]) is None  # no unguarded sample: undefined
    assert guard_gap([], []) is None
    with pytest.raises(ValueError):
        guard_gap([0.1], [True, False])
