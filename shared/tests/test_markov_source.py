"""The Markov source: exact entropy rate against hand-derived cases, the true model's empirical loss
converges to it, sampling is deterministic per seed, bad arguments raise clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xentlab.data.markov_source import MarkovSource, MarkovSourceConfig


def _h(p) -> float:
    p = np.asarray(p, dtype=np.float64)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def test_iid_source_entropy_is_shannon_entropy():
    # order 0: every symbol is drawn from p independently, so H = H(p);
    # p = (1/2, 1/4, 1/4): H = 1/2 ln 2 + 2 * 1/4 ln 4 = 1.5 ln 2 nats = 1.5 bits
    src = MarkovSource.from_table(np.array([0.5, 0.25, 0.25]))
    assert src.order == 0
    assert src.entropy_rate == pytest.approx(1.5 * math.log(2), abs=1e-12)
    assert src.entropy_rate_bits == pytest.approx(1.5, abs=1e-12)


def test_deterministic_cycle_has_zero_entropy():
    # order 1, x_{t+1} = x_t + 1 mod 5: the future is determined by the present, H = 0;
    # the (periodic) cycle still has the unique stationary distribution uniform(5)
    v = 5
    probs = np.zeros((v, v))
    probs[np.arange(v), (np.arange(v) + 1) % v] = 1.0
    src = MarkovSource.from_table(probs)
    assert src.entropy_rate == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(src.stationary, np.full(v, 1 / v), atol=1e-12)
    x = src.sample(20, seed=0)
    assert np.all(np.diff(x) % v == 1)


def _two_state(a: float, b: float) -> tuple[np.ndarray, float]:
    # P = [[1-a, a], [b, 1-b]]: pi = (b, a) / (a + b) (solves pi P = pi), and
    # H = pi_0 h(a) + pi_1 h(b) with h the binary entropy (Cover & Thomas, Example 4.2.1)
    def hb(p):
        return _h([p, 1 - p])

    pi = np.array([b, a]) / (a + b)
    return pi, float(pi[0] * hb(a) + pi[1] * hb(b))


def test_two_state_chain_closed_form():
    a, b = 0.1, 0.3
    pi, h = _two_state(a, b)
    src = MarkovSource.from_table(np.array([[1 - a, a], [b, 1 - b]]))
    np.testing.assert_allclose(src.stationary, pi, atol=1e-12)
    assert src.entropy_rate == pytest.approx(h, abs=1e-12)


def test_order_two_table_that_ignores_the_older_symbol_reduces_to_order_one():
    # P(y | x1, x2) = Q(y | x2): the process is the order-1 chain Q, so the order-2 machinery
    # (context indexing, stationary distribution on pairs) must give Q's closed-form entropy rate
    a, b = 0.2, 0.45
    q = np.array([[1 - a, a], [b, 1 - b]])
    probs = np.stack([q, q])  # probs[x1, x2, y] = q[x2, y]
    src = MarkovSource.from_table(probs)
    pi, h = _two_state(a, b)
    assert src.order == 2
    assert src.entropy_rate == pytest.approx(h, abs=1e-12)
    np.testing.assert_allclose(src.marginal, pi, atol=1e-12)
    # the pair distribution is pi(x1) Q(x2 | x1), flat index x1 * 2 + x2
    np.testing.assert_allclose(src.stationary, (pi[:, None] * q).ravel(), atol=1e-12)


def test_empirical_log_loss_of_true_model_converges_to_entropy_rate():
    src = MarkovSource(MarkovSourceConfig(vocab_size=32, order=2, support=4, seed=1))
    x = src.sample(200_000, seed=5)
    emp = -src.log_prob(x).mean()
    # per-token log-loss has std ~1 nat; over 2e5 (weakly correlated) tokens the mean is within ~0.01
    assert emp == pytest.approx(src.entropy_rate, abs=0.02)
    # a batch of independent stationary windows gives the same rate (scored at t >= order)
    xb = src.sample_batch(400, 64, seed=6)
    assert -src.log_prob(xb).mean() == pytest.approx(src.entropy_rate, abs=0.03)
    # symbol frequencies follow the stationary marginal
    freq = np.bincount(x, minlength=32) / x.size
    np.testing.assert_allclose(freq, src.marginal, atol=0.01)


def test_random_source_is_a_valid_sparse_table():
    cfg = MarkovSourceConfig(vocab_size=16, order=2, support=3, concentration=0.5, eps=0.01, seed=0)
    src = MarkovSource(cfg)
    assert src.probs.shape == (16, 16, 16)
    np.testing.assert_allclose(src.probs.sum(-1), 1.0, atol=1e-12)
    # exactly `support` entries above the uniform floor eps / V in every row
    above = (src.probs > cfg.eps / 16 + 1e-15).sum(-1)
    assert np.all(above <= 3)
    assert 0 < src.entropy_rate < math.log(16)
    assert src.stationary.shape == (256,) and src.stationary.sum() == pytest.approx(1.0)


def test_deterministic_per_seed():
    cfg = MarkovSourceConfig(vocab_size=8, order=2, seed=3)
    a, b = MarkovSource(cfg), MarkovSource(cfg)
    np.testing.assert_array_equal(a.probs, b.probs)
    np.testing.assert_array_equal(a.sample(500, seed=1), b.sample(500, seed=1))
    np.testing.assert_array_equal(a.sample_batch(4, 30, seed=2), b.sample_batch(4, 30, seed=2))
    assert not np.array_equal(a.sample(500, seed=1), a.sample(500, seed=2))
    c = MarkovSource(MarkovSourceConfig(vocab_size=8, order=2, seed=4))
    assert not np.array_equal(a.probs, c.probs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"vocab_size": 1}, "vocab_size"),
        ({"order": -1}, "order"),
        ({"support": 0}, "support"),
        ({"support": 40}, "support"),
        ({"concentration": 0.0}, "concentration"),
        ({"eps": 1.0}, "eps"),
        ({"vocab_size": 64, "order": 4}, "too large"),
    ],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MarkovSourceConfig(**kwargs)


def test_bad_arguments_raise():
    src = MarkovSource(MarkovSourceConfig(vocab_size=8, order=2, seed=0))
    with pytest.raises(ValueError, match="n_tokens"):
        src.sample(0, seed=0)
    with pytest.raises(ValueError, match="n_seqs"):
        src.sample_batch(0, 10, seed=0)
    with pytest.raises(ValueError, match="tokens must be in"):
        src.log_prob(np.array([0, 1, 8]))
    with pytest.raises(ValueError, match="more than order"):
        src.log_prob(np.array([0, 1]))
    with pytest.raises(ValueError, match="probability distribution"):
        MarkovSource.from_table(np.array([[0.5, 0.4], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="shape"):
        MarkovSource.from_table(np.ones((2, 3)) / 3)
    with pytest.raises(ValueError, match="exactly one"):
        MarkovSource()
    # a reducible chain (every state absorbing) has no unique stationary distribution
    with pytest.raises(ValueError, match="stationary"):
        _ = MarkovSource.from_table(np.eye(3)).stationary
