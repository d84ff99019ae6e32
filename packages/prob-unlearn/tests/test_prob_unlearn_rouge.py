"""ROUGE-L F-measure checked against hand-computed longest common subsequences."""

import pytest
from prob_unlearn.rouge import rouge_l, rouge_l_many


def test_identical_and_disjoint():
    assert rouge_l("Ann Lee was born in Oxford.", "Ann Lee was born in Oxford.") == 1.0
    assert rouge_l("purple monkey", "Ann Lee was born in Oxford.") == 0.0


def test_hand_lcs():
    # reference tokens: ann lee was born in oxford (6); prediction: ann lee was born in york (6)
    # LCS = 5 -> P = R = 5/6 -> F = 5/6
    assert rouge_l("Ann Lee was born in York.", "Ann Lee was born in Oxford.") == pytest.approx(5 / 6)
    # prediction "lee born oxford" (3): LCS 3, P = 1, R = 1/2 -> F = 2/3
    assert rouge_l("Lee born Oxford", "Ann Lee was born in Oxford.") == pytest.approx(2 / 3)


def test_stemming_as_in_the_notebook():
    # use_stemmer=True: "writes" and "write" share the Porter stem
    assert rouge_l("Ann writes poetry", "Ann write poetry") == 1.0


def test_many_matches_single():
    preds = ["Ann Lee was born in York.", "x", "Ann Lee was born in York."]
    assert rouge_l_many(preds, "Ann Lee was born in Oxford.") == [
        rouge_l(p, "Ann Lee was born in Oxford.") for p in preds
    ]
