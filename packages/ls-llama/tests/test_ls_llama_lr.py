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


def _script(name: str):
    saved = list(sys.path)  # select_lr.py puts the package root on sys.path; keep the test process clean
    try:
        spec = importlib.util.spec_from_file_location(f"_ls_llama_{name}", PKG / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


def _select_lr():
    return _script("select_lr")


def test_cpu_lr_has_one_source_of_truth():
    rep = load_reproduce(PKG / "reproduce.py")
    assert FinetuneConfig().lr == CPU_PEAK_LR == rep.FT["lr"]
    for exp in rep.EXPERIMENTS:
        for scale in ("smoke", "cpu"):
            cfg = exp.configs.get(scale)
            if cfg is not None:
                assert cfg["ft"]["lr"] == CPU_PEAK_LR, (exp.name, scale)


def test_cpu_lr_is_the_selected_one():
    # the first pilot chose 4e-3, the continuation (grid extended to 1.6e-2) kept it; the latest selection on
    # record is the re-selection under per-arm dropout streams (all six lrs, NER jobs rescored)
    first = json.loads((PKG / "scripts" / "select_lr_result.json").read_text())
    cont = json.loads((PKG / "scripts" / "select_lr_continuation_result.json").read_text())
    assert first["chosen_lr"] == cont["incumbent"] == 4e-3 and cont["recheck_ok"]
    rng = json.loads((PKG / "scripts" / "select_lr_rng_result.json").read_text())
    assert rng["incumbent"] == cont["chosen_lr"] and rng["recheck_ok"]
    # since the fifth cpu run the latest is the re-selection at the 18-epoch NER budget (NER jobs rescored)
    latest = json.loads((PKG / "scripts" / "select_lr_ep18_result.json").read_text())
    for sel in (rng, latest):
        assert sorted(sel["candidates"]) == sorted(first["candidates"] + cont["candidates"])
        assert sel["exps_scored"] == ["right", "left"] and sel["reused_from_merge"] == ["seqclf"]
    assert latest["incumbent"] == rng["chosen_lr"]
    assert latest["chosen_lr"] == CPU_PEAK_LR


def test_cpu_lr_was_selected_at_the_ner_budget_in_use():
    # the lr is chosen for a budget (the linear decay spans all epochs): every NER job of the latest selection
    # trained as many epochs as the committed NER cpu configs (18 since the fifth run), and both NER tasks share
    # one budget (the epoch rule raises every NER arm and task together)
    rep = load_reproduce(PKG / "reproduce.py")
    cfgs = {e.name: e.configs["cpu"] for e in rep.EXPERIMENTS if e.name in ("right", "left")}
    assert cfgs["right"]["epochs"] == cfgs["left"]["epochs"] == rep.NER_EPOCHS == 18
    latest = json.loads((PKG / "scripts" / "select_lr_ep18_result.json").read_text())
    ner_jobs = [j for j in latest["jobs"] if j["exp"] in cfgs]
    assert len(ner_jobs) == 2 * len(latest["candidates"])
    for job in ner_jobs:
        for arm in job["arms"].values():
            assert len(arm["val_curve"]) == cfgs[job["exp"]]["epochs"], (job["exp"], job["lr"])
            assert 0 <= arm["best_epoch"] < cfgs[job["exp"]]["epochs"]


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


def test_stored_job_is_the_first_match_over_the_merge_files():
    sl = _select_lr()
    first = {"jobs": [{"exp": "seqclf", "lr": 4e-3, "arms": {"label_head": {"val": 1.0}}}]}
    cont = {"jobs": [{"exp": "seqclf", "lr": 8e-3, "arms": {}}, {"exp": "seqclf", "lr": 4e-3, "arms": {}}]}
    assert sl._stored_job([first, cont], "seqclf", 4e-3) is first["jobs"][0]  # the order given wins
    assert sl._stored_job([first, cont], "seqclf", 8e-3) is cont["jobs"][0]
    with pytest.raises(SystemExit, match="no such job"):
        sl._stored_job([first, cont], "right", 4e-3)


def test_epoch_budget_rule_by_hand():
    eb = _script("check_epoch_budget")
    assert eb.ADDED == 4 and eb.TIE_POINTS == 1.0
    # last epoch 6.0 against the best of the epochs before the last four (5.0): +1.0 is a tie, not rising
    assert eb.late_gain([0.0, 5.0, 3.0, 2.0, 4.0, 6.0]) == pytest.approx(1.0)
    assert not eb.still_rising([0.0, 5.0, 3.0, 2.0, 4.0, 6.0])
    assert eb.still_rising([0.0, 5.0, 3.0, 2.0, 4.0, 6.5])
    # a peak inside the last four epochs does not count: only the last epoch is compared
    assert eb.late_gain([0.0, 5.0, 9.0, 9.0, 9.0, 4.0]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="no epoch before"):
        eb.late_gain([1.0, 2.0, 3.0, 4.0])
