"""Schedule, DAE + KMeans, network cut points, probe; the smoke run and --scale full on a fixture."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from gsimclr.autoencoder import DenoisingAutoencoder, kmeans_pseudo_labels, train_autoencoder
from gsimclr.experiment import RunConfig, cosine_decay_restarts, linear_probe, run
from gsimclr.model import SimCLRNet

from xentlab.models.cnn import build_cnn
from xentlab.testing import load_reproduce, run_smoke
from xentlab.testing.fixtures import write_cifar

REPRO = Path(__file__).parents[1] / "reproduce.py"


def test_cosine_decay_restarts_matches_tf_formula():
    # first period [0, 10): cos from lr0 to 0; second period [10, 30) has length 20 (t_mul 2), restart at 10.
    lr = lambda s: cosine_decay_restarts(s, 0.1, 10)  # noqa: E731
    assert lr(0) == pytest.approx(0.1)
    assert lr(5) == pytest.approx(0.05)  # 0.5 * (1 + cos(pi / 2))
    assert lr(10) == pytest.approx(0.1)
    assert lr(20) == pytest.approx(0.05)
    assert lr(25) == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 0.75)))
    assert lr(30) == pytest.approx(0.1)


def test_dae_shapes_and_kmeans_recovers_separated_blobs():
    torch.manual_seed(0)
    dae = DenoisingAutoencoder(3, (4, 8, 8))
    x = torch.rand(32, 3, 16, 16)
    assert dae(x).shape == x.shape and dae.embed(x).shape == (32, 8)
    curve = train_autoencoder(dae, x, epochs=2, batch_size=16)
    assert len(curve) == 2 and all(np.isfinite(curve))
    # three well-separated blobs of 5 points: KMeans(K=3) puts each blob in its own cluster
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    pts = np.repeat(centres, 5, axis=0) + 0.01 * np.random.default_rng(0).standard_normal((15, 2))
    labels = kmeans_pseudo_labels(pts, 3)
    assert len(set(labels[:5])) == len(set(labels[5:10])) == len(set(labels[10:])) == 1
    assert len(set(labels)) == 3
    with pytest.raises(ValueError, match="n_clusters"):
        kmeans_pseudo_labels(pts, 20)


def test_cut_point_dimensions():
    net = SimCLRNet(build_cnn(3, 10, (8, 16)), 16)
    cuts = net.cut_points(torch.rand(2, 3, 16, 16))
    assert {k: tuple(v.shape) for k, v in cuts.items()} == {
        "P1": (2, 128),
        "P2": (2, 256),
        "P3": (2, 16),
        "z": (2, 50),
    }
    assert (cuts["P1"] >= 0).all() and (
        cuts["P2"] >= 0
    ).all()  # taken after the ReLUs (layers[-2], layers[-4])


def test_linear_probe_separable():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    f = np.eye(3)[y] * 5 + 0.1 * rng.standard_normal((60, 3))
    r = linear_probe(f, y, f[::2], y[::2], (0.1, 1.0), 0.25, 200, 0)
    assert r["test_acc"] == 1.0 and r["C"] in (0.1, 1.0)


def test_bad_arm_and_dataset():
    with pytest.raises(ValueError, match="arm"):
        run(RunConfig(arm="moco"), 0, device="cpu", log=lambda **k: None)
    with pytest.raises(ValueError, match="dataset"):
        run(RunConfig(dataset="imagenet"), 0, device="cpu", log=lambda **k: None)


def test_smoke(tmp_path):
    result = run_smoke(REPRO, tmp_path)
    assert result["package"] == "gsimclr"
    m = result["metrics"]
    # the balanced diagnostic: 130 images, K = B = 16, capacities 8 or 9 -> 8 full rank levels, each one batch
    # with one image per cluster
    assert m["gsimclr_balanced/same_cluster_pair_rate"]["mean"] == 0.0
    assert (
        m["gsimclr_balanced/cluster_size_min"]["mean"] == 8
        and m["gsimclr_balanced/cluster_size_max"]["mean"] == 9
    )
    for name in ("gsimclr_balanced", "gsimclr_gray_balanced"):
        assert m[f"pair_rate_ratio/{name}"]["n"] == 1 and m[f"gain_{name}/P3_pts"]["n"] == 1
    # the confirmatory arms and the random-groups control: one image per group in every batch, all claims judged
    assert m["confirm_random_groups/same_cluster_pair_rate"]["mean"] == 0.0
    ids = {c["id"] for c in result["claims"]}
    assert {"confirm-balanced-vs-gsimclr", "control-clusters-beat-random-groups"} <= ids
    assert all(c["n"] == 1 for c in result["claims"])
    # the confirmatory arms run their own seed (3 at smoke scale) and their claims name it
    exp_seeds = result["experiment_seeds"]
    assert exp_seeds["confirm_balanced"] == [3] and exp_seeds["gsimclr"] == [0]
    seeds = {c["id"]: c["seeds"] for c in result["claims"]}
    assert seeds["confirm-balanced-vs-gsimclr"] == [3] and seeds["p3-not-worse"] == [0]
    assert list(m["confirm/balanced_vs_gsimclr/P3_pts"]["per_seed"]) == ["3"]
    # AMI beside NMI, for every arm that clusters (chance level ~0 where NMI is ~0.05)
    assert {"confirm_random_groups/cluster_class_ami", "gsimclr_balanced/kmeans_class_ami"} <= set(m)
    # the mechanism at the pseudo-label level (second audit): G-SimCLR's same-cluster rate over random batches'
    r = m["pseudo_pair_rate_ratio"]["mean"]
    rate, random_rate = (
        m["gsimclr/same_cluster_pair_rate"]["mean"],
        m["gsimclr/random_same_cluster_pair_rate"]["mean"],
    )
    assert r == pytest.approx(rate / random_rate)


def test_same_class_claim_states_its_unreachable_floor():
    # claim `fewer-same-class-pairs` keeps its pre-registered threshold 0.5; its text names the floor below which no
    # batching of the cpu data can go, which must be the one min_pair_rate / random_pair_rate give (0.867)
    from gsimclr.batching import min_pair_rate, random_pair_rate

    mod = load_reproduce(REPRO)
    claim = next(c for c in mod.CLAIMS if c.id == "fewer-same-class-pairs")
    counts = np.full(10, mod.CPU["n_train_per_class"])
    floor = min_pair_rate(counts, mod.CPU["batch_size"]) / random_pair_rate(counts)
    assert claim.check == "<= 0.5" and f"floor {floor:.3f}" in claim.paper


def test_confirm_arms_are_the_plain_arms_on_their_own_seeds():
    # confirm_<arm> must be exactly <arm> (same function and config) on fresh seeds 3-5 that --seeds does not
    # change (README "Confirmatory replication"), while the other experiments run the run's seeds
    mod = load_reproduce(REPRO)
    exps = {e.name: e for e in mod.EXPERIMENTS}
    plain = {"confirm_simclr": "simclr", "confirm_gsimclr": "gsimclr", "confirm_balanced": "gsimclr_balanced"}
    for name in mod.CONFIRM:
        e = exps[name]
        assert e.seeds_for("cpu", [0, 1, 2]) == [3, 4, 5] and e.seeds_for("cpu", [7]) == [3, 4, 5]
        assert e.seeds_for("smoke", [0]) == [3] and e.fn is mod.train_arm
        if name in plain:
            assert e.config("cpu") == exps[plain[name]].config("cpu")
            assert e.config("smoke") == exps[plain[name]].config("smoke")
    for name in ("simclr", "gsimclr", *mod.DIAGNOSTICS):
        assert exps[name].seeds_for("cpu", [0, 1, 2]) == [0, 1, 2]
    # the control differs from the balanced arm in the grouping only
    control, balanced = exps["confirm_random_groups"].config("cpu"), exps["confirm_balanced"].config("cpu")
    assert {k for k in control if control[k] != balanced.get(k)} == {"clustering"}


def test_full_scale_end_to_end_on_cifar_fixture(tmp_path):
    # --scale full's config (CIFAR-10, ResNet-38, B = K = 64, official augmentation) on a 128-image fixture;
    # only the epoch counts are cut so that the test is quick.
    mod = load_reproduce(REPRO)
    root = write_cifar(tmp_path / "data", "cifar10", n_train=128, n_test=20, labels="cycle")
    cfg = {**mod.FULL, "arm": "gsimclr", "data_root": str(root), "epochs": 1, "dae_epochs": 1, "kmeans_n_init": 1,
           "probe_cs": (1.0,), "probe_max_iter": 50}  # fmt: skip
    torch.manual_seed(0)
    out = run(RunConfig(**cfg), 0, device="cpu", log=lambda **k: None)
    assert out["steps"] == 2 and all(0 <= out[f"acc_{c}"] <= 1 for c in ("P1", "P2", "P3"))
    assert out["same_cluster_pair_rate"] <= out["random_same_cluster_pair_rate"] + 0.05
    with pytest.raises(FileNotFoundError, match="GSIMCLR_DATA_ROOT"):
        run(
            RunConfig(**{**cfg, "data_root": str(tmp_path / "missing")}),
            0,
            device="cpu",
            log=lambda **k: None,
        )
