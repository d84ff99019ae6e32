"""AnyLoss losses against hand-derived confusion counts, the stacked evaluation, and the stacked model."""

import math

import pytest
import torch
from anyloss.losses import (
    LOSSES,
    SOL_SCORES,
    S,
    amplify,
    any_acc,
    any_bacc,
    any_fbeta,
    any_gmean,
    bce,
    raised_cosine_cdf,
    soft_confusion,
    sol,
    stacked_losses,
    wbce,
)
from anyloss.model import StackedMLP

from xentlab.testing import assert_close, check_gradients

Y = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 0.0])


def test_amplification():
    assert amplify(torch.tensor(0.5)).item() == pytest.approx(0.5)
    # L = 73 maps 0.45 / 0.55 to ~0.025 / ~0.975: close to a hard threshold at 0.5
    assert amplify(torch.tensor(0.55)).item() == pytest.approx(
        1 / (1 + torch.exp(torch.tensor(-3.65)).item())
    )
    assert amplify(torch.tensor(0.9)).item() > 0.999999


def test_soft_confusion_hand_counts():
    # hard predictions (0/1): TP = 1 (row 0), FP = 1 (row 1), FN = 1 (row 2), TN = 3
    y_hat = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    c = soft_confusion(Y, y_hat)
    assert [c[k].item() for k in ("TP", "FP", "FN", "TN", "y1", "y0", "N")] == [1, 1, 1, 3, 2, 4, 6]


def test_metric_losses_at_confident_predictions():
    # p far from 0.5 -> A(p) ~ hard predictions above: F1 = 2*1/(2+2) = 0.5, BAcc = (1/2 + 3/4)/2,
    # TPR*TNR = 1/2 * 3/4 (no square root), Acc = 4/6
    p = torch.tensor([0.99, 0.99, 0.01, 0.01, 0.01, 0.01], dtype=torch.float64)
    y = Y.double()
    assert any_fbeta(y, p).item() == pytest.approx(1 - 0.5, abs=1e-5)
    assert any_bacc(y, p).item() == pytest.approx(1 - (0.5 + 0.75) / 2, abs=1e-5)
    assert any_gmean(y, p).item() == pytest.approx(1 - 0.5 * 0.75, abs=1e-5)
    assert any_acc(y, p).item() == pytest.approx(1 - 4 / 6, abs=1e-6)
    # F_beta with beta = 2: (1 + 4) TP / (4 y1 + sum y_hat) = 5 / 10
    assert any_fbeta(y, p, beta=2.0).item() == pytest.approx(0.5, abs=1e-5)


def test_literal_formulas_on_soft_predictions():
    g = torch.Generator().manual_seed(0)
    p = torch.rand(50, generator=g, dtype=torch.float64)
    y = (torch.rand(50, generator=g) < 0.2).double()
    a = amplify(p)
    tp, s_hat, y1 = (y * a).sum(), a.sum(), y.sum()
    y0 = 50 - y1
    tn = 50 - y1 - s_hat + tp
    assert_close(any_fbeta(y, p), 1 - 2 * tp / (y1 + s_hat + S))
    assert_close(any_gmean(y, p), 1 - tp * tn / (y1 * y0 + S))
    assert_close(any_bacc(y, p), 1 - (y0 * tp + y1 * tn) / (2 * y1 * y0 + S))
    assert_close(bce(y, p), -(y * torch.log(p + S) + (1 - y) * torch.log(1 - p + S)).mean())
    w1, w0 = y0 / 50, y1 / 50
    assert_close(wbce(y, p), -(w1 * y * torch.log(p + S) + w0 * (1 - y) * torch.log(1 - p + S)).mean())


def test_stacked_equals_individual():
    names = list(LOSSES) + ["any_f1"]  # a name may repeat
    g = torch.Generator().manual_seed(1)
    p = torch.rand(3, len(names), 40, generator=g, dtype=torch.float64) * 0.98 + 0.01
    y = (torch.rand(3, 40, generator=g) < 0.3).double()
    got = stacked_losses(names, y, p, L=73.0)
    for gi in range(3):
        for m, name in enumerate(names):
            assert_close(got[gi, m], LOSSES[name](y[gi], p[gi, m]), name=name)
    assert check_gradients(lambda q: stacked_losses(names, y[0], q, L=5.0).sum(), p[0])
    with pytest.raises(ValueError, match="unknown losses"):
        stacked_losses(["focal"], y[0], p[0, :1])
    with pytest.raises(ValueError, match="must be"):
        stacked_losses(names, y[0], p[0, :2])


def test_stacked_model_copies_are_independent():
    torch.manual_seed(0)
    model = StackedMLP(3, 4, hidden=2, num_groups=2)
    x = torch.randn(2, 8, 4)
    p = model(x)
    assert p.shape == (2, 3, 8) and torch.all((p > 0) & (p < 1))
    p[1, 2].sum().backward()  # only group 1, model 2 may receive gradient
    grad = model.w1.grad.abs().sum(dim=(2, 3))
    assert grad[1, 2] > 0 and grad.sum() == grad[1, 2]
    model.eval()
    assert model(x[0]).shape == (3, 8)  # 2-d input: one group
    with pytest.raises(ValueError, match="num_models"):
        StackedMLP(0, 4)


# ---------------------------------------------------------------- SOL (Marchetti et al. 2022)

Y4 = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
P4 = torch.tensor([0.7, 0.55, 0.45, 0.2], dtype=torch.float64)


