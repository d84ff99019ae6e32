"""Tiny causal language models (Llama, GPT-2) of 1-5M parameters, built from config with transformers.

These are randomly initialised and trained from scratch on CPU (``xentlab.lm.train``).
``preset("llama-1m")`` (vocab 1024, hidden 128, 4 layers, 4 heads / 2 KV heads, SwiGLU MLP 512,
tied embeddings) has 1.1M parameters; ``preset("llama-3m")`` 3.1M. Measured on the 2-core CI box: a
1.3M-parameter Llama trains at about 0.7 s per step at batch 16 x 128 tokens with one thread.

transformers is imported inside the functions, so ``import xentlab.models.tiny_lm`` is cheap.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

# = xentlab.data.cache.source_digest(__file__), written out so that importing this module stays cheap
# (xentlab.data imports torch); shared/tests/test_core_source_digests.py checks the two agree
SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes().replace(b"\r\n", b"\n")).hexdigest()[:16]
"""hash of this file as imported: part of the cache keys of what it shapes (xentlab.data.cache, "The key rule")"""


@dataclass(frozen=True)
class TinyLMConfig:
    """Shape of a tiny causal LM.

    arch: "llama" (RMSNorm, RoPE, SwiGLU, grouped-query attention) or "gpt2" (LayerNorm, learned
        positions, GELU MLP, full multi-head attention; ``kv_heads`` and ``rope_theta`` unused).
    vocab_size: must match the tokenizer (``len(tokenizer)``).
    hidden, layers, heads: width, depth, attention heads (hidden % heads == 0).
    kv_heads: Llama key/value heads (grouped-query attention; heads % kv_heads == 0).
    intermediate: MLP width (Llama's SwiGLU; GPT-2 uses it as n_inner).
    max_positions: longest sequence (prompt + generation).
    tie_embeddings: share the input embedding and the output classifier (saves vocab*hidden).
    dropout: residual/attention/embedding dropout (0 for memorisation experiments).
    """

    arch: str = "llama"
    vocab_size: int = 1024
    hidden: int = 128
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 384
    max_positions: int = 256
    tie_embeddings: bool = True
    dropout: float = 0.0
    rope_theta: float = 10000.0
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.arch not in ("llama", "gpt2"):
            raise ValueError(f"arch must be 'llama' or 'gpt2', got {self.arch!r}")
        if self.hidden % self.heads:
            raise ValueError(f"hidden={self.hidden} must be divisible by heads={self.heads}")
        if self.arch == "llama" and self.heads % self.kv_heads:
            raise ValueError(f"heads={self.heads} must be divisible by kv_heads={self.kv_heads}")
        if min(self.vocab_size, self.hidden, self.layers, self.heads, self.intermediate) < 1:
            raise ValueError("vocab_size, hidden, layers, heads and intermediate must be positive")


PRESETS: dict[str, TinyLMConfig] = {
    "llama-1m": TinyLMConfig(intermediate=512),
    "llama-3m": TinyLMConfig(hidden=192, layers=6, heads=6, kv_heads=2, intermediate=512),
    "gpt2-1m": TinyLMConfig(arch="gpt2", intermediate=640),
    "gpt2-3m": TinyLMConfig(arch="gpt2", hidden=192, layers=6, heads=6, intermediate=512),
}


def preset(name: str, **overrides: Any) -> TinyLMConfig:
    """A named configuration, with fields overridden (e.g. ``preset("llama-1m", vocab_size=len(tok))``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)


def hf_config(cfg: TinyLMConfig, *, pad_token_id: int = 0, bos_token_id: int = 1, eos_token_id: int = 2):
    """The transformers config object for ``cfg``."""
    if cfg.arch == "llama":
        from transformers import LlamaConfig

        return LlamaConfig(
            vocab_size=cfg.vocab_size,
            hidden_size=cfg.hidden,
            num_hidden_layers=cfg.layers,
            num_attention_heads=cfg.heads,
            num_key_value_heads=cfg.kv_heads,
            intermediate_size=cfg.intermediate,
            max_position_embeddings=cfg.max_positions,
            tie_word_embeddings=cfg.tie_embeddings,
            attention_dropout=cfg.dropout,
            rope_theta=cfg.rope_theta,
            initializer_range=cfg.init_std,
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
        )
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=cfg.vocab_size,
        n_embd=cfg.hidden,
        n_layer=cfg.layers,
        n_head=cfg.heads,
        n_inner=cfg.intermediate,
        n_positions=cfg.max_positions,
        tie_word_embeddings=cfg.tie_embeddings,
        resid_pdrop=cfg.dropout,
        embd_pdrop=cfg.dropout,
        attn_pdrop=cfg.dropout,
        initializer_range=cfg.init_std,
        pad_token_id=pad_token_id,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
    )


def build_tiny_lm(cfg: TinyLMConfig, tokenizer: Any = None, *, seed: int | None = None):
    """A randomly initialised ``LlamaForCausalLM`` / ``GPT2LMHeadModel`` for ``cfg``.

    With ``tokenizer``, its vocabulary size must equal ``cfg.vocab_size`` and its pad/bos/eos ids
    go into the config (``generate`` reads them from there). ``seed`` seeds torch just for the
    initialisation, so the same seed gives the same weights whatever ran before.
    """
    import torch

    ids = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
    if tokenizer is not None:
        if len(tokenizer) != cfg.vocab_size:
            raise ValueError(f"tokenizer has {len(tokenizer)} tokens but cfg.vocab_size={cfg.vocab_size}")
        ids = {
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        }
    config = hf_config(cfg, **ids)
    if cfg.arch == "llama":
        from transformers import LlamaForCausalLM as cls
    else:
        from transformers import GPT2LMHeadModel as cls
    if seed is None:
        model = cls(config)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = cls(config)
    # generate() warns about and then guesses these when they are missing from generation_config
    model.generation_config.pad_token_id = ids["pad_token_id"]
    model.generation_config.bos_token_id = ids["bos_token_id"]
    model.generation_config.eos_token_id = ids["eos_token_id"]
    return model


def count_parameters(model: Any, *, trainable_only: bool = False) -> int:
    """Number of distinct parameters (tied weights counted once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def save_tiny_lm(model: Any, path: str | os.PathLike) -> None:
    """``save_pretrained`` into ``path`` (safetensors + config), written then renamed into place.

    The folder and its files get the permissions of every other cache file (``xentlab.data.cache.
    atomic_write_bytes``: files 0666 & ~umask, folders 0777 & ~umask), not the 0700 of ``mkdtemp`` nor the
    0600 that safetensors gives ``model.safetensors``, so whoever may read the cache may load the model."""
    import shutil
    import tempfile
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        model.save_pretrained(str(tmp))
        mask = _umask()
        for p in [tmp, *tmp.rglob("*")]:
            if not p.is_symlink():
                os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)
        if path.exists():
            shutil.rmtree(path)
        os.rename(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    """The process's umask (read by setting and restoring it, as ``xentlab.data.cache`` does)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_tiny_lm(path: str | os.PathLike):
    """Load a model saved by ``save_tiny_lm`` (offline; the class comes from its config)."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)


def config_dict(cfg: TinyLMConfig) -> dict[str, Any]:
    return asdict(cfg)
