"""Second fidelity audit: the two DSC arms of the cpu run against a literal float64 transcription of the
official ``loss/dice_loss.py`` (ShannonAI/dice_loss_for_NLP) at the scripts' settings (s = 1, alpha = 0.01,
``--dice_square``, no OHEM, no mask), on inputs without padding, where the official code and ours must agree.

Official multi-class path (``_multiple_class`` + ``_compute_dice_loss`` on (N, 1) slices, then ``.mean()``):
    p = softmax(z);  p~ = (1 - p)^alpha * p;  per token i: sum_c [1 - (2 p~_ic y_ic + s) / (p~_ic^2 + y_ic^2 + s)]
    loss = mean_i (per token)
Official binary path (``_binary_class`` on the flat input, sums over the whole tensor):
    p = sigmoid(z);  p~ = (1 - p)^alpha * p;  loss = 1 - (2 sum p~ y + s) / (sum p~^2 + sum y^2 + s)
"""

from __future__ import annotations

import torch
from dice_nlp.losses import dice_loss

from xentlab.testing import assert_close

S, ALPHA = 1.0, 0.01  # DICE_SMOOTH=1, DICE_ALPHA=0.01 in every dice script


def _official_multiclass(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    p = torch.softmax(z, dim=1)
    y = torch.nn.functional.one_hot(t, z.shape[1]).to(z.dtype)
    loss = None
    for c in range(z.shape[1]):  # the official loop over label_idx on (N, 1) slices
        pi = ((1 - p[:, c : c + 1]) ** ALPHA) * p[:, c : c + 1]
        yi = y[:, c : c + 1]
        inter = torch.sum(pi * yi, -1)
        li = 1 - (2 * inter + S) / (torch.sum(pi**2, -1) + torch.sum(yi**2, -1) + S)
        loss = li if loss is None else loss + li
    return loss.mean()


def _official_binary(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(z.reshape(-1))
    y = t.reshape(-1).to(z.dtype)
    p = ((1 - p) ** ALPHA) * p
    return 1 - (2 * torch.sum(p * y, -1) + S) / (torch.sum(p**2, -1) + torch.sum(y**2, -1) + S)


def test_per_token_dsc_equals_official_multiclass_path():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(40, 7, generator=g, dtype=torch.float64) * 2  # 7 BIO tags, as the cpu tagger
    t = torch.randint(0, 7, (40,), generator=g)
    assert_close(dice_loss(z, t, alpha=ALPHA, smooth=S), _official_multiclass(z, t))


def test_batch_pooled_dsc_equals_official_binary_path_for_one_logit():
    g = torch.Generator().manual_seed(4)
    z = torch.randn(50, 1, generator=g, dtype=torch.float64) * 2
    t = (torch.rand(50, generator=g) < 0.1).long()  # an imbalanced binary start/end label
    assert_close(dice_loss(z, t, alpha=ALPHA, smooth=S, batch_dice=True), _official_binary(z, t))
