"""The ICNN score/loss vs hand derivations and a literal loop reference, gradcheck, episode averaging, errors."""

import math

import pytest
import torch
import torch.nn.functional as F
from susana.icnn import icnn_loss, icnn_score
from susana.losses import episode_loss, proto_logits, proto_triplet_loss, prototypes

from xentlab.testing import assert_close, check_gradients

D64 = torch.float64
E = 1e-7  # the official denominator epsilon


def _d(x):  # the official distance: sqrt(||.||^2 + 1e-6)
    return math.sqrt(x * x + 1e-6)


def test_hand_values_mixed_episode():
    # 1-d points, k = 2 neighbours enter the score, ipc = 3 are searched
    # class 0 at 0, 1, 3 ; class 1 at 4, 6.5, 8
    z = torch.tensor([[0.0], [1.0], [3.0], [4.0], [6.5], [8.0]], dtype=D64)
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    # 3 nearest others (distance, class), nearest other-class distance nn_dc among them:
    # p0: (1,0) (3,0) (4,1)       nn_dc 4    first 2 same class, ratios 1/4, 3/4 (max < 1: kept)
    # p1: (1,0) (2,0) (3,1)       nn_dc 3    ratios 1/3, 2/3
    # p2: (1,1) (2,0) (3,0)       nn_dc 1    ratios 1, 2 -> / 2 -> 1/2, 1; only the 2nd is same class
    # p3: (1,0) (2.5,1) (3,0)     nn_dc 1    ratios 1, 2.5 -> / 2.5; only the 2nd is same class
    # p4: (1.5,1) (2.5,1) (3.5,0) nn_dc 3.5  ratios 1.5/3.5, 2.5/3.5
    # p5: (1.5,1) (4,1) (5,0)     nn_dc 5    ratios 1.5/5, 4/5
    sc_means = [
        (_d(1) + _d(3)) / (_d(4) + E) / (2 + E),
        (_d(1) + _d(2)) / (_d(3) + E) / (2 + E),
        1 / (1 + E),  # the same-class ratio is the row max, normalised to 1
        1 / (1 + E),
        (_d(1.5) + _d(2.5)) / (_d(3.5) + E) / (2 + E),
        (_d(1.5) + _d(4)) / (_d(5) + E) / (2 + E),
    ]
    lam_sc = 1 - sum(sc_means) / (6 + E)
    # other-class neighbours among the first 2: p2 -> p3 and p3 -> p2, both at distance 1 = the episode max
    dc_one = _d(1) / (_d(1) + E) / (1 + E)
    lam_dc = 2 * dc_one / (2 + E)
    gamma = (2 + 2 + 1 + 1 + 2 + 2) / 2 / 6  # same-class fraction of the 2 nearest, averaged
    score = ((lam_sc + lam_dc) / 2 + gamma) / 2  # ~ 0.745 (eps-free: lam_sc 0.313, lam_dc 1, gamma 0.833)
    assert abs(score - 0.74494) < 1e-4
    assert_close(icnn_score(z, y, k=2, ipc=3), torch.tensor(score, dtype=D64))
    assert_close(icnn_loss(z, y, k=2, ipc=3), torch.tensor(-math.log(score), dtype=D64))


def test_hand_values_separated_clusters():
    # class 0 at 0, 1, 2 and class 1 at 100, 101, 102: the 2 nearest are always same class, so
    # gamma = 1 and lambda_dc = |0 - 1| = 1 (official dcop branch); lambda_sc from the small ratios
    z = torch.tensor([[0.0], [1.0], [2.0], [100.0], [101.0], [102.0]], dtype=D64)
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    ends = (_d(1) + _d(2)) / (_d(100) + E) / (2 + E)  # p0: 1, 2 over nn_dc 100 (p5 alike)
    mids = 2 * _d(1) / (_d(99) + E) / (2 + E)  # p1: 1, 1 over 99 (p4 alike)
    inner = (_d(1) + _d(2)) / (_d(98) + E) / (2 + E)  # p2: 1, 2 over 98 (p3 alike)
    lam_sc = 1 - 2 * (ends + mids + inner) / (6 + E)
    score = ((lam_sc + 1.0) / 2 + 1.0) / 2
    assert_close(icnn_score(z, y, k=2, ipc=3), torch.tensor(score, dtype=D64))
    assert icnn_loss(z, y, k=2, ipc=3).item() < 0.01


def test_small_set_shrinks_k_and_fixes_gamma():
    # N = 5 < k + 2 = 6: official k -> N - 2 = 3, ipc -> 4, gamma fixed to 1.0
    z = torch.tensor([[0.0], [1.0], [3.0], [4.0], [6.5]], dtype=D64)
    y = torch.tensor([0, 0, 1, 1, 0])
    assert_close(icnn_score(z, y, k=4), _reference(z, y, k=3, ipc=4, gamma_one=True))


