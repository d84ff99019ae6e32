import math

import pytest
import torch

from xentlab.losses.supcon import supcon_loss
from xentlab.testing import assert_close, check_gradients


def supcon_double_loop(features: torch.Tensor, labels: torch.Tensor, tau: float) -> torch.Tensor:
    """Khosla et al. (2020) Eq. 2 written as plain loops in float64: the reference."""
    z = features.double()
    z = z / z.norm(dim=1, keepdim=True)
    b = len(z)
    per_anchor = []
    for i in range(b):
        positives = [p for p in range(b) if p != i and labels[p] == labels[i]]
        if not positives:
            continue
        denom = sum(math.exp(float(z[i] @ z[a]) / tau) for a in range(b) if a != i)
        terms = [math.log(math.exp(float(z[i] @ z[p]) / tau) / denom) for p in positives]
        per_anchor.append(-sum(terms) / len(positives))
    return torch.tensor(sum(per_anchor) / len(per_anchor), dtype=torch.float64)


@pytest.mark.parametrize("tau", [0.07, 0.5, 1.0])
def test_matches_double_loop(tau):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 5, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1, 1, 2, 2, 3, 0, 4, 4, 5])  # label 3 and 5 have no positive
    assert_close(supcon_loss(x, y, tau), supcon_double_loop(x, y, tau), name=f"supcon tau={tau}")


def test_float32_close_to_float64_reference():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 8, generator=g)
    y = torch.arange(16) // 2
    assert_close(supcon_loss(x, y, 0.07), supcon_double_loop(x, y, 0.07).float(), rtol=1e-5, atol=1e-5)


def test_hand_values():
    # Two samples, same label: the only positive is also the only contrast term,
    # so log(exp(s/tau) / exp(s/tau)) = 0 whatever the embeddings.
    assert supcon_loss(torch.tensor([[1.0, 0.0], [0.6, 0.8]]), torch.tensor([3, 3]), 0.1).item() == 0.0
    # Three unit vectors: z0 = z1 = e1 (label 0), z2 = e2 (label 1), tau = 1.
    # Anchor 0: positive 1 (sim 1), contrast {1: sim 1, 2: sim 0} -> -log(e / (e + 1)); anchor 1 the same;
    # anchor 2 has no positive and is left out. Loss = log(1 + 1/e).
    x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 5.0]])
    assert_close(supcon_loss(x, torch.tensor([0, 0, 1]), 1.0), torch.tensor(math.log(1 + math.exp(-1))))


def test_default_temperature_is_khosla_0_07():
    # Khosla et al. (2020) train with tau = 0.07; a call without a temperature must use it.
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(8, 4, generator=g, dtype=torch.float64), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    assert_close(supcon_loss(x, y), supcon_double_loop(x, y, 0.07), name="supcon default tau")


def test_temperature_is_a_parameter():
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(8, 4, generator=g), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    assert supcon_loss(x, y, 0.07).item() != pytest.approx(supcon_loss(x, y, 0.5).item())


def test_scale_invariant_and_normalize_flag():
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.tensor([0, 1, 0, 1, 2, 2])
    assert_close(supcon_loss(7.0 * x, y), supcon_loss(x, y))
    z = x / x.norm(dim=1, keepdim=True)
    assert_close(supcon_loss(z, y, normalize=False), supcon_loss(x, y))


def test_no_positive_gives_zero_with_graph():
    x = torch.randn(4, 3, requires_grad=True)
    loss = supcon_loss(x, torch.arange(4))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_gradcheck():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(6, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1, 1, 2])
    check_gradients(lambda f: supcon_loss(f, y, 0.3), x)


def test_bad_inputs():
    with pytest.raises(ValueError, match="features"):
        supcon_loss(torch.randn(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        supcon_loss(torch.randn(4, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature"):
        supcon_loss(torch.randn(4, 2), torch.zeros(4, dtype=torch.long), 0.0)
