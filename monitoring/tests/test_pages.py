"""Pages of SPEC §12: suites for everyone, schedules and alerts for moderators, drift on the model page."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.tests.factories import UserFactory
from catalog.models import Suite
from catalog.suites import suite_create
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from monitoring.models import Schedule, SuiteRun
from monitoring.tests.factories import score_drift_alert, suite_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def drift(owner):
    public, private = (
        TestCaseFactory(title="Public question"),
        TestCaseFactory(title="Private question", is_public=False, created_by=owner),
    )
    suite = suite_of([public, private], name="nightly")
    schedule = Schedule.objects.create(suite=suite, cron="0 3 * * *")
    model = LLMModelFactory(display_name="Drifty")
    run = SuiteRun.objects.create(suite=suite, suite_version=1, schedule=schedule, test_ids=[str(public.pk)])
    alert = score_drift_alert(model=model, run=run)
    return suite, model, alert


def test_anyone_sees_a_suite_with_the_tests_they_may_see_and_its_runs(client, drift, owner):
    suite, _, _ = drift
    assert "nightly" in client.get("/suites/").content.decode()

    page = client.get(f"/suites/{suite.pk}/").content.decode()
    assert "Public question" in page and "Private question" not in page
    assert "suite-runs" in page
    client.force_login(owner)
    assert "Private question" in client.get(f"/suites/{suite.pk}/").content.decode()


def test_moderators_see_and_acknowledge_alerts_and_users_may_not(client, drift, moderator, owner):
    _, _, alert = drift
    client.force_login(owner)
    assert client.get("/monitoring/alerts/").status_code == 403
    assert client.get("/monitoring/schedules/").status_code == 403
    assert client.post(f"/monitoring/alerts/{alert.pk}/acknowledge/").status_code == 403

    client.force_login(moderator)
    page = client.get("/monitoring/alerts/").content.decode()
    assert "Drifty" in page and "p = 0.00049" in page and "Acknowledge" in page
    assert "0 3 * * *" in client.get("/monitoring/schedules/").content.decode()
    response = client.post(f"/monitoring/alerts/{alert.pk}/acknowledge/", {"next": "/monitoring/alerts/"})
    assert response.status_code == 302 and response["Location"] == "/monitoring/alerts/"
    alert.refresh_from_db()
    assert alert.acknowledged_at is not None and alert.acknowledged_by == moderator
    assert client.get("/monitoring/alerts/?acknowledged=maybe").status_code == 400


def test_an_acknowledge_redirect_never_leaves_the_site(client, drift, moderator):
    _, _, alert = drift
    client.force_login(moderator)
    response = client.post(f"/monitoring/alerts/{alert.pk}/acknowledge/", {"next": "//evil.example/"})
    assert response["Location"] == "/monitoring/alerts/"


def test_the_model_page_shows_moderators_its_drift_and_the_unacknowledged_badge(client, drift, moderator, owner):
    _, model, _ = drift
    client.force_login(moderator)
    page = client.get(f"/models/{model.pk}/").content.decode()
    assert 'id="drift"' in page and "1 unacknowledged" in page
    client.force_login(owner)
    assert 'id="drift"' not in client.get(f"/models/{model.pk}/").content.decode()


@pytest.fixture
def staff(admin_user):
    admin_user.is_staff = True
    admin_user.is_superuser = True
    admin_user.save()
    return admin_user


def test_the_admin_creates_a_schedule_through_the_service_and_refuses_a_bad_cron(client, staff, drift):
    suite, model, _ = drift
    client.force_login(staff)
    data = {
        "suite": str(suite.pk),
        "llm_models": [str(model.pk)],
        "cron": "*/10 * * * *",
        "repeats": 2,
        "is_active": "on",
    }

    assert client.post("/admin/monitoring/schedule/add/", {**data, "cron": "nope"}).status_code == 200
    assert client.post("/admin/monitoring/schedule/add/", data).status_code == 302
    schedule = Schedule.objects.get(cron="*/10 * * * *")
    assert schedule.next_run_at is not None and schedule.created_by == staff
    assert list(schedule.llm_models.all()) == [model]


def test_the_admin_lists_runs_and_acknowledges_alerts(client, staff, drift):
    _, _, alert = drift
    client.force_login(staff)
    assert client.get("/admin/monitoring/suiterun/").status_code == 200
    assert client.get("/admin/monitoring/alert/").status_code == 200
    response = client.post("/admin/monitoring/alert/", {"action": "acknowledge", "_selected_action": [str(alert.pk)]})
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_by == staff


def test_the_suite_page_reads_its_runs_starters_in_the_same_query_however_many_runs(client, drift, moderator):
    suite, _, _ = drift
    client.force_login(moderator)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(f"/suites/{suite.pk}/").status_code == 200
        return len(captured)

    SuiteRun.objects.create(suite=suite, suite_version=1, started_by=UserFactory(display_name="Starter 0"))
    one = queries()
    for i in range(1, 4):
        SuiteRun.objects.create(suite=suite, suite_version=1, started_by=UserFactory(display_name=f"Starter {i}"))
    assert queries() == one
    assert "Starter 3" in client.get(f"/suites/{suite.pk}/").content.decode()


def test_the_suite_page_counts_every_test_beyond_those_it_lists(client, drift, owner, monkeypatch):
    monkeypatch.setattr("monitoring.views.SUITE_TESTS_SHOWN", 1)
    suite, _, _ = drift
    client.force_login(owner)
    page = client.get(f"/suites/{suite.pk}/").content.decode()
    assert "Tests it runs now (2)" in page and "The first 1 of 2." in page
    assert "Public question" in page and "Private question" not in page


def test_a_persons_suite_runs_show_only_to_them_and_moderators(client, drift, owner, other_user, moderator):
    suite, _, _ = drift
    SuiteRun.objects.create(suite=suite, suite_version=1, repeats=7, started_by=UserFactory(display_name="Runner"))
    SuiteRun.objects.create(suite=suite, suite_version=1, repeats=9, started_by=owner)

    def runs_seen() -> tuple[bool, bool, bool]:
        page = client.get(f"/suites/{suite.pk}/").content.decode()
        table = page[page.index('id="suite-runs"') :]
        return "0 3 * * *" in table, ">7<" in table and "Runner" in table, ">9<" in table

    assert runs_seen() == (True, False, False)  # anonymous: the schedule's run only
    client.force_login(owner)
    assert runs_seen() == (True, False, True)
    client.force_login(other_user)
    assert runs_seen() == (True, False, False)
    client.force_login(moderator)
    assert runs_seen() == (True, True, True)


# --- new, edit, delete and run from the pages ------------------------------------------------------------


def _suite_post(**fields: str) -> dict[str, str]:
    return {"name": "Arithmetic", "description": "", "category": "", "tags": "", "test_ids": "", **fields}


def test_only_moderators_may_create_edit_or_delete_suites(client, moderator, owner):
    suite = suite_of([TestCaseFactory()], name="kept")
    pages = ["/suites/new/", f"/suites/{suite.pk}/edit/"]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.post(f"/suites/{suite.pk}/delete/").status_code == 302

    client.force_login(owner)
    for path in pages:
        assert client.get(path).status_code == 403
        assert client.post(path, _suite_post(name="Sneaky")).status_code == 403
    assert client.post(f"/suites/{suite.pk}/delete/").status_code == 403
    assert client.get(f"/suites/{suite.pk}/delete/").status_code == 405
    assert "New suite" not in client.get("/suites/").content.decode()
    detail = client.get(f"/suites/{suite.pk}/").content.decode()
    assert "/edit/" not in detail and "/delete/" not in detail
    assert list(Suite.objects.values_list("name", "version")) == [("kept", 1)]

    client.force_login(moderator)
    assert "New suite" in client.get("/suites/").content.decode()
    detail = client.get(f"/suites/{suite.pk}/").content.decode()
    assert f"/suites/{suite.pk}/edit/" in detail and f"/suites/{suite.pk}/delete/" in detail
    assert 'data-confirm="Delete this suite?' in detail
    assert client.get("/suites/new/").status_code == 200


def test_the_empty_suite_list_points_moderators_to_the_new_suite_page(client, moderator, owner):
    client.force_login(owner)
    assert "Moderators create them here" in client.get("/suites/").content.decode()
    client.force_login(moderator)
    assert 'href="/suites/new/">Create the first one' in client.get("/suites/").content.decode()


def test_a_moderator_creates_a_suite_from_ids_and_pasted_test_addresses(client, moderator, owner):
    first, second = TestCaseFactory(), TestCaseFactory(is_public=False, created_by=owner)
    client.force_login(moderator)
    typed = f"{first.pk},\n  http://testserver/tests/{second.pk}/#run\n{first.pk}\n"
    data = _suite_post(description="Sums", category="math", tags="Arithmetic, units", test_ids=typed)
    response = client.post("/suites/new/", data, follow=True)

    suite = Suite.objects.get(name="Arithmetic")
    assert response.redirect_chain == [(f"/suites/{suite.pk}/", 302)]
    assert "Created suite “Arithmetic” (version 1)." in response.content.decode()
    assert (suite.version, suite.description, suite.category, suite.created_by) == (1, "Sums", "math", moderator)
    assert set(suite.tests.all()) == {first, second}
    assert sorted(suite.tags.values_list("name", flat=True)) == ["arithmetic", "units"]


def test_an_edit_of_what_a_suite_selects_makes_a_new_version_and_of_its_text_does_not(client, moderator):
    first, second = TestCaseFactory(), TestCaseFactory()
    suite = suite_of([first], name="nightly")
    suite.description = "old"
    suite.save()
    client.force_login(moderator)
    form = client.get(f"/suites/{suite.pk}/edit/").content.decode()
    assert 'value="nightly"' in form and str(first.pk) in form and "makes version 2" in form

    response = client.post(
        f"/suites/{suite.pk}/edit/", _suite_post(name="nightly", description="new", test_ids=str(first.pk)), follow=True
    )
    suite.refresh_from_db()
    assert (suite.version, suite.description) == (1, "new")
    assert "Saved." in response.content.decode()

    both = f"{first.pk}\n{second.pk}"
    response = client.post(
        f"/suites/{suite.pk}/edit/", _suite_post(name="nightly", test_ids=both, tags="hard"), follow=True
    )
    suite.refresh_from_db()
    assert suite.version == 2 and set(suite.tests.all()) == {first, second}
    page = response.content.decode()
    assert "Saved as version 2" in page and 'id="suite-version">version 2<' in page


@pytest.mark.parametrize(
    ("fields", "field", "error"),
    [
        ({"name": ""}, "name", "This field is required."),
        ({"name": "taken"}, "name", "Suite with this Name already exists."),
        ({"category": "Not a slug!"}, "category", "Enter a valid “slug”"),
        (
            {"test_ids": "00000000-0000-0000-0000-000000000001"},
            "test_ids",
            "Unknown test 00000000-0000-0000-0000-000000000001.",
        ),
        (
            {"test_ids": "/suites/00000000-0000-0000-0000-000000000001/"},
            "test_ids",
            "Not a test id or a test page address",
        ),
        ({"test_ids": "12345"}, "test_ids", "Not a test id or a test page address: 12345"),
        # urlsplit refuses an unclosed IPv6 host with ValueError: a 400 as well, not a 500.
        ({"test_ids": "http://[oops/tests/1/"}, "test_ids", "Not a test id or a test page address: http://[oops"),
        ({"tags": ", ".join(f"tag{i}" for i in range(21))}, "tags", "At most 20 tags (got 21)."),
        ({"tags": "x" * 51}, "tags", "A tag has at most 50 characters"),
        ({"tags": "!!!"}, "tags", "Invalid tag &#x27;!!!&#x27;."),
        ({"description": "d" * 5001}, "description", "at most 5000 characters"),
    ],
)
def test_bad_suite_input_is_a_400_with_the_error_in_place_and_what_was_typed_kept(
    client, moderator, fields, field, error
):
    suite_of([], name="taken")
    client.force_login(moderator)
    data = _suite_post(**{"description": "typed text", "category": "typed-category", **fields})
    response = client.post("/suites/new/", data)

    assert response.status_code == 400
    page = response.content.decode()
    block = page[page.index(f'id="field-{field}"') :]
    assert error in block[: block.index("</div>")]
    assert f'value="{data["category"]}"' in page and f">\n{data['description']}</textarea>" in page
    assert list(Suite.objects.values_list("name", flat=True)) == ["taken"]


def test_more_tests_than_the_apis_limit_are_refused(client, moderator, monkeypatch):
    monkeypatch.setattr("monitoring.forms.SUITE_MAX_TEST_IDS", 1)
    client.force_login(moderator)
    typed = f"{TestCaseFactory().pk}\n{TestCaseFactory().pk}"
    response = client.post("/suites/new/", _suite_post(test_ids=typed))
    assert response.status_code == 400 and "At most 1 tests (got 2)." in response.content.decode()
    assert not Suite.objects.exists()


def test_a_refused_edit_keeps_what_was_typed_and_changes_nothing(client, moderator):
    suite_of([], name="taken")
    suite = suite_of([TestCaseFactory()], name="mine")
    client.force_login(moderator)
    response = client.post(
        f"/suites/{suite.pk}/edit/", _suite_post(name="taken", description="typed", category="new-cat")
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert "Suite with this Name already exists." in page and "new-cat" in page and "Edit “mine”" in page
    suite.refresh_from_db()
    assert (suite.name, suite.category, suite.version, suite.tests.count()) == ("mine", "", 1, 1)


def test_suite_forms_are_csrf_protected_like_every_page(moderator, drift):
    suite, _, _ = drift
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(moderator)
    for path in ["/suites/new/", f"/suites/{suite.pk}/edit/", f"/suites/{suite.pk}/"]:
        assert "csrfmiddlewaretoken" in csrf_client.get(path).content.decode()
    for path in [
        "/suites/new/",
        f"/suites/{suite.pk}/edit/",
        f"/suites/{suite.pk}/delete/",
        f"/suites/{suite.pk}/run/",
    ]:
        assert csrf_client.post(path, _suite_post(name="forged")).status_code == 403
    assert (
        Suite.objects.filter(pk=suite.pk, name="nightly").exists() and not Suite.objects.filter(name="forged").exists()
    )


def test_a_moderator_deletes_an_unused_suite_and_is_told_why_a_used_one_stays(client, moderator, drift):
    used, _, _ = drift
    unused = suite_of([], name="spare")
    client.force_login(moderator)
    response = client.post(f"/suites/{unused.pk}/delete/", follow=True)
    assert response.redirect_chain == [("/suites/", 302)]
    assert "Deleted suite “spare”." in response.content.decode()
    assert not Suite.objects.filter(pk=unused.pk).exists()

    response = client.post(f"/suites/{used.pk}/delete/", follow=True)
    assert response.redirect_chain == [(f"/suites/{used.pk}/", 302)]
    assert "This suite has schedules or runs; delete those first." in response.content.decode()
    assert Suite.objects.filter(pk=used.pk).exists()


@pytest.fixture
def runnable():
    suite = suite_of([TestCaseFactory(), TestCaseFactory()], name="runnable")
    return suite, LLMModelFactory(display_name="Runner model", config={"accuracy": 1.0, "latency_ms": 0})


def test_a_signed_in_user_runs_a_suite_from_its_page(client, owner, runnable):
    suite, model = runnable
    assert "Log in</a> to run this suite" in client.get(f"/suites/{suite.pk}/").content.decode()
    response = client.post(f"/suites/{suite.pk}/run/", {"models": [str(model.pk)]})
    assert response.status_code == 302 and response["Location"].startswith("/login/")

    client.force_login(owner)
    page = client.get(f"/suites/{suite.pk}/").content.decode()
    assert "Run this suite" in page and "Runner model" in page
    response = client.post(f"/suites/{suite.pk}/run/", {"models": [str(model.pk)], "repeats": "2"}, follow=True)
    assert response.redirect_chain == [(f"/suites/{suite.pk}/", 302)]
    assert "Started a run of 2 tests at version 1." in response.content.decode()
    run = SuiteRun.objects.get()
    assert (run.started_by, run.repeats, run.model_ids, run.executions.count()) == (owner, 2, [str(model.pk)], 2)


def test_a_suite_run_refused_is_a_message_on_the_page_and_starts_nothing(client, owner, runnable, monkeypatch):
    from openbench.api.throttles import RunThrottle

    suite, model = runnable
    client.force_login(owner)

    def refusal(data: dict, target=suite) -> str:
        response = client.post(f"/suites/{target.pk}/run/", data, follow=True)
        assert response.redirect_chain == [(f"/suites/{target.pk}/", 302)]
        return response.content.decode()

    assert "Samples per model: Ensure this value is less than or equal to" in refusal({"repeats": "1000"})
    assert "Select a valid choice" in refusal({"models": ["00000000-0000-0000-0000-000000000001"]})
    assert "This suite has no approved tests to run." in refusal({}, target=suite_of([], name="empty"))

    owner.daily_budget_usd = Decimal("0")
    owner.save(update_fields=["daily_budget_usd"])
    assert "budget" in refusal({"models": [str(model.pk)]}).lower()

    owner.daily_budget_usd = None
    owner.save(update_fields=["daily_budget_usd"])
    model.is_active = False
    model.save(update_fields=["is_active"])
    assert "There are no active models to run the test against." in refusal({})

    monkeypatch.setattr(RunThrottle, "THROTTLE_RATES", {"run": "1/min"})
    refusal({})  # the first attempt spends the minute's budget
    assert "You have started many runs recently." in refusal({})
    assert not SuiteRun.objects.exists()


def test_a_suite_whose_creator_left_can_still_be_edited(client, moderator):
    creator = UserFactory()
    suite = suite_create(created_by=creator, name="orphan")
    creator.delete()  # created_by is SET_NULL
    client.force_login(moderator)
    response = client.post(f"/suites/{suite.pk}/edit/", _suite_post(name="orphan", description="still mine"))
    assert response.status_code == 302
    suite.refresh_from_db()
    assert (suite.created_by, suite.description) == (None, "still mine")
