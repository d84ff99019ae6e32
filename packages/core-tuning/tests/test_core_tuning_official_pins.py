"""Pins of official ``Core-tuning.py`` arithmetic that the other tests did not fix (README, "Fidelity audit,
second reader (audit 2)"): the two Beta draws of ``feature_mixup`` (hard-negative lambda floored at 0.8, the
hard-positive lambda unclamped) and the float32 label code of ``focal_SupConLoss`` behind Deviation 6."""

import torch
import torch.nn.functional as F
from core_tuning.focal_supcon import soft_label_groups
from core_tuning.mixup import feature_mixup

from xentlab.testing import assert_close


def test_lambdas_are_the_official_draws():
    # official: lam = np.random.beta(a, a, B); `if lam[i] <= 0.8: lam[i] = 0.8` for the hard negatives; a second,
    # unclamped Beta(a, a) draw for the hard positives. Ours draws pi, then the two Beta vectors, in that order.
    b, alpha = 32, 1.0
    h = torch.randn(b, 4, dtype=torch.float64)
    y = torch.arange(b) % 4
    torch.manual_seed(5)
    m = feature_mixup(h, y, 4, alpha=alpha)
    torch.manual_seed(5)
    perm = torch.randperm(b)
    beta = torch.distributions.Beta(torch.tensor(alpha), torch.tensor(alpha))
    lam_n, lam_p = beta.sample((b, 1)).double().view(-1), beta.sample((b, 1)).double().view(-1)
    assert torch.equal(m.perm, perm)
    expected_n = torch.where(lam_n <= 0.8, torch.full_like(lam_n, 0.8), lam_n)
    assert_close(m.lam_negative, expected_n, rtol=0, atol=0)
    assert_close(m.lam_positive, lam_p, rtol=0, atol=0)
    # the floor binds for about 80 % of the draws at alpha = 1 and the draws above it are kept as drawn
    assert (m.lam_negative == 0.8).any() and (m.lam_negative > 0.8).any() and (m.lam_positive < 0.8).any()


def test_official_float32_label_code_merges_labels_that_differ():
    # official: code = labels.mm(10 ** arange(C)) in float32, then LabelEncoder; 0.2*y_0 + 0.8*y_9 and
    # 0.2*y_1 + 0.8*y_9 have codes 800000000.2 and 800000002, both 800000000.0 in float32 (spacing 64 there),
    # so the official loss makes them positives of each other. Ours keeps them apart (identical rows only).
    y = F.one_hot(torch.tensor([0, 1, 9]), 10).float()
    mixes = torch.stack([0.2 * y[0] + 0.8 * y[2], 0.2 * y[1] + 0.8 * y[2]])
    weights = (10.0 ** torch.arange(10, dtype=torch.float64)).float()
    code32 = mixes @ weights
    assert code32[0].item() == code32[1].item() == 800000000.0
    code64 = mixes.double() @ (10.0 ** torch.arange(10, dtype=torch.float64))
    assert code64[0].item() != code64[1].item()
    groups = soft_label_groups(mixes)
    assert groups[0] != groups[1]
