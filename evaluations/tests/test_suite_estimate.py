"""The estimate of a suite's run before it starts (SPEC §11 and §12): POST /executions/estimate with `suite_id`
instead of `test_ids`, and the suite page's run form that shows it (static/js/run-estimate.js)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from playwright.sync_api import expect

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory
from catalog.models import LLMModel, Suite, TestCase
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.estimates import MAX_ESTIMATE_EVALUATIONS, run_estimate
from evaluations.models import Execution
from openbench.api.throttles import EstimateThrottle
from openbench.tests.api import (
    V1,
    assert_error,
    client_for,
    reset_throttles,  # noqa: F401 - autouse fixture
)

pytestmark = pytest.mark.django_db

ESTIMATE_URL = f"{V1}/executions/estimate"


def _model(name: str, *, price: str = "3") -> LLMModel:
    return LLMModelFactory(
        name=name,
        display_name=name,
        provider=LLMModel.Provider.MOCK,
        provider_model_id=name,
        config={},
        default_max_tokens=100,
        input_price_per_million=Decimal(price),
        output_price_per_million=Decimal(price),
    )


def _post(user: User, **payload: Any) -> Any:
    return client_for(user).post(ESTIMATE_URL, payload, format="json")


def _suite(name: str = "geography", **fields: Any) -> Suite:
    tests = fields.pop("tests", [])
    suite = Suite.objects.create(name=name, **fields)
    suite.tests.set(tests)
    return suite


def test_a_suites_estimate_is_the_estimate_of_the_tests_its_run_would_start(owner: User, other_user: User) -> None:
    models = [_model("mock-a"), _model("mock-b", price="7")]
    named = TestCaseFactory(title="named")
    in_category = TestCaseFactory.create_batch(2, category="geo")
    TestCaseFactory(category="geo", status=TestCase.Status.PENDING)  # a suite runs approved tests only
    TestCaseFactory(category="geo", is_public=False, created_by=other_user)  # hidden from the caller
    suite = _suite(tests=[named], category="geo")

    response = _post(owner, suite_id=str(suite.pk), repeats=2)

    assert response.status_code == 200, response.content
    assert response.json() == run_estimate(test_cases=[named, *in_category], models=models, repeats=2).as_dict()
    assert response.json()["evaluations"] == 3 * 2 * 2
    assert not Execution.objects.exists()


def test_a_suites_estimate_takes_the_models_asked_for(owner: User) -> None:
    cheap, _dear = _model("mock-cheap", price="1"), _model("mock-dear", price="50")
    test = TestCaseFactory()
    suite = _suite(tests=[test])

    response = _post(owner, suite_id=str(suite.pk), model_ids=[str(cheap.pk)])

    assert response.status_code == 200, response.content
    assert response.json() == run_estimate(test_cases=[test], models=[cheap]).as_dict()


@pytest.mark.parametrize("payload", [{}, {"test_ids": ["TESTS"], "suite_id": "SUITE"}])
def test_either_test_ids_or_suite_id_else_a_400_naming_both(owner: User, payload: dict[str, Any]) -> None:
    _model("mock-only")
    test = TestCaseFactory()
    suite = _suite(tests=[test])
    filled = {name: ([str(test.pk)] if value == ["TESTS"] else str(suite.pk)) for name, value in payload.items()}

    error = assert_error(_post(owner, **filled), 400)

    assert set(error["details"]) == {"test_ids", "suite_id"}


@pytest.mark.parametrize("suite_id", ["not-a-uuid", 12])
def test_a_malformed_suite_id_is_a_400_naming_it(owner: User, suite_id: Any) -> None:
    error = assert_error(_post(owner, suite_id=suite_id), 400)

    assert "suite_id" in error["details"]


def test_an_unknown_suite_is_a_400_naming_suite_id(owner: User) -> None:
    _model("mock-only")
    missing = uuid.uuid4()

    error = assert_error(_post(owner, suite_id=str(missing)), 400)

    assert error["details"] == {"suite_id": [f"No suite with id {missing}."]}


def test_a_suite_with_nothing_the_caller_may_run_is_a_400_empty_suite(owner: User, other_user: User) -> None:
    _model("mock-only")
    hidden = TestCaseFactory(is_public=False, created_by=other_user)
    with_hidden, empty = _suite(tests=[hidden]), _suite(name="empty")

    error = assert_error(_post(owner, suite_id=str(with_hidden.pk)), 400, "empty_suite")

    assert error["details"] == {"suite_id": ["The suite resolves to no approved test."]}
    # The same answer as for a suite with no test at all: nothing about the test the caller may not see.
    assert assert_error(_post(owner, suite_id=str(empty.pk)), 400, "empty_suite")["message"] == error["message"]


def test_a_suite_past_what_one_estimate_covers_is_refused(owner: User) -> None:
    models = [_model(f"mock-many-{n}") for n in range(10)]
    suite = _suite(category="big")
    TestCaseFactory.create_batch(51, category="big")

    error = assert_error(_post(owner, suite_id=str(suite.pk), repeats=20), 400, "too_many_evaluations")

    assert error["details"] == {"evaluations": 51 * 10 * 20, "max_evaluations": MAX_ESTIMATE_EVALUATIONS}
    assert len(models) == 10


def test_a_suite_past_the_limit_is_refused_before_its_tests_are_read(
    owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    _model("mock-only")
    suite = _suite(category="huge")
    TestCaseFactory.create_batch(4, category="huge")
    monkeypatch.setattr("evaluations.estimate_requests.MAX_ESTIMATE_EVALUATIONS", 3)

    with CaptureQueriesContext(connection) as queries:
        error = assert_error(_post(owner, suite_id=str(suite.pk)), 400, "too_many_evaluations")

    assert error["details"] == {"evaluations": 4, "max_evaluations": 3}
    # Counted, never read: no query fetched a test's prompt (a category suite may select many thousands).
    assert not [query["sql"] for query in queries.captured_queries if '"test_cases"."prompt"' in query["sql"]]


def test_estimates_have_their_own_throttle(owner: User, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EstimateThrottle, "THROTTLE_RATES", {"estimate": "2/min"})
    _model("mock-only")
    suite = _suite(tests=[TestCaseFactory()])

    for _ in range(2):
        assert _post(owner, suite_id=str(suite.pk)).status_code == 200

    assert_error(_post(owner, suite_id=str(suite.pk)), 429)
    assert_error(_post(owner, test_ids=[str(suite.tests.get().pk)]), 429)  # one budget for both forms


def test_anonymous_callers_get_401_for_a_suite_too() -> None:
    suite = _suite(tests=[TestCaseFactory()])

    assert_error(client_for(None).post(ESTIMATE_URL, {"suite_id": str(suite.pk)}, format="json"), 401)


def _open_suite_page(page: Any, live_server: Any, user: User, suite: Suite) -> None:
    page.goto(f"{live_server.url}/login/?next=/suites/{suite.pk}/")
    page.fill("#id_username", user.email)
    page.fill("#id_password", PASSWORD)
    page.locator("main").get_by_role("button", name="Log in").click()


# -- the suite page --------------------------------------------------------------------------------------------
def test_the_suite_run_form_has_the_estimate_box_before_the_button(client: Client, owner: User) -> None:
    suite = _suite(tests=[TestCaseFactory()])
    client.force_login(owner)

    html = client.get(reverse("monitoring:suite-detail", args=[suite.pk])).content.decode()

    assert 'id="run-estimate"' in html
    assert f'data-suite="{suite.pk}"' in html
    assert html.index('id="run-estimate"') < html.index('id="run-button"')
    assert "js/run-estimate" in html


def test_visitors_get_no_estimate_box(client: Client) -> None:
    suite = _suite(tests=[TestCaseFactory()])

    html = client.get(reverse("monitoring:suite-detail", args=[suite.pk])).content.decode()

    assert 'id="run-estimate"' not in html
    assert "js/run-estimate" not in html


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_suite_page_shows_the_estimate_and_follows_the_ticked_models(live_server: Any, page: Any) -> None:
    user = UserFactory(email="suite-estimator@example.com")
    cheap, dear = _model("mock-cheap-suite", price="1"), _model("mock-dear-suite", price="50")
    tests = TestCaseFactory.create_batch(3, category="capitals")
    suite = _suite(name="capitals", category="capitals")
    both = run_estimate(test_cases=tests, models=[cheap, dear])
    only_cheap = run_estimate(test_cases=tests, models=[cheap], repeats=2)
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text) if "Refused" in message.text else None)
    answers: list[int] = []
    page.on("response", lambda response: answers.append(response.status) if ESTIMATE_URL in response.url else None)

    _open_suite_page(page, live_server, user, suite)
    box = page.locator("#run-estimate")
    expect(box.locator('[data-estimate="total_usd"]')).to_have_text(f"${both.total_usd:.5f}")
    expect(box.locator('[data-estimate="evaluations"]')).to_have_text("6")

    page.get_by_label(cheap.display_name).check()
    page.fill("#id_repeats", "2")
    page.locator("#id_repeats").dispatch_event("change")

    expect(box.locator('[data-estimate="total_usd"]')).to_have_text(f"${only_cheap.total_usd:.5f}")
    expect(box.locator('[data-estimate="scope"]')).to_have_text("1 ticked model, 2 samples each")
    expect(box.locator('[data-estimate="evaluations"]')).to_have_text("6")
    assert refused == []  # the script is allowed by the CSP
    assert set(answers) == {200}
    assert not Execution.objects.exists()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_suite_too_big_to_estimate_says_why_in_the_browser(live_server: Any, page: Any) -> None:
    user = UserFactory(email="suite-too-big@example.com")
    for n in range(20):
        _model(f"mock-big-suite-{n:02}")
    suite = _suite(name="big", category="big")
    TestCaseFactory.create_batch(26, category="big")

    _open_suite_page(page, live_server, user, suite)
    box = page.locator("#run-estimate")
    expect(box.locator('[data-estimate="evaluations"]')).to_have_text("520")
    page.fill("#id_repeats", "20")
    page.locator("#id_repeats").dispatch_event("change")

    # 26 tests x 20 models x 20 samples: the API's refusal, in its words, and no number left standing.
    expect(box.locator('[data-estimate="refusal"]')).to_have_text(
        "An estimate covers at most 10,000 evaluations; this one has 10,400."
    )
    expect(box.locator('[data-estimate="total_usd"]')).to_have_text("—")
    expect(box.locator('[data-estimate="evaluations"]')).to_have_text("—")

    page.fill("#id_repeats", "25")  # out of range: said at once, and the API's older refusal goes
    page.locator("#id_repeats").dispatch_event("change")
    expect(box.locator('[data-estimate="scope"]')).to_have_text("1 to 20 samples per model")
    expect(box.locator('[data-estimate="refusal"]')).to_have_text("")
    expect(box).not_to_have_class("muted")

    page.fill("#id_repeats", "1")
    page.locator("#id_repeats").dispatch_event("change")
    expect(box.locator('[data-estimate="evaluations"]')).to_have_text("520")
    expect(box.locator('[data-estimate="refusal"]')).to_have_text("")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_ticking_several_models_at_once_asks_for_one_estimate(live_server: Any, page: Any) -> None:
    user = UserFactory(email="suite-ticker@example.com")
    models = [_model(f"mock-tick-{n}") for n in range(4)]
    tests = TestCaseFactory.create_batch(2, category="ticks")
    suite = _suite(name="ticks", category="ticks")
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.method) if ESTIMATE_URL in request.url else None)

    _open_suite_page(page, live_server, user, suite)
    box = page.locator("#run-estimate")
    expect(box.locator('[data-estimate="evaluations"]')).to_have_text("8")
    # Three ticks in a row, as fast as a person clicking through a list (one script: no delay between them).
    page.evaluate(
        """ids => ids.forEach(id => {
            const box = document.querySelector(`input[name="models"][value="${id}"]`);
            box.checked = true;
            box.dispatchEvent(new Event("change", {bubbles: true}));
        })""",
        [str(model.pk) for model in models[:3]],
    )

    expect(box.locator('[data-estimate="scope"]')).to_have_text("3 ticked models")
    expect(box.locator('[data-estimate="total_usd"]')).to_have_text(
        f"${run_estimate(test_cases=tests, models=models[:3]).total_usd:.5f}"
    )
    assert asked == ["POST", "POST"]  # the page's own, then one for the three ticks
