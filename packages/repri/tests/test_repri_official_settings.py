"""The inference arms against the official scripts, and the ``l2 += 1`` of the pi update (second fidelity audit).

Official values: ``scripts/test.sh`` (latest: temperature 20, adapt_iter 50, cls_lr 0.025, FB_param_update [10]),
``config_files/pascal.yaml`` (weights [1.0, 'auto', 'auto'], FB_param_type soft, norm_feat), ``scripts/oracle.sh``
(FB_param_type oracle, adapt_iter 300, weights [1.0, 1.0, 0.1]); ``src/classifier.py`` ``Classifier.RePRI``.
"""

from pathlib import Path

import torch
import torch.nn.functional as F
from repri.classifier import IGNORE, RePRIConfig, cosine_logits, run_repri, true_proportion
from repri.experiment import arms

from xentlab.testing import assert_close, load_reproduce


def test_arms_follow_the_official_scripts():
    d = RePRIConfig()
    assert (d.temperature, d.adapt_iter, d.lr, d.fb_update, d.fb_type) == (20.0, 50, 0.025, (10,), "soft")
    assert d.weights == (1.0, "auto", "auto")
    cpu = load_reproduce(Path(__file__).parents[1] / "reproduce.py").CPU
    a = arms(cpu["adapt_iter"], cpu["oracle_official_iter"])
    assert a["repri"] == d  # test.sh
    assert a["oracle"] == RePRIConfig(fb_type="oracle")  # true pi under test.sh's schedule
    off = a["oracle_official"]  # oracle.sh
    assert (off.adapt_iter, off.weights, off.fb_type, off.lr, off.temperature) == (
        300,
        (1.0, 1.0, 0.1),
        "oracle",
        0.025,
        20.0,
    )
    assert a["ce"].weights == (1.0, 0.0, 0.0) and a["ce_h"].weights == (1.0, 0.0, "auto")
    assert a["init"].adapt_iter <= 1  # range(1, adapt_iter) is empty: prototype init only


def _task(t=2, shots=2, c=6, h=5, w=5, seed=4):
    g = torch.Generator().manual_seed(seed)
    fs = F.normalize(torch.rand(t, shots, c, h, w, generator=g, dtype=torch.float64), dim=2)
    fq = F.normalize(torch.rand(t, 1, c, h, w, generator=g, dtype=torch.float64), dim=2)
    gs = (torch.rand(t, shots, h, w, generator=g) < 0.4).long()
    gs[:, :, 0, 0] = 1
    return fs, fq, gs, torch.ones(t, 1, h, w, dtype=torch.float64)


def test_kl_weight_grows_by_one_after_the_pi_update():
    # Official RePRI loop: after the step of iteration 9, (9 + 1) in FB_param_update -> pi re-estimated and
    # l2 += 1, so the step of iteration 10 uses weights (1, 1 + 1/shots, 1/shots) and the new pi.
    fs, fq, gs, vq = _task()
    shots = fs.shape[1]
    before = run_repri(fs, fq, gs, vq, RePRIConfig(adapt_iter=10))  # steps 1..9, then the update
    after = run_repri(fs, fq, gs, vq, RePRIConfig(adapt_iter=11))  # one more step (iteration 10)
    w = before.prototype.clone().requires_grad_()
    b = before.bias.clone().requires_grad_()
    ps = torch.sigmoid(cosine_logits(fs, w, 20.0) - b.view(-1, 1, 1, 1))
    pq = torch.sigmoid(cosine_logits(fq, w, 20.0) - b.view(-1, 1, 1, 1))
    y = gs.double()
    ce = -(y * torch.log(ps + 1e-10) + (1 - y) * torch.log(1 - ps + 1e-10)).mean(dim=(1, 2, 3))
    m = pq.mean(dim=(1, 2, 3))
    pi = before.pi_final
    kl = (1 - m) * torch.log((1 - m) / (pi[:, 0] + 1e-10)) + m * torch.log(m / (pi[:, 1] + 1e-10))
    ent = -(pq * torch.log(pq + 1e-10) + (1 - pq) * torch.log(1 - pq + 1e-10)).mean(dim=(1, 2, 3))
    (ce + (1 + 1 / shots) * kl + ent / shots).sum().backward()
    assert_close(
        after.prototype, (w - 0.025 * w.grad).detach(), atol=1e-10, name="w, step with l2 = 1 + 1/shots"
    )
    assert_close(after.bias, (b - 0.025 * b.grad).detach(), atol=1e-10, name="b, step with l2 = 1 + 1/shots")
    assert torch.equal(after.pi_final, before.pi_final)  # one update only ([10])


def test_oracle_pi_counts_valid_pixels_only():
    # official compute_FB_param('oracle'): one-hot mean over pixels != 255 of the (downsampled) query mask
    mask = torch.tensor([[[[1, IGNORE], [0, 0]]], [[[1, 1], [IGNORE, IGNORE]]]])
    pi = true_proportion(mask)
    assert_close(pi, torch.tensor([[2 / 3, 1 / 3], [0.0, 1.0]]), atol=1e-7)
