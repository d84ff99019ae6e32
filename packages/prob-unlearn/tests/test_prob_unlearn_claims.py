"""Claim (a)'s metric and the claims' thresholds against hand values (second fidelity audit): the notes'
"M_mu or M_bin exceeds the greedy value by >= 0.1", each bound against the greedy number of its own scale."""

from pathlib import Path

import pytest

from xentlab.testing import load_reproduce

REPRO = load_reproduce(Path(__file__).parents[1] / "reproduce.py")


def _metrics(m_mu, greedy_rouge, m_bin, greedy_leak):
    return {"unlearn/ga_m_mu": m_mu, "unlearn/ga_greedy_rouge": greedy_rouge,
            "unlearn/ga_m_bin": m_bin, "unlearn/ga_greedy_leak": greedy_leak}  # fmt: skip


def test_claim_a_takes_the_larger_of_the_two_bound_gaps():
    gap = REPRO._gap("ga")
    # M_mu - greedy ROUGE-L = 0.372 - 0.246 = 0.126; M_bin - greedy disclosure = 0.072 - 0.021 = 0.051
    assert gap(_metrics(0.372, 0.246, 0.072, 0.021)) == pytest.approx(0.126)
    # the binary bound wins when its gap is larger: 0.40 - 0.05 = 0.35 > 0.30 - 0.25
    assert gap(_metrics(0.30, 0.25, 0.40, 0.05)) == pytest.approx(0.35)


def test_claim_thresholds():
    claims = {c.id: c for c in REPRO.CLAIMS}
    for m in ("ga", "gd", "npo"):
        assert claims[f"a-{m}-sampling-exceeds-greedy"].check == ">= 0.1"
        assert claims[f"b-{m}-eo-lowers-ed"].check == "> 0"
        assert claims[f"b-{m}-eo-keeps-retain"].check == ">= -0.05"  # within 5 points
        assert claims[f"b-{m}-eo-all-lowers-ed"].check == "> 0"
        assert claims[f"b-{m}-eo-all-keeps-retain"].check == ">= -0.05"
    cpu = REPRO.CONFIGS["cpu"]
    assert (cpu["alpha"], cpu["n_samples"], cpu["top_p"], cpu["temperature"]) == (0.01, 128, 0.9, 1.0)
