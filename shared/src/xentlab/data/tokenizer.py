"""An offline byte-level BPE tokenizer for the tiny causal LMs, wrapped for transformers.

The tokenizer is trained with the ``tokenizers`` library on text that exists on every machine:
Python's own documentation (``pydoc_data.topics``, ~465k characters of English prose) plus
whatever text a task adds (its questions and answers), so that the task's words get their own
merges. It is wrapped as a transformers fast tokenizer with ``<pad>``, ``<s>``, ``</s>`` and a
chat template, and cached under ``xentlab.data.cache_dir("tokenizers")``, keyed by a hash of
everything that determines it (text, vocabulary size, format version, this module's code and the
``tokenizers`` / ``transformers`` versions).

Chat format (the same string the chat template renders)::

    <s>User: {question}\\nAssistant: {answer}</s>

The prompt is everything up to and including ``Assistant:``; the response is `` {answer}</s>``.
Prompt and response are tokenized separately (``encode_chat``) so that BPE never merges across
the boundary and the response mask is exact.

transformers and tokenizers are imported inside the functions: ``import xentlab`` stays light.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from xentlab.data.cache import cache_dir, code_key, source_digest

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache key (xentlab.data.cache, "The key rule")"""

PAD, BOS, EOS = "<pad>", "<s>", "</s>"
SPECIAL_TOKENS = (PAD, BOS, EOS)  # ids 0, 1, 2 in this order
FORMAT_VERSION = "1"
_LOADED: dict[str, Any] = {}  # cache path -> tokenizer loaded in this process

# A Jinja chat template that renders exactly what chat_prompt/chat_response build by hand.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}\n"
    "{% elif message['role'] == 'user' %}User: {{ message['content'] }}\n"
    "{% elif message['role'] == 'assistant' %}Assistant: {{ message['content'] }}{{ eos_token }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def pydoc_text() -> str:
    """Python's bundled documentation topics as one English text (offline, deterministic order)."""
    from pydoc_data import topics

    return "\n".join(topics.topics[k] for k in sorted(topics.topics))


def chat_prompt(question: str, system: str | None = None) -> str:
    """The prompt string for one user turn, ending where the assistant's answer starts."""
    head = f"{BOS}{system}\n" if system else BOS
    return f"{head}User: {question}\nAssistant:"


def chat_response(answer: str) -> str:
    """The response string the model is trained to produce after ``chat_prompt``."""
    return f" {answer}{EOS}"


def code_version() -> str:
    """The trainer-code part of the cache key: this module, plus ``tokenizers`` (the BPE trainer) and
    ``transformers`` (the saved wrapper) versions (xentlab.data.cache, "The key rule")."""
    return code_key(SOURCE_DIGEST, libraries=("tokenizers", "transformers"))


def _fingerprint(texts: Sequence[str], vocab_size: int, min_frequency: int) -> str:
    h = hashlib.sha256(f"v{FORMAT_VERSION}|{code_version()}|{vocab_size}|{min_frequency}|".encode())
    for t in texts:
        h.update(hashlib.sha256(t.encode("utf-8")).digest())
    return h.hexdigest()[:16]


def train_bpe_tokenizer(texts: Iterable[str], *, vocab_size: int = 1024, min_frequency: int = 2):
    """Train a byte-level BPE on ``texts`` and wrap it as a transformers fast tokenizer.

    Byte-level: every string round-trips exactly (no unknown token). The special tokens get ids
    0 (pad), 1 (bos), 2 (eos); no token is added implicitly (``add_special_tokens`` adds nothing),
    since the chat format writes ``<s>``/``</s>`` itself.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must be at least {256 + len(SPECIAL_TOKENS)} (bytes + specials)")
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
    )


def load_tokenizer(path: str | os.PathLike):
    """Load a tokenizer saved by ``get_tokenizer`` / ``save_pretrained`` (offline, local path)."""
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast.from_pretrained(str(path), local_files_only=True)
    if tok.chat_template is None:
        tok.chat_template = CHAT_TEMPLATE
    return tok


def get_tokenizer(
    extra_texts: Sequence[str] = (),
    *,
    vocab_size: int = 1024,
    min_frequency: int = 2,
    include_pydoc: bool = True,
    name: str = "bpe",
):
    """The cached tokenizer for pydoc text + ``extra_texts``; trained on first use (~1 s).

    The cache entry is a directory written to a temporary name and renamed into place, so two
    processes that train at once both end with the same, complete tokenizer.
    """
    texts = ([pydoc_text()] if include_pydoc else []) + list(extra_texts)
    if not texts:
        raise ValueError("no text to train the tokenizer on")
    key = _fingerprint(texts, vocab_size, min_frequency)
    root = cache_dir("tokenizers")
    path = root / f"{name}-{vocab_size}-{key}"
    if str(path) in _LOADED:
        return _LOADED[str(path)]
    if (path / "tokenizer.json").exists():
        _LOADED[str(path)] = load_tokenizer(path)
        return _LOADED[str(path)]
    tok = train_bpe_tokenizer(texts, vocab_size=vocab_size, min_frequency=min_frequency)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=root))
    try:
        tok.save_pretrained(str(tmp))
        try:
            os.rename(tmp, path)
        except OSError:  # another process finished first; its copy is identical
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if (path / "tokenizer.json").exists():
        tok = load_tokenizer(path)
    _LOADED[str(path)] = tok
    return tok


def get_byte_tokenizer():
    """A byte-level tokenizer (259 symbols: the 256 bytes plus pad / bos / eos), so every character is
    one token: what character-level tasks such as verifiable arithmetic want (pacs, dco)."""
    return get_tokenizer(["0123456789+-*= "], vocab_size=259, include_pydoc=False, name="bytes")


def encode_chat(
    tokenizer: Any, question: str, answer: str, system: str | None = None
) -> tuple[list[int], int]:
    """Token ids of prompt + response and the prompt length (the response mask starts there)."""
    prompt = tokenizer(chat_prompt(question, system), add_special_tokens=False)["input_ids"]
    response = tokenizer(chat_response(answer), add_special_tokens=False)["input_ids"]
    return list(prompt) + list(response), len(prompt)
