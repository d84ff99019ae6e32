"""The three Keras-port fixes of the fidelity audit: nominal N in the last batch, Keras' Adam, truncated
He-normal. Each test checks the fixed behaviour against a hand derivation."""

import math

import pytest
import torch
from anyloss.losses import S, amplify, stacked_losses
from anyloss.model import StackedMLP
from anyloss.optim import KerasAdam

from xentlab.testing import assert_close

NAMES = ["wbce", "any_gmean", "any_bacc", "any_acc", "any_f1", "bce"]


def test_nominal_n_in_a_partial_batch():
    # the notebooks' confusion_matrix/WBCE use N = batch (a global), also for Keras' last, smaller batch:
    # a 4-row batch with nominal N = 6 has y0 = 6 - y1 and TN = 6 - y1 - sum A(p) + TP
    y = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    p = torch.tensor([0.7, 0.52, 0.3, 0.45], dtype=torch.float64)
    n_nom = 6.0
    a = amplify(p)
    y1, tp, s = y.sum(), (y * a).sum(), a.sum()
    y0, tn = n_nom - y1, n_nom - y1 - s + tp
    lp, lq = torch.log(p + S), torch.log(1 - p + S)
    expected = {
        "wbce": -((y0 / n_nom) * y * lp + (y1 / n_nom) * (1 - y) * lq).mean(),  # Keras mean over the 4 rows
        "any_gmean": 1 - tp * tn / (y1 * y0 + S),
        "any_bacc": 1 - (y0 * tp + y1 * tn) / (2 * y1 * y0 + S),
        "any_acc": 1 - (tp + tn) / n_nom,
        "any_f1": 1 - 2 * tp / (y1 + s + S),  # no N
        "bce": -(y * lp + (1 - y) * lq).mean(),  # no N
    }
    got = stacked_losses(NAMES, y, p.expand(len(NAMES), 4), n=n_nom)
    assert_close(got, torch.stack([expected[k] for k in NAMES]), atol=1e-12, name="nominal N")
    # n=None (and n = the batch size) is the batch's own size
    assert_close(stacked_losses(NAMES, y, p.expand(len(NAMES), 4)),
                 stacked_losses(NAMES, y, p.expand(len(NAMES), 4), n=4.0), atol=0)  # fmt: skip
    with pytest.raises(ValueError, match="nominal"):
        stacked_losses(NAMES, y, p.expand(len(NAMES), 4), n=3.0)


def test_keras_adam_matches_hand_derivation_float64():
    # Keras Adam (tf.keras.optimizers.Adam, epsilon-hat form): m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2,
    # lr_t = lr sqrt(1 - b2^t) / (1 - b1^t), p -= lr_t m / (sqrt(v) + eps), eps = 1e-7 on the UNcorrected sqrt(v)
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    g = torch.Generator().manual_seed(0)
    p0 = torch.randn(5, dtype=torch.float64, generator=g)
    grads = [
        torch.randn(5, dtype=torch.float64, generator=g) * 10.0 ** (-k) for k in range(8)
    ]  # down to 1e-7
    param = torch.nn.Parameter(p0.clone())
    opt = KerasAdam([param], lr=lr)
    ref, m, v = p0.clone(), torch.zeros(5, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    for t, grad in enumerate(grads, start=1):
        param.grad = grad.clone()
        opt.step()
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad * grad
        lr_t = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        ref = ref - lr_t * m / (v.sqrt() + eps)
        assert_close(param.detach(), ref, atol=1e-14, rtol=1e-12, name=f"step {t}")
    # it is not PyTorch's Adam (eps 1e-8 on the bias-corrected sqrt(v_hat)) once gradients are small
    torch_param = torch.nn.Parameter(p0.clone())
    torch_opt = torch.optim.Adam([torch_param], lr=lr)
    for grad in grads:
        torch_param.grad = grad.clone()
        torch_opt.step()
    assert (torch_param.detach() - param.detach()).abs().max() > 1e-8  # ~3e-7 here, float64 noise ~1e-16


def test_keras_adam_skips_params_without_grad_and_rejects_bad_settings():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = KerasAdam([a, b], lr=0.1)
    a.grad = torch.ones(2)
    opt.step()
    assert torch.equal(b.detach(), torch.ones(2)) and (a.detach() < 1).all()
    with pytest.raises(ValueError):
        KerasAdam([a], lr=-1.0)
    with pytest.raises(ValueError):
        KerasAdam([a], betas=(1.0, 0.999))


def test_truncated_he_normal_init():
    # Keras he_normal = VarianceScaling(2, fan_in, truncated_normal): stddev = sqrt(2/fan_in)/0.8796...,
    # truncated at +-2 stddev, so the weights' std is sqrt(2/fan_in)
    fan_in = 8
    torch.manual_seed(0)
    w = StackedMLP(400, fan_in, hidden=50, num_groups=5, init="keras").w1.detach()
    stddev = math.sqrt(2.0 / fan_in) / 0.87962566103423978
    assert w.abs().max().item() <= 2 * stddev
    assert w.std().item() == pytest.approx(math.sqrt(2.0 / fan_in), rel=0.01)  # 800k draws: sd of std ~0.1%
    assert w.abs().max().item() > 1.95 * stddev  # the tails reach the bound
    # the untruncated default (old behaviour) exceeds the bound
    torch.manual_seed(0)
    w_old = StackedMLP(400, fan_in, hidden=50, num_groups=5).w1.detach()
    assert w_old.abs().max().item() > 2 * stddev
    with pytest.raises(ValueError, match="init"):
        StackedMLP(2, fan_in, init="glorot")
