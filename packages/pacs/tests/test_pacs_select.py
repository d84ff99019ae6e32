"""The lr selection: per seed and method the lr with the best validation pass@1 is chosen, the
reported held-out metrics (and the claims' gaps) are those of that lr, and the held-out metrics
cannot influence the choice."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from pacs.select import exp_name, select_lr, selected_lr_fn, selected_metric_fn, validation_only

from xentlab.repro.runner import Results, aggregate
from xentlab.testing import load_reproduce

LRS = [2.5e-5, 5e-5, 1e-4]


def _unit(val: float, test: float) -> dict:
    return {"metrics": {"val_pass@1": val, "pass@1": test, "pass@16": test + 0.2}, "artifacts": {}}


class ValOnly(Mapping):
    """A seed's metrics that fail the test on any read of a non-validation entry."""

    def __init__(self, metrics: dict):
        self._m = metrics

    def __getitem__(self, key: str) -> float:
        assert key.rpartition("/")[2].startswith("val_"), f"the selection read {key!r}"
        return self._m[key]

    def __iter__(self) -> Iterator[str]:
        return (k for k in self._m if k.rpartition("/")[2].startswith("val_"))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def test_exp_names_are_distinct_and_valid_directory_names():
    names = [exp_name(m, lr) for m in ("pacs", "grpo") for lr in LRS]
    assert names[:3] == ["pacs-lr2.5e-05", "pacs-lr5.0e-05", "pacs-lr1.0e-04"]
    assert len(set(names)) == len(names)


def test_select_lr_takes_the_best_validation_pass1_and_the_first_lr_on_ties():
    m = {f"{exp_name('pacs', lr)}/val_pass@1": v for lr, v in zip(LRS, [0.20, 0.31, 0.30])}
    assert select_lr(m, "pacs", LRS) == 5e-5
    m[f"{exp_name('pacs', 1e-4)}/val_pass@1"] = 0.31  # a tie: the earlier (smaller) lr
    assert select_lr(m, "pacs", LRS) == 5e-5
    with pytest.raises(KeyError):  # a missing validation metric is an error, never a fallback
        select_lr(m, "grpo", LRS)
    with pytest.raises(ValueError, match="empty"):
        select_lr(m, "pacs", [])


def test_selection_cannot_read_test_metrics():
    flat = {}
    for lr, (val, test) in zip(LRS, [(0.25, 0.90), (0.30, 0.10), (0.28, 0.50)]):
        for k, v in _unit(val, test)["metrics"].items():
            flat[f"{exp_name('pacs', lr)}/{k}"] = v
    # 1. only val_* entries survive validation_only
    assert set(validation_only(flat)) == {f"{exp_name('pacs', lr)}/val_pass@1" for lr in LRS}
    # 2. select_lr reads nothing else (ValOnly fails on any other read)
    assert select_lr(ValOnly(flat), "pacs", LRS) == 5e-5
    # 3. the selected lr does not move whatever the held-out numbers are (here the best held-out
    #    pass@1 is at 2.5e-5 and the worst at the selected 5e-5)
    for scale in (0.0, 1.0, -3.0):
        perturbed = {k: (v if "/val_" in k else v * scale + 7.0) for k, v in flat.items()}
        assert selected_lr_fn("pacs", LRS)(perturbed) == 5e-5
    # 4. the reported held-out metric is the selected lr's, even though another lr is better on it
    assert selected_metric_fn("pacs", LRS, "pass@1")(flat) == pytest.approx(0.10)


def test_derived_metrics_report_the_selected_lr_per_seed_and_the_claims_read_them():
    """Hand-made per-lr units for two seeds through reproduce.py's own Derived list and the repro
    aggregation: the selected lr and the reported test numbers are known by construction."""
    rep = load_reproduce(Path(__file__).parents[1] / "reproduce.py")
    lrs = rep.LR_GRID["cpu"]
    assert lrs == sorted(lrs) and len(lrs) >= 2
    lo, hi = lrs[0], lrs[-1]
    # seed 0: PACS is better on validation at lo, GRPO at hi; seed 1 the other way round.
    # held-out numbers are set so that the wrong (unselected) lr would give other answers
    val = {(0, "pacs"): {lo: 0.40, hi: 0.30}, (0, "grpo"): {lo: 0.30, hi: 0.35}}
    val |= {(1, "pacs"): {lo: 0.20, hi: 0.25}, (1, "grpo"): {lo: 0.33, hi: 0.32}}
    test = {lo: 0.30, hi: 0.10}
    res = Results(scale="cpu", seeds=[0, 1])
    res.per_seed["sft"] = {s: {"metrics": {"pass@1": 0.20, "pass@16": 0.50}} for s in (0, 1)}
    for method in ("pacs", "grpo"):
        for lr in lrs:
            name = exp_name(method, lr)
            res.per_seed[name] = {}
            for s in (0, 1):
                t = test.get(lr, 0.0) + (0.05 if method == "pacs" else 0.0)
                v = val[(s, method)].get(lr, 0.0)
                res.per_seed[name][s] = {
                    "metrics": {"val_pass@1": v, "pass@1": t, "pass@16": t + 0.4, "train_reward_last10": t},
                }
    derived = [d for d in rep.DERIVED if d.scales is None or "cpu" in d.scales]
    aggregate(res, derived)
    per = {k: v["per_seed"] for k, v in res.metrics.items()}
    assert per["pacs/lr"] == {"0": lo, "1": hi} and per["grpo/lr"] == {"0": hi, "1": lo}
    assert per["pacs/pass@1"] == pytest.approx({"0": 0.35, "1": 0.15})
    assert per["grpo/pass@1"] == pytest.approx({"0": 0.10, "1": 0.30})
    assert per["pacs/val_pass@1"] == pytest.approx({"0": 0.40, "1": 0.25})
    # the claims' metrics are the selected runs' gaps
    assert per["gap/pacs_minus_sft_pass@1"] == pytest.approx({"0": 0.15, "1": -0.05})
    assert per["gap/pacs_minus_grpo_pass@16"] == pytest.approx({"0": 0.25, "1": -0.15})
    claim_metrics = {c.metric for c in rep.CLAIMS}
    assert claim_metrics <= set(per)
