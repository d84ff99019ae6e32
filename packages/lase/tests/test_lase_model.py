import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lase.model import LambdaSchedule, LASEHead
from lase.train import TrainConfig, train_head, voice_batches

from xentlab.testing import assert_close


def test_lambda_schedule_official_values():
    s = LambdaSchedule()  # warmup 200, ramp 500, peak 0.1
    assert s(1) == 0.0 and s(199) == 0.0
    assert s(200) == 0.0  # the ramp starts from 0 at step 200
    assert s(450) == pytest.approx(0.05)
    assert s(700) == pytest.approx(0.1) and s(1000) == pytest.approx(0.1)
    assert LambdaSchedule(10, 0, 0.3)(10) == pytest.approx(0.3)


def test_head_shapes_and_official_widths():
    head = LASEHead(768, 4)  # the official WavLM-base-plus setting
    e, logits = head(torch.randn(3, 768))
    assert e.shape == (3, 256) and logits.shape == (3, 4)
    # 768*512 + 512 + 512*256 + 256 (projection); 256*256 + 256 + 256*4 + 4 (language classifier)
    assert sum(p.numel() for p in head.projection.parameters()) == 525_056
    assert sum(p.numel() for p in head.lang_classifier.parameters()) == 66_820


def test_language_gradient_reaches_the_embedding_reversed_and_scaled():
    torch.manual_seed(0)
    head = LASEHead(6, 4, hidden=8, emb_dim=5, dropout=0.0).double()
    x = torch.randn(7, 6, dtype=torch.float64)
    y = torch.randint(0, 4, (7,))

    def grad_wrt_embedding(lambd):
        head.grl.lambd = lambd
        e = head.projection(x).detach().requires_grad_(True)
        F.cross_entropy(head.lang_classifier(head.grl(e)), y).backward()
        return e.grad

    plain = grad_wrt_embedding(-1.0)  # GRL with lambda = -1 is the plain identity gradient
    assert_close(grad_wrt_embedding(0.1), -0.1 * plain)
    assert_close(grad_wrt_embedding(0.0), torch.zeros_like(plain))


def test_voice_batches_hold_pairs_of_distinct_clips():
    voice = np.repeat(np.arange(10), 6)
    it = voice_batches(voice, 16, 2, np.random.default_rng(0))
    for _ in range(20):
        b = next(it)
        assert len(b) == 16 and len(set(b.tolist())) == 16
        counts = np.bincount(voice[b], minlength=10)
        assert set(counts.tolist()) <= {0, 2} and (counts == 2).sum() == 8
    # 3 voices x 2 clips = 6, then topped up with 10 random clips (the official batcher pads the same way)
    small = next(voice_batches(np.repeat(np.arange(3), 4), 16, 2, np.random.default_rng(0)))
    assert len(small) == 16 and np.all(np.bincount(np.repeat(np.arange(3), 4)[small[:6]]) == 2)
    with pytest.raises(ValueError, match="positives"):
        next(voice_batches(np.arange(5), 4, 2, np.random.default_rng(0)))


def _toy(seed=0):
    rng = np.random.default_rng(seed)
    voice = np.repeat(np.arange(6), 8)
    lang = np.tile(np.arange(4), 12)
    x = (
        rng.normal(size=(6, 10))[voice]
        + 0.8 * rng.normal(size=(4, 10))[lang]
        + 0.3 * rng.normal(size=(48, 10))
    )
    return torch.tensor(x, dtype=torch.float32), voice, lang


def test_supcon_only_never_trains_the_classifier():
    # lambda = 0: the CE term has weight 0 and the GRL passes no gradient, so AdamW only applies its
    # decoupled weight decay to the classifier: p_T = p_0 * (1 - lr * wd)^T exactly (Adam's update is 0
    # when every gradient is 0).
    x, voice, lang = _toy()
    cfg = TrainConfig(steps=30, adversarial=False, lr=1e-3, hidden=16, emb_dim=8)
    torch.manual_seed(0)
    init = LASEHead(10, 4, 16, 8).lang_classifier.state_dict()
    torch.manual_seed(0)
    head, curves = train_head(x, voice, lang, 4, cfg, np.random.default_rng(0))
    for k, v in head.lang_classifier.state_dict().items():
        assert_close(v, init[k] * (1 - 1e-3 * 0.01) ** 30, rtol=1e-5, atol=1e-7, name=k)
    assert curves["supcon"][-1] < curves["supcon"][0]
    assert all(lam == 0 for lam in curves["lambda"])


def test_adversarial_training_follows_the_schedule_and_is_deterministic():
    x, voice, lang = _toy(1)
    cfg = TrainConfig(steps=40, schedule=LambdaSchedule(10, 20, 0.1), hidden=16, emb_dim=8, log_every=10)
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        head, curves = train_head(x, voice, lang, 4, cfg, np.random.default_rng(3))
        runs.append(head.embed(x))
    assert curves["step"] == [10, 20, 30, 40]
    assert curves["lambda"] == pytest.approx([0.0, 0.05, 0.1, 0.1])
    assert torch.equal(runs[0], runs[1])
    with pytest.raises(ValueError, match="ce_weight"):
        train_head(x, voice, lang, 4, TrainConfig(steps=1, ce_weight="two"), np.random.default_rng(0))
