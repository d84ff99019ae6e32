"""Why does TFUP-T collapse? A diagnostic on the validation pool (never on test); it chooses nothing.

    cd /work/main && OMP_NUM_THREADS=1 uv run python packages/tfup/scripts/diagnose_tfupt.py

Second fidelity reading (README, "Second reading"). TFUP-T as committed (``tfup.experiment.run``, the cpu
config of reproduce.py, seed 0) on the validation pool (generator seed 999, never reported), instrumented:

1. the last epoch's prediction histogram against the true class histogram;
2. the mean |gradient| per parameter tensor at a few optimiser steps, next to AdamW's eps (3e-3): when the
   gradients are well above eps, Adam takes full ``lr``-sized steps;
3. how far the adapters moved: ||R|| against ||W|| per class, cos(W', W), cos(f', f), and the accuracy of
   each adapter alone (adapted image with the original text weights, and the reverse);
4. the same TFUP-T with the adapters, features, text weights and Adam state in float16, as the official code
   runs it (CLIP fp16, ``Adapter(...).to(torch.float16)``, ``TextAdapter.res`` in half): is the float32
   deviation the cause?

Writes results/tfupt_diagnosis.json. About 20-30 CPU-s with the stand-in cached.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from xentlab.testing import load_reproduce

VAL_POOL_SEED = 999
PKG = Path(__file__).resolve().parents[1]


def main() -> None:
    torch.set_num_threads(1)
    repro = load_reproduce(PKG / "reproduce.py")
    import tfup.experiment as E
    from tfup.clip import ClipConfig, get_clip

    cfg = E.RunConfig(**repro.CPU)
    out: dict = {"pool_seed": VAL_POOL_SEED, "eps": cfg.eps, "lr": cfg.lr}

    # instrument: keep the adapters and the gradient sizes of each optimiser step
    texts, images, grads, preds = [], [], [], []
    t_init, i_init, adam_step, train = E.TextAdapter.__init__, E.ImageAdapter.__init__, torch.optim.AdamW.step, E.train_tfup_t  # fmt: skip

    def text_init(self, *a, **k):
        t_init(self, *a, **k)
        texts.append(self)

    def image_init(self, *a, **k):
        i_init(self, *a, **k)
        images.append(self)

    def step(self, *a, **k):
        grads.append([p.grad.abs().mean().item() for g in self.param_groups for p in g["params"]])
        return adam_step(self, *a, **k)

    def train_kept(*a, **k):
        res = train(*a, **k)
        preds.append(res["pred"])
        return res

    E.TextAdapter.__init__, E.ImageAdapter.__init__, torch.optim.AdamW.step, E.train_tfup_t = text_init, image_init, step, train_kept  # fmt: skip
    res = E.run(cfg, 0, pool_seed=VAL_POOL_SEED)
    E.TextAdapter.__init__, E.ImageAdapter.__init__, torch.optim.AdamW.step = t_init, i_init, adam_step

    ccfg = ClipConfig(**cfg.clip)
    model = get_clip(ccfg)
    c = ccfg.n_shapes
    x, y = E.target_pool(cfg, VAL_POOL_SEED, c)
    with torch.no_grad():
        f = torch.cat([model.encode_image(b) for b in x.split(500)])
        text, image = texts[0], images[0]
        w0, w1 = F.normalize(text.w, dim=1), text()
        f0, f1 = F.normalize(f, dim=1), image(f)
        out.update(
            zero_shot=res["zero_shot"], tfup=res["tfup"], tfup_t=res["tfup_t"], curve=res["tfup_t_curve"],
            pred_hist=torch.bincount(preds[0], minlength=c).tolist(), true_hist=torch.bincount(y, minlength=c).tolist(),
            grad_mean_abs={i: grads[i] for i in (0, 5, 19, 20, 40, 80, len(grads) - 1)},  # res, fc0, fc2
            w_norm=text.w.norm(dim=1).tolist(), r_norm=text.res.norm(dim=1).tolist(), cos_w=(w0 * w1).sum(1).tolist(),
            cos_f=float((f0 * f1).sum(1).mean()),
            acc_image_adapter_only=float(((f1 @ w0.t()).argmax(1) == y).float().mean()),
            acc_text_adapter_only=float(((f0 @ w1.t()).argmax(1) == y).float().mean()),
        )  # fmt: skip

    # 4. float16 as the official code: adapters, features, weights (and so Adam's state) in half
    def image_init_half(self, *a, **k):
        i_init(self, *a, **k)
        self.half()

    class Half:
        def __init__(self, m):
            self.m = m

        def encode_image(self, im):
            return self.m.encode_image(im).half()

    def train_half(cfg, model, x, feats, w, keys, values, r_idx, r_lab, gen, labels=None):
        return train(cfg, Half(model), x, feats.half(), w.half(), keys.half(), values.half(), r_idx, r_lab, gen, labels)  # fmt: skip

    E.ImageAdapter.__init__, E.train_tfup_t = image_init_half, train_half
    half = E.run(cfg, 0, pool_seed=VAL_POOL_SEED)
    E.ImageAdapter.__init__, E.train_tfup_t = i_init, train
    out.update(tfup_t_fp16=half["tfup_t"], curve_fp16=half["tfup_t_curve"])

    path = PKG / "results" / "tfupt_diagnosis.json"
    path.write_text(json.dumps(out, indent=1))
    path.chmod(0o644)
    print(json.dumps({k: v for k, v in out.items() if not isinstance(v, list | dict)}, indent=1))
    print("pred_hist", out["pred_hist"], "true_hist", out["true_hist"])


if __name__ == "__main__":
    main()
