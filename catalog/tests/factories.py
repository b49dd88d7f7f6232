from __future__ import annotations

from decimal import Decimal

import factory

from accounts.tests.factories import UserFactory
from catalog.models import LLMModel, ModerationEvent, Tag, TestCase, TestCaseRevision


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


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"tag-{n}")


class TestCaseRevisionFactory(factory.django.DjangoModelFactory):
    __test__ = False

    class Meta:
        model = TestCaseRevision

    test_case = factory.SubFactory(TestCaseFactory)
    revision = factory.LazyAttribute(lambda o: o.test_case.revision)
    prompt = factory.LazyAttribute(lambda o: o.test_case.prompt)
    expected_output = factory.LazyAttribute(lambda o: o.test_case.expected_output)
    evaluation_type = factory.LazyAttribute(lambda o: o.test_case.evaluation_type)
    created_by = factory.LazyAttribute(lambda o: o.test_case.created_by)


class ModerationEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModerationEvent

    test_case = factory.SubFactory(TestCaseFactory)
    actor = factory.SubFactory(UserFactory, role="moderator")
    action = ModerationEvent.Action.APPROVE
    from_status = TestCase.Status.PENDING
    to_status = TestCase.Status.APPROVED
    revision = factory.LazyAttribute(lambda o: o.test_case.revision)
