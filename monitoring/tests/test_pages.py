"""Pages of SPEC §12: suites for everyone, schedules and alerts for moderators, drift on the model page."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.tests.factories import UserFactory
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
