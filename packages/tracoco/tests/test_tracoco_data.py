"""The full-scale h5 loaders on tiny fixtures, the sliding-window evaluation, and a two-step training run."""

import h5py
import numpy as np
import pytest
import torch
from torch import nn
from tracoco.data import brats19, left_atrium, read_list
from tracoco.evaluate import case_metrics, evaluate, stride_overlap
from tracoco.models import predict_volume
from tracoco.trainer import TrainConfig, train


def _write_case(path, shape, rng):
    path.parent.mkdir(parents=True, exist_ok=True)
    label = np.zeros(shape, dtype=np.uint8)
    label[4:12, 5:13, 3:10] = 1
    image = rng.normal(0, 0.2, shape) + 2.0 * label  # the h5 images are not normalised
    with h5py.File(path, "w") as f:
        f.create_dataset("image", data=image.astype(np.float32))
        f.create_dataset("label", data=label)


@pytest.fixture()
def la_root(tmp_path):
    """UA-MT layout: <root>/<case>/mri_norm2.h5, lists with a trailing blank line (as shipped)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "Left_Atrium" / "data"
    train, test = ["CASE_A", "CASE_B", "CASE_C", "CASE_D"], ["CASE_T"]
    for c in train + test:
        _write_case(root / c / "mri_norm2.h5", (20, 22, 18), rng)
    (root / "train.list").write_text("\n".join(train) + "\n\n")
    (root / "eval.list").write_text("\n".join(test) + "\n")
    return root


def test_left_atrium_loader_reads_the_ua_mt_layout(la_root):
    labelled, unlabelled, test = left_atrium(la_root, n_labelled=2)
    assert (len(labelled), len(unlabelled), len(test)) == (2, 2, 1)
    assert [p.parent.name for p in labelled.paths] == ["CASE_A", "CASE_B"]  # the first n are labelled
    image, label = test[0]
    assert image.shape == label.shape == (20, 22, 18) and image.dtype == np.float32
    assert set(np.unique(label)) == {0, 1}
    assert read_list(la_root / "train.list") == ["CASE_A", "CASE_B", "CASE_C", "CASE_D"]


def test_left_atrium_loader_errors(la_root, monkeypatch):
    with pytest.raises(FileNotFoundError, match="TRACOCO_LA_ROOT"):
        left_atrium(None, 2)
    with pytest.raises(ValueError, match="n_labelled"):
        left_atrium(la_root, 5)
    labelled, unlabelled, _ = left_atrium(la_root, 4)  # the fully supervised upper bound
    assert (len(labelled), len(unlabelled)) == (4, 0)
    (la_root / "CASE_C" / "mri_norm2.h5").unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        left_atrium(la_root, 2)


def test_brats_loader_reads_flat_h5_files(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "BRATS19"
    names = {"train": ["b1", "b2", "b3"], "val": ["b4"], "test": ["b5", "b6"]}
    for split, cases in names.items():
        (root / f"{split}.list").parent.mkdir(parents=True, exist_ok=True)
        (root / f"{split}.list").write_text("\n".join(cases) + "\n")
        for c in cases:
            _write_case(root / "data" / f"{c}.h5", (16, 16, 16), rng)
    labelled, unlabelled, held = brats19(root, n_labelled=1)
    assert (len(labelled), len(unlabelled), len(held)) == (1, 2, 2)
    assert len(brats19(root, 1, split="val")[2]) == 1
    with pytest.raises(ValueError, match="split"):
        brats19(root, 1, split="train")


def test_stride_overlap_gives_monai_the_official_strides():
    # MONAI steps by int(roi * (1 - overlap)); the official LA evaluation uses strides 18/18/4.
    roi = (112, 112, 80)
    overlap = stride_overlap(roi, (18, 18, 4))
    assert [int(r * (1 - o)) for r, o in zip(roi, overlap)] == [18, 18, 4]
    with pytest.raises(ValueError):
        stride_overlap((8, 8, 8), (9, 1, 1))


class _Threshold(nn.Module):
    """logits (-x, x): the prediction is x > 0 wherever the window lands."""

    def forward(self, x):
        return torch.cat([-x, x], dim=1)


def test_sliding_window_stitching_is_exact_for_a_pointwise_net():
    torch.manual_seed(0)
    image = torch.randn(20, 18, 13)
    pred, prob = predict_volume(
        _Threshold(), image, roi=(8, 8, 8), overlap=stride_overlap((8, 8, 8), (3, 3, 2))
    )
    assert pred.shape == image.shape
    assert torch.equal(pred, (image > 0).long())
    assert torch.allclose(prob, torch.sigmoid(2 * image), atol=1e-6)  # softmax(-x, x)[1]


def test_case_metrics_official_empty_rule():
    gt = np.zeros((8, 8, 8), bool)
    gt[2:5, 2:5, 2:5] = True
    assert case_metrics(np.zeros_like(gt), gt) == {"dice": 0.0, "jaccard": 0.0, "hd95": 0.0, "asd": 0.0}
    assert case_metrics(gt, gt)["dice"] == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["tracoco", "no_tc", "supervised"])
def test_two_training_steps_on_the_h5_fixture_are_deterministic(la_root, method):
    labelled, unlabelled, test = left_atrium(la_root, n_labelled=2)
    cfg = TrainConfig(method=method, network="unet_small", crop=(16, 16, 16), iterations=2, log_every=1)

    def run():
        torch.manual_seed(0)
        res = train(cfg, labelled, unlabelled, seed=0)
        return res, torch.cat([p.detach().flatten() for p in res.nets[0].parameters()])

    (res, w1), (_, w2) = run(), run()
    assert torch.equal(w1, w2)
    assert len(res.history) == 2 and all(np.isfinite(r["m1_loss"]) for r in res.history)
    assert len(res.nets) == (1 if method == "supervised" else 2)
    if method == "tracoco":
        assert "m1_tc" in res.history[0] and "m2_cbc" in res.history[0]
        scores = evaluate(res.nets, test, roi=(16, 16, 16), stride=(8, 8, 8))
        assert {"m1/dice", "m2/hd95", "ens/asd", "m1/empty"} <= set(scores)


@pytest.mark.parametrize("name", ["vnet", "unet3d"])
def test_full_scale_networks_map_a_patch_to_two_class_logits(name):
    from tracoco.models import build_network

    net = build_network(name).eval()
    with torch.no_grad():
        out = net(torch.zeros(1, 1, 32, 32, 16))
    assert out.shape == (1, 2, 32, 32, 16)
    with pytest.raises(ValueError, match="unknown network"):
        build_network("resnet")


def test_synthetic_validation_volumes_follow_the_test_volumes(tmp_path, monkeypatch):
    # Validation volumes are indices [n_train + n_test, ...) of the same set: never a training or
    # test volume (volume i depends only on (seed, i)).
    from tracoco.data import synthetic_split, synthetic_validation

    from xentlab.data.volumes import VolumeSpec, synthetic_volume

    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path))
    spec = dict(size=16, num_objs=1, rad_min=3, rad_max=6, num_distractors=1, shape="ellipsoid")
    lab, unl, test = synthetic_split(1, 1, 1, 7, spec)
    val = synthetic_validation(2, 1, 2, 7, spec)
    assert len(val) == 2
    image, label = synthetic_volume(3, seed=7, spec=VolumeSpec(**spec))
    assert np.array_equal(val[0][0], image) and np.array_equal(val[0][1], label)
    for source in (lab, unl, test):
        assert not np.array_equal(source[0][0], val[0][0])
    with pytest.raises(ValueError, match="n_val"):
        synthetic_validation(2, 1, 0, 7, spec)


def test_cpu_setting_is_the_one_the_validation_pilot_chose():
    # reproduce.py's cpu volumes and labelled count must be the candidate that
    # scripts/select_setting.py chose by its rule (results/setting_selection.json).
    import json
    from pathlib import Path

    from xentlab.testing import load_reproduce

    root = Path(__file__).parents[1]
    selection = json.loads((root / "results" / "setting_selection.json").read_text())
    reproduce = load_reproduce(root / "reproduce.py")
    chosen = next(c for c in selection["candidates"] if c["candidate"] == selection["chosen"])
    assert reproduce.CPU["n_labelled"] == chosen["n_labelled"]
    assert reproduce.CPU["volume_spec"] == selection["specs"][selection["chosen"].rsplit("-n", 1)[0]]
    assert reproduce.CPU["n_labelled"] + reproduce.CPU["n_unlabelled"] == 24
