"""OPL loss: hand-derived values, a float64 reference, gradients, and the official defaults."""

from pathlib import Path

import pytest
import torch
from opl.geometry import class_pair_matrix, pair_similarities
from opl.loss import (
    OFFICIAL_GAMMA,
    OFFICIAL_LAMBDA,
    OrthogonalProjectionLoss,
    ce_plus_opl,
    orthogonal_projection_loss,
)

from xentlab.testing import assert_close, check_gradients, run_smoke


def reference_opl(f, y, gamma, eps=1e-6):
    """Eqs. 1-3 with explicit loops over pairs, in float64."""
    f = f.double()
    f = f / f.norm(dim=1, keepdim=True)
    pos_sum = pos_n = neg_sum = neg_n = 0.0
    for i in range(len(y)):
        for j in range(len(y)):
            c = float(f[i] @ f[j])
            if y[i] == y[j] and i != j:
                pos_sum, pos_n = pos_sum + c, pos_n + 1
            elif y[i] != y[j]:
                neg_sum, neg_n = neg_sum + abs(c), neg_n + 1
    s_pos, s_neg = pos_sum / (pos_n + eps), neg_sum / (neg_n + eps)
    return (1 - s_pos) + gamma * s_neg, s_pos, s_neg


def test_official_defaults_are_the_cifar100_script():
    # cifar/scripts/train.sh: -opl_ratio 1.0 -opl_gamma 0.5 (the class default gamma=2 is not it)
    assert OFFICIAL_GAMMA == 0.5 and OFFICIAL_LAMBDA == 1.0
    assert OrthogonalProjectionLoss().gamma == 0.5


def test_hand_derived_orthogonal_and_parallel():
    # two classes; class 0 features are parallel, class 1 orthogonal to class 0:
    # s_pos = 1 (all same-class cosines are 1), s_neg = 0, so L = 0.
    f = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0], [0.0, 1.0]])
    y = torch.tensor([0, 0, 1, 1])
    loss, s_pos, s_neg = orthogonal_projection_loss(f, y, gamma=0.5)
    assert_close(s_pos, torch.tensor(1.0), atol=1e-5)
    assert_close(s_neg, torch.tensor(0.0), atol=1e-6)
    assert_close(loss, torch.tensor(0.0), atol=1e-5)


def test_hand_derived_absolute_value_in_s_neg():
    # classes point in opposite directions: cos = -1 across classes; s_neg uses |cos| = 1.
    # s_pos = 1, so L = (1 - 1) + gamma * 1 = gamma (the |.| makes anti-parallel as bad as parallel)
    f = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]])
    y = torch.tensor([0, 0, 1, 1])
    loss, s_pos, s_neg = orthogonal_projection_loss(f, y, gamma=2.0)
    assert_close(s_neg, torch.tensor(1.0), atol=1e-5)
    assert_close(loss, torch.tensor(2.0), atol=1e-5)


def test_matches_float64_reference():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(24, 7, generator=g)
    y = torch.randint(0, 4, (24,), generator=g)
    for gamma in (0.5, 2.0):
        got = orthogonal_projection_loss(f, y, gamma)
        ref = reference_opl(f, y, gamma)
        for a, b in zip(got, ref):
            assert_close(a, torch.tensor(b, dtype=torch.float32), atol=1e-5, rtol=1e-5)


def test_no_positive_pair_gives_zero_s_pos():
    # all labels distinct: the 1e-6 guard of the official code makes s_pos exactly 0
    _, s_pos, _ = orthogonal_projection_loss(torch.randn(5, 3), torch.arange(5))
    assert s_pos.item() == 0.0


def test_gradcheck():
    y = torch.tensor([0, 1, 0, 2, 1, 2])
    f = torch.randn(6, 5, dtype=torch.float64) + 0.5  # away from |cos| = 0 kinks
    check_gradients(lambda x: orthogonal_projection_loss(x, y, 0.5)[0], f)


