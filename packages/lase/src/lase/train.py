"""Training the LASE head on frozen features: SupCon over voices + lambda-scheduled, reversed language CE.

The loop follows the official r1 trainer (praxelhq/lase, scripts/modal_lase_train.py):

* batches built round-robin over voices: shuffle the voices, take 2 random clips of each until the
  batch is full, so every batch holds several voices with a positive pair each (keeps SupCon non-trivial);
* lambda_t from the schedule (0 for 200 steps, linear to 0.1 over 500, hold); the GRL uses lambda_t;
* loss  L = SupCon(e, voice; tau = 0.07) + lambda_t * CE(classifier(GRL_{lambda_t}(e)), language),
  exactly as the official loop writes it (``l_total = l_speaker + model.current_lambda * l_lang_adv``).
  So the classifier's gradient is lambda_t * dCE, and the embedding receives -lambda_t^2 * dCE
  (the README's "Deviations" discusses this: the paper's prose reads as L = SupCon + CE behind the GRL);
* AdamW (lr 1e-4, weight decay 0.01), gradient-norm clipping at 1.0, 1000 steps of batch 16.

The SupCon-only ablation is the same loop with lambda = 0 throughout (the classifier then never
learns and the embedding sees only SupCon).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from lase.model import LambdaSchedule, LASEHead
from xentlab.losses.supcon import supcon_loss


@dataclass(frozen=True)
class TrainConfig:
    """Official r1 defaults (scripts/modal_lase_train.py, LaseModalConfig)."""

    steps: int = 1000
    batch_size: int = 16
    clips_per_voice: int = 2  # the official batcher takes 2 clips of each voice
    lr: float = 1e-4
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    temperature: float = 0.07  # SupCon tau
    schedule: LambdaSchedule = field(default_factory=LambdaSchedule)
    adversarial: bool = True  # False: the SupCon-only ablation (lambda = 0 throughout)
    # weight of the language CE in the loss: "lambda" = lambda_t (the official code), "one" = 1 (the
    # README's "sum of two losses", the GRL alone scaling the reversed gradient by lambda_t)
    ce_weight: str = "lambda"
    hidden: int = 512
    emb_dim: int = 256
    dropout: float = 0.1
    log_every: int = 25


def voice_batches(voice: np.ndarray, batch_size: int, per_voice: int, rng: np.random.Generator):
    """Endless batches of clip indices: shuffled voices, ``per_voice`` distinct clips of each, until full.

    Voices with fewer than ``per_voice`` clips are skipped; if the voices run out first, the batch is
    topped up with random clips (as the official batcher does).
    """
    voices = np.unique(voice)
    by_voice = {v: np.flatnonzero(voice == v) for v in voices}
    eligible = [v for v in voices if len(by_voice[v]) >= per_voice]
    if not eligible:
        raise ValueError(f"no voice has {per_voice} clips: SupCon would have no positives")
    while True:
        batch: list[int] = []
        for v in rng.permutation(eligible):
            if len(batch) >= batch_size:
                break
            batch.extend(rng.choice(by_voice[v], size=per_voice, replace=False).tolist())
        if len(batch) < batch_size:
            fill = min(batch_size - len(batch), len(voice))
            batch.extend(rng.choice(len(voice), size=fill, replace=False).tolist())
        yield np.asarray(batch[:batch_size])


def train_head(
    x: torch.Tensor,
    voice: np.ndarray,
    language: np.ndarray,
    n_languages: int,
    cfg: TrainConfig,
    rng: np.random.Generator,
    log: Callable[..., None] | None = None,
    device: str | torch.device = "cpu",
) -> tuple[LASEHead, dict[str, list[float]]]:
    """Train a LASEHead on features ``x`` (N, d_in); returns the head and its per-``log_every`` curves."""
    if cfg.ce_weight not in ("lambda", "one"):
        raise ValueError(f"ce_weight must be 'lambda' or 'one', got {cfg.ce_weight!r}")
    if x.ndim != 2 or len(x) != len(voice) or len(x) != len(language):
        raise ValueError("x must be (N, d_in) with one voice and one language label per row")
    model = LASEHead(x.shape[1], n_languages, cfg.hidden, cfg.emb_dim, cfg.dropout).to(device)
    x = x.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    voice_t = torch.as_tensor(voice, dtype=torch.long, device=device)
    lang_t = torch.as_tensor(language, dtype=torch.long, device=device)
    batches = voice_batches(voice, cfg.batch_size, cfg.clips_per_voice, rng)
    curves: dict[str, list[float]] = {"step": [], "supcon": [], "lang_ce": [], "lang_acc": [], "lambda": []}
    window: dict[str, list[float]] = {"supcon": [], "lang_ce": [], "lang_acc": []}
    model.train()
    for step in range(1, cfg.steps + 1):
        idx = torch.as_tensor(next(batches), device=device)
        lam = cfg.schedule(step) if cfg.adversarial else 0.0
        model.grl.lambd = lam
        emb, logits = model(x[idx])
        l_spk = supcon_loss(emb, voice_t[idx], cfg.temperature)
        l_lang = F.cross_entropy(logits, lang_t[idx])
        # official: l_total = l_speaker + lambda_t * l_lang_adv; README reading: l_speaker + l_lang_adv
        loss = l_spk + (lam if cfg.ce_weight == "lambda" else 1.0) * l_lang
        if not torch.isfinite(loss):
            raise RuntimeError(f"non-finite loss at step {step}: supcon={l_spk.item()} ce={l_lang.item()}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        window["supcon"].append(l_spk.item())
        window["lang_ce"].append(l_lang.item())
        window["lang_acc"].append((logits.argmax(1) == lang_t[idx]).float().mean().item())
        if step % cfg.log_every == 0 or step == cfg.steps:
            row = {k: float(np.mean(v)) for k, v in window.items()}
            curves["step"].append(step)
            curves["lambda"].append(lam)
            for k, v in row.items():
                curves[k].append(v)
            window = {k: [] for k in window}
            if log is not None:
                log(step=step, lam=lam, **row)
    model.eval()
    return model, curves
