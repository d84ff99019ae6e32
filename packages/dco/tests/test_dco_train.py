"""The training loop (replacement rule, equal step counts), the exact evaluation against sampling,
and the task split."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from dco.task import build_splits, examples, problem_pairs

from xentlab.data.tokenizer import get_byte_tokenizer

TASK = {"pool_train": 60, "n_train": 24, "n_test": 12, "n_val": 10}
MODEL = {"hidden": 32, "layers": 1, "heads": 2, "kv_heads": 1, "intermediate": 64, "max_positions": 32}


@pytest.fixture(scope="module")
def tok():
    return get_byte_tokenizer()


def test_splits_are_disjoint_and_test_is_independent_of_n_train():
    a = build_splits(TASK)
    b = build_splits({**TASK, "n_train": 10})
    assert [p.expr for p in a.test] == [p.expr for p in b.test]
    assert [p.expr for p in b.train] == [p.expr for p in a.train[:10]]
    tr, te, va = ({p.expr for p in s} for s in (a.train, a.test, a.val))
    assert not (tr & te) and not (tr & va) and not (te & va)
    for p in a.train + a.test + a.val:  # the family: 1-digit addend + 1-digit factor * 2-digit operand
        addend, rest = p.expr.split("+")
        f, b_ = rest.split("*")
        assert 0 <= int(addend) <= 9 and 0 <= int(f) <= 9 and 10 <= int(b_) <= 99
        assert p.answer == int(addend) + int(f) * int(b_)
    with pytest.raises(ValueError, match="exceeds"):
        build_splits({**TASK, "n_train": 61})


def test_examples_mask_the_answer_and_eos(tok):
    (ex,) = examples(tok, [("7+6*43=", "265")])
    ids = list(ex.input_ids)
    masked = [t for t, m in zip(ids, ex.loss_mask) if m]
    assert tok.decode(masked) == "265</s>" and masked[-1] == tok.eos_token_id
    assert tok.decode(ids[: len(ids) - len(masked)]) == "<s>7+6*43="


def _model(tok, seed=0):
    from dco.experiment import build_model

    return build_model(MODEL, tok, seed)


def test_exact_logprob_matches_decoding_and_sampling(tok):
    """p_hat from teacher forcing equals the product of the decoding step probabilities, and the exact
    pass@k agrees with the unbiased estimator from samples (a model made broad by its random init)."""
    from dco.evaluate import _decode, sample_correct_counts, sequence_logprobs

    from xentlab.metrics import mean_pass_at_k, pass_at_n_exact

    torch.manual_seed(0)
    model = _model(tok)
    pairs = [("1+2*34=", "69"), ("5+0*77=", "5")]
    log_p = sequence_logprobs(model, tok, pairs)
    # sampling cross-check on a 2-token "answer" that random init gives probability ~1/259^2 is hopeless,
    # so check the identity on the model's own greedy completion instead: its logprob from decoding
    # equals the teacher-forced logprob of the same tokens
    from dco.task import prompt_text

    comps, lp = _decode(model, tok, [prompt_text(q) for q, _ in pairs], max_new_tokens=3, sample=False)
    assert torch.isfinite(log_p).all() and (log_p < 0).all()
    for (q, _), c, l in zip(pairs, comps, lp):
        from xentlab.lm.train import Example, collate, sequence_logprob

        pre = list(tok(prompt_text(q), add_special_tokens=False)["input_ids"])
        ex = Example(tuple(pre + c), tuple([0] * len(pre) + [1] * len(c)))
        tf = sequence_logprob(model, collate([ex], tok.pad_token_id)).double()
        assert tf.item() == pytest.approx(l.item(), abs=1e-4)
    # sampling agrees with the exact value for an answer the model gives high probability: train on it
    opt = torch.optim.Adam(model.parameters(), 3e-2)
    ex = examples(tok, [("1+2*34=", "69")])
    from xentlab.lm.train import collate, sequence_logprob

    batch = collate(ex, tok.pad_token_id)
    for _ in range(40):
        loss = -sequence_logprob(model, batch).mean()
        if loss.item() < 1.0:  # p_hat ~ 0.4-0.6: both ends of pass@k are informative
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    lp1 = sequence_logprobs(model, tok, pairs[:1])
    n = 200
    counts = sample_correct_counts(model, tok, pairs[:1], n=n, seed=0)
    est = mean_pass_at_k([n], counts, [1, 4])
    p = float(lp1.exp())
    sd = np.sqrt(p * (1 - p) / n)
    assert abs(est[1] - p) < 4 * sd + 1e-3
    assert abs(est[4] - float(pass_at_n_exact(p, 4))) < 0.1


def test_training_ce_and_dco_same_steps_and_replacement(tok):
    from dco.train import ExampleStream, TrainConfig, train

    splits = build_splits(TASK)
    exs = examples(tok, problem_pairs(splits.train))
    logs = {}
    for n_prime in (1, 256):
        model = _model(tok)
        rows = []
        cfg = TrainConfig(n_prime=n_prime, epochs=3, batch_size=8, lr=1e-2, eval_every=1, epsilon=0.5)
        evals = train(
            model,
            tok,
            exs,
            cfg,
            seed=0,
            evaluate=lambda e: {"epoch": e},
            on_log=lambda **r: rows.append(r),  # noqa: B023
        )
        assert [e["epoch"] for e in evals] == [0, 1, 2, 3]
        logs[n_prime] = rows
    assert all(r["replaced"] == 0 and r["live_per_step"] == 8 for r in logs[1])
    # epsilon = 0.5 with N' = 256 marks every example whose p_hat exceeds ~1/256 as replaceable; at
    # random init p_hat ~ 259^-4 (3 digits + EOS), so F = 1 - O(N' p_hat) > 0.5: in the first epoch
    # nothing is replaced and every step has a full batch (second audit: the former check here,
    # live_per_step <= 8, held by construction and could not fail)
    first = logs[256][0]
    assert first["replaced"] == 0 and first["live_per_step"] == 8 and first["skipped_steps"] == 0
    replaced = [r["replaced"] for r in logs[256]]
    assert replaced == sorted(replaced)  # a cumulative count
    # the stream is a permutation per pass and rewinding puts indices back
    s = ExampleStream(5, seed=3)
    first = s.take(3)
    s.rewind(2)
    again = s.take(4)
    assert again[:2].tolist() == first[1:].tolist()
    assert sorted(torch.cat([first[:1], again]).tolist()) == [0, 1, 2, 3, 4]


def test_live_batch_replaces_confident_examples(tok):
    """Examples with F(N', p_hat) < epsilon are skipped and the batch is refilled from the stream."""
    from dco.train import ExampleStream, TrainConfig, _live_batch

    from xentlab.lm.train import collate

    exs = examples(tok, problem_pairs(build_splits(TASK).train))
    full = collate(exs, tok.pad_token_id)
    lengths = full["attention_mask"].sum(1)
    model = _model(tok)
    stream = ExampleStream(len(exs), seed=0)
    # epsilon above 1 (F <= 1): every candidate is dead -> empty batch, all scanned candidates counted
    idx, dead = _live_batch(
        model, full, lengths, stream, 4, TrainConfig(n_prime=4, epsilon=1.1, candidate_factor=2)
    )
    assert len(idx) == 0 and dead == 8
    # epsilon 0: all alive -> exactly the next 4, and the unused candidates go back to the stream
    stream = ExampleStream(len(exs), seed=0)
    order = stream.perm.tolist()
    idx, dead = _live_batch(model, full, lengths, stream, 4, TrainConfig(n_prime=4, epsilon=0.0))
    assert idx.tolist() == order[:4] and dead == 0 and stream.pos == 4


def test_run_unit_outputs(tok, tmp_path):
    from dco.experiment import run_unit

    cfg = {
        "task": {"pool_train": 60, "n_train": 16, "n_test": 8, "n_val": 0},
        "model": MODEL,
        "train": {"n_prime": 32, "epochs": 2, "batch_size": 8, "lr": 3e-3, "eval_every": 1},
        "ns": [1, 4, 256],
        "n_train_eval": 8,
        "crosscheck": {"n_problems": 3, "n_samples": 4, "ks": [1, 4]},
    }
    ctx = SimpleNamespace(device=torch.device("cpu"), log=lambda **k: None, progress=lambda it, **k: it)
    out = run_unit(cfg, 0, ctx)
    for k in (
        "pass@1",
        "pass@256",
        "peak_pass@256",
        "drop_from_peak_pass@256",
        "pass@1_final_minus_at_peak_pass@256",
        "xcheck_exact_pass@4",
        "xcheck_sampled_pass@4",
        "greedy_acc",
    ):
        assert np.isfinite(out[k]), k
    assert [r["epoch"] for r in out["curve"]] == [0, 1, 2]
    assert out["pass@1"] <= out["pass@4"] <= out["pass@256"] <= 1
    assert (
        len(out["final_confidence"]) == 8
        and sum(out["curve"][-1]["hist_correct"] + out["curve"][-1]["hist_wrong"]) == 8
    )
