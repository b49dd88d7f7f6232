"""Suites, schedules and runs for the monitoring tests."""

from __future__ import annotations

from typing import Any

from catalog.models import LLMModel, Suite, TestCase
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from providers.testing.fake_servers import FakeServer


def fake_model(server: FakeServer, name: str, **fields: Any) -> LLMModel:
    """A model served by the fake OpenAI-compatible server, named so that answer_fn can tell it apart."""
    model: LLMModel = LLMModelFactory(
        name=name, provider="openai_compatible", provider_model_id=name, config={"base_url": server.base_url}, **fields
    )
    return model


def capital_tests(n: int) -> list[TestCase]:
    """n exact-match tests whose right answer is Paris, each with its own prompt."""
    return [TestCaseFactory(prompt=f"Question {i}: the capital of France?", expected_output="Paris") for i in range(n)]


def suite_of(tests: list[TestCase], name: str = "watch") -> Suite:
    suite = Suite.objects.create(name=name)
    suite.tests.set(tests)
    return suite
