from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings

from accounts.models import User
from catalog.models import LLMModel, ModerationEvent, TestCase
from catalog.validation import evaluation_config_errors, output_schema_errors

pytestmark = pytest.mark.django_db


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def _snapshot() -> tuple[int, int, int, int, int]:
    return (
        User.objects.count(),
        LLMModel.objects.count(),
        TestCase.objects.count(),
        ModerationEvent.objects.count(),
        TestCase.objects.filter(status="approved").count(),
    )


def test_it_loads_a_realistic_offline_catalog() -> None:
    _seed()
    models = LLMModel.objects.all()
    assert models.count() >= 5 and set(models.values_list("provider", flat=True)) == {"mock"}
    assert all("mock" in model.display_name.lower() for model in models), "mock models must say they are not real"
    tests = TestCase.objects.all()
    assert tests.count() >= 30
    assert len(set(tests.values_list("category", flat=True))) >= 5
    assert set(tests.values_list("evaluation_type", flat=True)) == {
        "exact_match",
        "structured_match",
        "llm_judge",
        "custom",
    }
    assert tests.filter(status="pending").exists() and tests.filter(status="rejected").exists()
    for test_case in tests:
        assert not output_schema_errors(test_case.output_schema)
        assert not evaluation_config_errors(test_case.evaluation_type, test_case.evaluation_config)
    assert User.objects.filter(role="moderator").exists() and User.objects.filter(role="admin").exists()


def test_running_it_twice_changes_nothing() -> None:
    _seed()
    first = _snapshot()
    output = _seed()
    assert _snapshot() == first
    assert "nothing changed" in output


@override_settings(DEBUG=True)
def test_it_prints_demo_credentials_when_debug_is_on() -> None:
    output = _seed()
    assert "moderator@openbench.local" in output and "openbench-demo" in output


@override_settings(DEBUG=False)
def test_it_never_prints_credentials_when_debug_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    output = _seed()
    assert "openbench-demo" not in output and "@openbench.local" not in output
    admin = User.objects.get(email="admin@openbench.local")
    assert not admin.has_usable_password()


@pytest.mark.django_db(transaction=True)
@override_settings(USE_RQ=False)
def test_with_results_runs_the_demo_once_so_the_leaderboard_has_numbers() -> None:
    from evaluations.models import Execution, TestResult

    out = StringIO()
    call_command("seed_demo", "--with-results", stdout=out)
    approved = TestCase.objects.filter(status="approved").count()
    active_models = LLMModel.objects.active().count()
    assert Execution.objects.count() == approved
    assert TestResult.objects.count() == approved * active_models
    assert not Execution.objects.exclude(status="completed").exists()
    again = StringIO()
    call_command("seed_demo", "--with-results", stdout=again)
    assert TestResult.objects.count() == approved * active_models
    assert "not run again" in again.getvalue()
