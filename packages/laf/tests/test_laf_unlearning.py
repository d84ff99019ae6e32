"""LAF losses against hand derivations and the official formulas; models; a small end-to-end check."""

import copy
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from laf.experiment import RunConfig, forget_mask, js_divergence
from laf.models import LAFCNN, VAE
from laf.unlearning import (
    alignment_loss,
    batches,
    extractor_nmse,
    laf_unlearn,
    repair_classifier,
    train_vae,
    vae_loss,
)

from xentlab.testing import assert_close, check_gradients, run_smoke


def test_extractor_nmse_by_hand():
    # per-sample squared errors m = [0, 1, 3]: sum exp(m / (m + 1)) = e^0 + e^0.5 + e^0.75
    e = torch.zeros(3, 2)
    e_out = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, math.sqrt(2.0)]])
    assert_close(extractor_nmse(e_out, e), torch.tensor(1 + math.exp(0.5) + math.exp(0.75)), rtol=1e-6)


def test_alignment_loss_matches_the_official_formula():
    # official: sum(log(exp(COS1) / sum(exp(COS2 / temp)))) with COS = CosineEmbeddingLoss(target=1)
    g = torch.Generator().manual_seed(0)
    s_e, s_t = (
        torch.randn(5, 8, generator=g, dtype=torch.float64),
        torch.randn(5, 8, generator=g, dtype=torch.float64),
    )
    u_e, u_t = (
        torch.randn(3, 8, generator=g, dtype=torch.float64),
        torch.randn(3, 8, generator=g, dtype=torch.float64),
    )
    cel = torch.nn.CosineEmbeddingLoss(reduction="none")
    c1 = cel(s_e, s_t, torch.ones(5, dtype=torch.float64))
    c2 = cel(u_e, u_t, torch.ones(3, dtype=torch.float64))
    ref = torch.sum(torch.log(torch.exp(c1) / torch.sum(torch.exp(c2 / 20.0))))
    assert_close(alignment_loss(s_e, s_t, u_e, u_t, 20.0), ref, rtol=1e-10, atol=1e-10)
    check_gradients(lambda a, b: alignment_loss(a, s_t, b, u_t, 5.0), s_e, u_e)


def test_alignment_loss_by_hand():
    # remaining aligned (c = 0), forgetting orthogonal to the teacher (d = 1): each term is 0 - log(n_u e^(1/T))
    s = torch.eye(2)
    u_e, u_t = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert_close(alignment_loss(s, s, u_e, u_t, 2.0), torch.tensor(-2 * 0.5))


def test_vae_loss_by_hand():
    # MSE sum / B + 0.025 KLD / B with mu = 0, sigma = 1: KLD = -0.5 * sum(log(1 + 1e-8) + 1 - 0 - 1) ~ 0
    e, e_out = torch.zeros(2, 3), torch.ones(2, 3)
    mu, sigma = torch.zeros(2, 4), torch.ones(2, 4)
    assert_close(vae_loss(e_out, e, mu, sigma), torch.tensor(3.0), atol=1e-6)
    # sigma = e^0.5, mu = 1 in one latent unit: KLD term = -0.5 * (1 + 1 - 1 - e) per sample
    mu[:, 0], sigma[:, 0] = 1.0, math.exp(0.5)
    expected = 3.0 + 0.025 * (-0.5 * (1 + 1 - 1 - math.e))
    assert_close(vae_loss(e_out, e, mu, sigma), torch.tensor(expected), rtol=1e-5)


def test_models_shapes_and_vae_output_range():
    m = LAFCNN(1, 10, input_size=28)
    logits, emb = m(torch.randn(2, 1, 28, 28))
    assert logits.shape == (2, 10) and emb.shape == (2, 256)
    assert m.fc1.in_features == 32 * 7 * 7  # the official CNN
    assert LAFCNN(1, 10, input_size=8).fc1.in_features == 32 * 2 * 2
    out, z, mu, sigma = VAE(8)(torch.randn(4, 256))
    assert (
        out.shape == (4, 256)
        and z.shape == (4, 8)
        and (out > 0).all()
        and (out < 1).all()
        and (sigma > 0).all()
    )


