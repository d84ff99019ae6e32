"""One TraCoCo training step against the official composition (second fidelity audit), and the official settings.

Official ``Code/VnetLA/train.py`` (``Trainer.train_epoch``), per network k with the other network k' as labeller::

    loss_k = 0.5 (CE + Dice)[labelled rows of f_k(x + U)]
             + w(t) * ( CBC(f_k(x_in + U)[unlabelled rows], f_k'(x)[unlabelled rows])
                        + 0.3 * TC(f_k(x + U), f_k(x' + U)) + 0.1 * NegEntropy(overlaps) )

with ``x_in = x`` for network 1 and the CutMix of ``x`` (pseudo-labels mixed with the same boxes) for network 2,
the pseudo-labels computed on the *clean* batch. The loss functions themselves are pinned by hand values in
test_tracoco_losses.py; these tests pin how ``trainer.model_loss`` puts them together.
"""

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from tracoco.augment import CropBatch
from tracoco.crops import sample_crop_pair
from tracoco.cutmix import apply_cutmix, rand_boxes
from tracoco.losses import cbc_loss, negative_entropy, supervised_loss, translation_consistency
from tracoco.trainer import ArraySource, TrainConfig, model_loss, train

from xentlab.testing import assert_close, load_reproduce


class _Affine(nn.Module):
    """A pointwise 2-class 'network' in float64: logits (a x + b, c x + d), so every voxel is traceable."""

    def __init__(self, a, b, c, d):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([a, c], dtype=torch.float64).view(1, 2, 1, 1, 1))
        self.b = nn.Parameter(torch.tensor([b, d], dtype=torch.float64).view(1, 2, 1, 1, 1))
        self.inputs: list[torch.Tensor] = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.w * x + self.b


def _batch(seed=0, crop=(6, 6, 4), shape=(9, 9, 7)):
    rng = np.random.default_rng(seed)
    pairs = [sample_crop_pair(shape, crop, rng) for _ in range(4)]
    image = torch.from_numpy(rng.uniform(0, 1, (4, 1, *crop)))
    cons = torch.from_numpy(rng.uniform(0, 1, (4, 1, *crop)))
    # the overlap of the two crops holds the same voxels (as the loader guarantees)
    for i, p in enumerate(pairs):
        sa = tuple(slice(*r) for r in p.range_a)
        sb = tuple(slice(*r) for r in p.range_b)
        cons[i, 0][sb] = image[i, 0][sa]
    label = torch.from_numpy((rng.uniform(0, 1, (4, *crop)) > 0.6).astype(np.int64))
    return CropBatch(image=image, label=label, cons_image=cons, pairs=pairs)


@pytest.mark.parametrize("cutmix", [False, True])
def test_model_loss_is_the_official_total(cutmix):
    cfg = TrainConfig(method="tracoco", input_noise=0.0)  # U = 0: the composition is exact
    batch = _batch()
    student, teacher = _Affine(1.5, -0.2, -2.0, 0.7), _Affine(-3.0, 0.4, 4.0, -1.1)
    w = 0.27
    rng = np.random.default_rng(11)
    rng_ref = copy.deepcopy(rng)  # the CutMix boxes of the reference come from the same stream
    loss, stats = model_loss(student, teacher, batch, cfg, w, rng, cutmix=cutmix)

    x, lb = batch.image, cfg.labelled_bs
    with torch.no_grad():
        z, z_cons = student.w * x + student.b, student.w * batch.cons_image + student.b
        pseudo = teacher.w * x + teacher.b  # clean input
        x_in = x
        if cutmix:
            x_in, pseudo = apply_cutmix([x, pseudo], rand_boxes(tuple(x.shape), rng_ref, 4.0))
        z_unsup = student.w * x_in + student.b
        sup, _ = supervised_loss(z[:lb], batch.label[:lb])
        tc, overlaps = translation_consistency(
            z, z_cons, batch.ranges_a, batch.ranges_b, logit_clamp=True, softmax_axis="x"
        )
        reg = negative_entropy(overlaps)
        cbc, _ = cbc_loss(z_unsup[lb:], pseudo[lb:], 0.65, 0.1)
        expected = sup + w * (cbc + 0.3 * tc + 0.1 * reg)
    assert_close(loss.detach(), expected, atol=1e-12, name="L_sup + w (L_CBC + 0.3 L_TC + 0.1 L_negent)")
    # the teacher saw the clean batch, once; the student saw x, x', then its (mixed) unsupervised input
    assert len(teacher.inputs) == 1 and torch.equal(teacher.inputs[0], x)
    assert len(student.inputs) == 3 and torch.equal(student.inputs[2], x_in)
    assert torch.equal(student.inputs[1], batch.cons_image)
    if cutmix:
        assert not torch.equal(x_in, x)  # Beta(4, 4) boxes are never empty on a 6 x 6 plane here
    assert stats["tc"] == pytest.approx(tc.item()) and stats["negent"] == pytest.approx(reg.item())


