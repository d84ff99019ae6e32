"""Each finetuning arm draws its dropout (LoRA dropout 0.1, label-head dropout 0.1) from its own seeded
stream, so an arm's numbers do not depend on which arms ran before it in the same process (README,
"Fidelity audit, second reader (audit 2)": protocol of the fourth cpu run).

The training loss logged after each epoch is the sensitive probe: it changes with any dropout mask, where
span-F1 on a tiny task can be 0 whatever the masks are. The --scale full path's arm test is in
test_ls_llama_full.py (it uses that file's tiny model and CoNLL files)."""

import torch
from ls_llama.data import make_task, task_config
from ls_llama.train import FinetuneConfig, finetune, pretrain_lm

from xentlab.models.tiny_lm import TinyLMConfig


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
