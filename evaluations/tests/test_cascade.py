"""Cascade scoring (SPEC §13): a normalised exact or contains match decides an llm_judge test without the
judge; the judge is asked only otherwise; the saving shows on the execution."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import TestResult
from evaluations.runner.run import run_executions
from evaluations.scoring.base import ScoringTarget
from evaluations.scoring.cascade import cascade_decision, contains_phrase
from evaluations.services import execution_start
from openbench.tests.api import V1, assert_error
from providers.testing.fake_servers import FakeServer

VERDICT = {"score": 0.2, "pass": False, "reasoning": "Not the reference."}


def target(expected: object, **config: object) -> ScoringTarget:
    return ScoringTarget(
        prompt="Capital of France?", expected_output=expected, evaluation_type="llm_judge", evaluation_config=config
    )


@pytest.mark.parametrize(
    ("answer", "expected", "decided_by"),
    [
        ("Paris", "Paris", "exact"),
        ("  PARIS \n", "paris", "exact"),
        ("The capital is Paris.", "Paris", "contains"),
        ("It is  Saint\tPetersburg, I think", "saint petersburg", "contains"),
        # NFC: "é" typed as e + combining accent is the precomposed "é".
        ("Cafe\u0301 is the word", "Café", "contains"),
        ('```json\n{"city": "Paris"}\n```', {"city": "paris"}, "exact"),
        ("42", 42, "exact"),
    ],
)
def test_a_normalised_match_decides_correct_and_says_which(answer: str, expected: object, decided_by: str) -> None:
    outcome = cascade_decision(answer, target(expected, cascade=True))
    assert outcome is not None
    assert (outcome.score, outcome.is_correct) == (1.0, True)
    assert outcome.details["decided_by"] == decided_by


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Lyon", "Paris"),
        ("14", "4"),  # a digit glued to the expected "4" is another number
        ("The category is wrong", "cat"),
        ("Parisian", "Paris"),
        ("anything at all", "   "),  # nothing to match: the judge decides
        ('{"city": "Lyon"}', {"city": "Paris"}),
        ("The answer is 42.", {"n": 42}),
    ],
)
def test_anything_else_is_left_to_the_judge(answer: str, expected: object) -> None:
    assert cascade_decision(answer, target(expected, cascade=True)) is None


def test_contains_phrase_needs_open_edges_only_where_the_phrase_has_a_letter_or_digit() -> None:
    assert contains_phrase("costs $4.", "$4")
    assert contains_phrase("x=(a+b)y", "(a+b)")
    assert not contains_phrase("x14", "4")
    assert contains_phrase("4 and 14", "4")
    assert contains_phrase("14, then 4", "4")  # a later occurrence with open edges counts
    assert not contains_phrase("anything", "")


# --- the engine against fake OpenAI-compatible servers: count the judge's requests --------------------------


def _answers(model: str, prompt: str) -> str:
    return {"m-exact": "paris", "m-contains": "I am sure it is Paris.", "m-wrong": "Lyon, surely"}[model]


@pytest.fixture
def servers(settings):
    settings.EVAL_CACHE = False
    with (
        FakeServer("openai", answer_fn=_answers) as answers,
        FakeServer("openai", default_answer=json.dumps(VERDICT)) as judge,
    ):
        yield answers, judge


def _run(owner, answers, judge, *, cascade: bool):
    models = [
        LLMModelFactory(
            name=name, provider="openai_compatible", provider_model_id=name, config={"base_url": answers.base_url}
        )
        for name in ("m-exact", "m-contains", "m-wrong")
    ]
    judge_model = LLMModelFactory(
        name="judge-model", provider="openai_compatible", config={"base_url": judge.base_url}, is_active=False
    )
    config = {"judge_model": "judge-model", **({"cascade": True} if cascade else {})}
    test_case = TestCaseFactory(evaluation_type="llm_judge", expected_output="Paris", evaluation_config=config)
    execution = execution_start(test_case=test_case, models=models, started_by=owner)
    run_executions([execution.pk])
    results = {r.model.name: r for r in TestResult.objects.filter(execution=execution).select_related("model")}
    return execution, results, judge_model


def test_the_cascade_never_calls_the_judge_when_the_cheap_check_decides(owner, servers, client_for) -> None:
    answers, judge = servers
    execution, results, judge_model = _run(owner, answers, judge, cascade=True)
    # Three answers, one judge call: only the answer no cheap check decided went to the judge.
    assert answers.request_count == 3
    assert judge.request_count == 1
    assert "Lyon, surely" in json.dumps(judge.last_request.body)
    assert results["m-exact"].evaluation_details["decided_by"] == "exact"
    assert results["m-contains"].evaluation_details["decided_by"] == "contains"
    for name in ("m-exact", "m-contains"):
        result = results[name]
        assert (result.score, result.is_correct, result.judge_tokens, result.judge_cost) == (1.0, True, None, 0)
    judged = results["m-wrong"]
    assert judged.evaluation_details["decided_by"] == "judge"
    assert judged.evaluation_details["judge_model_id"] == str(judge_model.pk)
    assert (judged.score, judged.is_correct) == (0.2, False)
    assert judged.judge_cost > 0

    body = client_for(owner).get(f"{V1}/executions/{execution.pk}").json()
    assert body["judge_calls_avoided"] == 2
    # Two calls avoided at the price of the one made.
    assert Decimal(body["judge_cost_saved"]) == (judged.judge_cost * 2).quantize(Decimal("0.00000001"))
    listed = client_for(owner).get(f"{V1}/executions").json()["results"][0]
    assert (listed["judge_calls_avoided"], listed["judge_cost_saved"]) == (2, body["judge_cost_saved"])


def test_without_cascade_every_answer_goes_to_the_judge(owner, servers, client_for) -> None:
    answers, judge = servers
    execution, results, _ = _run(owner, answers, judge, cascade=False)
    assert judge.request_count == 3
    assert {r.evaluation_details["decided_by"] for r in results.values()} == {"judge"}
    body = client_for(owner).get(f"{V1}/executions/{execution.pk}").json()
    assert (body["judge_calls_avoided"], Decimal(body["judge_cost_saved"])) == (0, Decimal(0))


def test_the_execution_page_shows_the_judge_calls_avoided(owner, servers, client) -> None:
    answers, judge = servers
    execution, _, _ = _run(owner, answers, judge, cascade=True)
    client.force_login(owner)
    page = client.get(f"/executions/{execution.pk}/").content.decode()
    assert 'data-field="judge_calls_avoided">2<' in page
    assert "judge calls avoided" in page
    # Which answers the cheap checks decided, beside their scores.
    assert page.count('class="muted decided-by"') == 2


def test_an_execution_with_no_judge_call_saves_a_count_but_no_price(owner, client_for) -> None:
    model = LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 0})  # the mock answers "Paris"
    test_case = TestCaseFactory(
        evaluation_type="llm_judge", expected_output="Paris", evaluation_config={"cascade": True}
    )
    execution = execution_start(test_case=test_case, models=[model], started_by=owner)
    run_executions([execution.pk])
    body = client_for(owner).get(f"{V1}/executions/{execution.pk}").json()
    assert (body["judge_calls_avoided"], body["judge_cost_saved"]) == (1, None)


# --- validation at test creation --------------------------------------------------------------------------


def _payload(**overrides: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "title": "Capital of France",
        "category": "geography",
        "prompt": "What is the capital of France?",
        "expected_output": "Paris",
        "evaluation_type": "llm_judge",
        "evaluation_config": {"judge_model": "judge-model", "cascade": True},
    }
    return {**payload, **overrides}


@pytest.mark.parametrize(
    "overrides",
    [
        {"evaluation_config": {"cascade": "yes"}},
        {"evaluation_config": {"cascade": 1}},
        {"evaluation_config": {"cascade": None}},
        {"expected_output": None},
        {"expected_output": "  "},
    ],
)
def test_cascade_is_refused_unless_a_boolean_on_a_test_with_an_expected_output(
    owner, client_for, overrides: dict[str, object]
) -> None:
    error = assert_error(client_for(owner).post(f"{V1}/tests", _payload(**overrides), format="json"), 400)
    assert any(message.startswith("cascade:") for message in error["details"]["evaluation_config"]), error


def test_a_boolean_cascade_on_a_test_with_an_expected_output_is_accepted(owner, client_for) -> None:
    response = client_for(owner).post(f"{V1}/tests", _payload(), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["evaluation_config"]["cascade"] is True
    off = client_for(owner).post(
        f"{V1}/tests", _payload(expected_output=None, evaluation_config={"cascade": False}), format="json"
    )
    assert off.status_code == 201, off.content
