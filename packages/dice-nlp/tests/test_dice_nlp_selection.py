"""Best-dev epoch selection follows the official rule: a later epoch that ties the best dev F1 replaces it."""

from __future__ import annotations

import dice_nlp.tagger as tagger
from dice_nlp.tagger import TrainConfig, improves, train_tagger

from xentlab.data.tagging import TaggingConfig, make_tagging


def test_improves_takes_ties():
    # official find_best_checkpoint_on_dev (tasks/{mrc_ner,glue,pos}/train.py): `if current_f1 >= best_f1_on_dev`
    assert improves(0.5, 0.5)
    assert improves(0.6, 0.5)
    assert not improves(0.4, 0.5)


def test_train_tagger_keeps_the_last_of_tied_epochs(monkeypatch):
    data = make_tagging(
        TaggingConfig(
            n_train=20, n_val=10, n_test=10, filler_vocab=30, n_ambiguous=4, lexicon_per_type=4, n_shared=2
        ),
        0,
    )
    # every epoch scores the same dev F1 (as in a run that predicts all-O throughout): the last epoch is kept
    monkeypatch.setattr(tagger, "span_f1", lambda *a, **k: 0.25)
    res = train_tagger(data, "ce", TrainConfig(emb=8, hidden=4, epochs=3, batch_size=16), seed=0)
    assert res["epoch"] == 3 and res["val_f1"] == 0.25