def test_forget_masks():
    y = torch.arange(10).repeat(20)
    assert forget_mask(RunConfig(scenario="class", forget_class=3), y, 0).sum() == 20
    m = forget_mask(RunConfig(scenario="random"), y, 0)
    assert m.sum() == 5 * 8 and not m[y < 5].any()  # 40% of 20 in each of classes 5-9
    with pytest.raises(ValueError, match="scenario"):
        forget_mask(RunConfig(scenario="noise"), y, 0)


def test_js_divergence():
    p = torch.tensor([[1.0, 0.0]])
    assert js_divergence(p, p) == pytest.approx(0.0, abs=1e-9)
    assert js_divergence(p, torch.tensor([[0.0, 1.0]])) == pytest.approx(math.log(2), rel=1e-6)


def test_laf_moves_forgetting_embeddings_away_without_labels():
    # a tiny model and data: after LAF the forgetting embeddings drift from the teacher's more than the
    # remaining ones (the RA loss rewards exactly that); no label is passed anywhere
    torch.manual_seed(0)
    model = LAFCNN(1, 10, input_size=8)
    x_f, x_r = torch.rand(32, 1, 8, 8) + 0.5, torch.rand(64, 1, 8, 8)
    teacher_f, teacher_r = model(x_f)[1].detach(), model(x_r)[1].detach()
    s_vae = train_vae(model, torch.cat([x_f, x_r]), epochs=2, seed=0)
    u_vae = train_vae(model, x_f, epochs=2, seed=1)
    model, ue, ra = laf_unlearn(
        model, s_vae, u_vae, x_f, x_r, epochs=15, lr_ue=1e-3, lr_ra=1e-3, temp=5.0, seed=0
    )
    assert len(ue) == 15 and all(math.isfinite(v) for v in ue + ra)
    drift_f = 1 - F.cosine_similarity(model(x_f)[1], teacher_f).mean()
    drift_r = 1 - F.cosine_similarity(model(x_r)[1], teacher_r).mean()
    assert drift_f > drift_r


def test_smoke(tmp_path):
    result = run_smoke(Path(__file__).parents[1] / "reproduce.py", tmp_path, extra_args=["--workers", "1"])
    assert result["package"] == "laf"
    assert "random/laf_closer_than_original" in result["metrics"]


