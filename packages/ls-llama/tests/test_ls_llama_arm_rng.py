"""Each finetuning arm draws its dropout (LoRA dropout 0.1, label-head dropout 0.1) from its own seeded
stream, so an arm's numbers do not depend on which arms ran before it in the same process (README,
"Fidelity audit, second reader (audit 2)": protocol of the fourth cpu run).

The training loss logged after each epoch is the sensitive probe: it changes with any dropout mask, where
span-F1 on a tiny task can be 0 whatever the masks are."""

from types import SimpleNamespace

import torch
from ls_llama.data import make_task, task_config
from ls_llama.train import FinetuneConfig, finetune, pretrain_lm

from xentlab.models.tiny_lm import TinyLMConfig

# one CoNLL03-style sentence (the full path's test uses the same kind of tiny files)
WORDS = [
    "EU",
    "rejects",
    "German",
    "call",
    "to",
    "boycott",
    "British",
    "lamb",
    "Peter",
    "Blackburn",
    "in",
    "Paris",
]
TAGS = ["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "B-PER", "I-PER", "O", "B-LOC"]


def _losses(fn):
    out = []
    fn(lambda **k: out.append(k["loss"]))
    return out


def test_ner_arm_ignores_the_global_rng_state_before_it():
    data = make_task("right", task_config(n_train=32, n_val=8, n_test=8), 0)
    lm_cfg = TinyLMConfig(
        vocab_size=data.vocab_size, hidden=16, layers=1, heads=2, kv_heads=1, intermediate=32
    )
    backbone, _ = pretrain_lm(data, lm_cfg, 3, seed=0)
    cfg = FinetuneConfig(epochs=2, batch_size=8, trainer_defaults=True)

    def arm(prefix_draws):
        def go(log):
            torch.manual_seed(123)
            torch.rand(prefix_draws)  # what an earlier arm would have consumed
            finetune(backbone, data, "unmasked", cfg, seed=1, log=log)

        return _losses(go)

    alone, after_other_arm = arm(0), arm(1000)
    assert len(alone) == 2 and alone == after_other_arm
    # the stream is the arm's own: another unit seed gives other dropout masks (the probe is sensitive)
    other = _losses(lambda log: finetune(backbone, data, "unmasked", cfg, seed=2, log=log))
    assert other != alone


def test_full_arm_does_not_depend_on_the_arms_before_it(tmp_path):
    import json

    from ls_llama.full import run_full

    from xentlab.data.tokenizer import train_bpe_tokenizer
    from xentlab.models.tiny_lm import build_tiny_lm

    tok = train_bpe_tokenizer([" ".join(WORDS)] * 4, vocab_size=300)
    lm = build_tiny_lm(
        TinyLMConfig(vocab_size=len(tok), hidden=32, layers=1, heads=2, kv_heads=1, intermediate=64),
        tok,
        seed=0,
    )
    lm.save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    (tmp_path / "data").mkdir()
    rows = [{"tokens": WORDS[i : i + 6], "ner_tags": TAGS[i : i + 6]} for i in range(0, 7, 2)]
    for split in ("train", "validation", "test"):
        (tmp_path / "data" / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    base = {"model_path": str(tmp_path / "model"), "data_dir": str(tmp_path / "data"), "epochs": 2,
            "batch_size": 2, "lr": 1e-3, "weight_decay": 0.01, "max_length": 64, "lora_r": 12,
            "lora_alpha": 32, "lora_dropout": 0.1, "bf16": False}  # fmt: skip

    def unmasked_losses(arms):
        logs = []
        ctx = SimpleNamespace(device=torch.device("cpu"), log=lambda **k: logs.append(k))
        torch.manual_seed(0)
        run_full({**base, "arms": arms}, 0, ctx)
        return [k["loss"] for k in logs if k["arm"] == "unmasked"]

    alone = unmasked_losses(["unmasked"])
    assert len(alone) == 2 and alone == unmasked_losses(["causal", "unmasked"])
