"""Constraints and model-level validation of the catalog."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from catalog.models import LLMModel, TestCase
from catalog.tests.factories import LLMModelFactory, TestCaseFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("timeout_seconds", 0),
        ("timeout_seconds", 301),
        ("status", "published"),
        ("difficulty", "brutal"),
        ("evaluation_type", "vibes"),
        ("revision", 0),
    ],
)
def test_the_database_refuses_out_of_range_test_fields(column: str, value: Any) -> None:
    test_case = TestCaseFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        TestCase.objects.filter(pk=test_case.pk).update(**{column: value})


@pytest.mark.parametrize(("column", "value"), [("default_temperature", 3.0), ("input_price_per_million", -1)])
def test_the_database_refuses_invalid_model_fields(column: str, value: Any) -> None:
    model = LLMModelFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        LLMModel.objects.filter(pk=model.pk).update(**{column: value})


def _clean_errors(**fields: Any) -> dict[str, list[str]]:
    test_case = TestCaseFactory.build(created_by=None, **fields)
    with pytest.raises(ValidationError) as excinfo:
        test_case.full_clean(exclude=["created_by"])
    return excinfo.value.message_dict


def test_a_timeout_outside_1_to_300_seconds_is_a_field_error() -> None:
    assert "timeout_seconds" in _clean_errors(timeout_seconds=301)
    assert "timeout_seconds" in _clean_errors(timeout_seconds=0)


def test_an_invalid_json_schema_is_refused_with_the_reason() -> None:
    errors = _clean_errors(output_schema={"type": "not-a-type"})
    assert "Not a valid JSON Schema" in errors["output_schema"][0]


def test_a_schema_that_is_not_an_object_is_refused() -> None:
    assert "output_schema" in _clean_errors(output_schema=[1, 2])


@pytest.mark.parametrize(
    ("evaluation_type", "config", "fragment"),
    [
        ("exact_match", {"case_sensitive": "yes"}, "is not of type 'boolean'"),
        ("exact_match", {"fuzzy": True}, "'fuzzy' was unexpected"),
        ("structured_match", {"pass_threshold": 1.5}, "greater than the maximum"),
        ("structured_match", {"float_tolerance": -1}, "less than the minimum"),
        ("llm_judge", {"judge_model": ""}, "should be non-empty"),
        ("custom", {}, "'scorer' is a required property"),
        ("custom", {"scorer": "telepathy"}, "Unknown scorer 'telepathy'"),
        ("custom", {"scorer": "regex"}, "'pattern' is a required property"),
        ("custom", {"scorer": "regex", "pattern": "(unclosed"}, "is not a 'regex'"),
        ("custom", {"scorer": "numeric", "abs_tolerance": "tiny"}, "is not of type 'number'"),
    ],
)
def test_an_evaluation_config_that_does_not_fit_its_type_is_refused(
    evaluation_type: str, config: dict[str, Any], fragment: str
) -> None:
    errors = _clean_errors(evaluation_type=evaluation_type, evaluation_config=config)
    assert any(fragment in message for message in errors["evaluation_config"]), errors


def test_a_config_that_is_not_an_object_is_refused() -> None:
    assert "evaluation_config" in _clean_errors(evaluation_config=["case_sensitive"])


def test_structured_match_needs_an_expected_output() -> None:
    assert "expected_output" in _clean_errors(evaluation_type="structured_match", expected_output=None)


def test_a_valid_test_passes_validation() -> None:
    test_case = TestCaseFactory.build(
        created_by=None,
        evaluation_type="structured_match",
        expected_output={"a": 1},
        output_schema={"type": "object", "properties": {"a": {"type": "integer"}}},
        evaluation_config={"ignore_extra_fields": True, "pass_threshold": 0.9},
    )
    test_case.full_clean(exclude=["created_by"])


def test_visibility_shows_anonymous_users_only_approved_public_tests(
    owner: Any, other_user: Any, moderator: Any
) -> None:
    public = TestCaseFactory(created_by=owner)
    private = TestCaseFactory(created_by=owner, is_public=False)
    pending = TestCaseFactory(created_by=owner, status=TestCase.Status.PENDING)

    from django.contrib.auth.models import AnonymousUser

    assert set(TestCase.objects.visible_to(AnonymousUser())) == {public}
    assert set(TestCase.objects.visible_to(other_user)) == {public}
    assert set(TestCase.objects.visible_to(owner)) == {public, private, pending}
    assert set(TestCase.objects.visible_to(moderator)) == {public, private, pending}


def test_every_catalog_factory_builds_a_valid_row() -> None:
    from catalog.tests.factories import ModerationEventFactory, TagFactory, TestCaseRevisionFactory

    revision = TestCaseRevisionFactory()
    assert revision.test_case.revisions.count() == 1
    assert ModerationEventFactory().actor.is_moderator
    assert TagFactory().name.startswith("tag-")
    with pytest.raises(IntegrityError), transaction.atomic():
        TestCaseRevisionFactory(test_case=revision.test_case, revision=revision.revision)


def test_a_provider_without_a_registered_adapter_is_refused() -> None:
    model = LLMModelFactory.build(provider="skynet")
    with pytest.raises(ValidationError) as excinfo:
        model.full_clean()
    assert "provider" in excinfo.value.message_dict


def test_a_provider_added_by_its_registry_line_alone_is_accepted_and_configured_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from providers.registry import PROVIDER_CLASSES, provider_for_model

    monkeypatch.setitem(PROVIDER_CLASSES, "acme", ("providers.mock.MockProvider", "ACME_API_KEY", "ACME_BASE_URL"))
    monkeypatch.setenv("ACME_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("ACME_API_KEY", "acme-test-key")
    model = LLMModelFactory.build(provider="acme", config={})
    model.full_clean()
    assert ("acme", "Acme") in LLMModel._meta.get_field("provider").choices
    adapter = provider_for_model(model)
    assert (adapter.base_url, adapter.api_key) == ("http://127.0.0.1:9/v1", "acme-test-key")
