"""The excess-loss metric against an oracle: a "model" that outputs the source's true conditional
log-probabilities must have excess exactly 0 at every start position (checks the alignment of the
model's predictions with the source's log_prob; an off-by-one gives a large nonzero excess)."""

import numpy as np
import pytest
import torch
from genai_probopt.experiment import excess_bits

from xentlab.data.markov_source import MarkovSource, MarkovSourceConfig


class _Oracle(torch.nn.Module):
    """logits[:, t] = ln P(. | x_{t-1}, x_t) (order 2): the prediction of x_{t+1}; uniform for t < 1."""

    def __init__(self, src: MarkovSource):
        super().__init__()
        self.src = src

    def forward(self, ids, kv_schedule=None):
        b, t = ids.shape
        v = self.src.vocab_size
        out = torch.zeros(b, t, v, dtype=torch.float64)
        flat = torch.from_numpy(np.log(self.src._flat))
        ctx = ids[:, :-1] * v + ids[:, 1:]  # context (x_{t-1}, x_t) for t = 1..T-1
        out[:, 1:] = flat[ctx]
        return out


@pytest.mark.parametrize("start", [2, 5, 32])
def test_oracle_has_zero_excess(start):
    src = MarkovSource(MarkovSourceConfig(vocab_size=8, order=2, support=3, seed=0))
    x = src.sample_batch(6, 41, seed=3)
    assert excess_bits(_Oracle(src), src, x, start=start) == pytest.approx(0.0, abs=1e-12)


def test_uniform_model_excess_is_log2v_minus_true_bits():
    # zero logits: model loss log2 V on every scored token; excess = log2 V - mean true bits
    src = MarkovSource(MarkovSourceConfig(vocab_size=8, order=2, support=3, seed=0))
    x = src.sample_batch(4, 21, seed=5)

    class _Uniform(torch.nn.Module):
        def forward(self, ids, kv_schedule=None):
            return torch.zeros(*ids.shape, 8)

    true_bits = -src.log_prob(x)[:, 3 + 1 - 2 :] / np.log(2)  # predictions of x_4..x_20
    want = 3.0 - true_bits.mean()
    assert excess_bits(_Uniform(), src, x, start=3) == pytest.approx(want, abs=1e-6)
