"""Prompts the local tokenizer refuses (past ~200,000 tokens or 1 MB, or naming a special token) are estimated by
approximation, never a 500: a moderator approving such a test must not break its page, its runs and the suites."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import User
from catalog.models import LLMModel
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.estimates import approximate_tokens, run_estimate
from openbench.tests.api import (
    V1,
    client_for,
    reset_throttles,  # noqa: F401 - autouse fixture
)
from providers.tokenizers import TOKENS_PER_MESSAGE, TOKENS_REPLY_PRIMING, local_token_count

pytestmark = pytest.mark.django_db

# ~400,000 tokens in ~800 kB: past the encoder's limit, within the API's 1 MB body.
LONG_PROMPT = " ".join(str(i % 10) for i in range(400_000))


def _gpt() -> LLMModel:
    return LLMModelFactory(
        name="gpt-4-long",
        provider=LLMModel.Provider.OPENAI_COMPATIBLE,
        provider_model_id="gpt-4",
        config={"base_url": "http://127.0.0.1:9/v1"},
        input_price_per_million=Decimal("1"),
        output_price_per_million=Decimal("1"),
    )


def test_a_special_token_in_a_prompt_is_counted_as_text() -> None:
    plain = local_token_count(provider="openai", model_id="gpt-4", system_prompt="", prompt="hello world")
    special = local_token_count(provider="openai", model_id="gpt-4", system_prompt="", prompt="hello <|endoftext|>")

    assert plain == TOKENS_REPLY_PRIMING + TOKENS_PER_MESSAGE + 2
    assert special is not None and special > plain


def test_a_prompt_past_the_encoders_limit_is_left_to_the_approximation() -> None:
    assert local_token_count(provider="openai", model_id="gpt-4", system_prompt="", prompt=LONG_PROMPT) is None


def test_a_test_with_such_a_prompt_is_estimated_and_runs(owner: User) -> None:
    model = _gpt()
    test = TestCaseFactory(prompt=LONG_PROMPT, created_by=owner)

    estimate = client_for(owner).post(f"{V1}/executions/estimate", {"test_ids": [str(test.pk)]}, format="json")

    assert estimate.status_code == 200, estimate.content[:300]
    assert estimate.json()["input_tokens"] == run_estimate(test_cases=[test], models=[model]).input_tokens
    assert estimate.json()["input_tokens"] == approximate_tokens(f"\n{LONG_PROMPT}")
