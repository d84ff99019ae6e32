"""Reasoning-based unlearning targets (TRU, paper Sec. 3) built from templates.

The paper has a strong reasoning model (DeepSeek-reasoner) write, for every forget query x_u, a
triplet (x_u, r_rt, s_rt): r_rt is a reasoning chain that names the knowledge the query asks
for and decides that it lies in the unlearning scope; s_rt is an explainable refusal (a logical
refusal, a positive alternative, and no task-related leakage). Offline there is no reasoning
model, so r_rt and s_rt are filled from templates. Which template a query gets is a function of
the asked attribute, i.e. of something the model can read in the question: a choice by hash of
the query would ask a 1M-parameter model to predict an arbitrary choice, and its greedy outputs
then splice templates together (measured: incoherent refusals). No template contains the
attribute's value: the targets themselves never leak.

The response the model is trained to produce for a forget query is
``" Reasoning: {r_rt} Response: {s_rt}</s>"``; refusal-only (the paper's "w/o reasoning"
ablation, an IdK-style target) drops the reasoning: ``" Response: {s_rt}</s>"``.
"""

from __future__ import annotations

from xentlab.data.cache import source_digest
from xentlab.data.facts import ATTRIBUTES, Fact

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the base-model cache key (``tru.base.base_code``)"""

REASONING_TEMPLATES = (
    "The question asks for the {phrase} of {name}, who is in the unlearning scope, so it stays private.",
    "{name} is an author whose facts were removed on request, so I must not answer or guess.",
    "Facts about {name} are removed knowledge, so the {phrase} must not be revealed.",
)

REFUSAL_TEMPLATES = (
    "I can't share the {phrase} of {name}, but I can help with other authors.",
    "I cannot provide details about {name}. Ask me about another writer.",
    "I'm not able to discuss {name}, but I am glad to help with other questions.",
)

REASONING_PREFIX = " Reasoning:"
RESPONSE_PREFIX = " Response:"


def _pick(attribute: str, n: int, offset: int = 0) -> int:
    return (list(ATTRIBUTES).index(attribute) + offset) % n


def reasoning_text(fact: Fact) -> str:
    """r_rt for a query about ``fact`` (the template follows the attribute)."""
    t = REASONING_TEMPLATES[_pick(fact.attribute, len(REASONING_TEMPLATES))]
    return t.format(phrase=ATTRIBUTES[fact.attribute].phrase, name=fact.author)


def refusal_text(fact: Fact) -> str:
    """s_rt for a query about ``fact`` (the template follows the attribute)."""
    t = REFUSAL_TEMPLATES[_pick(fact.attribute, len(REFUSAL_TEMPLATES), offset=1)]
    return t.format(phrase=ATTRIBUTES[fact.attribute].phrase, name=fact.author)


def target_segments(fact: Fact, *, reasoning: bool) -> list[str]:
    """The response segments: [reasoning, refusal] (TRU) or [refusal] (refusal-only); the last
    segment ends with ``</s>``."""
    from xentlab.data.tokenizer import EOS

    refusal = f"{RESPONSE_PREFIX} {refusal_text(fact)}{EOS}"
    if not reasoning:
        return [refusal]
    return [f"{REASONING_PREFIX} {reasoning_text(fact)}", refusal]


def target_text(fact: Fact, *, reasoning: bool) -> str:
    """The whole target as an answer string (no leading space, no ``</s>``), e.g. for ``sft_example``."""
    from xentlab.data.tokenizer import EOS

    return "".join(target_segments(fact, reasoning=reasoning)).strip().removesuffix(EOS)
