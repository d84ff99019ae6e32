"""AUC and TPR@5%FPR on a hand-made ROC; the official strict "FPR < 0.05" convention."""

from __future__ import annotations

import numpy as np
import pytest
from dc_pdd.experiment import A_GRID, choose_a
from dc_pdd.metrics import detection_metrics

# 20 non-members: 19 low scores and one at 0.95; 4 members at 0.99, 0.97, 0.5, 0.3
NON = [i / 100 for i in range(19)] + [0.95]
MEM = [0.99, 0.97, 0.5, 0.3]
SCORES = np.array(MEM + NON)
LABELS = np.array([1] * 4 + [0] * 20)


def test_auc_by_pair_count():
    # pairs won: 0.99 and 0.97 beat all 20, 0.5 and 0.3 beat 19 -> 78 / 80
    assert detection_metrics(SCORES, LABELS)["auc"] == pytest.approx(78 / 80)


def test_tpr_at_strict_fpr():
    # threshold 0.97: TPR 2/4 at FPR 0. Lowering it past 0.95 makes FPR = 1/20 = 0.05, which the
    # official rule (last FPR < 0.05) excludes, so TPR@5%FPR = 0.5 (an FPR <= 0.05 rule would give 1.0)
    assert detection_metrics(SCORES, LABELS)["tpr5"] == 0.5
    assert detection_metrics(SCORES, LABELS, fpr_max=0.051)["tpr5"] == 1.0


def test_metric_errors():
    with pytest.raises(ValueError, match="at least one member"):
        detection_metrics([0.1, 0.2], [0, 0])
    with pytest.raises(ValueError, match="0 \\(non-member\\) or 1"):
        detection_metrics([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="finite"):
        detection_metrics([0.1, np.nan], [0, 1])


def test_choose_a_takes_the_best_dev_auc():
    y = np.array([1, 1, 0, 0])
    dev = {f"dc_pdd@{a:g}": np.array([0.0, 0.0, 0.0, 0.0]) for a in A_GRID}
    dev["dc_pdd@5"] = np.array([0.9, 0.8, 0.1, 0.2])  # perfect at a = 5 only
    assert choose_a(dev, y) == 5.0
    tie = {f"dc_pdd@{a:g}": np.array([0.9, 0.8, 0.1, 0.2]) for a in A_GRID}
    assert choose_a(tie, y) == A_GRID[0]  # ties: the first of the grid
