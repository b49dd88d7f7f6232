"""Suites, schedules and runs for the monitoring tests."""

from __future__ import annotations

from typing import Any

from catalog.models import LLMModel, Suite, TestCase
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from monitoring.models import Alert, SuiteRun
from providers.testing.fake_servers import FakeServer


def fake_model(server: FakeServer, name: str, **fields: Any) -> LLMModel:
    """A model served by the fake OpenAI-compatible server, named so that answer_fn can tell it apart."""
    model: LLMModel = LLMModelFactory(
        name=name, provider="openai_compatible", provider_model_id=name, config={"base_url": server.base_url}, **fields
    )
    return model


def capital_tests(n: int) -> list[TestCase]:
    """n exact-match tests whose right answer is Paris, each with its own prompt."""
    return [TestCaseFactory(prompt=f"Question {i}: the capital of France?", expected_output="Paris") for i in range(n)]


def suite_of(tests: list[TestCase], name: str = "watch") -> Suite:
    suite = Suite.objects.create(name=name)
    suite.tests.set(tests)
    return suite


def score_drift_alert(*, model: LLMModel, run: SuiteRun | None = None, **fields: Any) -> Alert:
    """A score-drift alert as a 20-test McNemar check writes it (1.0 → 0.4), for tests of what reads alerts."""
    run = run or SuiteRun.objects.create(
        suite=suite_of([TestCaseFactory()], name=f"suite-{model.name}"), suite_version=1
    )
    values: dict[str, Any] = {
        "kind": Alert.Kind.SCORE_DRIFT,
        "schedule": run.schedule,
        "shared_tests": 20,
        "previous_score": 1.0,
        "current_score": 0.4,
        "delta": -0.6,
        "p_value": 0.000488,
        "method": "mcnemar_exact",
        **fields,
    }
    alert: Alert = Alert.objects.create(model=model, suite_run=run, **values)
    return alert
