"""captioned_shapes: captions match the drawing, converse equivalence, hard negatives, determinism."""

import numpy as np
import pytest
import torch

from xentlab.data.captioned_shapes import (
    COLOURS,
    CaptionedShapesConfig,
    Vocab,
    canonical_key,
    caption_of,
    hard_negative_meanings,
    load_captioned_shapes,
)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path_factory.getbasetemp() / "xentlab-cache"))


def test_caption_and_converse_key():
    m = (0, 0, 0, 2, 2)  # red circle left of blue square
    assert caption_of(m) == "a red circle left of a blue square"
    assert canonical_key(m) == canonical_key((2, 2, 1, 0, 0))  # blue square right of red circle
    assert canonical_key(m) != canonical_key((0, 0, 1, 2, 2))  # red circle right of blue square
    assert canonical_key((0, 0, 2, 2, 2)) == canonical_key((2, 2, 3, 0, 0))  # above / below


def test_hard_negatives_are_distinct_and_one_edit_away():
    rng = np.random.default_rng(0)
    m = (0, 1, 2, 3, 4)
    negs = hard_negative_meanings(m, rng)
    keys = {canonical_key(n) for n in negs}
    assert canonical_key(m) not in keys and len(keys) == len(negs) >= 4
    assert (3, 1, 2, 0, 4) in negs and (0, 4, 2, 3, 1) in negs and (0, 1, 3, 3, 4) in negs
    # same colour on both objects: the colour swap is equivalent to the base and is dropped
    assert all(
        canonical_key(n) != canonical_key((1, 0, 0, 1, 2))
        for n in hard_negative_meanings((1, 0, 0, 1, 2), rng)
    )


def test_vocab_roundtrip_and_errors():
    v = Vocab()
    ids = v.encode("a red circle above a blue square")
    assert len(ids) == v.max_len == 8 and ids[-1] == 0
    assert v.decode(ids) == "a red circle above a blue square"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        v.encode("a mauve circle")


def _centroid(img, rgb):
    d = ((img - torch.tensor(rgb).view(3, 1, 1)) ** 2).sum(0)
    ys, xs = torch.nonzero(d < 0.06, as_tuple=True)
    return xs.float().mean(), ys.float().mean()


def test_images_match_captions_and_groups():
    cfg = CaptionedShapesConfig(n_groups=6, group_size=4, colour_jitter=0.0, noise=0.0, paraphrase=True)
    d = load_captioned_shapes(cfg, seed=3)
    assert d.x.shape == (24, 3, 32, 32) and d.tokens.shape == (24, 8) and 0 <= d.x.min() and d.x.max() <= 1
    assert (d.group == torch.arange(6).repeat_interleave(4)).all()
    for g in range(6):  # members of a group have distinct meanings
        assert len(set(d.key[d.group == g].tolist())) == 4
    palette = list(COLOURS.values())
    checked = 0
    for i, (c1, _, r, c2, _) in enumerate(d.meaning.tolist()):
        if c1 == c2:
            continue
        x1, y1 = _centroid(d.x[i], palette[c1])
        x2, y2 = _centroid(d.x[i], palette[c2])
        assert {0: x1 < x2, 1: x1 > x2, 2: y1 < y2, 3: y1 > y2}[r], d.captions[i]
        checked += 1
    assert checked >= 10
    again = load_captioned_shapes(cfg, seed=3, cache=False)
    assert torch.equal(again.x, d.x) and torch.equal(again.tokens, d.tokens)
    assert not torch.equal(load_captioned_shapes(cfg, seed=4).x, d.x)


def test_styles_and_bad_config():
    base = CaptionedShapesConfig(n_groups=2, group_size=2)
    plain = load_captioned_shapes(base, seed=0, cache=False)
    for style in ("texture", "noise", "outline"):
        other = load_captioned_shapes(base.replace(style=style), seed=0, cache=False)
        assert torch.equal(other.tokens, plain.tokens) and not torch.equal(other.x, plain.x)
    with pytest.raises(ValueError, match="style"):
        CaptionedShapesConfig(style="sketch")
    with pytest.raises(ValueError, match="group_size"):
        CaptionedShapesConfig(group_size=9)
