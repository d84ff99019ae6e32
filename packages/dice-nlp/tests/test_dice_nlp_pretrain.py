"""The fine-tuning regime: BERT-style masking, label-free pretraining of the encoder, and loading it into a
tagger with a fresh tag layer."""

from __future__ import annotations

import pytest
import torch
from dice_nlp.pretrain import PretrainConfig, mask_tokens, pretrain_encoder
from dice_nlp.tagger import IGNORE, TrainConfig, build_tagger, train_tagger

from xentlab.data.tagging import PAD, TaggingConfig, make_tagging

TINY = TaggingConfig(
    n_train=40, n_val=20, n_test=20, filler_vocab=30, n_ambiguous=4, lexicon_per_type=4, n_shared=2
)
TRAIN = TrainConfig(emb=8, hidden=4, epochs=1, batch_size=16)
PRE = PretrainConfig(steps=4, batch_size=16, emb=8, hidden=4)


@pytest.fixture(scope="module")
def data():
    return make_tagging(TINY, 0)


def test_mask_tokens_follows_bert_recipe():
    vocab, mask_id = 50, 50
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, vocab, (400, 100), generator=gen)
    tokens[:, 80:] = PAD  # a padded tail is never selected
    inputs, targets = mask_tokens(tokens, mask_id, vocab, 0.15, gen)
    sel = targets != IGNORE
    assert not sel[:, 80:].any() and (inputs[:, 80:] == PAD).all()
    assert (targets[sel] == tokens[sel]).all()  # targets are the original ids
    assert (inputs[~sel] == tokens[~sel]).all()  # unselected tokens are untouched
    n = int(sel.sum())
    assert abs(n / (400 * 80) - 0.15) < 0.01
    # of the selected: 80% [MASK]; 10% random + 10% kept, so ~10% + 1/49 of 10% equal the original
    assert abs(float((inputs[sel] == mask_id).float().mean()) - 0.8) < 0.02
    assert abs(float((inputs[sel] == tokens[sel]).float().mean()) - (0.1 + 0.1 / 49)) < 0.02
    assert ((inputs[sel] >= 1) & (inputs[sel] <= mask_id)).all()  # random ids are real tokens, never PAD
    with pytest.raises(ValueError, match="mask_prob"):
        mask_tokens(tokens, mask_id, vocab, 0.0, gen)


def test_pretrain_returns_encoder_only_and_is_deterministic(data):
    enc, stats = pretrain_encoder(data, PRE, seed=3)
    enc2, _ = pretrain_encoder(data, PRE, seed=3)
    assert not any(k.startswith("out.") for k in enc)
    assert enc["embed.weight"].shape == (data.vocab_size + 1, PRE.emb)  # + the [MASK] row
    assert all(torch.equal(enc[k], enc2[k]) for k in enc)
    assert 0.0 <= stats["mlm_val_acc"] <= 1.0 and stats["mlm_loss"] > 0


def test_build_tagger_loads_the_encoder_and_draws_a_fresh_head(data):
    enc, _ = pretrain_encoder(data, PRE, seed=0)
    model = build_tagger(data, TRAIN, enc)
    state = model.state_dict()
    assert all(torch.equal(state[k], enc[k]) for k in enc)
    assert state["out.weight"].shape == (data.num_tags, 2 * TRAIN.hidden)
    with pytest.raises(ValueError, match="encoder weights"):
        build_tagger(data, TRAIN, {**enc, "extra.weight": torch.zeros(1)})


def test_finetune_runs_and_scratch_path_is_unchanged(data):
    enc, _ = pretrain_encoder(data, PRE, seed=0)
    res = train_tagger(data, "dsc", TRAIN, seed=0, init_state=enc)
    assert 0.0 <= res["test_f1"] <= 1.0 and len(res["val_curve"]) == TRAIN.epochs
    # without init_state the model is the same fresh draw as before the fine-tuning arm existed
    torch.manual_seed(0)
    a = build_tagger(data, TRAIN).state_dict()
    torch.manual_seed(0)
    b = build_tagger(data, TRAIN).state_dict()
    assert a["embed.weight"].shape[0] == data.vocab_size and all(torch.equal(a[k], b[k]) for k in a)
