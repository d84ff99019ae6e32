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


# A per-seed value equal to the threshold separates ">=" from ">" and "<=" from "<" (packages use
# checks such as ">= 0" on metrics that can be exactly 0); with identical seeds the bootstrap CI is
# the single point [0.5, 0.5], so the mean path is decided at the boundary too.
@pytest.mark.parametrize(
    ("check", "verdict"), [(">= 0.5", "holds"), ("> 0.5", "fails"), ("<= 0.5", "holds"), ("< 0.5", "fails")]
)
def test_a_value_equal_to_the_threshold_follows_the_operator(check, verdict):
    for agg in ("mean", "min", "max"):
        r = evaluate_claim(claim(check, agg), [0.5, 0.5, 0.5])
        assert r["verdict"] == verdict, agg
        assert r["value"] == 0.5


def test_max_is_the_largest_seed_and_min_the_smallest():
    r = evaluate_claim(claim("<= 0.65", "max"), [0.6, 0.7, 0.4])
    assert (r["value"], r["verdict"], r["n"]) == (0.7, "fails", 3)
    r = evaluate_claim(claim(">= 0.3", "min"), [0.6, 0.7, 0.4])
    assert (r["value"], r["verdict"], r["ci95"]) == (0.4, "holds", None)


def test_mean_claim_record_by_hand():
    # values 0.1, 0.9, 0.5, 0.2, 0.8: mean 0.5, squared deviations 0.16 + 0.16 + 0 + 0.09 + 0.09 = 0.5,
    # Bessel std sqrt(0.5 / 4); the percentile bootstrap CI is about [0.22, 0.76]
    values = [0.1, 0.9, 0.5, 0.2, 0.8]
    r = evaluate_claim(claim("> 0.45"), values)
    assert r["value"] == pytest.approx(0.5, abs=1e-12)
    assert r["std"] == pytest.approx((0.5 / 4) ** 0.5, abs=1e-12)
    assert r["n"] == 5
    lo, hi = r["ci95"]
    assert lo < 0.5 < hi


def test_ci_straddling_is_inconclusive_whichever_side_the_mean_is_on():
    values = [0.1, 0.9, 0.5, 0.2, 0.8]  # mean 0.5, CI about [0.22, 0.76]
    # mean and lower end satisfy "< 0.6", the upper end does not
    assert evaluate_claim(claim("< 0.6"), values)["verdict"] == "inconclusive"
    # the mean violates "> 0.6" but the upper end satisfies it: not a failure
    assert evaluate_claim(claim("> 0.6"), values)["verdict"] == "inconclusive"
    # whole interval on the right side of a "<" check
    assert evaluate_claim(claim("< 0.9"), values)["verdict"] == "holds"


def test_one_seed_reason_says_there_is_no_interval():
    assert "one seed" in evaluate_claim(claim("< 1"), [0.5])["reason"]
    assert "one seed" not in evaluate_claim(claim("< 1"), [0.5, 0.6])["reason"]


def test_all_claim_value_is_the_fraction_of_true_seeds():
    r = evaluate_claim(claim(agg="all"), [True, False, True, True])
    assert (r["value"], r["n"], r["verdict"]) == (0.75, 4, "fails")
    assert r["reason"] == "3/4 seeds"
    assert r["check"] == "true for every seed"


def test_missing_seed_record_counts_every_seed():
    r = evaluate_claim(claim(), [0.9, None, 0.8])
    assert (r["n"], r["value"], r["verdict"]) == (3, None, "inconclusive")
    r = evaluate_claim(claim(), [None, None])
    assert (r["n"], r["value"], r["verdict"]) == (0, None, "inconclusive")


@pytest.mark.parametrize(
    ("check", "parsed"),
    [(">= -0.01", (">=", -0.01)), ("<= 1e-3", ("<=", 0.001)), ("> +2", (">", 2.0)), ("< .5", ("<", 0.5))],
)
def test_check_parses_signed_and_exponent_thresholds(check, parsed):
    assert claim(check).op_threshold == parsed


def test_negative_threshold_decides_the_verdict():
    # "a drop of at most 0.01": a value of -0.005 satisfies ">= -0.01", -0.02 does not
    assert evaluate_claim(claim(">= -0.01", "min"), [-0.005, 0.0])["verdict"] == "holds"
    assert evaluate_claim(claim(">= -0.01", "min"), [-0.02, 0.0])["verdict"] == "fails"


@pytest.mark.parametrize("bad", [">= 0.5 and more", "> 1 1", "<= 2x"])
def test_trailing_text_after_the_threshold_is_rejected(bad):
    with pytest.raises(ValueError, match="check"):
        claim(bad)


def test_claim_defaults_and_an_all_claim_needs_no_numeric_check():
    c = Claim(id="c", statement="s", metric="e/m")
    assert (c.agg, c.op_threshold) == ("mean", (">", 0.5))
    # agg="all" is judged per seed (true for every seed), so its check is free text (packages pass "")
    assert Claim(id="a", statement="s", metric="e/ok", check="", agg="all").op_threshold == ("==", 1.0)
    with pytest.raises(ValueError, match="unknown scales"):
        Claim(id="c", statement="s", metric="e/m", scales=("huge",))
