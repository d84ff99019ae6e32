"""Data-split independence of the cpu-scale study (second fidelity reading).

The official calibrator is trained on ImageNet-val, which the pretrained classifier never saw, and tested
on other sets. Here the classifier's training split, the calibration split and the ID test split are cut
from one MNIST-5k pool, so they must be disjoint (by image content, not only by index), keep the class
proportions, and change with the seed; the two shifted sets must be what the README says they are.
"""

import numpy as np
import torch
from ca_calibration.experiment import RunConfig, load_sets

from xentlab.data.images import gaussian_blur, rotate


def _rows(x: torch.Tensor) -> set[bytes]:
    return {r.tobytes() for r in x.flatten(1).numpy()}


def test_cpu_splits_are_disjoint_stratified_and_seeded():
    cfg = RunConfig(n_train=3000, n_cal=1000, n_test=1000)
    sets = load_sets(cfg, seed=0)
    rows = {k: _rows(sets[k].x) for k in ("train", "cal", "id")}
    assert [len(sets[k].y) for k in ("train", "cal", "id")] == [3000, 1000, 1000]
    # every image of a split is distinct and no image is shared between splits
    assert [len(rows[k]) for k in ("train", "cal", "id")] == [3000, 1000, 1000]
    assert not rows["train"] & rows["cal"] and not rows["train"] & rows["id"] and not rows["cal"] & rows["id"]
    # MNIST-5k has 500 images per class: a stratified 3000/1000/1000 cut keeps 300/100/100 per class
    for k, n in (("train", 300), ("cal", 100), ("id", 100)):
        assert np.bincount(sets[k].y.numpy(), minlength=10).tolist() == [n] * 10
    # rotblur is the ID test split rotated 30 degrees and blurred (sigma 1), same labels
    torch.testing.assert_close(sets["rotblur"].x, gaussian_blur(rotate(sets["id"].x, 30.0), 1.0).clamp(0, 1))
    assert torch.equal(sets["rotblur"].y, sets["id"].y)
    # digits: all 1,797 scikit-learn digits in MNIST's 28x28 layout (a 20x20 box, 4-pixel zero border)
    d = sets["digits"]
    assert d.x.shape == (1797, 1, 28, 28) and d.x[..., :4, :].abs().sum() == 0
    # another seed draws another calibration split
    other = load_sets(cfg, seed=1)
    assert _rows(other["cal"].x) != rows["cal"]
