"""The meta-val budget rule (hand-worked curves), the seed-count rule, and that reproduce.py uses the pilot's
choice."""

import json
from pathlib import Path

import pytest
from susana.budget import plateau_budget, seeds_for_budget

from xentlab.testing import load_reproduce

PKG = Path(__file__).parents[1]
EPS = [200, 400, 600, 800, 1000, 1200]
CANDS = [400, 800, 1200]


def test_plateau_budget_hand_curves():
    # still rising: best 70 at 1200; window at 400 = {40, 50} -> 50, at 800 = {60, 62, 64} -> 64 < 69
    assert plateau_budget(EPS, [40, 50, 60, 62, 64, 70], CANDS, 3, 1.0) == 1200
    # plateau from 600: best 66; window at 400 -> 55 < 65; window at 800 = {55, 65.5, 66} -> 66 >= 65
    assert plateau_budget(EPS, [45, 55, 65.5, 66, 65, 65.8], CANDS, 3, 1.0) == 800
    # a single late spike of +0.5 does not count with delta 1; with delta 0 it does
    curve = [60, 65, 65, 65, 65, 65.5]
    assert plateau_budget(EPS, curve, CANDS, 3, 1.0) == 400
    assert plateau_budget(EPS, curve, CANDS, 3, 0.0) == 1200
    # k = 1 looks only at the evaluation at B: 800's value 60 is a dip, 1200 reaches the best
    assert plateau_budget(EPS, [50, 66, 64, 60, 63, 66], CANDS, 1, 1.0) == 400
    assert plateau_budget(EPS, [50, 60, 64, 60, 63, 66], CANDS, 1, 1.0) == 1200
    # evaluations past the largest candidate are ignored
    assert plateau_budget(EPS, [50, 66, 64, 60, 63, 90], [400, 800], 3, 1.0) == 400


def test_plateau_budget_errors():
    with pytest.raises(ValueError, match="before the largest candidate"):
        plateau_budget(EPS, [1] * 6, [1400], 3, 1.0)
    with pytest.raises(ValueError, match="increasing"):
        plateau_budget([200, 200], [1, 2], [200], 3, 1.0)
    with pytest.raises(ValueError, match="k >= 1"):
        plateau_budget(EPS, [1] * 6, CANDS, 0, 1.0)


def test_seeds_for_budget():
    # 720 / (0.0683 * 1200) = 8.78 -> 8; / (... * 3600) = 2.93 -> clipped up to 3
    per = 246.0 / 3600
    assert seeds_for_budget(1200, 720.0, per, 3, 8) == 8
    assert seeds_for_budget(2400, 720.0, per, 3, 8) == 4
    assert seeds_for_budget(3600, 720.0, per, 3, 8) == 3
    assert seeds_for_budget(600, 720.0, per, 3, 8) == 8


def test_reproduce_uses_the_pilot_choice():
    sel = json.loads((PKG / "results" / "budget_selection.json").read_text())
    mod = load_reproduce(PKG / "reproduce.py")
    assert mod.CPU["episodes"] == sel["chosen_episodes"]
    assert mod.CPU_SEEDS == list(range(sel["n_seeds"]))
    assert all(r["budget"] <= sel["chosen_episodes"] for r in sel["pilots"])


def test_pilot_script_uses_the_cpu_config_and_keeps_the_constant_lr_record():
    # fifth protocol fix: the default pilot trains the cpu config as it is (the author's lr schedule); the flag
    # --constant-lr re-runs the first pilot (lr_step=None) into its own file, the committed v3 record
    script = load_reproduce(PKG / "scripts" / "select_budget.py")
    mod = load_reproduce(PKG / "reproduce.py")
    for arm in ("ce", "ce_icnn"):
        sched = script.pilot_config(arm, constant_lr=False)
        const = script.pilot_config(arm, constant_lr=True)
        assert sched == {**mod.CPU, **mod.ARMS[arm], "episodes": 3600}
        assert sched["lr_step"] == 2000 and const["lr_step"] is None
        assert {k: v for k, v in const.items() if k != "lr_step"} == {
            k: v for k, v in sched.items() if k != "lr_step"
        }
    assert script.output_path(False).name == "budget_selection.json"
    assert script.output_path(True).name == "budget_selection_constant_lr.json"
    old = json.loads(script.output_path(True).read_text())
    # the first pilot's outcome as recorded in the README (third protocol fix)
    assert (old["chosen_episodes"], old["n_seeds"]) == (3600, 3)
    assert [r["budget"] for r in old["pilots"]] == [3600, 2400, 2400]
