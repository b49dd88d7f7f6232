"""The engine's management commands: import_tests, export_results, run_batch, recover_executions."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from catalog.models import Tag, TestCase
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import Execution, TestResult
from evaluations.runner.writes import claim_executions
from evaluations.services import execution_start
from evaluations.tests.conftest import drain_background_work
from evaluations.tests.factories import TestResultFactory

pytestmark = pytest.mark.django_db


def run(*args, **options):
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command(*args, stdout=out, stderr=err, **options)
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_import_tests_reports_bad_lines_and_leaves_nothing_of_them(tmp_path, owner):
    lines = [
        {
            "title": "Capital",
            "category": "geo",
            "prompt": "Capital of France?",
            "expected_output": "Paris",
            "evaluation_type": "exact_match",
            "tags": ["capitals"],
        },
        {
            "title": "Bad config",
            "category": "geo",
            "prompt": "?",
            "expected_output": "x",
            "evaluation_type": "exact_match",
            "evaluation_config": {"nope": 1},
            "tags": ["only-on-bad-line"],
        },
        {
            "title": "JSON",
            "category": "json",
            "prompt": "Give JSON",
            "expected_output": {"a": [1, 2]},
            "evaluation_type": "structured_match",
            "output_schema": {"type": "object"},
        },
    ]
    path = tmp_path / "tests.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n{not json\n", encoding="utf-8")
    code, out, err = run("import_tests", str(path), author=owner.email)
    assert code == 1
    assert "Imported 2 test(s); 2 line(s) rejected." in out
    assert "line 2: evaluation_config" in err
    assert "line 4: not valid JSON" in err
    assert set(TestCase.objects.values_list("title", flat=True)) == {"Capital", "JSON"}
    assert not Tag.objects.filter(name="only-on-bad-line").exists()
    assert TestCase.objects.get(title="JSON").expected_output == {"a": [1, 2]}
    assert TestCase.objects.get(title="Capital").status == TestCase.Status.PENDING


def test_import_tests_reads_csv_with_json_cells_and_tags(tmp_path, moderator):
    path = tmp_path / "tests.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "title",
                "category",
                "prompt",
                "expected_output",
                "evaluation_type",
                "evaluation_config",
                "tags",
                "timeout_seconds",
            ]
        )
        writer.writerow(["Numbers", "math", "2+2?", "4", "custom", '{"scorer": "numeric"}', "math; easy", "30"])
        writer.writerow(["Bad timeout", "math", "?", "x", "exact_match", "", "", "soon"])
    code, _, err = run("import_tests", str(path), author=moderator.email, approve=True)
    assert code == 1
    assert "timeout_seconds: expected a whole number" in err
    test_case = TestCase.objects.get()
    assert test_case.expected_output == 4
    assert test_case.evaluation_config == {"scorer": "numeric"}
    assert sorted(test_case.tags.values_list("name", flat=True)) == ["easy", "math"]
    assert test_case.timeout_seconds == 30
    assert test_case.status == TestCase.Status.APPROVED


def test_import_tests_refuses_an_unknown_author(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text("{}\n")
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No user"):
        call_command("import_tests", str(path), author="ghost@example.com")


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_results_writes_every_result(tmp_path, fmt):
    results = [TestResultFactory(raw_output=f'answer, with "quotes" {i}\nand a newline') for i in range(3)]
    target = tmp_path / f"out.{fmt}"
    code, _, err = run("export_results", format=fmt, output=target)
    assert code == 0
    assert "Exported 3 result(s)." in err
    text = target.read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text))) if fmt == "csv" else [json.loads(line) for line in text.splitlines()]
    assert {row["id"] for row in rows} == {str(result.pk) for result in results}
    assert rows[0]["raw_output"].endswith("and a newline")
    assert {row["model_name"] for row in rows} == {result.model.name for result in results}


def test_export_results_filters_by_model(tmp_path):
    keep = TestResultFactory()
    TestResultFactory()
    target = tmp_path / "out.jsonl"
    run("export_results", format="jsonl", output=target, model=keep.model.name)
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [row["id"] for row in rows] == [str(keep.pk)]


@pytest.mark.django_db(transaction=True)
def test_run_batch_runs_the_selected_tests_and_summarises(owner, clean_queue):
    models = [LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 1}) for _ in range(3)]
    chosen = [TestCaseFactory(category="geo") for _ in range(2)]
    TestCaseFactory(category="other")
    names = [model.name for model in models]
    if settings.USE_RQ:
        code, out, _ = run("run_batch", category="geo", models=names)
        assert "Queued for the rq workers" in out
        drain_background_work()
    else:
        code, out, _ = run("run_batch", category="geo", models=names, wait=True)
        assert chosen[0].title in out
    assert code == 0
    executions = Execution.objects.all()
    assert {e.test_case_id for e in executions} == {t.pk for t in chosen}
    assert all(e.status == Execution.Status.COMPLETED and e.progress == 3 for e in executions)


def test_run_batch_rejects_unknown_models_and_empty_selections(owner):
    from django.core.management.base import CommandError

    TestCaseFactory()
    with pytest.raises(CommandError, match="No model with id or name 'nope'"):
        call_command("run_batch", models=["nope"])
    with pytest.raises(CommandError, match="No approved tests match"):
        call_command("run_batch", category="nothing-here")


def test_recover_executions_finishes_only_the_missing_pairs(owner):
    models = [LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 0}) for _ in range(3)]
    execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    claim_executions([str(execution.pk)], lease="dead")
    from evaluations.runner.writes import write_results

    write_results(lease="dead", results=[TestResultFactory.build(execution=execution, model=models[0])], finished=[])
    Execution.objects.filter(pk=execution.pk).update(heartbeat_at=timezone.now() - timedelta(hours=2))
    code, out, _ = run("recover_executions", stale_after=60, inline=True)
    assert code == 0
    assert "2 new results" in out
    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED
    assert TestResult.objects.filter(execution=execution).count() == 3
    assert execution.progress == 3
    code, out, _ = run("recover_executions", stale_after=60, inline=True)
    assert "No stale executions." in out


def test_rqworker_defaults_to_the_worker_that_preloads_the_engine(settings):
    from django_rq.workers import get_worker_class

    from evaluations.worker import EvaluationWorker

    assert get_worker_class() is EvaluationWorker
    settings.RQ = {"WORKER_CLASS": "rq.SimpleWorker"}
    assert get_worker_class().__name__ == "SimpleWorker"