def test_raised_cosine_cdf_hand_values():
    # mu 0.5, delta 0.1: F = 0 below 0.4, 1 above 0.6, F(0.5) = 1/2; at z = (x - mu)/delta = +-1/2:
    # F = 1/2 (1 +- 1/2 +- sin(pi/2)/pi) = 3/4 + 1/(2 pi)  or  1/4 - 1/(2 pi)
    f = raised_cosine_cdf(torch.tensor([0.2, 0.4, 0.45, 0.5, 0.55, 0.6, 0.9], dtype=torch.float64))
    c = 1 / (2 * math.pi)
    assert_close(f, torch.tensor([0.0, 0.0, 0.25 - c, 0.5, 0.75 + c, 1.0, 1.0], dtype=torch.float64))


def test_sol_hand_computation():
    # F(p) = [1, 3/4 + c, 1/4 - c, 0] with c = 1/(2 pi) (above), y = [1, 0, 1, 0]:
    # TP = F(.7) + F(.45) = 5/4 - c; FP = F(.55) + F(.2) = 3/4 + c; FN = (1 - 1) + (1 - F(.45)) = 3/4 + c;
    # TN = (1 - F(.55)) + 1 = 5/4 - c.  acc = (TP + TN)/4 = 5/8 - c/2;  prec = rec = spec = (5/4 - c)/2,
    # so F1 = 2 prec rec / (prec + rec) = prec and bacc = (rec + spec)/2 = rec.
    c = 1 / (2 * math.pi)
    assert sol(Y4, P4, "acc").item() == pytest.approx(1 - (5 / 8 - c / 2), abs=1e-12)
    assert sol(Y4, P4, "f1").item() == pytest.approx(1 - (5 / 4 - c) / 2, abs=1e-12)
    assert sol(Y4, P4, "bacc").item() == pytest.approx(1 - (5 / 4 - c) / 2, abs=1e-12)
    # uniform prior, F(p) = p: TP = 1.15, FP = 0.75, FN = 0.85, TN = 1.25 -> acc 2.4/4, F1 = 2TP/(2TP+FP+FN)
    assert sol(Y4, P4, "acc", "uniform").item() == pytest.approx(1 - 0.6, abs=1e-12)
    assert sol(Y4, P4, "f1", "uniform").item() == pytest.approx(1 - 2.3 / 3.9, abs=1e-12)
    assert sol(Y4, P4, "bacc", "uniform").item() == pytest.approx(
        1 - (1.15 / 2.0 + 1.25 / 2.0) / 2, abs=1e-12
    )


def test_sol_degenerate_batch_is_finite():
    # every p below mu - delta: F = 0, TP = FP = 0 -> precision 0/0 := 0 (divide_no_nan), SOL-F1 = 1, zero gradient
    p = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64, requires_grad=True)
    loss = sol(torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64), p, "f1")
    loss.backward()
    assert loss.item() == 1.0 and torch.all(p.grad == 0)
    with pytest.raises(ValueError, match="SOL score"):
        sol(Y4, P4, "gmean")
    with pytest.raises(ValueError, match="distribution"):
        sol(Y4, P4, "f1", "gauss")


def test_sol_gradcheck():
    # inside the cosine support the loss is smooth; gradcheck in float64
    p = torch.tensor([0.58, 0.52, 0.47, 0.43, 0.55], dtype=torch.float64)
    y = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    for score in SOL_SCORES:
        assert check_gradients(lambda q, score=score: sol(y, q, score), p)


def test_stacked_losses_use_the_given_amplification():
    # experiments.py passes cfg["L"]: the stacked AnyLoss rows must use that L, not the default 73
    names = ["any_f1", "any_gmean", "any_bacc", "any_acc"]
    g = torch.Generator().manual_seed(2)
    p = torch.rand(len(names), 30, generator=g, dtype=torch.float64)
    y = (torch.rand(30, generator=g) < 0.4).double()
    got = stacked_losses(names, y, p, L=5.0)
    for m, fn in enumerate((any_fbeta, any_gmean, any_bacc, any_acc)):
        assert_close(got[m], fn(y, p[m], L=5.0), name=names[m])
    assert not torch.allclose(got, stacked_losses(names, y, p))  # L = 5 and L = 73 differ here


def test_shape_mismatch_is_an_error():
    # a [B] label against [B, 1] predictions would silently broadcast to a [B, B] confusion matrix
    p = torch.full((6, 1), 0.6, dtype=torch.float64)
    with pytest.raises(ValueError, match="same shape"):
        soft_confusion(Y, p)
    with pytest.raises(ValueError, match="same shape"):
        any_fbeta(Y, p)
    with pytest.raises(ValueError, match="same shape"):
        sol(Y, p)


def test_sol_all_positive_batch_divide_no_nan():
    # y all 1: TN = FP = 0, so specificity is 0/0 := 0 (tf.math.divide_no_nan in cesc14/SOL sol.py) and
    # SOL-bacc = 1 - rec / 2 with rec = mean F(p); its gradient is -F'(p) / (2 N), finite, with the
    # raised-cosine density F'(x) = (1 + cos(pi z)) / (2 delta), z = (x - mu) / delta
    p = torch.tensor([0.58, 0.45, 0.52], dtype=torch.float64, requires_grad=True)
    y = torch.ones(3, dtype=torch.float64)
    loss = sol(y, p, "bacc")
    loss.backward()
    f = raised_cosine_cdf(p.detach())
    assert loss.item() == pytest.approx(1 - f.mean().item() / 2, abs=1e-12)
    z = (p.detach() - 0.5) / 0.1
    assert_close(p.grad, -(1 + torch.cos(torch.pi * z)) / (2 * 0.1) / 6)
