"""Suites (SPEC §12): what a suite resolves to, its versions, and who may read or write it."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from catalog.models import Suite, TestCase
from catalog.suites import suite_create, suite_delete, suite_resolve_tests, suite_update
from catalog.tests.factories import TagFactory, TestCaseFactory
from openbench.exceptions import ApplicationError

pytestmark = pytest.mark.django_db


def test_it_resolves_explicit_tests_and_the_category_and_tags_filter(moderator, owner):
    explicit = TestCaseFactory(category="maths")
    tagged = TestCaseFactory(category="geography")
    tagged.tags.set([TagFactory(name="capitals"), TagFactory(name="europe")])
    half_tagged = TestCaseFactory(category="geography")
    half_tagged.tags.set([TagFactory(name="capitals")])
    TestCaseFactory(category="history")
    suite = suite_create(
        created_by=moderator, name="core", test_ids=[explicit.pk], category="geography", tags=["capitals", "europe"]
    )

    assert suite_resolve_tests(suite=suite) == [explicit, tagged]


def test_it_leaves_out_tests_that_are_not_approved_and_tests_the_reader_may_not_see(moderator, owner, other_user):
    public = TestCaseFactory(category="geography")
    private = TestCaseFactory(category="geography", is_public=False, created_by=owner)
    TestCaseFactory(category="geography", status=TestCase.Status.PENDING)
    TestCaseFactory(category="geography", status=TestCase.Status.ARCHIVED)
    suite = suite_create(created_by=moderator, name="geo", category="geography")

    assert suite_resolve_tests(suite=suite) == [public, private]
    assert suite_resolve_tests(suite=suite, user=other_user) == [public]
    assert suite_resolve_tests(suite=suite, user=owner) == [public, private]


def test_a_suite_without_tests_or_filter_resolves_to_nothing(moderator):
    TestCaseFactory()
    suite = suite_create(created_by=moderator, name="empty")

    assert suite_resolve_tests(suite=suite) == []


def test_changing_what_it_selects_bumps_the_version_and_a_rename_does_not(moderator):
    first, second = TestCaseFactory(), TestCaseFactory()
    suite = suite_create(created_by=moderator, name="v", test_ids=[first.pk])

    suite = suite_update(suite=suite, editor=moderator, name="renamed", description="same tests")
    assert suite.version == 1
    suite = suite_update(suite=suite, editor=moderator, test_ids=[first.pk, second.pk])
    assert suite.version == 2
    suite = suite_update(suite=suite, editor=moderator, tags=["new-tag"])
    assert suite.version == 3
    suite = suite_update(suite=suite, editor=moderator, category="maths")
    assert suite.version == 4
    suite = suite_update(suite=suite, editor=moderator, test_ids=[second.pk, first.pk], category="maths")
    assert suite.version == 4


def test_unknown_test_ids_are_refused_naming_the_field(moderator):
    with pytest.raises(ApplicationError) as refused:
        suite_create(created_by=moderator, name="bad", test_ids=["00000000-0000-0000-0000-000000000001"])
    assert "test_ids" in refused.value.details
    assert not Suite.objects.exists()


def test_a_name_taken_between_the_check_and_the_insert_is_the_same_400_not_a_500(moderator, client_for, monkeypatch):
    # Two moderators creating "nightly" at once both pass full_clean's unique check; the constraint then decides.
    suite_create(created_by=moderator, name="nightly")
    other = suite_create(created_by=moderator, name="weekly")
    monkeypatch.setattr(Suite, "validate_unique", lambda self, exclude=None: None)
    with pytest.raises(ValidationError) as raised:
        suite_create(created_by=moderator, name="nightly")
    assert raised.value.message_dict == {"name": ["Suite with this Name already exists."]}
    response = client_for(moderator).patch(f"/api/v1/suites/{other.pk}", {"name": "nightly"}, format="json")
    assert response.status_code == 400 and "name" in response.json()["error"]["details"]
    assert Suite.objects.get(pk=other.pk).name == "weekly"


def test_deleting_a_suite_removes_it(moderator):
    suite = suite_create(created_by=moderator, name="gone")
    suite_delete(suite=suite)
    assert not Suite.objects.exists()


def test_the_admin_bumps_the_version_when_the_tests_change(client, admin_user):
    from catalog.suites import suite_create as create

    admin_user.is_staff = True
    admin_user.is_superuser = True
    admin_user.save()
    first, second = TestCaseFactory(), TestCaseFactory()
    suite = create(created_by=admin_user, name="admin-edit", test_ids=[first.pk])
    client.force_login(admin_user)

    response = client.post(
        f"/admin/catalog/suite/{suite.pk}/change/",
        {"name": "admin-edit", "description": "", "category": "", "tests": f"{first.pk},{second.pk}", "tags": []},
    )

    assert response.status_code == 302
    suite.refresh_from_db()
    assert suite.version == 2
    assert set(suite.tests.all()) == {first, second}


SUITES = "/api/v1/suites"


def test_moderators_create_and_edit_suites_through_the_api(client_for, moderator):
    first, second = TestCaseFactory(), TestCaseFactory()
    api = client_for(moderator)

    created = api.post(SUITES, {"name": "core", "test_ids": [str(first.pk)], "tags": ["Capitals"]}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["version"] == 1
    assert body["test_ids"] == [str(first.pk)]
    assert body["tags"] == ["capitals"]

    edited = api.patch(f"{SUITES}/{body['id']}", {"test_ids": [str(first.pk), str(second.pk)]}, format="json")
    assert edited.status_code == 200
    assert edited.json()["version"] == 2
    assert sorted(edited.json()["test_ids"]) == sorted([str(first.pk), str(second.pk)])

    assert api.delete(f"{SUITES}/{body['id']}").status_code == 204


def test_anyone_reads_a_suite_but_only_the_explicit_tests_they_may_see(client_for, moderator, owner, anonymous):
    public = TestCaseFactory()
    private = TestCaseFactory(is_public=False, created_by=owner)
    suite = suite_create(created_by=moderator, name="mixed", test_ids=[public.pk, private.pk])

    read = anonymous.get(f"{SUITES}/{suite.pk}")
    assert read.status_code == 200
    assert read.json()["test_ids"] == [str(public.pk)]
    assert len(client_for(owner).get(SUITES).json()["results"][0]["test_ids"]) == 2


@pytest.mark.parametrize("who", ["anonymous", "owner"])
def test_users_may_not_write_suites(client_for, moderator, owner, who):
    suite = suite_create(created_by=moderator, name="locked")
    api = client_for(owner if who == "owner" else None)
    expected = 403 if who == "owner" else 401

    assert api.post(SUITES, {"name": "mine"}, format="json").status_code == expected
    assert api.patch(f"{SUITES}/{suite.pk}", {"name": "x"}, format="json").status_code == expected
    assert api.delete(f"{SUITES}/{suite.pk}").status_code == expected
    assert Suite.objects.get().name == "locked"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "taken"}, "name"),
        ({"name": "x", "test_ids": ["not-a-uuid"]}, "test_ids"),
        ({"name": "x", "test_ids": ["00000000-0000-0000-0000-000000000001"]}, "test_ids"),
        ({"name": "x", "category": "not a slug"}, "category"),
        ({"name": "x", "tags": ["!!!"]}, "tags"),
        ({"name": "x", "tags": "capitals"}, "tags"),
    ],
)
def test_bad_suite_input_is_a_400_naming_the_field(client_for, moderator, payload, field):
    suite_create(created_by=moderator, name="taken")
    response = client_for(moderator).post(SUITES, payload, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["details"]


def test_a_moderator_may_name_a_private_test_in_a_suite(client_for, moderator, owner):
    private = TestCaseFactory(is_public=False, created_by=owner)
    response = client_for(moderator).post(SUITES, {"name": "p", "test_ids": [str(private.pk)]}, format="json")
    assert response.status_code == 201  # moderators see every test
