"""The protocol of reproduce.py pinned to the paper notes (``../shared/papers/notes-llm.md`` §1) and to hand
derivations (second fidelity audit): claim thresholds, the collapse rule of claims (b), the validation score,
the NPO beta and the forget share."""

from __future__ import annotations

from pathlib import Path

import pytest
from tru.experiment import val_score

from xentlab.testing import load_reproduce

REPRO = load_reproduce(Path(__file__).parents[1] / "reproduce.py")


def _m(**kw):
    # TRU forgot everything (forget EM 0.10); GA's numbers come from kw
    base = {"tru/forget_em": 0.10, "ga/forget_em": 0.0, "ga/forget_gibberish": 0.0, "ga/retain_drop": 0.0}
    return base | {f"ga/{k}": v for k, v in kw.items()}


def test_collapse_needs_the_same_forget_level_and_gibberish_or_retain_loss():
    collapse = REPRO._collapse
    # notes, claim (b): gibberish > 50% or retain EM down > 20 points, at TRU's forget level (within 5 points)
    assert collapse(_m(forget_gibberish=0.51), "ga") == 1.0
    assert collapse(_m(forget_gibberish=0.50), "ga") == 0.0  # strictly more than half
    assert collapse(_m(retain_drop=0.21), "ga") == 1.0
    assert collapse(_m(retain_drop=0.20), "ga") == 0.0  # strictly more than 20 points
    # forgot less than TRU: 0.16 > 0.10 + 0.05 is not "the same forget level", whatever the collapse
    assert collapse(_m(forget_em=0.16, forget_gibberish=1.0), "ga") == 0.0
    assert collapse(_m(forget_em=0.14, forget_gibberish=1.0), "ga") == 1.0


def test_validation_score_rewards_forgetting_and_retaining_equally():
    # (1 - forget EM) + retain EM: 0.75 + 0.5
    assert val_score(0.25, 0.5) == pytest.approx(1.25)
    assert val_score(0.0, 1.0) == 2.0 and val_score(1.0, 0.0) == 0.0


def test_claim_thresholds_are_the_notes():
    claims = {c.id: c for c in REPRO.CLAIMS}
    # (a) coherent refusal >= 90% and retain EM within 5 points; (c) refusal-only over-refuses more
    assert (claims["tru-coherent-refusal"].metric, claims["tru-coherent-refusal"].check) == (
        "tru/forget_refusal",
        ">= 0.9",
    )
    assert (claims["tru-keeps-retain"].metric, claims["tru-keeps-retain"].check) == (
        "tru/retain_drop",
        "<= 0.05",
    )
    assert claims["refusal-only-over-refuses"].check == "> 0"
    # (b) must hold on every seed
    assert claims["ga-collapses"].agg == "all" and claims["graddiff-collapses"].agg == "all"


def test_npo_beta_forget_share_and_alpha_grid():
    cpu = REPRO.UNLEARN["cpu"]
    assert cpu["beta"] == 0.1 and REPRO.FULL["beta"] == 0.1  # NPO beta of the notes / NPO's TOFU default
    assert REPRO.BASE["cpu"]["task"]["forget_frac"] == 0.1  # 10% of the authors
    # alpha from the notes' sweep {0.1, 0.5, 1.0} (0.1 dropped, README); every method gets the same budget
    assert {a for _, a in cpu["grid"]} <= {0.1, 0.5, 1.0}
    assert {lr for lr, _ in cpu["grid"]} <= set(cpu["lrs"])
