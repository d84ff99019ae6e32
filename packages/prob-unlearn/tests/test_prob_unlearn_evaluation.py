"""The shared evaluation block: the ED score and the two binary leak events of M_bin."""

from pathlib import Path

import numpy as np
import pytest
from prob_unlearn.evaluation import QA, _leaks, ed_score


def test_ed_score_is_mu_plus_two_sigma():
    # ED = M_mu + 2 M_sigma: 0.5 + 2 * 0.1 = 0.7, 0.2 + 2 * 0.4 = 1.0
    np.testing.assert_allclose(ed_score(np.array([0.5, 0.2]), np.array([0.1, 0.4])), [0.7, 1.0])
    assert ed_score(0.5, 0.1, k=3.0) == pytest.approx(0.8)


def test_leak_event_value_in_answer_case_insensitive():
    qa = QA(prompt="p", answer="She was born in Oslo.", question="q", value="Oslo")
    texts = ["born in OSLO", "born in Bergen", "oslo"]
    # the ROUGE scores are ignored when the QA names its value
    np.testing.assert_array_equal(_leaks(texts, np.array([0.0, 1.0, 0.0]), qa, 0.5), [1.0, 0.0, 1.0])


def test_leak_event_rouge_threshold_without_value():
    qa = QA(prompt="p", answer="a", question="q")
    np.testing.assert_array_equal(_leaks(["x"] * 3, np.array([0.49, 0.5, 1.0]), qa, 0.5), [0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="leak_threshold"):
        _leaks(["x"], np.array([0.7]), qa, None)


def test_a_variant_does_not_depend_on_the_variants_before_it(tmp_path):
    """The eo_all arm is paired by seed with "unlearn": a variant's numbers must not depend on which
    variants ran before it in the unit, nor on whether the original model was evaluated first."""
    from types import SimpleNamespace

    from prob_unlearn.experiment import run_seed

    from xentlab.testing.reproduce_module import load_reproduce

    repro = load_reproduce(Path(__file__).parents[1] / "reproduce.py")
    cfg = {**repro.CONFIGS["smoke"], "finetune_steps": 2, "n_samples": 4}
    ctx = SimpleNamespace(log=lambda **k: None, progress=lambda it, desc=None: it)
    gd_all = repro.EO_ALL_VARIANTS[1]
    alone = run_seed({**cfg, "variants": [gd_all], "eval_base": False}, 0, ctx)
    after = run_seed({**cfg, "variants": [repro.VARIANTS[0], gd_all]}, 0, ctx)
    for k, v in alone.items():
        assert after[k] == v, k
    assert "base_ed" in after and "base_ed" not in alone
