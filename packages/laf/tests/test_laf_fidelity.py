"""Fidelity audit: the LAF loop against the official ``extractor_unlearning`` order of operations, and
the cpu configuration against ``hyperparameter.md`` and the official step counts."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from laf.models import LAFCNN, VAE
from laf.unlearning import batches, laf_unlearn

from xentlab.testing import assert_close, load_reproduce


def _official_loop(model, s_vae, u_vae, x_f, x_r, *, epochs, lr_ue, lr_ra, temp, seed):
    """The official ``extractor_unlearning`` step by step: model(s) -> s_vae -> model(u) -> u_vae, the
    nmse difference, Adam 1 step; then fresh forwards of model and teacher (teacher with its graph,
    as the official code), the CosineEmbeddingLoss contrast, Adam 2 step. VAEs are not frozen (their
    gradients are computed and never used, as there). Batches from the same generator as ours."""
    teacher = copy.deepcopy(model).eval()
    opt1 = torch.optim.Adam(model.parameters(), lr=lr_ue)
    opt2 = torch.optim.Adam(model.parameters(), lr=lr_ra)
    cel = torch.nn.CosineEmbeddingLoss(reduction="none")
    gen = torch.Generator().manual_seed(seed)
    ue_curve, ra_curve = [], []

    def nmse(e_out, e):
        m = torch.nn.MSELoss(reduction="none")(e_out, e).sum(dim=1)
        return torch.sum(torch.exp(m / (m + 1)))

    for _ in range(epochs):
        tot1 = tot2 = 0.0
        count = 0
        for u_idx, s_idx in zip(batches(len(x_f), 32, gen), batches(len(x_r), 32, gen)):
            u, s = x_f[u_idx], x_r[s_idx]
            _, s_e = model(s)
            s_out = s_vae(s_e)[0]
            _, u_e = model(u)
            u_out = u_vae(u_e)[0]
            loss = nmse(s_out, s_e) - nmse(u_out, u_e)
            opt1.zero_grad()
            loss.backward()
            tot1 += loss.item()
            count += 1
            opt1.step()
            _, s_e = model(s)
            _, s_t = teacher(s)
            _, u_e = model(u)
            _, u_t = teacher(u)
            c1 = cel(s_e, s_t, torch.ones(len(s), dtype=s.dtype))
            c2 = cel(u_e, u_t, torch.ones(len(u), dtype=u.dtype))
            loss3 = torch.sum(torch.log(torch.exp(c1) / torch.sum(torch.exp(c2 / temp))))
            opt2.zero_grad()
            loss3.backward()
            opt2.step()
            tot2 += loss3.item()
        ue_curve.append(tot1 / count)
        ra_curve.append(tot2 / count)
    return model, ue_curve, ra_curve


def test_laf_loop_equals_the_official_loop_in_float64():
    torch.manual_seed(0)
    model = LAFCNN(1, 10, input_size=8).double().eval()
    s_vae, u_vae = VAE(8).double().eval(), VAE(8).double().eval()
    x_f = torch.rand(40, 1, 8, 8, dtype=torch.float64) + 0.3  # 2 batches (the shorter loader)
    x_r = torch.rand(64, 1, 8, 8, dtype=torch.float64)
    kw = dict(epochs=2, lr_ue=1e-3, lr_ra=2e-3, temp=5.0, seed=4)
    ref_model, s_ref, u_ref = copy.deepcopy(model), copy.deepcopy(s_vae), copy.deepcopy(u_vae)
    for vae in (s_vae, u_vae):  # ours runs on frozen VAEs (as train_vae returns them)
        for p in vae.parameters():
            p.requires_grad_(False)
    torch.manual_seed(123)  # the VAEs' reparameterisation noise: same draws in the same order
    ours, ue, ra = laf_unlearn(model, s_vae, u_vae, x_f, x_r, **kw)
    torch.manual_seed(123)
    ref, ue_ref, ra_ref = _official_loop(ref_model, s_ref, u_ref, x_f, x_r, **kw)
    assert_close(torch.tensor(ue), torch.tensor(ue_ref), rtol=1e-10, atol=1e-10, name="UE curve")
    assert_close(torch.tensor(ra), torch.tensor(ra_ref), rtol=1e-10, atol=1e-10, name="RA curve")
    for (name, p), q in zip(ours.named_parameters(), ref.parameters()):
        assert_close(p, q, rtol=1e-9, atol=1e-12, name=name)
    assert not ours.training  # eval mode throughout, as the notebook's deep copy of a tested model


def _reproduce():
    return load_reproduce(Path(__file__).parents[1] / "reproduce.py")


def test_cpu_config_follows_hyperparameter_md_and_the_official_step_counts():
    rep = _reproduce()
    # hyperparameter.md, CNN for MNIST / Fashion-MNIST
    for hp, temp in ((rep.HP_CLASS, 20.0), (rep.HP_RANDOM, 5.0)):
        assert (hp["latent_dims"], hp["lr_ue"], hp["lr_ra"], hp["temp"]) == (8, 5e-5, 1e-4, temp)
    # 20 official epochs of zip(unlearn, remain) batches of 32 on MNIST's training set:
    # class 0 has 5,923 images; random_data keeps int(0.4 * count) of each of classes 5-9
    mnist_counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    class_steps = 20 * -(-mnist_counts[0] // 32)
    n_random = sum(int(0.4 * c) for c in mnist_counts[5:])
    random_steps = 20 * -(-n_random // 32)
    cfg = {e.name: e.configs["cpu"] for e in rep.EXPERIMENTS}
    assert (
        (class_steps, random_steps) == (cfg["class"]["laf_steps"], cfg["random"]["laf_steps"]) == (3720, 7360)
    )


def test_vae_steps_knob_step_matches_the_official_vae_training_and_defaults_to_ten_epochs():
    """Second audit: Train.vae_train runs 10 epochs; the cpu run keeps 10 epochs on digits (a known
    defect, README), and `vae_steps` is the step-matched alternative (default None = the old path)."""
    from laf.experiment import RunConfig, epochs_for_steps, vae_epochs

    # official VAE steps on MNIST: 10 epochs x ceil(n / 32) batches
    mnist_counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    n_random = sum(int(0.4 * c) for c in mnist_counts[5:])  # 11,760
    s_steps, u_class, u_random = (10 * -(-n // 32) for n in (60_000, mnist_counts[0], n_random))
    assert (s_steps, u_class, u_random) == (18_750, 1_860, 3_680)
    # the inverse on MNIST gives the official 10 epochs back
    assert [
        epochs_for_steps(st, n, 32) for st, n in ((s_steps, 60_000), (u_class, 5923), (u_random, n_random))
    ] == [
        10,
        10,
        10,
    ]
    # digits-sized sets, e.g. 1,257 training images (40 batches) and 248 forgetting images (8 batches):
    # ceil(18,750 / 40) = 469 and ceil(3,680 / 8) = 460 epochs
    cfg = RunConfig(scenario="random", vae_steps=(s_steps, u_random))
    assert vae_epochs(cfg, 1257, 248) == (469, 460)
    # default: the official 10 epochs whatever the set sizes (what results/cpu used)
    assert vae_epochs(RunConfig(), 1257, 248) == (10, 10)
    assert vae_epochs(RunConfig(vae_epochs=3), 10, 5) == (3, 3)
    import pytest

    with pytest.raises(ValueError):
        epochs_for_steps(0, 10, 32)
