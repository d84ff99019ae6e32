"""xentlab.data.shapes: determinism, balance, templates, variation knobs and shifts."""

import numpy as np
import pytest
import torch

from xentlab.data.shapes import SHAPES, SHIFTS, ShapesConfig, load_shapes, render_templates

SMALL = ShapesConfig(classes=("circle", "square", "A"), n_per_class=12, size=16)


def test_shapes_deterministic_balanced_and_in_range():
    a = load_shapes(SMALL, seed=0, cache=False)
    b = load_shapes(SMALL, seed=0, cache=False)
    c = load_shapes(SMALL, seed=1, cache=False)
    assert a.x.shape == (36, 3, 16, 16) and a.x.dtype == torch.float32
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)
    assert np.bincount(a.y.numpy()).tolist() == [12, 12, 12]
    assert 0.0 <= a.x.min() and a.x.max() <= 1.0


def test_cache_returns_the_same_arrays(tmp_path, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path))
    first = load_shapes(SMALL, seed=3)
    assert list(tmp_path.glob("shapes-*.npz"))
    second = load_shapes(SMALL, seed=3)
    assert torch.equal(first.x, second.x)


def test_templates_cover_distinct_regions():
    t = render_templates(ShapesConfig(classes=SHAPES))
    assert t.shape[0] == len(SHAPES)
    area = t.mean(dim=(1, 2, 3))
    assert (area > 0.05).all() and (area < 0.9).all()
    # the ring has a hole: its centre is empty while the circle's is full
    ring, circle = t[SHAPES.index("ring"), 0], t[SHAPES.index("circle"), 0]
    c = t.shape[-1] // 2
    assert ring[c, c] < 0.1 and circle[c, c] > 0.9
    # all templates differ from one another
    flat = t.flatten(1)
    d = torch.cdist(flat, flat)
    assert (d + torch.eye(len(SHAPES)) * 1e9).min() > 1.0


def test_glyphs_render_from_matplotlib_fonts():
    t = render_templates(ShapesConfig(classes=tuple("AB")))
    o = render_templates(ShapesConfig(classes=tuple("AB"), font="DejaVu Serif"))
    assert t.mean() > 0.05 and not torch.allclose(t, o)


def test_grey_channel_and_knobs():
    grey = load_shapes(SMALL.replace(channels=1, noise=0.0), seed=0, cache=False)
    assert grey.x.shape == (36, 1, 16, 16)
    # with no pose, colour-gap or noise variation every image of a class has the same silhouette
    fixed = SMALL.replace(rotation=(0.0, 0.0), scale=(0.7, 0.7), aspect=0.0, translate=0.0, noise=0.0,
                          texture_prob=0.0, channels=1)  # fmt: skip
    d = load_shapes(fixed, seed=0, cache=False)
    x0 = d.x[d.y == 0]
    lo, hi = x0.amin(dim=(1, 2, 3), keepdim=True), x0.amax(dim=(1, 2, 3), keepdim=True)
    norm = (x0 - lo) / (hi - lo)
    masks = (norm > 0.5) == (norm[:, :, 8:9, 8:9] > 0.5)  # foreground = same side as the centre pixel
    assert (masks == masks[:1]).float().mean() > 0.97  # one silhouette, whatever the colours


@pytest.mark.parametrize("kind", SHIFTS)
def test_every_shift_changes_the_images_but_not_the_labels(kind):
    base = SMALL.replace(n_per_class=6)
    shifted = base.shifted(kind)
    assert shifted.shift == kind and shifted.classes == base.classes
    a, b = load_shapes(base, seed=0, cache=False), load_shapes(shifted, seed=0, cache=False)
    assert torch.equal(a.y, b.y) and not torch.allclose(a.x, b.x)


def test_pose_shift_draws_only_unseen_angles():
    s = ShapesConfig().shifted("pose")
    assert s.rotation_min_abs > max(abs(v) for v in ShapesConfig().rotation)


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="unknown classes"):
        ShapesConfig(classes=("circle", "blob"))
    with pytest.raises(ValueError, match="two distinct"):
        ShapesConfig(classes=("circle",))
    with pytest.raises(ValueError, match="channels"):
        ShapesConfig(channels=2)
    with pytest.raises(ValueError, match="unknown shift"):
        ShapesConfig().shifted("weather")
    with pytest.raises(ValueError, match="seed"):
        load_shapes(SMALL, seed=-1)