def test_total_loss_is_ce_plus_lambda_opl():
    g = torch.Generator().manual_seed(1)
    logits, f = torch.randn(8, 3, generator=g), torch.randn(8, 4, generator=g)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    total, parts = ce_plus_opl(logits, f, y, lam=0.7, gamma=0.5)
    expected = torch.nn.functional.cross_entropy(logits, y) + 0.7 * orthogonal_projection_loss(f, y, 0.5)[0]
    assert_close(total, expected)
    assert set(parts) == {"ce", "opl", "s_pos", "s_neg"}


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="features"):
        orthogonal_projection_loss(torch.randn(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        orthogonal_projection_loss(torch.randn(4, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="gamma"):
        orthogonal_projection_loss(torch.randn(4, 2), torch.zeros(4, dtype=torch.long), gamma=-1)


def test_population_geometry_and_class_pair_matrix():
    f = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
    y = torch.tensor([0, 0, 1, 1])
    s_pos, s_neg = pair_similarities(f, y)
    c = 1 / (1.01**0.5)  # cos between (1, 0) and (1, 0.1)
    assert abs(s_pos - c) < 1e-7
    # different-class cosines: (1,0)-(0,1)=0, (1,0)-(.1,1)=.1/|.|, (1,.1)-(0,1)=.1/|.|, (1,.1)-(.1,1)=.2/1.01
    assert abs(s_neg - (0 + 0.1 * c + 0.1 * c + 0.2 / 1.01) / 4) < 1e-7  # float32 inputs
    mat = class_pair_matrix(f, y, 2)
    assert abs(mat[0][0] - c) < 1e-7 and abs(mat[1][1] - c) < 1e-7
    assert abs(mat[0][1] - mat[1][0]) < 1e-12


def test_smoke(tmp_path):
    result = run_smoke(Path(__file__).parents[1] / "reproduce.py", tmp_path, extra_args=["--workers", "1"])
    assert result["package"] == "opl"
    assert "clean/s_neg_reduction" in result["metrics"]
    assert "pairflip/acc_gain_pts" in result["metrics"]  # the TL vs TL + OPL arms ran too


def test_full_scale_loader_reads_a_local_cifar100(tmp_path):
    # --scale full reads CIFAR-100 from a local folder; a tiny fixture in the published pickle format
    from opl.experiment import RunConfig, build_model, load_data

    from xentlab.testing.fixtures import write_cifar

    write_cifar(tmp_path, "cifar100", n_train=6, n_test=4, labels="cycle")
    cfg = RunConfig(dataset="cifar100", data_root=str(tmp_path), model="resnet20")
    train, test, k = load_data(cfg)
    assert k == 100 and train.x.shape == (6, 3, 32, 32) and test.x.shape == (4, 3, 32, 32)
    assert abs(train.x.mean().item()) < 1e-5  # standardised with training statistics
    f, z = build_model(cfg, 3, k).forward_features(train.x)
    assert f.shape == (6, 64) and z.shape == (6, 100)
    with pytest.raises(ValueError, match="data_root"):
        load_data(RunConfig(dataset="cifar100"))


def test_module_and_total_pass_gamma_through():
    # a non-default gamma must reach Eq. 3 through the module and through ce_plus_opl (and the parts
    # report s_pos / s_neg under their own names)
    g = torch.Generator().manual_seed(2)
    logits, f = torch.randn(10, 3, generator=g), torch.randn(10, 4, generator=g)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    ref, ref_pos, ref_neg = reference_opl(f, y, gamma=3.0)
    loss, s_pos, s_neg = OrthogonalProjectionLoss(gamma=3.0)(f, y)
    assert_close(loss, torch.tensor(ref, dtype=torch.float32), atol=1e-5, rtol=1e-5)
    total, parts = ce_plus_opl(logits, f, y, lam=1.0, gamma=3.0)
    ce = torch.nn.functional.cross_entropy(logits, y).item()
    assert abs(total.item() - (ce + ref)) < 1e-5
    assert abs(parts["opl"] - ref) < 1e-5 and abs(parts["ce"] - ce) < 1e-6
    assert abs(parts["s_pos"] - ref_pos) < 1e-5 and abs(parts["s_neg"] - ref_neg) < 1e-5
    assert abs(ref_pos - ref_neg) > 1e-2  # the two parts differ, so a swap is seen
