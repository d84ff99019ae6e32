"""PLD, ListMLE and KD: float64 brute-force references, special cases, invariances, convexity, errors."""

import math

import pytest
import torch
import torch.nn.functional as F
from pld.losses import (
    KD_ALPHA,
    KD_TAU,
    kd_loss,
    listmle_loss,
    plackett_luce_nll,
    pld_loss,
    pld_weights,
    teacher_optimal_permutation,
)

from xentlab.testing import assert_close, check_gradients


def brute_force_pld(s, t, y, tau=None):
    """Sec. 4 written out with Python loops in float64: pi* = (y, others by descending t, ties by lower
    index), alpha_k = softmax(t / tau)_{pi*_k} (uniform 1/C when tau is None: ListMLE), and
    L = -sum_k alpha_k [s_{pi*_k} - log sum_{j >= k} exp s_{pi*_j}], averaged over the batch."""
    s, t = s.double(), t.double()
    total = 0.0
    for i in range(len(y)):
        c = s.shape[1]
        label = int(y[i])
        others = sorted((j for j in range(c) if j != label), key=lambda j: (-float(t[i, j]), j))
        perm = [label, *others]
        q = [1.0 / c] * c if tau is None else torch.softmax(t[i] / tau, 0).tolist()
        loss = 0.0
        for k in range(c):
            tail = [math.exp(float(s[i, perm[j]])) for j in range(k, c)]
            loss -= q[perm[k]] * (float(s[i, perm[k]]) - math.log(sum(tail)))
        total += loss
    return total / len(y)


