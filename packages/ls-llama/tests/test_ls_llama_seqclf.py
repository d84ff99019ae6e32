"""Claim (c) pieces: the SST-5-like task, LS-LLaMA's sequence head (bias-free score, last non-pad token
pooling, CE) and the LM-head label-generation baseline (next-token CE on the label word)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from ls_llama.sentiment import make_sentiment, polarity_label, sentiment_config
from ls_llama.seqclf import (
    arm_loss_and_scores,
    build_label_generator,
    build_sequence_classifier,
    finetune_seqclf,
    prompt_logits,
    sequence_logits,
)
from ls_llama.train import FinetuneConfig, pretrain_lm

from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm

V, K = 40, 5
LENGTHS = [6, 4]  # sentence 1 has two pads at the end


def _perturb_lora(m):
    # a fresh LoRA B is zero; perturb it so the adapters take part in the forward pass
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    return m.eval()


@pytest.fixture(scope="module")
def lm():
    cfg = TinyLMConfig(vocab_size=V, hidden=32, layers=2, heads=4, kv_heads=2, intermediate=64)
    return build_tiny_lm(cfg, seed=0)


def _batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, V, (2, max(LENGTHS)), generator=g)
    pm = torch.ones_like(x)
    for i, n in enumerate(LENGTHS):
        x[i, n:], pm[i, n:] = 0, 0
    return x, pm


def test_polarity_label_by_hand():
    # tags: O=0, B-pos=1, B-neg=3; label = clip(#pos - #neg, -2, 2) + 2
    assert polarity_label([0, 1, 0, 1, 1, 3]) == 4  # net +2
    assert polarity_label([1, 1, 1, 1]) == 4  # net +4 clipped
    assert polarity_label([0, 0]) == 2  # neutral
    assert polarity_label([3, 0, 1, 3]) == 1  # net -1
    assert polarity_label([3, 3, 3]) == 0


def test_task_labels_match_tags_and_are_deterministic():
    cfg = sentiment_config(n_train=50, n_val=20, n_test=20)
    a, b = make_sentiment(cfg, 3), make_sentiment(cfg, 3)
    for name in ("train", "val", "test"):
        split, y = a.split(name)
        assert np.array_equal(y, [polarity_label(t) for t in split.tags])
        assert np.array_equal(y, b.labels[name])
        assert all(np.array_equal(s, t) for s, t in zip(split.tokens, b.split(name)[0].tokens))
    assert set(a.labels["train"]) == set(range(K))  # all five classes occur
    words = (a.prompt_id, *a.verbalizers)
    assert len(set(words)) == K + 1 and all(
        1 <= w <= cfg.filler_vocab for w in words
    )  # pretrained filler words
    with pytest.raises(ValueError, match="n_types=2"):
        make_sentiment(sentiment_config(n_types=3), 0)


def test_label_head_pools_last_real_token_with_bias_free_score(lm):
    m = _perturb_lora(build_sequence_classifier(lm, K, seed=0))
    x, pm = _batch()
    got = sequence_logits(m, x, pm)
    base = m.get_base_model()
    score = base.score.modules_to_save["default"]
    assert score.bias is None and score.weight.shape == (K, 32)
    with torch.no_grad():
        h = base.model(input_ids=x, attention_mask=pm).last_hidden_state  # (B, T, H), LoRA active
        want = torch.stack([h[i, n - 1] @ score.weight.T for i, n in enumerate(LENGTHS)])
        # and each sentence alone, without padding: its last position
        alone = torch.cat(
            [sequence_logits(m, x[i : i + 1, :n], pm[i : i + 1, :n]) for i, n in enumerate(LENGTHS)]
        )
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got, alone, rtol=1e-5, atol=1e-6)


def test_losses_by_hand_on_a_tiny_batch():
    data = SimpleNamespace(verbalizers=(7, 9, 11))
    y = torch.tensor([0, 2])
    # label head: CE on the pooled logits.
    # row 0: log(e^2 + e^0 + e^-1) - 2 = log(8.7569) - 2 = 0.169846; row 1: log(1 + e + 1) - 0 = 1.551445
    pooled = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    stub = lambda input_ids, attention_mask: SimpleNamespace(logits=pooled)  # noqa: E731
    x = torch.ones(2, 4, dtype=torch.long)
    loss, scores = arm_loss_and_scores(stub, "label_head", data, x, x, y, None)
    assert loss.item() == pytest.approx((0.169846 + 1.551445) / 2, abs=1e-5)
    assert torch.equal(scores, pooled)
    # LM generation: next-token CE over the whole vocabulary at the prompt position (index length-1),
    # target = the class's label word; scores = label-word log-probs.
    logits = torch.zeros(2, 4, 12)
    logits[0, 2, 7] = 3.0  # sentence 0 (length 3): label word of class 0 gets logit 3, 11 others 0
    logits[1, 3, 11] = 1.0  # sentence 1 (length 4): label word of class 2 gets logit 1
    logits[1, 0, 11] = 50.0  # a position that must be ignored
    stub = lambda input_ids, attention_mask: SimpleNamespace(logits=logits)  # noqa: E731
    loss, scores = arm_loss_and_scores(stub, "lm_generation", data, x, x, y, torch.tensor([3, 4]))
    l0 = np.log(np.exp(3) + 11) - 3  # -log softmax of the target
    l1 = np.log(np.e + 11) - 1
    assert loss.item() == pytest.approx((l0 + l1) / 2, abs=1e-5)
    assert scores.shape == (2, 3) and scores[0].argmax() == 0 and scores[1].argmax() == 2
    with pytest.raises(ValueError, match="arm must be"):
        arm_loss_and_scores(stub, "bogus", data, x, x, y, None)


def test_generation_loss_equals_unpadded_per_sentence_loss(lm):
    m = _perturb_lora(build_label_generator(lm, seed=0))
    x, pm = _batch()
    lengths = torch.tensor(LENGTHS)
    data = SimpleNamespace(verbalizers=(5, 6, 7, 8, 9))
    y = torch.tensor([1, 4])
    with torch.no_grad():
        loss, _ = arm_loss_and_scores(m, "lm_generation", data, x, pm, y, lengths)
        per = []
        for i, n in enumerate(LENGTHS):
            out = m(input_ids=x[i : i + 1, :n]).logits[0, -1]
            per.append(-out.log_softmax(-1)[data.verbalizers[y[i]]])
        assert prompt_logits(m, x, pm, lengths).shape == (2, V)
    assert loss.item() == pytest.approx(torch.stack(per).mean().item(), rel=1e-5)


def test_trainable_parameters(lm):
    head = build_sequence_classifier(lm, K, seed=0)
    gen = build_label_generator(lm, seed=0)
    train_head = [n for n, p in head.named_parameters() if p.requires_grad]
    train_gen = [n for n, p in gen.named_parameters() if p.requires_grad]
    assert train_head and all("lora_" in n or "score" in n for n in train_head)
    assert any("score" in n for n in train_head)
    assert train_gen and all("lora_" in n for n in train_gen)  # the LM head / embeddings stay frozen
    # the decoders start from the same pretrained weights
    ref = lm.model.layers[0].mlp.up_proj.weight
    assert torch.equal(head.get_base_model().model.layers[0].mlp.up_proj.weight, ref)
    assert torch.equal(gen.get_base_model().model.layers[0].mlp.up_proj.weight, ref)
    with pytest.raises(ValueError, match="num_labels"):
        build_sequence_classifier(lm, 1)


def test_finetune_is_deterministic_and_leaves_backbone_alone():
    data = make_sentiment(sentiment_config(n_train=24, n_val=16, n_test=16), 0)
    lm_cfg = TinyLMConfig(
        vocab_size=data.vocab_size, hidden=16, layers=1, heads=2, kv_heads=1, intermediate=32
    )
    backbone, _ = pretrain_lm(data.tagging, lm_cfg, 3, seed=0)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    cfg = FinetuneConfig(epochs=2, batch_size=8)
    for arm in ("label_head", "lm_generation"):
        a = finetune_seqclf(backbone, data, arm, cfg, seed=1)
        b = finetune_seqclf(backbone, data, arm, cfg, seed=1)
        assert a == b and 0 <= a["acc"] <= 1 and len(a["val_curve"]) == 2
    assert all(torch.equal(v, backbone.state_dict()[k]) for k, v in before.items())
    with pytest.raises(ValueError, match="arm must be"):
        finetune_seqclf(backbone, data, "bogus", cfg)
