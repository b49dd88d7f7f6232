"""The estimate before a run (SPEC §11): tokens from vendors' counters (the fake servers), past answers, judge."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory
from catalog.models import LLMModel, TestCase
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.estimates import (
    JUDGE_VERDICT_TOKENS,
    MAX_ESTIMATE_EVALUATIONS,
    RunEstimate,
    approximate_tokens,
    run_estimate,
)
from evaluations.models import Execution, TestResult
from evaluations.scoring import ScoringTarget
from evaluations.scoring.judge import JUDGE_SYSTEM_PROMPT, build_judge_prompt
from evaluations.tests.conftest import drain_background_work
from evaluations.tests.factories import ExecutionFactory, TestResultFactory
from openbench.tests.api import (
    V1,
    assert_error,
    client_for,
    reset_throttles,  # noqa: F401 - autouse fixture
)
from providers.testing.fake_servers import FakeServer

pytestmark = pytest.mark.django_db

KEY = "sk-test-not-a-real-key-1234567890"
PROMPT = "What is the capital of France? Answer with one word."
SYSTEM = "You are a terse geography expert."


@pytest.fixture
def anthropic_server(settings: Any) -> Iterator[FakeServer]:
    with FakeServer("anthropic") as server:
        settings.ANTHROPIC_API_KEY = KEY
        settings.ANTHROPIC_BASE_URL = server.base_url
        yield server


@pytest.fixture
def google_server(settings: Any) -> Iterator[FakeServer]:
    with FakeServer("google") as server:
        settings.GOOGLE_API_KEY = KEY
        settings.GOOGLE_BASE_URL = server.base_url
        yield server


def _model(name: str, provider: str, *, max_tokens: int = 300, price_in: str = "3", price_out: str = "15") -> LLMModel:
    return LLMModelFactory(
        name=name,
        provider=provider,
        provider_model_id=name,
        config={},
        default_max_tokens=max_tokens,
        input_price_per_million=Decimal(price_in),
        output_price_per_million=Decimal(price_out),
    )


def _count_calls(server: FakeServer) -> int:
    return sum(1 for call in server.received if call.kind == "count_tokens")


def test_anthropic_input_tokens_are_what_the_vendor_counts(anthropic_server: FakeServer) -> None:
    model = _model("claude-test", "anthropic")
    test = TestCaseFactory(prompt=PROMPT, system_prompt=SYSTEM)

    estimate = run_estimate(test_cases=[test], models=[model])

    # The fake server counts the words of the system prompt and the messages.
    assert estimate.input_tokens == len(f"{SYSTEM} {PROMPT}".split()) == 16
    assert _count_calls(anthropic_server) == 1
    assert estimate.evaluations == 1
    assert estimate.output_tokens == 300  # no past answers: the model's max_tokens
    expected = (Decimal(16) * 3 + Decimal(300) * 15) / Decimal(1_000_000)
    assert estimate.cost_usd == expected
    assert estimate.judge_cost_usd == 0
    assert estimate.total_usd == expected


def test_gemini_input_tokens_are_what_the_vendor_counts(google_server: FakeServer) -> None:
    model = _model("gemini-test", "google")
    test = TestCaseFactory(prompt=PROMPT)

    estimate = run_estimate(test_cases=[test], models=[model], repeats=3)

    assert estimate.by_model[0].input_tokens == 3 * len(PROMPT.split())
    assert estimate.evaluations == 3
    assert _count_calls(google_server) == 1


def test_one_count_per_test_and_provider_whatever_the_number_of_models(anthropic_server: FakeServer) -> None:
    models = [_model(f"claude-{n}", "anthropic") for n in range(3)]
    tests = TestCaseFactory.create_batch(2, prompt=PROMPT)

    estimate = run_estimate(test_cases=tests, models=models)

    assert _count_calls(anthropic_server) == 2
    assert estimate.evaluations == 6
    assert [item.input_tokens for item in estimate.by_model] == [2 * len(PROMPT.split())] * 3


def test_a_provider_without_a_counter_is_approximated_at_four_characters_a_token() -> None:
    model = _model("mock-estimate", LLMModel.Provider.MOCK)
    test = TestCaseFactory(prompt=PROMPT, system_prompt=SYSTEM)

    estimate = run_estimate(test_cases=[test], models=[model])

    assert estimate.input_tokens == approximate_tokens(f"{SYSTEM}\n{PROMPT}") == len(f"{SYSTEM}\n{PROMPT}") // 4


@pytest.mark.parametrize(("provider", "model_id"), [("openai", "gpt-4o-mini"), ("openai_compatible", "gpt-4")])
def test_openai_models_are_counted_with_their_public_encoding(provider: str, model_id: str) -> None:
    # tiktoken's counts (o200k_base and cl100k_base agree here): "Hello, world!" is 4 tokens, the system
    # prompt 7; OpenAI's chat framing adds 3 per message and 3 to prime the reply.
    model = _model(model_id, provider)
    test = TestCaseFactory(prompt="Hello, world!", system_prompt="You are a terse geography expert.")

    estimate = run_estimate(test_cases=[test], models=[model])

    assert estimate.input_tokens == 3 + (3 + 7) + (3 + 4) == 20


def test_a_model_whose_encoding_is_unknown_is_approximated() -> None:
    model = _model("meta-llama/Llama-3-8b-chat-hf", "together")
    test = TestCaseFactory(prompt=PROMPT, system_prompt=SYSTEM)

    assert run_estimate(test_cases=[test], models=[model]).input_tokens == approximate_tokens(f"{SYSTEM}\n{PROMPT}")


def test_a_counter_that_fails_falls_back_to_the_approximation(settings: Any) -> None:
    # The server wants another key: its counter answers 401.
    with FakeServer("anthropic", api_key="sk-another-key-entirely-0987654321") as server:
        settings.ANTHROPIC_API_KEY = KEY
        settings.ANTHROPIC_BASE_URL = server.base_url
        model = _model("claude-failing", "anthropic")
        test = TestCaseFactory(prompt=PROMPT)
        estimate = run_estimate(test_cases=[test], models=[model])
    assert estimate.input_tokens == approximate_tokens(f"\n{PROMPT}")


def test_an_unconfigured_provider_is_approximated_without_a_call(settings: Any) -> None:
    settings.ANTHROPIC_API_KEY = ""
    model = _model("claude-unconfigured", "anthropic")
    test = TestCaseFactory(prompt=PROMPT)

    assert run_estimate(test_cases=[test], models=[model]).input_tokens == approximate_tokens(f"\n{PROMPT}")


def test_output_tokens_are_the_mean_of_the_tests_past_answers_for_that_model() -> None:
    model = _model("mock-history", LLMModel.Provider.MOCK, max_tokens=1000)
    other = _model("mock-no-history", LLMModel.Provider.MOCK, max_tokens=1000)
    test = TestCaseFactory(prompt=PROMPT)
    for tokens in (10, 21):
        TestResultFactory(execution=ExecutionFactory(test_case=test), model=model, output_tokens=tokens)
    # Failed answers and answers to other tests do not count.
    TestResultFactory(
        execution=ExecutionFactory(test_case=test), model=model, output_tokens=900, status=TestResult.Status.FAILED
    )
    TestResultFactory(model=model, output_tokens=700)

    estimate = run_estimate(test_cases=[test], models=[model, other], repeats=2)

    by_name = {item.model.name: item for item in estimate.by_model}
    assert by_name["mock-history"].output_tokens == 2 * 16  # mean 15.5, rounded up
    assert by_name["mock-no-history"].output_tokens == 2 * 1000
    assert estimate.output_tokens == 32 + 2000


def test_llm_judge_tests_add_the_judges_cost(settings: Any) -> None:
    judge = _model("judge-model", LLMModel.Provider.MOCK, price_in="10", price_out="30")
    settings.JUDGE_MODEL = judge.name
    model = _model("mock-judged", LLMModel.Provider.MOCK, max_tokens=200, price_in="1", price_out="2")
    test = TestCaseFactory(
        prompt=PROMPT,
        evaluation_type=TestCase.EvaluationType.LLM_JUDGE,
        evaluation_config={"rubric": "One word, the capital city."},
    )
    plain = TestCaseFactory(prompt=PROMPT)

    estimate = run_estimate(test_cases=[test, plain], models=[model])

    target = ScoringTarget.from_snapshot(test.scored_snapshot())
    judge_in = approximate_tokens(JUDGE_SYSTEM_PROMPT + build_judge_prompt(target, "")) + 200
    expected = (Decimal(judge_in) * 10 + Decimal(JUDGE_VERDICT_TOKENS) * 30) / Decimal(1_000_000)
    assert estimate.judge_cost_usd == expected.quantize(Decimal("0.00000001"))
    assert estimate.total_usd == estimate.cost_usd + estimate.judge_cost_usd
    # The judge is not one of the models.
    assert [item.model.name for item in estimate.by_model] == ["mock-judged"]


def test_a_judge_named_per_test_wins_over_the_setting(settings: Any) -> None:
    settings.JUDGE_MODEL = ""
    _model("test-judge", LLMModel.Provider.MOCK, price_in="100", price_out="100")
    model = _model("mock-judged-2", LLMModel.Provider.MOCK)
    judged = TestCaseFactory(
        evaluation_type=TestCase.EvaluationType.LLM_JUDGE, evaluation_config={"judge_model": "test-judge"}
    )
    unjudged = TestCaseFactory(evaluation_type=TestCase.EvaluationType.LLM_JUDGE, evaluation_config={})

    assert run_estimate(test_cases=[judged], models=[model]).judge_cost_usd > 0
    # No judge at all: scoring fails without a call, so judging costs nothing.
    assert run_estimate(test_cases=[unjudged], models=[model]).judge_cost_usd == 0


def test_as_dict_has_the_spec_shape_with_money_as_decimal_strings() -> None:
    model = _model("mock-shape", LLMModel.Provider.MOCK, max_tokens=100)
    test = TestCaseFactory(prompt=PROMPT)

    data = run_estimate(test_cases=[test], models=[model]).as_dict()

    assert set(data) == {
        "evaluations",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "judge_cost_usd",
        "total_usd",
        "by_model",
    }
    assert data["by_model"] == [
        {
            "model": str(model.pk),
            "evaluations": 1,
            "input_tokens": data["input_tokens"],
            "output_tokens": 100,
            "cost_usd": data["cost_usd"],
        }
    ]
    assert isinstance(data["cost_usd"], str)
    assert Decimal(data["cost_usd"]) == Decimal(data["input_tokens"] * 3 + 100 * 15) / Decimal(1_000_000)
    assert data["judge_cost_usd"] == "0.00000000"


def test_an_estimate_is_frozen() -> None:
    estimate = RunEstimate(
        evaluations=0, input_tokens=0, output_tokens=0, cost_usd=Decimal(0), judge_cost_usd=Decimal(0)
    )
    with pytest.raises(AttributeError):
        estimate.evaluations = 1  # type: ignore[misc]


# --- POST /api/v1/executions/estimate --------------------------------------------------------------------

ESTIMATE_URL = f"{V1}/executions/estimate"


def _post(client: APIClient, **payload: object) -> Any:
    return client.post(ESTIMATE_URL, payload, format="json")


def test_the_api_answers_the_estimate_of_every_active_model_by_default(owner: User) -> None:
    active = [_model(f"mock-active-{n}", LLMModel.Provider.MOCK, max_tokens=50) for n in range(2)]
    LLMModelFactory(name="mock-inactive", is_active=False)
    tests = TestCaseFactory.create_batch(3, prompt=PROMPT)

    response = _post(client_for(owner), test_ids=[str(test.pk) for test in tests], repeats=2)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body == run_estimate(test_cases=tests, models=active, repeats=2).as_dict()
    assert body["evaluations"] == 12
    assert sorted(item["model"] for item in body["by_model"]) == sorted(str(model.pk) for model in active)
    assert all(item["evaluations"] == 6 for item in body["by_model"])


def test_the_api_estimates_only_the_models_asked_for(owner: User, anthropic_server: FakeServer) -> None:
    claude = _model("claude-api", "anthropic")
    _model("mock-not-asked", LLMModel.Provider.MOCK)
    test = TestCaseFactory(prompt=PROMPT, system_prompt=SYSTEM)

    response = _post(client_for(owner), test_ids=[str(test.pk)], model_ids=[str(claude.pk)])

    assert response.status_code == 200, response.content
    body = response.json()
    assert [item["model"] for item in body["by_model"]] == [str(claude.pk)]
    assert body["input_tokens"] == len(f"{SYSTEM} {PROMPT}".split())


def test_a_pending_test_is_estimated_on_the_sandbox_models_by_default_as_it_would_run(owner: User) -> None:
    sandbox = _model("mock-sandbox", LLMModel.Provider.MOCK)
    sandbox.sandbox = True
    sandbox.save()
    _model("mock-not-sandbox", LLMModel.Provider.MOCK)
    mine = TestCaseFactory(created_by=owner, status=TestCase.Status.PENDING, is_public=False)
    approved = TestCaseFactory()

    pending_only = _post(client_for(owner), test_ids=[str(mine.pk)])
    with_approved = _post(client_for(owner), test_ids=[str(mine.pk), str(approved.pk)])
    approved_only = _post(client_for(owner), test_ids=[str(approved.pk)])

    assert [item["model"] for item in pending_only.json()["by_model"]] == [str(sandbox.pk)]
    assert [item["model"] for item in with_approved.json()["by_model"]] == [str(sandbox.pk)]
    assert len(approved_only.json()["by_model"]) == 2


def test_a_pending_test_without_sandbox_models_is_a_400_naming_model_ids(owner: User) -> None:
    _model("mock-plain", LLMModel.Provider.MOCK)
    mine = TestCaseFactory(created_by=owner, status=TestCase.Status.PENDING, is_public=False)

    error = assert_error(_post(client_for(owner), test_ids=[str(mine.pk)]), 400, "no_models")

    assert "sandbox" in error["message"]
    assert "model_ids" in error["details"]


def test_another_users_private_test_is_refused_like_an_unknown_one(owner: User, other_user: User) -> None:
    _model("mock-private", LLMModel.Provider.MOCK)
    private = TestCaseFactory(created_by=other_user, status=TestCase.Status.PENDING, is_public=False)
    unknown = uuid.uuid4()

    hidden = assert_error(_post(client_for(owner), test_ids=[str(private.pk)]), 400, "invalid")
    missing = assert_error(_post(client_for(owner), test_ids=[str(unknown)]), 400, "invalid")

    assert hidden["message"] == missing["message"]
    assert hidden["details"] == {"test_ids": [f"No test with id {private.pk} is visible to you."]}
    assert missing["details"] == {"test_ids": [f"No test with id {unknown} is visible to you."]}


def test_unknown_and_inactive_models_are_refused_naming_model_ids(owner: User) -> None:
    inactive = LLMModelFactory(name="mock-off", is_active=False)
    test = TestCaseFactory()
    unknown = uuid.uuid4()

    error = assert_error(
        _post(client_for(owner), test_ids=[str(test.pk)], model_ids=[str(inactive.pk), str(unknown)]), 400, "invalid"
    )

    assert set(error["details"]) == {"model_ids"}
    assert len(error["details"]["model_ids"]) == 2


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"test_ids": []}, "test_ids"),
        ({}, "test_ids"),
        ({"test_ids": ["not-a-uuid"]}, "test_ids"),
        ({"test_ids": "TEST", "model_ids": []}, "model_ids"),
        ({"test_ids": "TEST", "repeats": 0}, "repeats"),
        ({"test_ids": "TEST", "repeats": 21}, "repeats"),
    ],
)
def test_malformed_requests_are_400_naming_the_field(owner: User, payload: dict[str, Any], field: str) -> None:
    _model("mock-malformed", LLMModel.Provider.MOCK)
    test = TestCaseFactory()
    if payload.get("test_ids") == "TEST":
        payload = {**payload, "test_ids": [str(test.pk)]}

    error = assert_error(_post(client_for(owner), **payload), 400, "validation_error")

    assert field in error["details"]


def test_no_active_model_is_a_400_naming_model_ids(owner: User) -> None:
    test = TestCaseFactory()

    error = assert_error(_post(client_for(owner), test_ids=[str(test.pk)]), 400, "no_models")

    assert "model_ids" in error["details"]


def test_more_than_ten_thousand_evaluations_are_refused_before_counting(owner: User) -> None:
    models = [_model(f"mock-many-{n}", LLMModel.Provider.MOCK) for n in range(10)]
    tests = TestCaseFactory.create_batch(51)

    error = assert_error(
        _post(client_for(owner), test_ids=[str(test.pk) for test in tests], repeats=20), 400, "too_many_evaluations"
    )

    assert error["details"] == {"evaluations": 51 * 10 * 20, "max_evaluations": MAX_ESTIMATE_EVALUATIONS}
    # Exactly at the limit is fine.
    ok = _post(client_for(owner), test_ids=[str(test.pk) for test in tests[:50]], repeats=20)
    assert ok.status_code == 200, ok.content
    assert ok.json()["evaluations"] == MAX_ESTIMATE_EVALUATIONS
    assert len(models) == 10


def test_anonymous_callers_get_401(anonymous: APIClient) -> None:
    test = TestCaseFactory()

    assert_error(_post(anonymous, test_ids=[str(test.pk)]), 401)


def test_estimating_runs_nothing(owner: User) -> None:
    _model("mock-nothing", LLMModel.Provider.MOCK)
    test = TestCaseFactory()

    assert _post(client_for(owner), test_ids=[str(test.pk)]).status_code == 200

    assert not Execution.objects.exists()
    assert not TestResult.objects.exists()


def test_a_second_estimate_of_the_same_prompt_calls_no_vendor(anthropic_server: FakeServer) -> None:
    model = _model("claude-cached", "anthropic")
    test = TestCaseFactory(prompt=PROMPT)

    first = run_estimate(test_cases=[test], models=[model])
    second = run_estimate(test_cases=[test], models=[model])

    assert first == second
    assert _count_calls(anthropic_server) == 1


# --- the run form ------------------------------------------------------------------------------------------


def test_the_run_form_shows_the_default_selections_estimate_before_the_button(client: Client, owner: User) -> None:
    models = [_model(f"mock-form-{n}", LLMModel.Provider.MOCK, max_tokens=100) for n in range(2)]
    test = TestCaseFactory(prompt=PROMPT)
    client.force_login(owner)

    html = client.get(reverse("catalog:test-detail", args=[test.pk])).content.decode()

    estimate = run_estimate(test_cases=[test], models=models)
    assert 'id="run-estimate"' in html
    assert html.index('id="run-estimate"') < html.index('id="run-button"')
    assert f"${estimate.total_usd:.5f}" in html
    assert 'data-estimate="evaluations">2<' in html
    assert f'data-url="{ESTIMATE_URL}"' in html
    assert "js/run-estimate" in html


def test_the_run_form_of_a_pending_test_estimates_its_sandbox_models(client: Client, owner: User) -> None:
    sandbox = _model("mock-sandbox-form", LLMModel.Provider.MOCK, max_tokens=100)
    sandbox.sandbox = True
    sandbox.save()
    _model("mock-dear-form", LLMModel.Provider.MOCK, max_tokens=100, price_in="90", price_out="90")
    mine = TestCaseFactory(created_by=owner, status=TestCase.Status.PENDING, is_public=False, prompt=PROMPT)
    client.force_login(owner)

    html = client.get(reverse("catalog:test-detail", args=[mine.pk])).content.decode()

    assert f"${run_estimate(test_cases=[mine], models=[sandbox]).total_usd:.5f}" in html
    assert 'data-estimate="evaluations">1<' in html
    assert "every sandbox model" in html
    # Only the models it may run on are offered.
    assert "Mock Sandbox Form" in html
    assert "Mock Dear Form" not in html


def test_no_estimate_is_computed_for_visitors_who_cannot_run(client: Client, anthropic_server: FakeServer) -> None:
    _model("claude-anon", "anthropic")
    test = TestCaseFactory(prompt=PROMPT)

    html = client.get(reverse("catalog:test-detail", args=[test.pk])).content.decode()

    assert 'id="run-estimate"' not in html
    assert _count_calls(anthropic_server) == 0


# --- run_batch --estimate, and the confirmation above RUN_BATCH_CONFIRM_USD ----------------------------------


class _Terminal(io.StringIO):
    """A stdin that says it is a terminal, with the user's answer typed in."""

    def isatty(self) -> bool:
        return True


