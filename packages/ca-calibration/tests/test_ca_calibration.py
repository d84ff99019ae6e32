"""The CA calibrator, its loss, the transform features and temperature scaling."""

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from ca_calibration.calibrator import (
    T_MAX,
    T_MIN,
    AdaptiveTemperature,
    TemperatureScaling,
    ca_loss,
    class_balanced_weights,
    fit_adaptive,
)
from ca_calibration.features import TransformSpec, logits_and_features, transform_features

from xentlab.testing import assert_close, check_gradients, run_smoke


def test_class_balanced_weights():
    # 3 of 4 correct: acc = .75 -> correct samples weigh .25, the wrong one .75 (equal class mass)
    w = class_balanced_weights(torch.tensor([True, True, True, False]))
    assert_close(w, torch.tensor([0.25, 0.25, 0.25, 0.75]))


def test_ca_loss_by_hand():
    # two classes; sample 0 correct with calibrated confidence .8, sample 1 wrong with confidence .6
    # squared gaps: (.8 - 1)^2 = .04 and (.6 - 0)^2 = .36; acc = .5 -> weights .5, .5 -> loss .2
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0])
    cal = torch.tensor([[math.log(0.8), math.log(0.2)], [math.log(0.4), math.log(0.6)]])
    assert_close(ca_loss(cal, logits, labels), torch.tensor(0.2), atol=1e-6)


def test_ca_loss_matches_reference_and_gradcheck():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(30, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (30,), generator=g)
    t = torch.rand(30, 1, generator=g, dtype=torch.float64) + 0.5
    correct = (z.argmax(1) == y).double()
    acc = correct.mean()
    w = torch.where(correct.bool(), 1 - acc, acc)
    conf = F.softmax(z / t, 1).max(1).values
    ref = (w * (conf - correct) ** 2).sum() / w.sum()
    assert_close(ca_loss(z / t, z, y), ref)
    check_gradients(lambda tt: ca_loss(z / tt, z, y), t)


def test_ca_loss_degenerate_batch_is_zero_not_nan():
    z = torch.tensor([[3.0, 0.0], [0.0, 3.0]])
    out = ca_loss(z, z, torch.tensor([0, 1]))  # all correct: every weight is 0
    assert out.item() == 0.0 and not torch.isnan(out)


def test_adaptive_temperature_architecture_and_clamp():
    cal = AdaptiveTemperature(12, 5)
    assert cal.embed[0].in_features == 12 and cal.embed[0].out_features == 5
    assert cal.temperature_layer.in_features == 5 and cal.temperature_layer.out_features == 1
    with torch.no_grad():
        cal.temperature_layer.bias.fill_(100.0)
    t = cal.temperature(torch.rand(7, 12))
    assert torch.all(t == T_MAX)
    with torch.no_grad():
        cal.temperature_layer.bias.fill_(-100.0)
    assert torch.all(cal.temperature(torch.rand(7, 12)) == T_MIN)
    z = torch.randn(7, 10)
    assert_close(cal(z, torch.rand(7, 12)), z / T_MIN)
    with pytest.raises(ValueError, match="features"):
        cal.temperature(torch.rand(7, 11))


def test_clamped_calibrator_gets_no_gradient():
    # why we start at T ~ 1: below the clamp the temperature (and so the loss) ignores the weights
    cal = AdaptiveTemperature(12, 5, official_init=True)
    with torch.no_grad():
        cal.temperature_layer.bias.fill_(-5.0)
    z, a, y = torch.randn(20, 10), torch.rand(20, 12), torch.randint(0, 10, (20,))
    ca_loss(cal(z, a), z, y).backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in cal.parameters())


def test_default_init_starts_near_identity():
    torch.manual_seed(0)
    t = AdaptiveTemperature().temperature(torch.rand(100, 12))
    assert (t > 0.3).all() and (t < 2.0).all()


def test_fit_adaptive_lowers_confidence_on_wrong_samples():
    # synthetic: the first transform feature says "wrong" (low) or "right" (high); the base model is
    # overconfident everywhere. After CA training, wrong samples get higher temperatures.
    g = torch.Generator().manual_seed(0)
    n = 1000
    y = torch.randint(0, 10, (n,), generator=g)
    right = torch.rand(n, generator=g) < 0.7
    pred = torch.where(right, y, (y + 1) % 10)
    z = 6.0 * F.one_hot(pred, 10).float() + 0.1 * torch.randn(n, 10, generator=g)
    a = torch.rand(n, 12, generator=g) * 0.1
    a[:, 0] = right.float()
    torch.manual_seed(0)
    cal = AdaptiveTemperature()
    before = ca_loss(cal(z, a), z, y).item()
    rec = fit_adaptive(cal, z, a, y, objective="ca", steps=400, lr=3e-2, seed=0)
    after = ca_loss(cal(z, a), z, y).item()
    assert after < before and rec["loss_last"] < rec["loss_first"]
    t = cal.temperature(a)
    assert t[~right].mean() > t[right].mean()
    with pytest.raises(ValueError, match="objective"):
        fit_adaptive(cal, z, a, y, objective="mse")


def test_transform_features_order_and_shape():
    z = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0, 0.0]])
    zt = [torch.zeros(1, 6), torch.arange(6.0).view(1, 6)]
    feats = transform_features(z, zt, k=4)
    assert feats.shape == (1, 8)
    assert_close(feats[0, :4], torch.full((4,), 1 / 6))  # uniform softmax at classes 0..3
    p = torch.softmax(torch.arange(6.0), 0)
    assert_close(feats[0, 4:], p[:4])  # gathered at the original's top-4 = classes 0, 1, 2, 3
    with pytest.raises(ValueError, match="top-4"):
        transform_features(torch.zeros(1, 3), [torch.zeros(1, 3)])


def test_logits_and_features_with_a_model():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    z, a = logits_and_features(model, torch.rand(5, 1, 8, 8), TransformSpec())
    assert z.shape == (5, 10) and a.shape == (5, 12) and (a >= 0).all() and (a <= 1).all()


def test_temperature_scaling_recovers_the_generating_temperature():
    # labels drawn from softmax(z / 2): the NLL-optimal temperature is close to 2
    g = torch.Generator().manual_seed(0)
    z = 4 * torch.randn(20000, 5, generator=g)
    y = torch.multinomial(torch.softmax(z / 2.0, 1), 1, generator=g).squeeze(1)
    ts = TemperatureScaling().fit(z, y)
    assert abs(ts.temperature.item() - 2.0) < 0.1


def test_smoke(tmp_path):
    result = run_smoke(Path(__file__).parents[1] / "reproduce.py", tmp_path, extra_args=["--workers", "1"])
    assert result["package"] == "ca-calibration"
    assert "digits/ca_ece25_drop" in result["metrics"]


def test_full_scale_sets_from_a_local_cifar10(tmp_path):
    from ca_calibration.experiment import RunConfig, load_sets

    from xentlab.testing.fixtures import write_cifar

    write_cifar(tmp_path, "cifar10", n_train=20, n_test=4, labels="cycle")  # labels 0-3 in every file
    sets = load_sets(RunConfig(dataset="cifar10", data_root=str(tmp_path), n_cal=5), seed=0)
    assert set(sets) == {"train", "cal", "id", "rotblur", "contrastnoise"}
    assert len(sets["train"]) == 15 and len(sets["cal"]) == 5 and len(sets["id"]) == 4
    assert all(0 <= s.x.min() and s.x.max() <= 1 for s in sets.values())
