from __future__ import annotations

from decimal import Decimal

import factory

from accounts.tests.factories import UserFactory
from catalog.models import LLMModel, TestCase


class LLMModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LLMModel
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"mock-model-{n}")
    display_name = factory.LazyAttribute(lambda o: o.name.replace("-", " ").title())
    provider = LLMModel.Provider.MOCK
    provider_model_id = factory.LazyAttribute(lambda o: o.name)
    input_price_per_million = Decimal("1.00")
    output_price_per_million = Decimal("2.00")
    config = factory.LazyFunction(lambda: {"accuracy": 0.8, "latency_ms": 0})


class TestCaseFactory(factory.django.DjangoModelFactory):
    __test__ = False

    class Meta:
        model = TestCase

    title = factory.Sequence(lambda n: f"Capital question {n}")
    category = "geography"
    difficulty = TestCase.Difficulty.EASY
    prompt = "What is the capital of France? Answer with one word."
    expected_output = "Paris"
    evaluation_type = TestCase.EvaluationType.EXACT_MATCH
    evaluation_config = factory.LazyFunction(dict)
    status = TestCase.Status.APPROVED
    is_public = True
    created_by = factory.SubFactory(UserFactory)
