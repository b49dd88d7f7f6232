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
from providers.tokenizers import (
    TOKENS_PER_MESSAGE,
    TOKENS_REPLY_PRIMING,
    UncountableText,
    count_tokens,
    local_encoding_name,
)

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


def _gpt4(prompt: str) -> int:
    encoding = local_encoding_name("gpt-4")
    assert encoding is not None
    return count_tokens(encoding, system_prompt="", prompt=prompt)


def test_a_special_token_in_a_prompt_is_counted_as_text() -> None:
    plain = _gpt4("hello world")
    special = _gpt4("hello <|endoftext|>")

    assert plain == TOKENS_REPLY_PRIMING + TOKENS_PER_MESSAGE + 2
    assert special is not None and special > plain


def test_a_prompt_past_the_encoders_limit_is_uncountable_not_an_unknown_encoding() -> None:
    with pytest.raises(UncountableText):
        _gpt4(LONG_PROMPT)


def test_a_test_with_such_a_prompt_is_estimated_and_runs(owner: User) -> None:
    model = _gpt()
    test = TestCaseFactory(prompt=LONG_PROMPT, created_by=owner)

    estimate = client_for(owner).post(f"{V1}/executions/estimate", {"test_ids": [str(test.pk)]}, format="json")

    assert estimate.status_code == 200, estimate.content[:300]
    assert estimate.json()["input_tokens"] == run_estimate(test_cases=[test], models=[model]).input_tokens
    assert estimate.json()["input_tokens"] == approximate_tokens(f"\n{LONG_PROMPT}")
    # That text alone was approximated: the model's encoding still counts the next test's prompt.
    short = TestCaseFactory(prompt="hello world", created_by=owner)
    assert (
        run_estimate(test_cases=[short], models=[model]).input_tokens == TOKENS_REPLY_PRIMING + TOKENS_PER_MESSAGE + 2
    )


def test_models_sharing_an_encoding_count_a_test_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from evaluations import estimates

    counted: list[str] = []
    real = estimates.count_tokens
    monkeypatch.setattr(estimates, "count_tokens", lambda name, **text: counted.append(name) or real(name, **text))
    models = [
        LLMModelFactory(provider=LLMModel.Provider.OPENAI, provider_model_id=model_id)
        for model_id in ("gpt-4", "gpt-4-0613", "gpt-3.5-turbo", "gpt-4o")
    ]

    estimate = run_estimate(test_cases=[TestCaseFactory(prompt="hello world")], models=models)

    assert sorted(counted) == ["cl100k_base", "o200k_base"]
    assert {item.input_tokens for item in estimate.by_model} == {TOKENS_REPLY_PRIMING + TOKENS_PER_MESSAGE + 2}


@pytest.mark.parametrize("model_id", ["gpt2", "text-davinci-003"])
def test_a_model_whose_encoding_is_not_shipped_is_approximated(owner: User, model_id: str) -> None:
    # Their legacy encodings (gpt2's, p50k) are not in the wheel: loading one raised, a 500 on every estimate.
    model = LLMModelFactory(provider=LLMModel.Provider.OPENAI_COMPATIBLE, provider_model_id=model_id)
    test = TestCaseFactory(prompt="hello world", created_by=owner)

    estimate = client_for(owner).post(f"{V1}/executions/estimate", {"test_ids": [str(test.pk)]}, format="json")

    assert estimate.status_code == 200, estimate.content[:300]
    assert estimate.json()["by_model"][0]["model"] == str(model.pk)
    assert estimate.json()["input_tokens"] == approximate_tokens("\nhello world")


def test_a_text_past_the_local_limit_is_approximated_without_encoding_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from providers import tokenizers

    monkeypatch.setattr(tokenizers, "_encoding", lambda name: pytest.fail("encoded a text past the limit"))
    with pytest.raises(UncountableText):
        tokenizers.count_tokens("cl100k_base", system_prompt="", prompt="a" * (tokenizers.LOCAL_COUNT_MAX_CHARS + 1))
