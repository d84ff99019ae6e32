"""The taxonomy XMC task (labels = ancestors below skip_levels, split by concept) and the smoke run."""

from pathlib import Path

import pytest
from dexml.experiment import RunConfig, build_xmc, run

from xentlab.data.taxonomy import TaxonomyConfig, make_taxonomy
from xentlab.testing import run_smoke

REPRO = Path(__file__).parents[1] / "reproduce.py"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path_factory.getbasetemp() / "xentlab-cache"))


def test_xmc_labels_are_ancestors_below_skip_levels():
    cfg = RunConfig(n_domains=2, depth=4, skip_levels=2, min_label_train=1)
    tax = make_taxonomy(TaxonomyConfig(n_domains=2, depth=4), seed=0)
    data = build_xmc(tax, cfg, seed=0)
    assert all(tax.concepts[p].depth >= 2 for p in data.label_concepts)
    by_gloss = {c.gloss: c for c in tax.concepts}
    for text, row in zip(data.test_texts, data.test_targets):
        c = by_gloss[text]
        got = {data.label_concepts[j] for j in row.nonzero().flatten().tolist()}
        assert got == {a for a in c.ancestors if tax.concepts[a].depth >= 2} & set(data.label_concepts)
    # split by concept: no test gloss is a train text; label text = name + start of the gloss
    assert not set(data.test_texts) & set(data.train_texts)
    c0 = tax.concepts[data.label_concepts[0]]
    assert (
        data.label_texts[0].split()[0] == c0.name
        and data.label_texts[0].split()[1:] == c0.gloss.split()[1:11]
    )
    assert data.train_targets.any(1).all() and data.test_targets.any(1).all()


def test_run_is_deterministic_and_learns():
    cfg = RunConfig(n_domains=2, depth=3, skip_levels=1, epochs=3, batch_size=32, n_buckets=2**12, emb_dim=16,
                    hidden=(32,), out_dim=16, loss="ds_sample")  # fmt: skip
    a, b = run(cfg, seed=0), run(cfg, seed=0)
    assert a == b
    assert 0.0 <= a["p_at_5"] <= 1.0 and a["n_labels"] > 5


def test_smoke(tmp_path):
    result = run_smoke(REPRO, tmp_path)
    assert set(result["config"]) == {"softmax", "bce", "ds", "ds_sample", "softmax_sample"}
    assert "gain/ds_vs_softmax_p_at_5" in result["metrics"]


def test_every_arm_sees_the_same_batches_in_every_epoch(monkeypatch):
    # the sampled arms draw positives from their own generator, so the batch order (drawn per epoch from
    # the seed's batch generator) is the same for a sampled and an unsampled arm: the arms stay paired
    import dexml.experiment as experiment

    original = experiment.compute_loss

    def batches_of(loss: str) -> list:
        seen = []

        def recording(name, sim, targets, generator=None):
            seen.append(targets.clone())
            return original(name, sim, targets, generator)

        monkeypatch.setattr(experiment, "compute_loss", recording)
        cfg = RunConfig(loss=loss, n_domains=2, depth=3, skip_levels=1, epochs=3, batch_size=16,
                        n_buckets=2**10, emb_dim=8, hidden=(8,), out_dim=8)  # fmt: skip
        run(cfg, seed=3)
        return seen

    plain, sampled = batches_of("softmax"), batches_of("softmax_sample")
    assert len(plain) == len(sampled) > 3
    assert all(a.equal(b) for a, b in zip(plain, sampled))


def test_optimiser_follows_the_official_bundle():
    # optimizer_bundles.py: AdamW, weight decay 0.01 except parameters whose name has "bias" (or shape (1,)),
    # transformers.get_linear_schedule_with_warmup(num_warmup_steps=int(0.1 * total), total) stepped per step
    import torch
    from dexml.experiment import make_optimizer

    from xentlab.models.hashed_text import HashedTextTower, TowerConfig

    tower = HashedTextTower(TowerConfig(n_buckets=16, emb_dim=4, hidden=(3,), out_dim=2))
    opt, sched = make_optimizer(tower, RunConfig(lr=1e-3, weight_decay=0.01, warmup=0.1), total_steps=40)
    decay = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    for name, p in tower.named_parameters():
        assert decay[id(p)] == (0.0 if "bias" in name else 0.01), name
    lrs = []
    for _ in range(40):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    # hand values: 4 warm-up steps (int(0.1 * 40)), lr * s / 4, then lr * (40 - s) / 36
    expected = [1e-3 * s / 4 for s in range(4)] + [1e-3 * (40 - s) / 36 for s in range(4, 40)]
    assert torch.allclose(torch.tensor(lrs, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64))
