"""FilterSets for executions and results, shared by the API and the pages."""

from __future__ import annotations

import django_filters

from evaluations.models import Execution, TestResult


class ExecutionFilter(django_filters.FilterSet):
    """`status`, `test_case`, `model` (executions that include that model), `batch_id`."""

    status = django_filters.ChoiceFilter(choices=Execution.Status.choices)
    test_case = django_filters.UUIDFilter(field_name="test_case_id")
    model = django_filters.UUIDFilter(field_name="llm_models__id", distinct=True)
    batch_id = django_filters.UUIDFilter()

    class Meta:
        model = Execution
        fields = ["status", "test_case", "model", "batch_id"]


class TestResultFilter(django_filters.FilterSet):
    """`model`, `status`, `is_correct`, `cached`."""

    __test__ = False

    model = django_filters.UUIDFilter(field_name="model_id")
    status = django_filters.ChoiceFilter(choices=TestResult.Status.choices)
    is_correct = django_filters.BooleanFilter()
    cached = django_filters.BooleanFilter()

    class Meta:
        model = TestResult
        fields = ["model", "status", "is_correct", "cached"]


class ResultExportFilter(TestResultFilter):
    """GET /results/export: the results lists' filters, plus those of /executions (`test_case`, `batch_id`),
    one `execution`, and a time window on `executed_at` (`since` inclusive, `until` exclusive)."""

    test_case = django_filters.UUIDFilter(field_name="test_case_id")
    execution = django_filters.UUIDFilter(field_name="execution_id")
    batch_id = django_filters.UUIDFilter(field_name="execution__batch_id")
    since = django_filters.IsoDateTimeFilter(field_name="executed_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="executed_at", lookup_expr="lt")

    class Meta:
        model = TestResult
        fields = ["model", "status", "is_correct", "cached", "test_case", "execution", "batch_id", "since", "until"]