def test_labeller_sees_the_clean_batch_and_the_student_fresh_noise():
    # official: pseudo_label = model_k'(volume_batch) (no noise); every student pass adds its own U(-0.2, 0.2)
    batch = _batch(seed=5)
    student, teacher = _Affine(1.0, 0.0, -1.0, 0.0), _Affine(1.0, 0.0, -1.0, 0.0)
    torch.manual_seed(0)
    model_loss(
        student, teacher, batch, TrainConfig(method="tracoco"), 0.3, np.random.default_rng(0), cutmix=False
    )
    assert torch.equal(teacher.inputs[0], batch.image)
    noise = [
        student.inputs[0] - batch.image,
        student.inputs[1] - batch.cons_image,
        student.inputs[2] - batch.image,
    ]
    for u in noise:
        assert 0 < u.abs().max() <= 0.2
    assert not torch.equal(noise[0], noise[2])  # drawn afresh for the unsupervised pass


def test_no_tc_drops_exactly_the_translation_terms():
    cfg = TrainConfig(method="no_tc", input_noise=0.0)
    batch = _batch(seed=3)
    student, teacher = _Affine(1.5, -0.2, -2.0, 0.7), _Affine(-3.0, 0.4, 4.0, -1.1)
    loss, stats = model_loss(student, teacher, batch, cfg, 0.3, np.random.default_rng(0), cutmix=False)
    with torch.no_grad():
        z = student.w * batch.image + student.b
        sup, _ = supervised_loss(z[:2], batch.label[:2])
        cbc, _ = cbc_loss(z[2:], (teacher.w * batch.image + teacher.b)[2:])
    assert_close(loss.detach(), sup + 0.3 * cbc, atol=1e-12)
    assert "tc" not in stats and len(student.inputs) == 2  # no forward pass on the translated crops


def test_rampup_epoch_is_labelled_count_over_labelled_batch():
    # Official main.py: iter_per_epoch = len(TwoStreamBatchSampler) = labelled // (batch_size - batch_size / 2);
    # ConsistencyWeight: w(t) = unsup_weight * exp(-5 (1 - t / (40 * iter_per_epoch))^2), t = 1, 2, ...
    rng = np.random.default_rng(0)
    vols = rng.uniform(0, 1, (6, 12, 12, 12)).astype(np.float32)
    labs = (vols > 0.7).astype(np.int64)
    cfg = TrainConfig(
        method="supervised", network="unet_small", crop=(8, 8, 8), iterations=2, unsup_weight=0.3, log_every=1
    )
    torch.manual_seed(0)
    hist = train(cfg, ArraySource(vols[:4], labs[:4]), None, seed=0).history
    length = 40 * (4 // 2)  # 4 labelled volumes, 2 per batch: 2 iterations per epoch
    for row in hist:
        assert row["weight"] == pytest.approx(0.3 * math.exp(-5 * (1 - row["step"] / length) ** 2), rel=1e-12)
        # poly lr with the counter incremented before the rate is read (official PolyLR, iter_num 1..T)
        assert row["lr"] == pytest.approx(0.05 * (1 - row["step"] / 2) ** 0.9, abs=1e-15)


def test_defaults_and_full_configs_are_the_official_ones():
    # Configs/config.py (LA and BraTS), scripts/train_la.sh, scripts/train_brats.sh, train.py, validate.py.
    d = TrainConfig()
    assert (d.lr, d.momentum, d.weight_decay, d.lr_power) == (0.05, 0.9, 1e-4, 0.9)
    assert (d.threshold, d.neg_threshold, d.spatial_weight, d.hyp, d.rampup_epochs) == (
        0.65,
        0.1,
        0.3,
        0.1,
        40.0,
    )
    assert (d.input_noise, d.clamp_input, d.cutmix_beta, d.labelled_bs, d.unlabelled_bs) == (
        0.2,
        False,
        4.0,
        2,
        2,
    )
    assert (d.logit_clamp, d.kl_softmax_axis, d.entropy_prob_clamp) == (True, "x", None)
    rep = load_reproduce(Path(__file__).parents[1] / "reproduce.py")
    full = {e.name: e.configs.get("full") for e in rep.EXPERIMENTS}
    la8, la16 = full["tracoco"], full["tracoco_la16"]
    assert (la8["n_labelled"], la8["unsup_weight"], la8["iterations"]) == (8, 0.3, 9000)
    assert (la16["n_labelled"], la16["unsup_weight"], la16["iterations"]) == (16, 1.0, 9000)
    assert la8["crop"] == [112, 112, 80] and la8["eval_stride"] == [18, 18, 4] and la8["network"] == "vnet"
    for name, n in (("tracoco_brats25", 25), ("tracoco_brats50", 50)):
        b = full[name]
        assert (b["n_labelled"], b["unsup_weight"], b["iterations"], b["hyp"]) == (n, 1.0, 30000, 0.05)
        assert (b["input_noise"], b["clamp_input"], b["entropy_prob_clamp"]) == (0.05, True, 1e-7)
        assert b["crop"] == [96, 96, 96] and b["eval_stride"] == [16, 16, 16]
    # the cpu scale keeps the official LA hyper-parameters of the smallest labelled set
    assert rep.CPU["unsup_weight"] == 0.3
