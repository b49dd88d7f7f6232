"""Bulk inserts (COPY on PostgreSQL, bulk_create elsewhere): rows land as save() would store them, and a
row that breaks a constraint fails the whole insert."""

from __future__ import annotations

import uuid

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import Execution
from openbench.bulk import UPDATE_COPY_THRESHOLD, insert_rows, insert_values, update_rows

pytestmark = pytest.mark.django_db

Link = Execution.llm_models.through


def _execution(**fields) -> Execution:  # type: ignore[no-untyped-def]
    test_case = fields.pop("test_case", None) or TestCaseFactory()
    return Execution(test_case=test_case, revision=test_case.revision, total_evaluations=1, **fields)


def test_rows_are_stored_as_given_with_their_auto_now_add_stamp() -> None:
    before = timezone.now()
    snapshot = {"m": {"name": "gpt-ü", "temperature": 0.0, "stop": ["\n", "\\", '"'], "nested": {"a": None}}}
    plain, empty = _execution(config_snapshot=snapshot, request_id="req-1"), _execution(config_snapshot={})
    insert_rows(Execution, [plain, empty])

    stored = Execution.objects.get(pk=plain.pk)
    assert stored.config_snapshot == snapshot
    assert stored.request_id == "req-1"
    assert stored.status == Execution.Status.PENDING
    assert before <= stored.created_at <= timezone.now()
    assert stored.created_at == plain.created_at
    assert Execution.objects.get(pk=empty.pk).config_snapshot == {}
    assert not plain._state.adding


def test_a_duplicate_primary_key_fails_the_whole_insert() -> None:
    first = _execution()
    insert_rows(Execution, [first])
    again = _execution()
    again.pk = first.pk
    fresh = _execution()
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(Execution, [fresh, again])
    assert not Execution.objects.filter(pk=fresh.pk).exists()


def test_link_rows_are_inserted_without_instances_and_get_database_ids() -> None:
    execution = _execution()
    insert_rows(Execution, [execution])
    models = LLMModelFactory.create_batch(3)
    insert_values(Link, ("execution_id", "llmmodel_id"), [(execution.pk, model.pk) for model in models])
    assert set(execution.llm_models.values_list("pk", flat=True)) == {model.pk for model in models}
    assert all(link.pk is not None for link in Link.objects.filter(execution=execution))


def test_a_duplicate_link_fails_the_whole_insert() -> None:
    execution = _execution()
    insert_rows(Execution, [execution])
    first, second = LLMModelFactory.create_batch(2)
    insert_values(Link, ("execution_id", "llmmodel_id"), [(execution.pk, first.pk)])
    rows = [(execution.pk, second.pk), (execution.pk, first.pk)]
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_values(Link, ("execution_id", "llmmodel_id"), rows)
    assert list(execution.llm_models.values_list("pk", flat=True)) == [first.pk]


def test_nothing_to_insert_is_no_query(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    with django_assert_num_queries(0):
        insert_rows(Execution, [])
        insert_values(Link, ("execution_id", "llmmodel_id"), [])


def test_an_unknown_column_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(ValueError, match="no column no_such_column"):
        insert_values(Link, ("execution_id", "no_such_column"), [(uuid.uuid4(), 1)])


@pytest.mark.parametrize("count", [3, UPDATE_COPY_THRESHOLD + 7])  # an UPDATE per row; a staged COPY
def test_updated_rows_get_the_named_fields_and_nothing_else(count: int) -> None:
    test_case = TestCaseFactory()
    executions = [_execution(test_case=test_case, request_id=f"req-{i}") for i in range(count)]
    insert_rows(Execution, executions)
    snapshot = {"text": 'quote " and \\ backslash', "none": None}
    for i, execution in enumerate(executions):
        execution.progress = i % 2
        execution.config_snapshot = {"i": i, **snapshot}
        execution.request_id = "changed in memory only"
    update_rows(Execution, executions[1:], ["progress", "config_snapshot"])

    stored = {row.pk: row for row in Execution.objects.filter(test_case=test_case)}
    first = stored[executions[0].pk]
    assert (first.progress, first.config_snapshot) == (0, {})  # not in the update
    for i, execution in enumerate(executions[1:], 1):
        row = stored[execution.pk]
        assert (row.progress, row.config_snapshot) == (i % 2, {"i": i, **snapshot})
        assert row.request_id == f"req-{i}"


def test_updating_no_rows_is_no_query(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    with django_assert_num_queries(0):
        update_rows(Execution, [], ["progress"])


def test_updating_twice_in_one_transaction_works() -> None:
    executions = [_execution() for _ in range(UPDATE_COPY_THRESHOLD)]
    insert_rows(Execution, executions)
    with transaction.atomic():
        for progress in (1, 0):
            for execution in executions:
                execution.progress = progress
            update_rows(Execution, executions, ["progress"])  # the staging table is dropped in between
    assert set(Execution.objects.values_list("progress", flat=True)) == {0}
