"""xentlab.train.minibatch: coverage of every row per epoch, determinism, lr milestones, NaN guard."""

import pytest
import torch
from torch import nn

from xentlab.train.minibatch import fit_epochs, predict


def _setup():
    torch.manual_seed(0)
    return nn.Linear(3, 2), torch.randn(10, 3), torch.randint(0, 2, (10,))


def test_every_row_once_per_epoch_and_indices_match():
    model, x, y = _setup()
    seen = []

    def loss_fn(m, xb, yb, idx):
        assert torch.equal(xb, x[idx]) and torch.equal(yb, y[idx])
        seen.append(idx.clone())
        return nn.functional.cross_entropy(m(xb), yb)

    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    hist = fit_epochs(model, opt, x, y, loss_fn, epochs=2, batch_size=4, seed=0)
    assert len(hist) == 2 and len(seen) == 6  # ceil(10 / 4) batches per epoch
    assert sorted(torch.cat(seen[:3]).tolist()) == list(range(10))
    assert not torch.equal(torch.cat(seen[:3]), torch.cat(seen[3:]))  # reshuffled per epoch


def test_deterministic_and_unshuffled_mode():
    runs = []
    for _ in range(2):
        model, x, y = _setup()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        fit_epochs(model, opt, x, y, lambda m, xb, yb, i: nn.functional.cross_entropy(m(xb), yb),
                   epochs=3, batch_size=3, seed=5)  # fmt: skip
        runs.append(model.weight.detach().clone())
    assert torch.equal(runs[0], runs[1])
    order = []
    model, x, y = _setup()
    fit_epochs(model, torch.optim.SGD(model.parameters(), lr=0.1), x, y,
               lambda m, xb, yb, i: (order.append(i), m(xb).sum())[1], epochs=1, batch_size=4, seed=0,
               shuffle=False)  # fmt: skip
    assert torch.equal(torch.cat(order), torch.arange(10))


def test_lr_milestones_and_nan_guard():
    model, x, y = _setup()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    lrs = []
    fit_epochs(model, opt, x, y, lambda m, xb, yb, i: m(xb).pow(2).mean(), epochs=4, batch_size=10, seed=0,
               lr_milestones=(1, 3), on_epoch=lambda e, l: lrs.append(opt.param_groups[0]["lr"]))  # fmt: skip
    assert lrs == pytest.approx([1.0, 0.1, 0.1, 0.01])
    with pytest.raises(FloatingPointError, match="non-finite"):
        fit_epochs(
            model, opt, x, y, lambda m, xb, yb, i: m(xb).sum() * float("nan"), epochs=1, batch_size=5, seed=0
        )


def test_predict_restores_mode():
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    model.train()
    x = torch.randn(7, 3)
    a, b = predict(model, x, batch_size=3), predict(model, x)
    assert torch.allclose(a, b, atol=1e-6) and model.training and a.shape == (7, 2)  # eval: no dropout
