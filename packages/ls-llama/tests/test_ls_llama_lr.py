"""The cpu peak lr has one source of truth (``CPU_PEAK_LR``), equal to what the validation-only selection
chose, and the selection rule of scripts/select_lr.py (README, "Learning-rate re-selection")."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from ls_llama.train import CPU_PEAK_LR, FinetuneConfig

from xentlab.testing import load_reproduce

PKG = Path(__file__).parents[1]


def _select_lr():
    saved = list(sys.path)  # the script puts the package root on sys.path; keep the test process clean
    try:
        spec = importlib.util.spec_from_file_location("_ls_llama_select_lr", PKG / "scripts" / "select_lr.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


def test_cpu_lr_has_one_source_of_truth():
    rep = load_reproduce(PKG / "reproduce.py")
    assert FinetuneConfig().lr == CPU_PEAK_LR == rep.FT["lr"]
    for exp in rep.EXPERIMENTS:
        for scale in ("smoke", "cpu"):
            cfg = exp.configs.get(scale)
            if cfg is not None:
                assert cfg["ft"]["lr"] == CPU_PEAK_LR, (exp.name, scale)


def test_cpu_lr_is_the_selected_one():
    # the continuation (4e-3 incumbent, grid extended to 1.6e-2) is the latest selection on record
    first = json.loads((PKG / "scripts" / "select_lr_result.json").read_text())
    cont = json.loads((PKG / "scripts" / "select_lr_continuation_result.json").read_text())
    assert first["chosen_lr"] == cont["incumbent"] == 4e-3 and cont["recheck_ok"]
    assert cont["chosen_lr"] == CPU_PEAK_LR


def test_decide_rule():
    sl = _select_lr()
    # first pilot (incumbent 2e-3): the best lr wins only by more than TIE_POINTS (1.0) points
    assert sl.decide({5e-4: 44.2, 2e-3: 56.4, 4e-3: 65.7}) == 4e-3
    assert sl.decide({2e-3: 56.4, 4e-3: 57.4}) == 2e-3  # +1.0 exactly: a tie keeps the incumbent
    assert sl.decide({2e-3: 56.4, 4e-3: 57.5}) == 4e-3
    # continuation: incumbent 4e-3, a better new point must clear the same margin over it
    assert sl.decide({2e-3: 56.4, 4e-3: 65.7, 8e-3: 66.5}, incumbent=4e-3) == 4e-3
    assert sl.decide({2e-3: 56.4, 4e-3: 65.7, 8e-3: 66.8, 1.6e-2: 60.0}, incumbent=4e-3) == 8e-3
    assert sl.decide({4e-3: 65.7, 8e-3: 50.0}, incumbent=4e-3) == 4e-3
    with pytest.raises(ValueError, match="incumbent"):
        sl.decide({8e-3: 1.0}, incumbent=4e-3)
