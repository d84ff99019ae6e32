"""xentlab.models.hashed_text: stable hashing across processes, ragged batching, tower output, errors."""

import os
import subprocess
import sys

import pytest
import torch

from xentlab.models.hashed_text import (
    HashedFeaturizer,
    HashedTextTower,
    HashingConfig,
    TowerConfig,
    stable_hash,
    tokenize,
)


def test_tokenize_and_features():
    assert tokenize("A Red-bird, 2 eggs!") == ["a", "red", "bird", "2", "eggs"]
    f = HashedFeaturizer(HashingConfig(n_buckets=1000, char_ngrams=3))
    assert f.word_features("ab") == ["w:ab", "c:#ab", "c:ab#"]
    assert f.word_features("a") == ["w:a", "c:#a#"]  # a short word still yields one n-gram
    ids = f.ids("ab ab")
    assert len(ids) == 6 and ids[:3] == ids[3:] and all(0 <= i < 1000 for i in ids)
    assert HashedFeaturizer(HashingConfig(n_buckets=1000, char_ngrams=0)).ids("ab cd") == [
        stable_hash("w:ab", 1000),
        stable_hash("w:cd", 1000),
    ]


def test_hash_is_stable_across_processes():
    # Python's hash() of str is salted per process; ours must not be. Pinned value + a fresh interpreter
    # with a different PYTHONHASHSEED must agree.
    here = stable_hash("w:bird", 2**20)
    code = "from xentlab.models.hashed_text import stable_hash; print(stable_hash('w:bird', 2**20))"
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert int(out.stdout) == here
    assert (
        here
        == int.from_bytes(__import__("hashlib").blake2b(b"w:bird", digest_size=8).digest(), "little") % 2**20
    )


def test_corpus_batch_matches_per_text_ids():
    f = HashedFeaturizer(HashingConfig(n_buckets=512))
    texts = ["one two", "", "three", "four five six"]
    c = f.corpus(texts)
    ids, off = c.batch([3, 1, 0])
    expect = f.ids(texts[3]) + f.ids(texts[1]) + f.ids(texts[0])
    assert ids.tolist() == expect
    assert off.tolist() == [0, len(f.ids(texts[3])), len(f.ids(texts[3]))]
    all_ids, all_off = c.batch()
    assert len(all_off) == 4 and all_ids.tolist() == [i for t in texts for i in f.ids(t)]


def test_tower_output_is_unit_norm_and_bag_is_order_free():
    torch.manual_seed(0)
    f = HashedFeaturizer(HashingConfig(n_buckets=256))
    tower = HashedTextTower(TowerConfig(n_buckets=256, emb_dim=8, hidden=(16,), out_dim=4))
    c = f.corpus(["red bird sings", "sings bird red", "tall tree"])
    z = tower(*c.batch())
    assert z.shape == (3, 4)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(z[0], z[1])  # a bag of features: word order does not matter
    # mean mode: the bag vector is the mean of the feature rows
    ids, off = c.batch([2])
    torch.testing.assert_close(tower.bag(ids, off)[0], tower.bag.weight[ids].mean(0))
    raw = HashedTextTower(TowerConfig(n_buckets=256, emb_dim=8, hidden=(), out_dim=4, normalize=False))
    assert not torch.allclose(raw(*c.batch()).norm(dim=1), torch.ones(3))


def test_tower_trains_end_to_end():
    torch.manual_seed(0)
    f = HashedFeaturizer(HashingConfig(n_buckets=128))
    tower = HashedTextTower(TowerConfig(n_buckets=128, emb_dim=8, hidden=(8,), out_dim=4))
    ids, off = f.corpus(["alpha beta", "gamma delta"]).batch()
    loss = -(tower(ids, off)[0] * tower(ids, off)[1]).sum()
    loss.backward()
    assert tower.bag.weight.grad is not None and tower.bag.weight.grad.abs().sum() > 0


def test_errors():
    with pytest.raises(ValueError, match="n_buckets"):
        HashedFeaturizer(HashingConfig(n_buckets=1))
    with pytest.raises(ValueError, match="words and/or"):
        HashedFeaturizer(HashingConfig(words=False, char_ngrams=0))
    with pytest.raises(ValueError, match="mode"):
        HashedTextTower(TowerConfig(mode="max"))
    tower = HashedTextTower(TowerConfig(n_buckets=16, emb_dim=4, hidden=(), out_dim=2))
    with pytest.raises(ValueError, match="n_buckets"):
        tower(torch.tensor([20]), torch.tensor([0]))
