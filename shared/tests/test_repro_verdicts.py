import pytest

from xentlab.repro import Claim, evaluate_claim


def claim(check=">= 0.5", agg="mean"):
    return Claim(id="c", statement="s", metric="e/m", check=check, agg=agg)


def test_mean_claim_holds_when_whole_ci_passes():
    assert evaluate_claim(claim(">= 0.5"), [0.9, 0.91, 0.92])["verdict"] == "holds"


def test_mean_claim_fails_when_whole_ci_violates():
    assert evaluate_claim(claim(">= 0.5"), [0.1, 0.12, 0.11])["verdict"] == "fails"


def test_mean_claim_inconclusive_when_ci_straddles():
    # mean 0.5 +- wide spread: the percentile bootstrap CI covers values on both sides of 0.45
    r = evaluate_claim(claim("> 0.45"), [0.1, 0.9, 0.5, 0.2, 0.8])
    assert r["verdict"] == "inconclusive"
    assert r["ci95"][0] < 0.45 < r["ci95"][1]


def test_single_seed_is_decided_by_its_value():
    assert evaluate_claim(claim("< 1"), [0.5])["verdict"] == "holds"
    assert evaluate_claim(claim("< 1"), [1.5])["verdict"] == "fails"


def test_min_max_all():
    assert evaluate_claim(claim(">= 0.5", "min"), [0.6, 0.7, 0.4])["verdict"] == "fails"
    assert evaluate_claim(claim("<= 0.8", "max"), [0.6, 0.7, 0.4])["verdict"] == "holds"
    assert evaluate_claim(claim(agg="all"), [True, True, True])["verdict"] == "holds"
    assert evaluate_claim(claim(agg="all"), [True, False, True])["verdict"] == "fails"


def test_missing_or_nan_values_are_inconclusive():
    assert evaluate_claim(claim(), [None])["verdict"] == "inconclusive"
    assert evaluate_claim(claim(), [0.9, None])["verdict"] == "inconclusive"
    assert evaluate_claim(claim(), [0.9, float("nan")])["verdict"] == "inconclusive"


@pytest.mark.parametrize("bad", ["0.5", ">> 1", "= 1", ">= x"])
def test_bad_check_is_rejected(bad):
    with pytest.raises(ValueError, match="check"):
        claim(bad)


def test_bad_agg_is_rejected():
    with pytest.raises(ValueError, match="agg"):
        claim(agg="median")
