"""/api/v1/tests: visibility by role, filters, create/update/archive, revisions, results."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import UserFactory
from catalog.models import TestCase
from catalog.services import test_case_create
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.tests.factories import ExecutionFactory, TestResultFactory
from openbench.tests.api import (
    RESULT_FIELDS,
    TEST_CASE_FIELDS,
    V1,
    assert_error,
    client_for,
    ids,
    reset_throttles,  # noqa: F401 - autouse fixture
)

pytestmark = pytest.mark.django_db


def new_test_payload(**overrides: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "title": "Capital of Italy",
        "description": "Geography basics.",
        "category": "geography",
        "tags": ["capitals", "Europe"],
        "difficulty": "easy",
        "prompt": "What is the capital of Italy? One word.",
        "expected_output": "Rome",
        "evaluation_type": "exact_match",
        "evaluation_config": {"case_sensitive": False},
        "timeout_seconds": 30,
    }
    payload.update(overrides)
    return payload


@pytest.fixture
def catalog(owner: User, other_user: User) -> dict[str, TestCase]:
    """One test of every visibility: public, the owner's pending and private ones, someone else's."""
    return {
        "public": TestCaseFactory(created_by=other_user, title="Public approved"),
        "owner_pending": TestCaseFactory(created_by=owner, status=TestCase.Status.PENDING, title="Owner pending"),
        "owner_private": TestCaseFactory(created_by=owner, is_public=False, title="Owner private"),
        "other_pending": TestCaseFactory(created_by=other_user, status=TestCase.Status.PENDING, title="Other pending"),
        "other_private": TestCaseFactory(created_by=other_user, is_public=False, title="Other private"),
        "other_rejected": TestCaseFactory(created_by=other_user, status=TestCase.Status.REJECTED),
        "archived": TestCaseFactory(created_by=owner, status=TestCase.Status.ARCHIVED, title="Archived"),
    }


def names(catalog: dict[str, TestCase], *keys: str) -> set[str]:
    return {str(catalog[key].id) for key in keys}


# --- list and visibility -------------------------------------------------------------------------------


def test_anonymous_callers_see_only_approved_public_tests(anonymous: APIClient, catalog: dict[str, TestCase]) -> None:
    response = anonymous.get(f"{V1}/tests")
    assert response.status_code == 200
    assert ids(response) == names(catalog, "public")
    assert response.json()["count"] == 1


def test_a_user_sees_public_tests_and_their_own(owner: User, catalog: dict[str, TestCase]) -> None:
    response = client_for(owner).get(f"{V1}/tests")
    assert ids(response) == names(catalog, "public", "owner_pending", "owner_private")
    assert response.json()["count"] == 3


@pytest.mark.parametrize("persona", ["moderator", "admin_user"])
def test_moderators_see_every_live_test(request: pytest.FixtureRequest, persona: str, catalog: dict) -> None:
    response = client_for(request.getfixturevalue(persona)).get(f"{V1}/tests")
    assert ids(response) == names(catalog, *(key for key in catalog if key != "archived"))


def test_archived_tests_are_listed_only_when_asked_for(owner: User, catalog: dict[str, TestCase]) -> None:
    response = client_for(owner).get(f"{V1}/tests", {"status": "archived"})
    assert ids(response) == names(catalog, "archived")


def test_a_status_filter_cannot_reveal_other_peoples_tests(owner: User, catalog: dict[str, TestCase]) -> None:
    assert ids(client_for(owner).get(f"{V1}/tests", {"status": "pending"})) == names(catalog, "owner_pending")
    assert ids(client_for(owner).get(f"{V1}/tests", {"status": "rejected"})) == set()


def test_list_rows_have_the_test_fields(anonymous: APIClient, catalog: dict[str, TestCase]) -> None:
    row = anonymous.get(f"{V1}/tests").json()["results"][0]
    assert set(row) == TEST_CASE_FIELDS


def test_filters_narrow_the_list(anonymous: APIClient, owner: User) -> None:
    math = test_case_create(
        author=owner, title="Sum", category="math", prompt="1+1?", expected_output="2",
        evaluation_type="exact_match", difficulty="hard", tags=["arithmetic"],
    )  # fmt: skip
    TestCase.objects.filter(pk=math.pk).update(status=TestCase.Status.APPROVED)
    geo = TestCaseFactory(category="geography", difficulty="easy", title="Rivers of Europe")
    assert ids(anonymous.get(f"{V1}/tests", {"category": "math"})) == {str(math.pk)}
    assert ids(anonymous.get(f"{V1}/tests", {"difficulty": "easy"})) == {str(geo.pk)}
    assert ids(anonymous.get(f"{V1}/tests", {"tag": "arithmetic"})) == {str(math.pk)}
    assert ids(anonymous.get(f"{V1}/tests", {"search": "rivers"})) == {str(geo.pk)}
    assert ids(anonymous.get(f"{V1}/tests", {"created_by": str(owner.pk)})) == {str(math.pk)}
    assert ids(anonymous.get(f"{V1}/tests", {"status": "approved"})) == {str(math.pk), str(geo.pk)}


def test_ordering_and_pagination(anonymous: APIClient) -> None:
    now = timezone.now()
    made = []
    for n in range(3):
        test_case = TestCaseFactory(title=f"T{n}")
        TestCase.objects.filter(pk=test_case.pk).update(created_at=now - timedelta(minutes=n))
        made.append(str(test_case.pk))
    newest_first = [row["id"] for row in anonymous.get(f"{V1}/tests").json()["results"]]
    assert newest_first == made
    by_title = [row["title"] for row in anonymous.get(f"{V1}/tests", {"ordering": "-title"}).json()["results"]]
    assert by_title == ["T2", "T1", "T0"]
    page = anonymous.get(f"{V1}/tests", {"page_size": 2, "page": 2}).json()
    assert page["count"] == 3
    assert [row["id"] for row in page["results"]] == made[2:]
    assert page["previous"] is not None
    assert page["next"] is None


def test_page_size_is_capped_at_100(anonymous: APIClient) -> None:
    TestCaseFactory.create_batch(101, created_by=UserFactory())
    assert len(anonymous.get(f"{V1}/tests", {"page_size": 500}).json()["results"]) == 100


@pytest.mark.parametrize(
    "params",
    [{"difficulty": "impossible"}, {"status": "nope"}, {"created_by": "not-a-uuid"}],
)
def test_bad_filter_values_are_400(anonymous: APIClient, params: dict[str, str]) -> None:
    error = assert_error(anonymous.get(f"{V1}/tests", params), 400, "validation_error")
    assert set(params) <= set(error["details"])


def test_a_null_character_in_a_search_is_400_on_postgresql_too(anonymous: APIClient) -> None:
    error = assert_error(anonymous.get(f"{V1}/tests", {"search": "\x00"}), 400, "validation_error")
    assert error["details"] == {"search": ["Null characters are not allowed."]}


def test_a_page_past_the_end_is_404(anonymous: APIClient) -> None:
    assert_error(anonymous.get(f"{V1}/tests", {"page": 99}), 404)


def test_list_query_count_does_not_grow_with_rows(anonymous: APIClient, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    for n in range(10):
        test_case = TestCaseFactory(title=f"Q{n}")
        test_case.tags.set([])
    with django_assert_num_queries(3):  # count, page, tags
        assert anonymous.get(f"{V1}/tests").json()["count"] == 10


# --- detail -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "visible"),
    [
        (None, {"public"}),
        ("owner", {"public", "owner_pending", "owner_private", "archived"}),
        ("other_user", {"public", "other_pending", "other_private", "other_rejected"}),
        ("moderator", "all"),
        ("admin_user", "all"),
    ],
)
def test_detail_is_404_for_tests_the_caller_may_not_see(
    request: pytest.FixtureRequest, catalog: dict[str, TestCase], persona: str | None, visible: object
) -> None:
    client = client_for(request.getfixturevalue(persona) if persona else None)
    for key, test_case in catalog.items():
        response = client.get(f"{V1}/tests/{test_case.pk}")
        if visible == "all" or key in visible:  # type: ignore[operator]
            assert response.status_code == 200, key
            assert response.json()["id"] == str(test_case.pk)
        else:
            assert_error(response, 404, "not_found")


def test_an_unknown_or_malformed_id_is_404(anonymous: APIClient) -> None:
    assert_error(anonymous.get(f"{V1}/tests/00000000-0000-0000-0000-000000000000"), 404)
    assert_error(anonymous.get(f"{V1}/tests/not-a-uuid"), 404)


# --- create -----------------------------------------------------------------------------------------------


def test_a_user_creates_a_pending_test(owner: User) -> None:
    response = client_for(owner).post(f"{V1}/tests", new_test_payload(), format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == TEST_CASE_FIELDS
    assert body["status"] == "pending"
    assert body["revision"] == 1
    assert body["created_by"] == str(owner.pk)
    assert sorted(body["tags"]) == ["capitals", "europe"]
    assert body["expected_output"] == "Rome"
    test_case = TestCase.objects.get(pk=body["id"])
    assert test_case.revisions.count() == 1


def test_create_ignores_status_and_ownership_fields(owner: User, other_user: User) -> None:
    payload = new_test_payload(status="approved", revision=7, created_by=str(other_user.pk))
    body = client_for(owner).post(f"{V1}/tests", payload, format="json").json()
    assert body["status"] == "pending"
    assert body["revision"] == 1
    assert body["created_by"] == str(owner.pk)


def test_create_accepts_any_json_expected_output_and_a_schema(owner: User) -> None:
    payload = new_test_payload(
        evaluation_type="structured_match",
        expected_output={"city": "Rome", "population": [2.8, "million"]},
        output_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        evaluation_config={"float_tolerance": 0.1},
    )
    response = client_for(owner).post(f"{V1}/tests", payload, format="json")
    assert response.status_code == 201
    assert response.json()["expected_output"] == {"city": "Rome", "population": [2.8, "million"]}
    stored = TestCase.objects.get(pk=response.json()["id"])
    assert stored.expected_output == {"city": "Rome", "population": [2.8, "million"]}
    assert stored.output_schema == payload["output_schema"]
    assert stored.evaluation_config == {"float_tolerance": 0.1}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"title": ""}, "title"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"timeout_seconds": 301}, "timeout_seconds"),
        ({"difficulty": "extreme"}, "difficulty"),
        ({"evaluation_type": "vibes"}, "evaluation_type"),
        ({"output_schema": {"type": "no-such-type"}}, "output_schema"),
        ({"evaluation_config": {"unknown_option": True}}, "evaluation_config"),
        ({"evaluation_config": "not an object"}, "evaluation_config"),
        ({"expected_output": None}, "expected_output"),
        ({"evaluation_type": "custom", "evaluation_config": {"scorer": "no-such-scorer"}}, "evaluation_config"),
        ({"category": "Not a slug!"}, "category"),
        ({"tags": "not-a-list"}, "tags"),
        ({"tags": ["!!!"]}, "tags"),
        ({"expected_output": {"answer\u0000": "Rome"}}, "expected_output"),
        ({"evaluation_config": {"case_sensitive": False, "note": "\u0000"}}, "evaluation_config"),
        ({"title": "nul\u0000"}, "title"),
    ],
)
def test_create_reports_bad_input_on_the_field(owner: User, overrides: dict[str, object], field: str) -> None:
    payload = new_test_payload(**overrides)
    error = assert_error(client_for(owner).post(f"{V1}/tests", payload, format="json"), 400)
    assert field in error["details"], error
    assert not TestCase.objects.exists()


def test_anonymous_callers_cannot_create_tests(anonymous: APIClient) -> None:
    assert_error(anonymous.post(f"{V1}/tests", new_test_payload(), format="json"), 401, "not_authenticated")


def test_a_non_json_body_is_400(owner: User) -> None:
    response = client_for(owner).post(f"{V1}/tests", data="{not json", content_type="application/json")
    assert_error(response, 400, "parse_error")


# --- update, revisions, archive --------------------------------------------------------------------------


def test_the_owner_edits_metadata_without_a_new_revision(owner: User) -> None:
    test_case = TestCaseFactory(created_by=owner)
    response = client_for(owner).patch(f"{V1}/tests/{test_case.pk}", {"title": "Better title"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["title"] == "Better title"
    assert body["status"] == "approved"
    assert body["revision"] == 1
    test_case.refresh_from_db()
    assert (test_case.title, test_case.status, test_case.revision) == ("Better title", "approved", 1)


def test_editing_the_prompt_of_an_approved_test_makes_a_pending_revision(owner: User) -> None:
    test_case = TestCaseFactory(created_by=owner)
    response = client_for(owner).patch(f"{V1}/tests/{test_case.pk}", {"prompt": "Capital of Spain?"}, format="json")
    body = response.json()
    assert body["status"] == "pending"
    assert body["revision"] == 2
    assert body["approved_at"] is None
    # No longer approved, so no longer public.
    assert_error(APIClient().get(f"{V1}/tests/{test_case.pk}"), 404)


def test_put_replaces_the_editable_fields(owner: User) -> None:
    test_case = TestCaseFactory(created_by=owner, status=TestCase.Status.PENDING)
    payload = new_test_payload(title="Replaced", tags=["one"])
    response = client_for(owner).put(f"{V1}/tests/{test_case.pk}", payload, format="json")
    assert response.status_code == 200
    assert response.json()["title"] == "Replaced"
    assert response.json()["tags"] == ["one"]
    test_case.refresh_from_db()
    assert test_case.title == "Replaced"
    assert list(test_case.tags.values_list("name", flat=True)) == ["one"]


def test_put_needs_every_required_field(owner: User) -> None:
    test_case = TestCaseFactory(created_by=owner)
    error = assert_error(client_for(owner).put(f"{V1}/tests/{test_case.pk}", {"title": "x"}, format="json"), 400)
    assert "prompt" in error["details"]


def test_an_invalid_edit_changes_nothing(owner: User) -> None:
    test_case = TestCaseFactory(created_by=owner)
    response = client_for(owner).patch(f"{V1}/tests/{test_case.pk}", {"timeout_seconds": 999}, format="json")
    assert_error(response, 400)
    test_case.refresh_from_db()
    assert test_case.timeout_seconds == 60


@pytest.mark.parametrize("persona", ["moderator", "admin_user"])
def test_moderators_may_edit_and_archive_anyones_test(
    request: pytest.FixtureRequest, persona: str, other_user: User
) -> None:
    client = client_for(request.getfixturevalue(persona))
    test_case = TestCaseFactory(created_by=other_user, status=TestCase.Status.PENDING, is_public=False)
    response = client.patch(f"{V1}/tests/{test_case.pk}", {"title": "Fixed typo"}, format="json")
    assert response.status_code == 200
    assert response.json()["title"] == "Fixed typo"
    assert TestCase.objects.get(pk=test_case.pk).title == "Fixed typo"
    assert client.delete(f"{V1}/tests/{test_case.pk}").status_code == 204
    test_case.refresh_from_db()
    assert test_case.status == TestCase.Status.ARCHIVED


def test_another_user_gets_403_on_a_public_test_and_404_on_a_private_one(owner: User, other_user: User) -> None:
    public = TestCaseFactory(created_by=other_user)
    private = TestCaseFactory(created_by=other_user, is_public=False)
    client = client_for(owner)
    assert_error(client.patch(f"{V1}/tests/{public.pk}", {"title": "Mine now"}, format="json"), 403)
    assert_error(client.delete(f"{V1}/tests/{public.pk}"), 403)
    assert_error(client.patch(f"{V1}/tests/{private.pk}", {"title": "Mine now"}, format="json"), 404)
    assert_error(client.delete(f"{V1}/tests/{private.pk}"), 404)
    public.refresh_from_db()
    assert public.title != "Mine now"
    assert public.status == TestCase.Status.APPROVED


def test_anonymous_callers_cannot_edit_or_delete(anonymous: APIClient) -> None:
    test_case = TestCaseFactory()
    assert_error(anonymous.patch(f"{V1}/tests/{test_case.pk}", {"title": "x"}, format="json"), 401)
    assert_error(anonymous.delete(f"{V1}/tests/{test_case.pk}"), 401)


def test_delete_archives_and_keeps_results(owner: User) -> None:
    test_case = TestCaseFactory(created_by=owner)
    result = TestResultFactory(execution=ExecutionFactory(test_case=test_case))
    client = client_for(owner)
    assert client.delete(f"{V1}/tests/{test_case.pk}").status_code == 204
    test_case.refresh_from_db()
    assert test_case.status == TestCase.Status.ARCHIVED
    assert str(test_case.pk) not in ids(client.get(f"{V1}/tests"))
    assert client.get(f"{V1}/tests/{test_case.pk}").json()["status"] == "archived"
    assert result.__class__.objects.filter(pk=result.pk).exists()


def test_an_archived_test_cannot_be_edited(owner: User) -> None:
    test_case = TestCaseFactory(created_by=owner, status=TestCase.Status.ARCHIVED)
    assert_error(client_for(owner).patch(f"{V1}/tests/{test_case.pk}", {"title": "x"}, format="json"), 409, "archived")


# --- results -----------------------------------------------------------------------------------------


def test_results_of_a_public_test_are_public_and_latest_first(anonymous: APIClient, other_user: User) -> None:
    test_case = TestCaseFactory(created_by=other_user)
    execution = ExecutionFactory(test_case=test_case, created_by=other_user)
    older = TestResultFactory(execution=execution, executed_at=timezone.now() - timedelta(hours=1))
    newer = TestResultFactory(execution=execution)
    response = anonymous.get(f"{V1}/tests/{test_case.pk}/results")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [row["id"] for row in rows] == [str(newer.pk), str(older.pk)]
    assert list(rows[0]) == RESULT_FIELDS


def test_results_of_a_private_test_are_404_for_others(owner: User, other_user: User) -> None:
    test_case = TestCaseFactory(created_by=owner, is_public=False)
    TestResultFactory(execution=ExecutionFactory(test_case=test_case))
    assert_error(client_for(other_user).get(f"{V1}/tests/{test_case.pk}/results"), 404)
    assert_error(APIClient().get(f"{V1}/tests/{test_case.pk}/results"), 404)
    assert client_for(owner).get(f"{V1}/tests/{test_case.pk}/results").json()["count"] == 1


def test_results_filter_by_model(anonymous: APIClient) -> None:
    test_case = TestCaseFactory()
    model_a, model_b = LLMModelFactory(), LLMModelFactory()
    execution = ExecutionFactory(test_case=test_case)
    TestResultFactory(execution=execution, model=model_a)
    TestResultFactory(execution=execution, model=model_b)
    response = anonymous.get(f"{V1}/tests/{test_case.pk}/results", {"model": str(model_a.pk)})
    assert [row["model"] for row in response.json()["results"]] == [str(model_a.pk)]


def test_results_list_query_count_is_fixed(anonymous: APIClient, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    test_case = TestCaseFactory()
    for _ in range(6):
        TestResultFactory(execution=ExecutionFactory(test_case=test_case))
    with django_assert_num_queries(3):  # the test, count, page
        assert anonymous.get(f"{V1}/tests/{test_case.pk}/results").json()["count"] == 6
