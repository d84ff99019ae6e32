"""token_stats against an unbatched float64 computation (padding must not change anything)."""

from __future__ import annotations

import numpy as np
import torch
from dc_pdd.lm_scoring import token_stats
from dc_pdd.scores import next_token_moments

from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm


def test_token_stats_match_single_sequence_reference():
    cfg = TinyLMConfig(
        vocab_size=20, hidden=16, layers=1, heads=2, kv_heads=1, intermediate=32, max_positions=16
    )
    model = build_tiny_lm(cfg, seed=0).eval()
    seqs = [[1, 5, 7, 5, 9, 2], [1, 4, 2], [1, 3, 3, 3, 3, 3, 8, 2]]
    stats = token_stats(model, seqs, batch_size=2)
    for s, st in zip(seqs, stats, strict=True):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([s])).logits[0, :-1].double()
        full = torch.log_softmax(logits, -1).numpy()
        np.testing.assert_array_equal(st.ids, s[1:])
        np.testing.assert_allclose(st.logp, full[np.arange(len(s) - 1), s[1:]], atol=1e-5)
        mu, var = next_token_moments(full)
        np.testing.assert_allclose(st.mu, mu, atol=1e-5)
        np.testing.assert_allclose(st.var, var, atol=1e-5)
