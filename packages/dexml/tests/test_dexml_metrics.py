"""dexml.metrics: P@k and nDCG@k against hand-computed values."""

import math

import pytest
import torch
from dexml.metrics import ndcg_at_k, precision_at_k


def test_hand_values():
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.4]])
    y = torch.tensor([[True, False, True, False], [False, False, False, True]])
    # row 0: ranking 0,1,2,3 -> hits 1,0,1 ; row 1: ranking 3,2,1,0 -> hits 1,0,0
    assert precision_at_k(scores, y, 1) == pytest.approx(1.0)
    assert precision_at_k(scores, y, 3) == pytest.approx((2 / 3 + 1 / 3) / 2)
    d0 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))  # DCG hits at ranks 1,3 / IDCG 2 positives
    d1 = 1.0
    assert ndcg_at_k(scores, y, 3) == pytest.approx((d0 + d1) / 2)


def test_rows_without_positives_are_skipped_and_perfect_ranking_is_one():
    y = torch.tensor([[True, True, False], [False, False, False]])
    s = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    assert ndcg_at_k(s, y, 2) == pytest.approx(1.0) and precision_at_k(s, y, 2) == pytest.approx(1.0)
    assert ndcg_at_k(s, y, 3) == pytest.approx(1.0)  # IDCG uses min(k, |P|) positions


def test_errors():
    with pytest.raises(ValueError, match="k must be"):
        precision_at_k(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.bool), 4)
    with pytest.raises(ValueError, match=r"\(N, L\)"):
        ndcg_at_k(torch.zeros(2, 3), torch.zeros(2, 2, dtype=torch.bool), 1)
