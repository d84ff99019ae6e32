"""Recall@K, the training step in each mode, determinism, errors, and the smoke run."""

from pathlib import Path

import pytest
import torch
from metrix.experiment import Embedder, RunConfig, metrix_step_loss, recall_at_k, run

from xentlab.testing import run_smoke

REPRO = Path(__file__).parents[1] / "reproduce.py"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path_factory.getbasetemp() / "xentlab-cache"))


def test_recall_at_k_hand_example():
    # 1-d points on the circle: items 0,1 (class 0) at angles 0 and 0.1; item 2 (class 1) at 0.05;
    # item 3 (class 1) at pi. Nearest of 0 is 2 (wrong), 2nd is 1 (right): R@1 misses, R@2 hits.
    ang = torch.tensor([0.0, 0.1, 0.05, 3.14159])
    emb = torch.stack([ang.cos(), ang.sin()], 1)
    r = recall_at_k(emb, torch.tensor([0, 0, 1, 1]), ks=(1, 2))
    # item 0 -> 2 (miss); item 1 -> 2 (miss); item 2 -> 0 or 1 (miss); item 3 -> nearest is 1 (miss)
    assert r[1] == 0.0
    # R@2: 0 -> {2,1} hit; 1 -> {2,0} hit; 2 -> {0,1} miss; 3 -> {1,2} hit
    assert r[2] == 0.75


@pytest.mark.parametrize("mode", ["baseline", "embed", "feature"])
@pytest.mark.parametrize("scheme", [0, 1])
def test_step_loss_finite_and_differentiable(mode, scheme):
    torch.manual_seed(0)
    model = Embedder(4, 8)
    x = torch.rand(12, 3, 8, 8)
    y = torch.tensor([0, 0, 0, 1, 1, 2, 3, 4, 4, 5, 6, 6])  # anchors with and without positives
    loss = metrix_step_loss(model, x, y, RunConfig(mode=mode), scheme, 0.6)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters())
    base = metrix_step_loss(model, x, y, RunConfig(mode="baseline"), scheme, 0.6)
    if mode != "baseline":
        assert loss.item() > base.item()  # the mixed term is added (strictly positive here)


def test_bad_mode():
    with pytest.raises(ValueError, match="unknown mode"):
        run(RunConfig(mode="input"), 0)


def test_smoke_and_determinism(tmp_path):
    result = run_smoke(REPRO, tmp_path)
    assert {"baseline/r1", "embed/r1", "feature/r1", "gain/feature_r1"} <= set(result["metrics"])
    cfg = RunConfig(mode="embed", n_train_classes=4, n_test_classes=4, n_per_class=8, channels=4,
                    embedding_size=8, batch_size=16, epochs=1)  # fmt: skip
    assert run(cfg, 3)["r1"] == run(cfg, 3)["r1"]


def test_test_split_is_an_independent_draw():
    # audit 2 defect: both class sets were rendered with generator seed 0, so test image i had exactly the
    # pose, colours, texture and background of training image i (and the same class index), so a nuisance
    # pattern memorised for training class k reappeared in test class k. The test split must be a fresh draw.
    from metrix.experiment import load_split

    cfg = RunConfig(n_train_classes=4, n_test_classes=4, n_per_class=10)
    (x_tr, y_tr), (x_te, y_te) = load_split(cfg)
    assert len(x_tr) == len(x_te) == 40
    same_corner = (x_tr[:, :, 0, 0] == x_te[:, :, 0, 0]).all(1).float().mean().item()
    assert same_corner < 0.2, f"{same_corner:.0%} of test images share the training image's background"
    assert not torch.equal(y_tr, y_te)
