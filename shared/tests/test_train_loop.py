import pytest
import torch

from xentlab.train import EpochSampler, NonFiniteLossError, seed_everything, train


def make(seed=0):
    seed_everything(seed)
    x = torch.randn(64, 5)
    y = (x[:, 0] > 0).long()
    model = torch.nn.Linear(5, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    sampler = EpochSampler(64, 16, seed)

    def loss_fn(m, idx):
        return torch.nn.functional.cross_entropy(m(x[idx]), y[idx])

    return model, opt, loss_fn, sampler


def test_sampler_is_a_function_of_step():
    s = EpochSampler(10, 3, seed=1)
    assert s.per_epoch == 3
    first = [s(i).tolist() for i in range(6)]
    assert first == [EpochSampler(10, 3, seed=1)(i).tolist() for i in range(6)]
    assert len(set(sum(first[:3], []))) == 9  # one epoch: 9 distinct indices (drop_last drops 1)
    with pytest.raises(ValueError):
        EpochSampler(0, 3, 0)


def test_resume_from_checkpoint_matches_uninterrupted(tmp_path):
    model, opt, loss_fn, sampler = make()
    train(model, opt, loss_fn, sampler, 20, progress=False)
    reference = model.weight.detach().clone()

    model, opt, loss_fn, sampler = make()
    train(model, opt, loss_fn, sampler, 10, checkpoint_dir=tmp_path, checkpoint_every=5, progress=False)
    model, opt, loss_fn, sampler = make()  # a new process: fresh model, then resume from disk
    state = train(
        model, opt, loss_fn, sampler, 20, checkpoint_dir=tmp_path, checkpoint_every=5, progress=False
    )
    assert state.step == 20
    assert torch.equal(model.weight, reference)


def test_nan_guard():
    model, opt, _, sampler = make()

    def bad_loss(m, idx):
        return m.weight.sum() * float("nan")

    with pytest.raises(NonFiniteLossError, match="step 0"):
        train(model, opt, bad_loss, sampler, 5, progress=False)
    state = train(model, opt, bad_loss, sampler, 5, on_nan="stop", progress=False)
    assert state.stopped_on_nan and state.step == 0


def test_logging_callback():
    model, opt, loss_fn, sampler = make()
    seen = []
    state = train(
        model, opt, loss_fn, sampler, 10, log_every=5, on_log=lambda s, r: seen.append(s), progress=False
    )
    assert seen == [5, 10] and len(state.history) == 2
