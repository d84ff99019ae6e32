"""ROUGE-L (xentlab.metrics.rouge) against hand-computed longest common subsequences."""

import pytest

from xentlab.metrics.rouge import rouge_l, rouge_l_many

REF = "Ann Lee was born in Oxford."


def test_identical_and_disjoint():
    for measure in ("fmeasure", "precision", "recall"):
        assert rouge_l(REF, REF, measure=measure) == 1.0
        assert rouge_l("purple monkey", REF, measure=measure) == 0.0
        assert rouge_l("", REF, measure=measure) == 0.0


def test_hand_lcs_for_each_measure():
    # reference tokens: ann lee was born in oxford (6); prediction: ann lee was born in york (6)
    # LCS = 5 -> P = R = F = 5/6
    assert rouge_l("Ann Lee was born in York.", REF) == pytest.approx(5 / 6)
    # prediction "lee born oxford" (3 tokens): LCS 3 -> P = 1, R = 3/6, F = 2PR/(P+R) = 2/3
    pred = "Lee born Oxford"
    assert rouge_l(pred, REF) == pytest.approx(2 / 3)
    assert rouge_l(pred, REF, measure="precision") == pytest.approx(1.0)
    assert rouge_l(pred, REF, measure="recall") == pytest.approx(0.5)
    # order matters (a subsequence, not a bag): "oxford born lee" shares only one in-order token
    assert rouge_l("Oxford born Lee", REF, measure="recall") == pytest.approx(1 / 6)


def test_recall_is_lcs_over_the_reference_tokens_as_tofu_reports_it():
    # TOFU's eval_rouge_recall: reference "a b c d", generation "a x c d" -> LCS a c d = 3 of 4
    assert rouge_l("a x c d", "a b c d", measure="recall") == pytest.approx(0.75)
    # the generation's extra tokens lower precision, not recall
    assert rouge_l("a b c d e f g h", "a b c d", measure="recall") == 1.0
    assert rouge_l("a b c d e f g h", "a b c d", measure="precision") == pytest.approx(0.5)


def test_stemming_and_case_as_in_the_official_scorers():
    # use_stemmer=True: "writes" and "write" share the Porter stem; case and punctuation are ignored
    assert rouge_l("ANN writes poetry!", "Ann write poetry") == 1.0


def test_many_matches_single_and_bad_measure_is_an_error():
    preds = ["Ann Lee was born in York.", "x", "Ann Lee was born in York."]
    assert rouge_l_many(preds, REF) == [rouge_l(p, REF) for p in preds]
    assert rouge_l_many(preds, REF, measure="recall") == [rouge_l(p, REF, measure="recall") for p in preds]
    with pytest.raises(ValueError, match="measure must be one of"):
        rouge_l("a", "a", measure="f1")


def test_many_follows_the_measure_with_hand_values():
    # "lee born oxford" against REF: P = 1, R = 3/6, F = 2/3 (test_hand_lcs_for_each_measure); the
    # repeated prediction is scored once, under the measure asked for; the default is the F-measure
    preds = ["Lee born Oxford", "Lee born Oxford", "x"]
    assert rouge_l_many(preds, REF) == [pytest.approx(2 / 3), pytest.approx(2 / 3), 0.0]
    assert rouge_l_many(preds, REF, measure="recall") == [pytest.approx(0.5), pytest.approx(0.5), 0.0]
    assert rouge_l_many(preds, REF, measure="precision") == [1.0, 1.0, 0.0]