def _reference(z, y, k=4, ipc=None, gamma_one=False):
    """Literal per-sample loop of the official steps (top ipc + 1 including self, first column dropped)."""
    n = len(z)
    ipc = k + 1 if ipc is None else ipc
    d = torch.sqrt(((z[:, None] - z[None]) ** 2).sum(-1) + 1e-6)
    sc_sum, sc_rows, dc_sum, dc_rows, same_total = 0.0, 0, 0.0, 0, 0
    rows = []
    for i in range(n):
        order = sorted(range(n), key=lambda j: d[i, j].item())[1 : ipc + 1]
        dist = [d[i, j].item() for j in order]
        same = [bool(y[j] == y[i]) for j in order]
        other = [x for x, s in zip(dist, same) if not s]
        nn_dc = min(other) if other else math.inf
        nd = [x / (nn_dc + E) for x in dist[:k]]
        top = max(1.0, max(nd))
        nd = [x / top for x in nd]
        rows.append((dist[:k], same[:k]))
        cnt = sum(same[:k])
        same_total += cnt
        sc_sum += sum(x for x, s in zip(nd, same[:k]) if s) / (cnt + E)
        sc_rows += cnt > 0
    dmax = max([x for dist, same in rows for x, s in zip(dist, same) if not s], default=0.0)
    for dist, same in rows:
        cnt = sum(not s for s in same)
        dc_sum += sum(x / (dmax + E) for x, s in zip(dist, same) if not s) / (cnt + E)
        dc_rows += cnt > 0
    lam_sc = 1 - sc_sum / (sc_rows + E)
    lam_dc = abs(dc_sum / (dc_rows + E) - (1 if dc_rows == 0 else 0))
    gamma = 1.0 if gamma_one else same_total / k / n
    return torch.tensor(((lam_sc + lam_dc) / 2 + gamma) / 2, dtype=D64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_literal_reference_on_random_episodes(seed):
    g = torch.Generator().manual_seed(seed)
    way, per_class = 5, 4  # e.g. 2 shot + 2 query per class: ipc = 4, k = 4
    z = torch.randn(way * per_class, 6, generator=g, dtype=D64)
    z[: way * per_class] += 1.5 * torch.randn(way, 6, generator=g, dtype=D64).repeat_interleave(per_class, 0)
    y = torch.arange(way).repeat_interleave(per_class)
    assert_close(icnn_score(z, y, k=4, ipc=per_class), _reference(z, y, k=4, ipc=per_class))
    assert_close(icnn_score(z, y, k=2), _reference(z, y, k=2))


def test_gradcheck():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(12, 3, generator=g)
    y = torch.arange(3).repeat_interleave(4)
    check_gradients(lambda a: icnn_loss(a, y, k=4, ipc=4), z)


def test_pulling_classes_apart_lowers_the_loss():
    g = torch.Generator().manual_seed(4)
    base = torch.randn(20, 4, generator=g, dtype=D64)
    y = torch.arange(5).repeat_interleave(4)
    centres = 3.0 * torch.eye(5, 4, dtype=D64)[y]
    assert icnn_loss(base + centres, y, ipc=4) < icnn_loss(base, y, ipc=4)


def test_episode_loss_averages_selected_losses():
    g = torch.Generator().manual_seed(5)
    s, q = torch.randn(6, 3, generator=g, dtype=D64), torch.randn(9, 3, generator=g, dtype=D64)
    ys, yq = torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    c = prototypes(s, ys, 3)
    ce = F.cross_entropy(proto_logits(q, c), yq)
    tri = proto_triplet_loss(q, yq, c)
    ic = icnn_loss(torch.cat([s, q]), torch.cat([ys, yq]), k=4, ipc=5)  # ipc = shot 2 + query 3
    assert_close(episode_loss(s, ys, q, yq, 3, icnn=True)[0], (ce + ic) / 2)
    assert_close(episode_loss(s, ys, q, yq, 3, triplet=True, icnn=True)[0], (ce + tri + ic) / 3)
    with pytest.raises(ValueError, match="balanced episode"):
        episode_loss(s, ys, q[:8], yq[:8], 3, icnn=True)


def test_clear_errors():
    z, y = torch.zeros(6, 2), torch.tensor([0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="N x D"):
        icnn_score(torch.zeros(6), y)
    with pytest.raises(ValueError, match="one label per embedding"):
        icnn_score(z, y[:5])
    with pytest.raises(ValueError, match="at least 3 samples"):
        icnn_score(z[:2], y[:2])
    with pytest.raises(ValueError, match="k must be >= 1"):
        icnn_score(z, y, k=0)
    with pytest.raises(ValueError, match="ipc <= N - 1"):
        icnn_score(z, y, k=2, ipc=6)
    with pytest.raises(ValueError, match="k <= ipc"):
        icnn_score(z, y, k=3, ipc=2)


def test_episode_loss_passes_margin_icnn_k_and_ipc():
    # well-separated classes: each sample's 4 nearest neighbours are its own class, so only a search over
    # ipc = shot + query = 5 neighbours reaches an other-class sample (ipc = 4 would leave lambda_sc = 1)
    g = torch.Generator().manual_seed(6)
    centres = 5.0 * torch.eye(3, 3, dtype=D64)
    ys, yq = torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    s = centres[ys] + 0.3 * torch.randn(6, 3, generator=g, dtype=D64)
    q = centres[yq] + 0.3 * torch.randn(9, 3, generator=g, dtype=D64)
    z, y = torch.cat([s, q]), torch.cat([ys, yq])
    ic5, ic4 = icnn_loss(z, y, k=4, ipc=5), icnn_loss(z, y, k=4, ipc=4)
    assert abs(ic5.item() - ic4.item()) > 1e-3
    c = prototypes(s, ys, 3)
    ce = F.cross_entropy(proto_logits(q, c), yq)
    assert_close(episode_loss(s, ys, q, yq, 3, icnn=True)[0], (ce + ic5) / 2)
    # a non-default margin and ICNN k reach their terms
    tri = proto_triplet_loss(q, yq, c, margin=12.0)
    assert tri.item() > 0  # the margin 12 keeps the hinges active
    ic_k3 = icnn_loss(z, y, k=3, ipc=5)
    assert abs(ic_k3.item() - ic5.item()) > 1e-6
    got = episode_loss(s, ys, q, yq, 3, triplet=True, margin=12.0, icnn=True, icnn_k=3)[0]
    assert_close(got, (ce + tri + ic_k3) / 3)
