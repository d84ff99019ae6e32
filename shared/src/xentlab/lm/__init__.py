"""The tiny causal-LM stack: examples with a response mask, batching, one LM loss, a
pretrain-then-finetune loop (``xentlab.lm.train``) and batched generation (``xentlab.lm.generate``).

Import from the submodules. transformers is imported lazily inside functions, so importing
``xentlab`` or ``xentlab.lm`` does not pay its import cost (~20-30 s on the CI box); the LM
packages declare transformers/tokenizers in their own dependencies.
"""
