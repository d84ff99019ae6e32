"""Fidelity-audit tests against the official code (wlb12345/TFUP) and the dassl loader it builds on."""

import torch
from tfup.method import loader_batches, n_loader_batches, zero_shot_pred


def test_train_loader_drops_last_partial_batch():
    # dassl build_data_loader: drop_last = is_train and len(data) >= batch_size, RandomSampler order.
    # The refined set of the cpu run (140 x 8 = 1120 samples, batch 256): 4 full batches, 96 samples left out
    # each epoch; the pool (1500): 5 batches.
    g = torch.Generator().manual_seed(0)
    b = loader_batches(1120, 256, g)
    assert [len(x) for x in b] == [256] * 4
    flat = torch.cat(b)
    assert len(set(flat.tolist())) == 1024 and flat.max() < 1120
    assert n_loader_batches(1120, 256) == 4 and n_loader_batches(1500, 256) == 5
    assert len(loader_batches(1500, 256, g)) == 5


def test_train_loader_keeps_a_set_smaller_than_one_batch():
    # len(data) < batch_size: drop_last is False, so the one partial batch is kept (len(loader) == 1).
    g = torch.Generator().manual_seed(0)
    b = loader_batches(100, 256, g)
    assert len(b) == 1 and sorted(b[0].tolist()) == list(range(100))
    assert n_loader_batches(100, 256) == 1


def test_zero_shot_prediction_normalises_class_weights():
    # main.py TFUP: R_fW = 100 f_unit @ W_unit, so the zero-shot class is argmax_c cos(f, w_c), not the raw dot
    # product. Here w_1 is long: the raw dot product picks class 1, the cosine picks class 0 (cos 1 vs 0.6).
    w = torch.tensor([[1.0, 0.0], [30.0, 40.0]])
    f = torch.tensor([[1.0, 0.0]])
    assert (f @ w.t()).argmax(1).item() == 1
    assert zero_shot_pred(f, w).tolist() == [0]
