"""The experiment pipeline: agreement metrics, shared student init across arms, smoke run, and the
full-scale CIFAR-100 path end to end on a fixture written here."""

from pathlib import Path

import pytest
import torch
from pld.experiment import RunConfig, rank_agreement, run

from xentlab.repro.context import RunContext
from xentlab.repro.local_data import MissingLocalData
from xentlab.testing import load_reproduce, run_smoke
from xentlab.testing.fixtures import write_cifar

REPRO = Path(__file__).parents[1] / "reproduce.py"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    # teachers and generated data go to a throw-away cache, never the user's
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path_factory.getbasetemp() / "xentlab-cache"))


def test_rank_agreement_hand_values():
    t = torch.tensor([[3.0, 2.0, 1.0], [0.0, 1.0, 2.0]])
    same = rank_agreement(t * 2 + 1, t)  # a monotone map keeps every rank
    assert same["agree_top1"] == 1.0 and abs(same["spearman"] - 1.0) < 1e-12
    rev = rank_agreement(-t, t)  # reversed ranking: Spearman -1, top-1 never agrees
    assert rev["agree_top1"] == 0.0 and abs(rev["spearman"] + 1.0) < 1e-12


def test_config_rejects_unknown_loss():
    with pytest.raises(ValueError, match="loss must be one of"):
        RunConfig(loss="dist")


def _ctx(tmp_path, scale="smoke"):
    return RunContext(scale=scale, seed=0, device=torch.device("cpu"), experiment="t", unit_dir=tmp_path,
                      log_path=tmp_path / "log.jsonl", show_progress=False)  # fmt: skip


def test_arms_share_the_student_init_and_are_deterministic():
    mod = load_reproduce(REPRO)
    cfg = {**mod.SMOKE, "epochs": 0}  # no training: the returned student is its initialisation
    outs = [run(RunConfig(**{**cfg, **mod.ARMS[a]}), seed=3) for a in ("ce", "pld", "kd")]
    assert len({o["test_acc"] for o in outs}) == 1 and len({o["test_nll"] for o in outs}) == 1
    a = run(RunConfig(**{**mod.SMOKE, **mod.ARMS["pld"]}), seed=3)
    b = run(RunConfig(**{**mod.SMOKE, **mod.ARMS["pld"]}), seed=3)
    assert a["test_acc"] == b["test_acc"] and a["test_nll"] == b["test_nll"]


def test_full_scale_runs_on_a_cifar100_fixture(tmp_path, monkeypatch):
    root = write_cifar(tmp_path / "data", "cifar100", n_train=24, n_test=6, labels="cycle")
    mod = load_reproduce(REPRO)
    monkeypatch.setenv("PLD_DATA_ROOT", str(root))
    full = {**mod.EXPERIMENTS[2].configs["full"], "epochs": 1, "teacher_epochs": 1, "batch_size": 12}
    assert (full["student"], full["teacher"], full["loss"]) == ("resnet20", "resnet56", "pld")
    out = mod.train_arm(full, 0, _ctx(tmp_path, "full"))
    assert 0.0 <= out["test_acc"] <= 1.0 and "val_acc" not in out  # the paper has no validation split
    assert torch.isfinite(torch.tensor(out["test_nll"]))


def test_full_scale_without_data_says_what_to_set(tmp_path, monkeypatch):
    monkeypatch.delenv("PLD_DATA_ROOT", raising=False)
    mod = load_reproduce(REPRO)
    with pytest.raises(MissingLocalData, match="PLD_DATA_ROOT"):
        mod.train_arm(mod.EXPERIMENTS[0].configs["full"], 0, _ctx(tmp_path, "full"))


def test_smoke(tmp_path):
    result = run_smoke(REPRO, tmp_path)
    assert result["package"] == "pld"
    assert {"gain/pld_vs_ce", "gain/pld_vs_kd", "pld/test_spearman"} <= set(result["metrics"])
