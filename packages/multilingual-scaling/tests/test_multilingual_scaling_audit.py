"""Fidelity audit: the metrics and the p* objective against hand derivations (float64). No official code
exists; the law's form is the secondary summary's (README), so these pin the package's own definitions."""

from __future__ import annotations

import numpy as np
from multilingual_scaling.experiment import rel_spread, weighted_normalised_loss
from multilingual_scaling.law import mixture_objective, optimal_ratios

from xentlab.testing import assert_close


def test_weighted_normalised_loss_and_spread_hand_values():
    # sum_i w_i L_i / H_i = (1.6/0.8 + 1.5/1.0 + 1.2/1.2) / 3 = (2 + 1.5 + 1) / 3 = 1.5
    assert abs(weighted_normalised_loss([1.6, 1.5, 1.2], [0.8, 1.0, 1.2], [1 / 3] * 3) - 1.5) <= 1e-15
    # (max - min) / mean = (1.85 - 1.62) / 1.735 for means (1.62, 1.735, 1.85)
    assert abs(rel_spread([1.62, 1.735, 1.85]) - 0.23 / 1.735) <= 1e-15


def test_pstar_objective_is_the_law_and_k_normalised_form_depends_on_gamma_only():
    # c_i = w_i K_i / R_i: with R_i = K_i (each family's own p_i = 1 loss, the paper-like normaliser,
    # README deviations) c_i = w_i, so p* does not depend on K (nor on N, D through K).
    g = np.array([0.24, 0.15, 0.19])
    w = np.full(3, 1 / 3)
    k1, k2 = np.array([1.3, 1.4, 1.5]), np.array([3.0, 0.7, 9.0])
    assert_close(optimal_ratios(w * k1 / k1, g), optimal_ratios(w * k2 / k2, g), rtol=1e-12, atol=0.0)
    # and the objective is sum_i c_i p_i^-gamma_i by hand at p = (0.5, 0.25, 0.25)
    p, c = np.array([0.5, 0.25, 0.25]), np.array([1.0, 2.0, 3.0])
    ref = 1.0 * 0.5**-0.24 + 2.0 * 0.25**-0.15 + 3.0 * 0.25**-0.19
    assert abs(mixture_objective(p, c, g) - ref) <= 1e-13