def _run_batch(**options: Any) -> str:
    out = io.StringIO()
    call_command("run_batch", stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def test_run_batch_estimate_prints_per_model_and_total_and_runs_nothing(anthropic_server: FakeServer) -> None:
    claude = _model("claude-batch", "anthropic", max_tokens=100)
    mock = _model("mock-batch", LLMModel.Provider.MOCK, max_tokens=100)
    tests = TestCaseFactory.create_batch(2, prompt=PROMPT, category="geo")

    out = _run_batch(category="geo", models=[claude.name, mock.name], estimate=True)

    estimate = run_estimate(test_cases=tests, models=[claude, mock])
    assert "claude-batch" in out and "mock-batch" in out
    assert f"{estimate.total_usd:.6f}" in out
    assert f"{estimate.by_model[0].cost_usd:.6f}" in out
    assert "nothing was started" in out
    assert not Execution.objects.exists()
    assert anthropic_server.generation_requests == []


def test_run_batch_refuses_above_the_threshold_without_a_terminal(settings: Any, monkeypatch: Any) -> None:
    settings.RUN_BATCH_CONFIRM_USD = Decimal("0.0001")
    model = _model("mock-expensive", LLMModel.Provider.MOCK, max_tokens=1000)
    TestCaseFactory(category="geo")
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # piped input is not a confirmation

    with pytest.raises(CommandError, match="no terminal to confirm on") as refused:
        _run_batch(category="geo", models=[model.name])

    assert refused.value.returncode == 1
    assert not Execution.objects.exists()


def test_run_batch_asks_above_the_threshold_and_a_no_starts_nothing(settings: Any, monkeypatch: Any) -> None:
    settings.RUN_BATCH_CONFIRM_USD = Decimal("0.0001")
    model = _model("mock-asked", LLMModel.Provider.MOCK, max_tokens=1000)
    TestCaseFactory(category="geo")
    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    out = io.StringIO()

    with pytest.raises(CommandError, match="Not confirmed"):
        call_command("run_batch", category="geo", models=[model.name], stdout=out)

    assert "Proceed? [y/N]" in out.getvalue()
    assert not Execution.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("clean_queue")
def test_run_batch_starts_after_a_yes(settings: Any, monkeypatch: Any) -> None:
    settings.RUN_BATCH_CONFIRM_USD = Decimal("0.0001")
    model = _model("mock-yes", LLMModel.Provider.MOCK, max_tokens=1000)
    model.config = {"accuracy": 1.0, "latency_ms": 0}
    model.save()
    TestCaseFactory(category="geo")
    monkeypatch.setattr("sys.stdin", _Terminal("y\n"))

    out = _run_batch(category="geo", models=[model.name])
    drain_background_work()

    assert "Proceed? [y/N]" in out
    assert Execution.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("clean_queue")
def test_run_batch_yes_starts_above_the_threshold_without_asking(settings: Any, monkeypatch: Any) -> None:
    settings.RUN_BATCH_CONFIRM_USD = Decimal("0")
    model = _model("mock-scripted", LLMModel.Provider.MOCK, max_tokens=1000)
    model.config = {"accuracy": 1.0, "latency_ms": 0}
    model.save()
    TestCaseFactory(category="geo")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))

    out = _run_batch(category="geo", models=[model.name], yes=True)
    drain_background_work()

    assert "Proceed?" not in out
    assert Execution.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("clean_queue")