def _batch(n=6, c=7, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (
        3 * torch.randn(n, c, generator=g, dtype=dtype),
        3 * torch.randn(n, c, generator=g, dtype=dtype),
        torch.randint(0, c, (n,), generator=g),
    )


@pytest.mark.parametrize("tau", [0.5, 1.0, 4.0])
def test_pld_matches_float64_brute_force(tau):
    s, t, y = _batch()
    assert_close(pld_loss(s, t, y, tau=tau), torch.tensor(brute_force_pld(s, t, y, tau), dtype=torch.float32),
                 rtol=1e-5, atol=1e-5)  # fmt: skip
    s64, t64 = s.double(), t.double()
    assert_close(pld_loss(s64, t64, y, tau=tau), torch.tensor(brute_force_pld(s, t, y, tau), dtype=torch.float64),
                 rtol=1e-12, atol=1e-12)  # fmt: skip


def test_listmle_matches_float64_brute_force():
    s, t, y = _batch(seed=1)
    ref = brute_force_pld(s.double(), t.double(), y, tau=None)
    assert_close(listmle_loss(s.double(), t.double(), y), torch.tensor(ref, dtype=torch.float64), rtol=1e-12)


def test_two_classes_hand_derived():
    # C = 2, label 0: pi* = (0, 1); the last step always has log-probability 0, so
    # L = -q_0 [s_0 - log(e^{s_0} + e^{s_1})] = q_0 * softplus(s_1 - s_0), q_0 = sigmoid((t_0 - t_1) / tau).
    s, t, y = torch.tensor([[0.3, 1.1]]), torch.tensor([[2.0, -1.0]]), torch.tensor([0])
    q0 = torch.sigmoid(torch.tensor(3.0 / 2.0))
    assert_close(pld_loss(s, t, y, tau=2.0), q0 * F.softplus(torch.tensor(0.8)), atol=1e-6)


def test_one_hot_weights_give_cross_entropy_exactly():
    # alpha = (1, 0, ..., 0) keeps only step 1: -[s_y - logsumexp(s)] = CE (Sec. 4.2)
    s, t, y = _batch(dtype=torch.float64)
    perm = teacher_optimal_permutation(t, y)
    w = torch.zeros_like(s)
    w[:, 0] = 1.0
    assert torch.equal(perm[:, 0], y)
    assert_close(plackett_luce_nll(s, perm, w), F.cross_entropy(s, y), rtol=1e-14, atol=1e-14)


def test_sharp_correct_teacher_recovers_cross_entropy():
    # tau_T -> 0 makes alpha one-hot on argmax t; when the teacher is right that is position 1, so PLD -> CE
    s, t, y = _batch(dtype=torch.float64)
    t.scatter_(1, y[:, None], t.max(1, keepdim=True).values + 1.0)  # teacher correct by a margin of 1
    assert_close(pld_loss(s, t, y, tau=1e-3), F.cross_entropy(s, y), rtol=1e-10, atol=1e-10)


def test_uniform_weights_give_listmle_and_flat_teacher():
    s, t, y = _batch(dtype=torch.float64)
    perm = teacher_optimal_permutation(t, y)
    uniform = torch.full_like(s, 1.0 / s.shape[1])
    assert_close(listmle_loss(s, t, y), plackett_luce_nll(s, perm, uniform), rtol=1e-14)
    # tau_T -> infinity flattens the teacher softmax to 1/C: PLD -> ListMLE on the same pi*
    assert_close(pld_loss(s, t, y, tau=1e9), listmle_loss(s, t, y), rtol=1e-8)


def test_translation_invariance():
    # adding a constant per row to s leaves every PL choice probability unchanged (Sec. 3.2);
    # adding one to t changes neither pi* nor softmax(t / tau)
    s, t, y = _batch(dtype=torch.float64)
    shift = torch.randn(len(s), 1, dtype=torch.float64) * 10
    base = pld_loss(s, t, y)
    assert_close(pld_loss(s + shift, t, y), base, rtol=1e-12, atol=1e-12)
    assert_close(pld_loss(s, t + shift, y), base, rtol=1e-12, atol=1e-12)
    assert_close(listmle_loss(s + shift, t, y), listmle_loss(s, t, y), rtol=1e-12, atol=1e-12)


def test_scale_is_not_invariant():
    # scaling s changes the sharpness (Sec. 3.2): not a symmetry of the loss
    s, t, y = _batch(dtype=torch.float64)
    assert abs(float(pld_loss(2 * s, t, y) - pld_loss(s, t, y))) > 1e-3


def test_gradcheck():
    s, t, y = _batch(n=3, c=5, dtype=torch.float64)
    check_gradients(lambda x: pld_loss(x, t, y, tau=1.0), s)
    check_gradients(lambda x: listmle_loss(x, t, y), s)
    check_gradients(lambda x: kd_loss(x, t, y), s)


def test_gradient_matches_closed_form_of_appendix_a():
    # Appendix A.3: dL/ds_i = sum_{k: i in {pi*_k..pi*_C}} alpha_k softmax_{suffix k}(s)_i - alpha_{pos(i)}
    s, t, y = _batch(n=1, c=6, dtype=torch.float64)
    s.requires_grad_(True)
    pld_loss(s, t, y, reduction="sum").backward()
    perm = teacher_optimal_permutation(t, y)[0].tolist()
    alpha = torch.softmax(t[0], 0).tolist()
    grad = [0.0] * 6
    for k in range(6):
        tail = perm[k:]
        z = torch.softmax(s[0, tail].detach(), 0).tolist()
        for pos, cls in enumerate(tail):
            grad[cls] += alpha[perm[k]] * z[pos]
        grad[perm[k]] -= alpha[perm[k]]
    assert_close(s.grad[0], torch.tensor(grad, dtype=torch.float64), rtol=1e-12, atol=1e-12)


def test_convex_in_student_logits():
    # Appendix A.4: affine + nonnegatively weighted log-sum-exp => convex. Check the Hessian is PSD and
    # the midpoint inequality on random pairs.
    s, t, y = _batch(n=1, c=6, dtype=torch.float64)
    hess = torch.autograd.functional.hessian(lambda x: pld_loss(x.view(1, -1), t, y), s[0])
    assert torch.linalg.eigvalsh(hess).min() > -1e-12
    g = torch.Generator().manual_seed(3)
    for _ in range(50):
        a, b = (
            5 * torch.randn(1, 6, generator=g, dtype=torch.float64),
            5 * torch.randn(1, 6, generator=g, dtype=torch.float64),
        )
        mid = pld_loss((a + b) / 2, t, y)
        assert mid <= (pld_loss(a, t, y) + pld_loss(b, t, y)) / 2 + 1e-12


def test_ties_in_teacher_are_broken_by_lower_class_index():
    t = torch.tensor([[1.0, 2.0, 2.0, 0.0, 2.0]])
    y = torch.tensor([3])
    perm = teacher_optimal_permutation(t, y)
    assert perm.tolist() == [[3, 1, 2, 4, 0]]
    # the label is first even when it ties with (or is below) other classes
    assert teacher_optimal_permutation(t, torch.tensor([2])).tolist() == [[2, 1, 4, 0, 3]]
    s = torch.randn(1, 5, dtype=torch.float64)
    first = pld_loss(s, t.double(), y)
    assert all(torch.equal(pld_loss(s, t.double(), y), first) for _ in range(5))
    assert_close(first, torch.tensor(brute_force_pld(s, t, y, 1.0), dtype=torch.float64), rtol=1e-12)


def test_all_equal_teacher_logits_give_index_order():
    t = torch.zeros(2, 4)
    assert teacher_optimal_permutation(t, torch.tensor([2, 0])).tolist() == [[2, 0, 1, 3], [0, 1, 2, 3]]


def test_weights_follow_the_permutation():
    t, y = torch.tensor([[0.0, 3.0, 1.0]]), torch.tensor([2])
    perm = teacher_optimal_permutation(t, y)  # (2, 1, 0)
    q = torch.softmax(t, 1)[0]
    assert_close(pld_weights(t, perm)[0], q[[2, 1, 0]])


def test_no_gradient_reaches_the_teacher():
    s, t, y = _batch()
    s.requires_grad_(True)
    t.requires_grad_(True)
    (pld_loss(s, t, y) + kd_loss(s, t, y) + listmle_loss(s, t, y)).backward()
    assert t.grad is None and s.grad is not None


def test_reductions():
    s, t, y = _batch(dtype=torch.float64)
    per = pld_loss(s, t, y, reduction="none")
    assert per.shape == (len(s),) and (per >= 0).all()
    assert_close(per.mean(), pld_loss(s, t, y))
    assert_close(per.sum(), pld_loss(s, t, y, reduction="sum"))


def test_kd_matches_hand_formula():
    s, t, y = _batch(dtype=torch.float64)
    tau, alpha = KD_TAU, KD_ALPHA
    q = torch.softmax(t / tau, 1)
    kl = (q * (q.log() - torch.log_softmax(s / tau, 1))).sum(1).mean()
    ref = alpha * F.cross_entropy(s, y) + (1 - alpha) * tau**2 * kl
    assert_close(kd_loss(s, t, y), ref, rtol=1e-12)
    assert_close(kd_loss(s, t, y, alpha=1.0), F.cross_entropy(s, y), rtol=1e-12)
    assert_close(kd_loss(t, t, y, alpha=0.0), torch.tensor(0.0, dtype=torch.float64), atol=1e-12)
    assert (alpha, tau) == (0.1, 2.0)  # the paper's main-text KD setting (Appendix G)


@pytest.mark.parametrize(
    "fn",
    [
        lambda s, t, y: pld_loss(s, t, y),
        lambda s, t, y: listmle_loss(s, t, y),
        lambda s, t, y: kd_loss(s, t, y),
    ],
)
def test_clear_errors_on_bad_input(fn):
    s, t, y = _batch()
    with pytest.raises(ValueError, match="N x C"):
        fn(s[0], t[0], y[:1])
    with pytest.raises(ValueError, match="must match"):
        fn(s, t[:, :-1], y)
    with pytest.raises(ValueError, match="target must have shape"):
        fn(s, t, y[:-1])
    with pytest.raises(ValueError, match="labels must be in"):
        fn(s, t, torch.full_like(y, s.shape[1]))
    with pytest.raises(ValueError, match="labels must be in"):
        fn(s, t, torch.full_like(y, -1))
    with pytest.raises(TypeError, match="integer"):
        fn(s, t, y.float())
    bad = t.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        fn(s, bad, y)


def test_errors_on_bad_parameters():
    s, t, y = _batch()
    with pytest.raises(ValueError, match="tau"):
        pld_loss(s, t, y, tau=0.0)
    with pytest.raises(ValueError, match="tau"):
        kd_loss(s, t, y, tau=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        kd_loss(s, t, y, alpha=1.5)
    with pytest.raises(ValueError, match="reduction"):
        pld_loss(s, t, y, reduction="avg")
    with pytest.raises(ValueError, match="at least 2 classes"):
        pld_loss(s[:, :1], t[:, :1], torch.zeros_like(y))


def test_ties_are_broken_by_lower_class_index_at_cifar100_width():
    # with C = 100 (CIFAR-100) an unstable sort reorders tied classes; the stable one keeps index order
    t = torch.zeros(2, 100)
    t[:, ::3] = 1.0
    t[:, 1::5] = 2.0
    y = torch.tensor([7, 50])
    for row, label in enumerate(y.tolist()):
        others = sorted((j for j in range(100) if j != label), key=lambda j: (-float(t[row, j]), j))
        assert teacher_optimal_permutation(t, y)[row].tolist() == [label, *others]


def test_listmle_and_kd_reductions():
    s, t, y = _batch(dtype=torch.float64)
    for fn in (listmle_loss, kd_loss):
        per = fn(s, t, y, reduction="none")
        assert per.shape == (len(s),)
        assert_close(per.mean(), fn(s, t, y))
        assert_close(per.sum(), fn(s, t, y, reduction="sum"))


def test_plackett_luce_nll_rejects_mismatched_perm_or_weights():
    s, t, y = _batch()
    perm = teacher_optimal_permutation(t, y)
    w = pld_weights(t, perm)
    with pytest.raises(ValueError, match="must match"):
        plackett_luce_nll(s, perm[:, :-1], w)
    with pytest.raises(ValueError, match="must match"):
        plackett_luce_nll(s, perm, w[:-1])
