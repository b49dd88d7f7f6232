"""Counting a prompt's tokens on this machine, for models whose tokenizer is public (OpenAI's BPE encodings).

Anthropic and Gemini count with their own endpoints (the adapters' `count_tokens`); OpenAI has no counting
endpoint, so its models (and OpenAI-compatible servers that serve them) are counted here with the encodings
tiktoken uses. `bpe-openai` ships those encodings inside its wheel: tiktoken itself downloads them on first
use, which a machine without internet access cannot do. Models whose encoding is unknown (Llama on Together,
most self-hosted models) return None and the caller approximates.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

# Providers that speak OpenAI's chat format; only their model ids can name an OpenAI encoding.
OPENAI_FORMAT_PROVIDERS = frozenset({"openai", "together", "openai_compatible"})
# OpenAI's accounting for chat messages (the cookbook's rule for current models): each message costs
# its content plus 3 tokens of framing, and every reply is primed with 3 more.
TOKENS_PER_MESSAGE = 3
TOKENS_REPLY_PRIMING = 3
# Longer texts are approximated: encoding 1 MB takes about a second of CPU here, and an estimate may hold hundreds
# of such texts (a user's own tests), on the web process.
LOCAL_COUNT_MAX_CHARS = 200_000


class UncountableText(ValueError):
    """The text is longer than LOCAL_COUNT_MAX_CHARS, or the encoder refuses it: the caller approximates it."""


@lru_cache(maxsize=64)
def local_encoding_name(model_id: str) -> str | None:
    """The OpenAI encoding that counts this model's tokens ("cl100k_base", ...), loaded; None when OpenAI's tables
    do not name the model or its encoding is not shipped here."""
    import bpe_openai  # imported on first use: the encodings take a few megabytes

    try:
        name = str(bpe_openai.encoding_name_for_model(model_id))
        _encoding(name)
    # A model OpenAI's tables do not name (KeyError, ValueError), or a legacy encoding (gpt2's, p50k) the wheel does not
    # ship (RuntimeError, OSError): approximated.
    except (KeyError, ValueError, RuntimeError, OSError):
        return None
    return name


@lru_cache(maxsize=8)
def _encoding(name: str) -> Any:
    import bpe_openai

    return bpe_openai.get_encoding(name)


def count_tokens(encoding_name: str, *, system_prompt: str, prompt: str) -> int:
    """Input tokens of a chat request with a system and a user message, in this encoding (UncountableText when
    the encoder refuses the text, or it is longer than LOCAL_COUNT_MAX_CHARS)."""
    import bpe_openai

    messages = [text for text in (system_prompt, prompt) if text]
    if sum(len(text) for text in messages) > LOCAL_COUNT_MAX_CHARS:
        raise UncountableText(f"longer than {LOCAL_COUNT_MAX_CHARS:,} characters")
    encoding = _encoding(encoding_name)
    try:
        # As ordinary text: the API sends a user's "<|endoftext|>" as text, and encode() would refuse it.
        counts = [len(encoding.encode_ordinary(text)) for text in messages]
    except (ValueError, bpe_openai.errors.TokenizerError) as exc:
        raise UncountableText(str(exc)) from exc
    return TOKENS_REPLY_PRIMING + sum(TOKENS_PER_MESSAGE + count for count in counts)