def test_full_scale_mnist_from_local_idx_files(tmp_path):
    import gzip
    import struct

    import numpy as np
    from laf.experiment import build_model, load_data

    def write(path, arr):
        head = struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
        path.write_bytes(gzip.compress(head + arr.astype(np.uint8).tobytes()))

    rng = np.random.default_rng(0)
    for stem, n in (("train", 6), ("t10k", 3)):
        write(tmp_path / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write(tmp_path / f"{stem}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    cfg = RunConfig(dataset="mnist", data_root=str(tmp_path))
    train, test = load_data(cfg, seed=0)
    assert train.x.shape == (6, 1, 28, 28) and test.y.tolist() == [0, 1, 2]
    model = build_model(cfg, train.x)
    assert model.fc1.in_features == 32 * 7 * 7  # the official CNN at 28x28


def _tiny_repair_setup(dtype=torch.float32):
    torch.manual_seed(0)
    model = LAFCNN(1, 10, input_size=8).to(dtype)
    x_r = torch.rand(70, 1, 8, 8, dtype=dtype)
    y_r = torch.arange(70) % 9  # remaining labels only (class 9 plays the forgotten class)
    return model, x_r, y_r


def test_repair_trains_only_fc2():
    # official classifier_unlearning: Adam(trained_model.fc2.parameters()) -- conv1, conv2, fc1 stay bit-identical
    model, x_r, y_r = _tiny_repair_setup()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    repaired, curve = repair_classifier(model, x_r, y_r, n_forget=40, epochs=3, lr=1e-2, seed=0)
    assert repaired is model and not model.training and len(curve) == 3
    for k, v in model.state_dict().items():
        if k.startswith("fc2."):
            assert not torch.equal(v, before[k]), f"{k} was not trained"
        else:
            assert torch.equal(v, before[k]), f"{k} changed but the official repair trains only fc2"


def test_repair_matches_the_official_full_forward_loop():
    # the official loop runs the whole model on every remaining batch; ours runs fc2 on embeddings computed
    # once. In eval mode with the extractor frozen both are the same function: compare in float64.
    model, x_r, y_r = _tiny_repair_setup(torch.float64)
    ref = copy.deepcopy(model)
    repair_classifier(model, x_r, y_r, n_forget=40, epochs=4, lr=1e-2, batch_size=16, seed=3)
    opt = torch.optim.Adam(ref.fc2.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(3)
    ref.eval()
    for _ in range(4):
        # zip(unlearn, remain): ceil(min(40, 70) / 16) = 3 remaining batches per epoch
        for _, idx in zip(range(3), batches(70, 16, gen)):
            loss = F.cross_entropy(ref(x_r[idx])[0], y_r[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    for (k, a), b in zip(model.state_dict().items(), ref.state_dict().values()):
        assert_close(a, b, rtol=1e-12, atol=1e-12, name=k)


def test_repair_epoch_length_follows_the_shorter_loader():
    # zip(loaders['unlearn'], loaders['remain']) stops at the shorter one: ceil(min(n_f, n_r) / B) steps
    for n_forget, per_epoch in ((10, 1), (40, 3), (500, 5)):  # n_r = 70, B = 16
        model, x_r, y_r = _tiny_repair_setup()
        calls = []
        model.fc2.register_forward_hook(lambda m, i, o, calls=calls: calls.append(len(i[0])))
        repair_classifier(model, x_r, y_r, n_forget=n_forget, epochs=2, batch_size=16, seed=0)
        assert calls[0] == 70  # the one pass that computes the (frozen) embeddings
        assert len(calls) - 1 == 2 * per_epoch


def test_repair_is_deterministic_and_checks_its_input():
    outs = []
    for seed in (0, 0, 1):
        model, x_r, y_r = _tiny_repair_setup()
        outs.append(repair_classifier(model, x_r, y_r, n_forget=40, epochs=2, seed=seed)[0].fc2[1].weight)
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])
    model, x_r, y_r = _tiny_repair_setup()
    with pytest.raises(ValueError, match="rows"):
        repair_classifier(model, x_r, y_r[:-1], n_forget=40)
    with pytest.raises(ValueError, match="non-empty"):
        repair_classifier(model, x_r, y_r, n_forget=0)


def test_laf_r_sees_only_the_remaining_labels(monkeypatch):
    # the experiment hands the repair the remaining images and labels and only the *size* of the forgetting set
    import laf.experiment as ex

    seen = {}

    class Stop(Exception):
        pass

    def spy(model, x, y, *, n_forget, **kw):
        seen.update(x=x, y=y, n_forget=n_forget, kw=kw)
        raise Stop

    monkeypatch.setattr(ex, "repair_classifier", spy)
    cfg = RunConfig(scenario="class", train_epochs=1, vae_epochs=1, laf_epochs=1, ft_epochs=1, ga_epochs=1)
    with pytest.raises(Stop):
        ex.run(cfg, seed=0)
    train, _ = ex.load_data(cfg, 0)
    remain = train.y != cfg.forget_class
    assert torch.equal(seen["y"], train.y[remain]) and torch.equal(seen["x"], train.x[remain])
    assert cfg.forget_class not in seen["y"].tolist()
    assert seen["n_forget"] == int((~remain).sum()) and seen["kw"]["epochs"] == 1
