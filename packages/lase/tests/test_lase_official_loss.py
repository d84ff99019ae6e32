"""The training loop's gradients are the official loss's (second fidelity reading).

Official r1 loop (praxelhq/lase, scripts/modal_lase_train.py, ``_run_train_inner``):
``l_total = l_speaker + model.current_lambda * l_lang_adv`` with the GRL also at ``current_lambda``.
By the chain rule, with e the embedding, theta the projection and phi the classifier:

    dL/dphi   = w * dCE/dphi                         (w = lambda_t in the code, 1 in the README reading)
    dL/dtheta = dSupCon/dtheta - w * lambda_t * dCE/de * de/dtheta   (the GRL flips and scales by lambda_t)

so the embedding sees -lambda_t^2 times the language gradient in the official weighting. We capture the
gradients ``train_head`` hands to AdamW at step 1 and compare them with this derivation, computed in
float64 on a copy of the same initial weights without any GRL (the reversal written out by hand).
"""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lase.model import LambdaSchedule, LASEHead
from lase.train import TrainConfig, train_head, voice_batches

from xentlab.losses.supcon import supcon_loss
from xentlab.testing import assert_close


@pytest.mark.parametrize("ce_weight", ["lambda", "one"])
def test_step_one_gradients_match_the_official_loss(monkeypatch, ce_weight):
    lam = 0.1
    rng = np.random.default_rng(0)
    voice = np.repeat(np.arange(6), 8)
    lang = np.tile(np.arange(4), 12)
    x = torch.tensor(rng.normal(size=(48, 10)), dtype=torch.float32)

    captured = {}

    class Recording(torch.optim.AdamW):
        def step(self, closure=None):
            if not captured:  # the gradients after clipping (here a no-op), before the first update
                captured.update(
                    {id(p): p.grad.detach().clone() for g in self.param_groups for p in g["params"]}
                )
            return super().step(closure)

    monkeypatch.setattr(torch.optim, "AdamW", Recording)
    # lambda_t = peak from step 1 (no warmup, no ramp); no dropout, clipping off
    cfg = TrainConfig(steps=1, schedule=LambdaSchedule(0, 0, lam), ce_weight=ce_weight, hidden=16,
                      emb_dim=8, dropout=0.0, grad_clip=1e9, log_every=1)  # fmt: skip
    torch.manual_seed(0)
    ref = LASEHead(10, 4, 16, 8, dropout=0.0)  # the same initial weights train_head draws next
    init = copy.deepcopy(ref.state_dict())
    torch.manual_seed(0)
    head, _ = train_head(x, voice, lang, 4, cfg, np.random.default_rng(0))

    idx = torch.as_tensor(next(voice_batches(voice, 16, 2, np.random.default_rng(0))))
    ref.load_state_dict(init)
    ref = ref.double()
    w = lam if ce_weight == "lambda" else 1.0
    xb, yv, yl = x[idx].double(), torch.as_tensor(voice)[idx], torch.as_tensor(lang)[idx]
    # projection: SupCon minus w * lambda * CE (the reversal by hand); classifier: w * CE
    e = ref.projection(xb)
    l_proj = supcon_loss(e, yv, 0.07) - w * lam * F.cross_entropy(ref.lang_classifier(e), yl)
    g_proj = torch.autograd.grad(l_proj, list(ref.projection.parameters()))
    l_cls = w * F.cross_entropy(ref.lang_classifier(e.detach()), yl)
    g_cls = torch.autograd.grad(l_cls, list(ref.lang_classifier.parameters()))

    got_proj = [captured[id(p)] for p in head.projection.parameters()]
    got_cls = [captured[id(p)] for p in head.lang_classifier.parameters()]
    for k, (got, want) in enumerate(zip(got_proj + got_cls, g_proj + g_cls)):
        assert_close(got.double(), want, rtol=1e-4, atol=1e-7, name=f"param {k}")
