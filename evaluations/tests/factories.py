from __future__ import annotations

import factory
from django.utils import timezone

from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import Execution, TestResult


class ExecutionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Execution

    test_case = factory.SubFactory(TestCaseFactory)
    revision = factory.LazyAttribute(lambda o: o.test_case.revision)
    created_by = factory.LazyAttribute(lambda o: o.test_case.created_by)
    status = Execution.Status.PENDING
    total_evaluations = 1


class TestResultFactory(factory.django.DjangoModelFactory):
    __test__ = False

    class Meta:
        model = TestResult

    execution = factory.SubFactory(ExecutionFactory)
    test_case = factory.LazyAttribute(lambda o: o.execution.test_case)
    revision = factory.LazyAttribute(lambda o: o.execution.revision)
    model = factory.SubFactory(LLMModelFactory)
    status = TestResult.Status.COMPLETED
    raw_output = "Paris"
    is_correct = True
    score = 1.0
    latency_ms = 120
    input_tokens = 20
    output_tokens = 2
    total_tokens = 22
    executed_at = factory.LazyFunction(timezone.now)