def test_run_batch_below_the_threshold_says_the_estimate_and_starts(settings: Any, monkeypatch: Any) -> None:
    settings.RUN_BATCH_CONFIRM_USD = Decimal("100")
    model = _model("mock-cheap", LLMModel.Provider.MOCK, max_tokens=10)
    model.config = {"accuracy": 1.0, "latency_ms": 0}
    model.save()
    TestCaseFactory(category="geo")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))

    out = _run_batch(category="geo", models=[model.name])
    drain_background_work()

    assert "Estimated cost: $" in out
    assert "Proceed?" not in out
    assert Execution.objects.count() == 1


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_ticking_models_updates_the_estimate_in_the_browser(live_server: Any, page: Any) -> None:
    user = UserFactory(email="estimator@example.com")
    cheap = _model("mock-cheap-browser", LLMModel.Provider.MOCK, max_tokens=100, price_in="1", price_out="1")
    dear = _model("mock-dear-browser", LLMModel.Provider.MOCK, max_tokens=100, price_in="50", price_out="50")
    test = TestCaseFactory(title="Estimate me", prompt=PROMPT)
    both = run_estimate(test_cases=[test], models=[cheap, dear])
    only_cheap = run_estimate(test_cases=[test], models=[cheap])
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text) if "Refused" in message.text else None)
    answers: list[int] = []
    page.on("response", lambda response: answers.append(response.status) if ESTIMATE_URL in response.url else None)

    page.goto(f"{live_server.url}/login/?next=/tests/{test.pk}/")
    page.fill("#id_username", user.email)
    page.fill("#id_password", PASSWORD)
    page.locator("main").get_by_role("button", name="Log in").click()
    total = page.locator('#run-estimate [data-estimate="total_usd"]')
    expect(total).to_have_text(f"${both.total_usd:.5f}")

    page.get_by_label(cheap.display_name).check()

    expect(total).to_have_text(f"${only_cheap.total_usd:.5f}")
    expect(page.locator('#run-estimate [data-estimate="scope"]')).to_have_text("1 ticked model")
    expect(page.locator('#run-estimate [data-estimate="evaluations"]')).to_have_text("1")
    assert refused == []  # the script is allowed by the CSP
    assert answers == [200]
    assert not Execution.objects.exists()


def test_repeats_below_one_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="repeats"):
        run_estimate(test_cases=[TestCaseFactory()], models=[_model("mock-repeats", LLMModel.Provider.MOCK)], repeats=0)
