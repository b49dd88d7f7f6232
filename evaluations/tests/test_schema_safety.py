"""SPEC §10 at scoring time: a user's schema never makes a worker fetch anything, and never freezes it.

* No fetch: whatever schema reaches the scorer (here stored straight into the database, past the
  submission check), validation uses a registry that cannot retrieve; a `$ref` leading outside the schema
  fails that result with our reason. A local HTTP server counts requests and stays at 0 (and the same
  schema given to plain jsonschema does reach it: the attack is real).
* Patterns under a time limit: `pattern`, `propertyNames`, `patternProperties` and the pattern matching
  inside `additionalProperties`/`unevaluatedProperties` run with the `regex` package under
  EVAL_REGEX_TIMEOUT_SECONDS; a backtracking pattern fails that one result with the place, and a
  concurrent run in the same worker (the in-process executor's one thread, or a real rq worker) finishes
  meanwhile, because structured_match scores beside the event loop.
"""

from __future__ import annotations

import json
import time

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from jsonschema import Draft202012Validator

from catalog.models import TestCase, TestCaseRevision
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from catalog.tests.test_schema_refs import remote  # noqa: F401 - fixture
from evaluations import executor
from evaluations.models import Execution, TestResult
from evaluations.runner.run import run_executions
from evaluations.scoring import ScoringError, ScoringTarget, scorer_for
from evaluations.scoring.safe_schema import NO_RETRIEVAL, SafeValidator
from evaluations.scoring.structured import schema_errors
from evaluations.services import execution_start
from evaluations.tests.conftest import loop_ticks_while
from evaluations.tests.test_overlap import needs_rq, workers  # noqa: F401 - fixture
from evaluations.tests.test_queue import Workers
from providers.testing.fake_servers import FakeServer

EVIL = "^(a|aa)+$"  # exponential on a run of a's that fails at its end
EVIL_TEXT = "a" * 40 + "b"
OUR_REF_REASON = (
    "The output schema has a $ref that does not lead inside it; only references inside the schema (#...) "
    "are followed, nothing is fetched."
)


def structured(schema: object, expected: object = None) -> ScoringTarget:
    return ScoringTarget(
        prompt="JSON, please.",
        expected_output=expected if expected is not None else {"x": "a"},
        evaluation_type="structured_match",
        output_schema=schema,  # type: ignore[arg-type]
    )


# -- SafeValidator is draft 2020-12 ---------------------------------------------------------------------
SAME_AS_JSONSCHEMA = [
    ({"pattern": "^a+$"}, "aaa"),
    ({"pattern": "^a+$"}, "aab"),
    ({"pattern": "b"}, 12),
    ({"properties": {"x": {"pattern": r"^\d{3}$"}}}, {"x": "123"}),
    ({"properties": {"x": {"pattern": r"^\d{3}$"}}}, {"x": "12"}),
    ({"propertyNames": {"pattern": "^[a-z]+$"}}, {"ok": 1, "Not": 2}),
    ({"propertyNames": {"pattern": "^[a-z]+$"}}, {"ok": 1}),
    ({"patternProperties": {"^n_": {"type": "integer"}}}, {"n_a": 1, "s": "x"}),
    ({"patternProperties": {"^n_": {"type": "integer"}}}, {"n_a": "1"}),
    ({"patternProperties": {"^n_": {}}, "additionalProperties": False}, {"n_a": 1}),
    ({"patternProperties": {"^n_": {}}, "additionalProperties": False}, {"n_a": 1, "z": 2}),
    ({"patternProperties": {"^n_": {}, "^s_": {}}, "additionalProperties": {"type": "string"}}, {"s_": 1, "q": "x"}),
    ({"patternProperties": {"^n_": {}}, "additionalProperties": {"type": "string"}}, {"q": 1}),
    ({"properties": {"a": {}}, "additionalProperties": False}, {"a": 1, "b": 2}),
    ({"unevaluatedProperties": False, "patternProperties": {"^b": {}}}, {"bx": 1}),
    ({"unevaluatedProperties": False, "patternProperties": {"^b": {}}}, {"bx": 1, "c": 2}),
    ({"unevaluatedProperties": False, "allOf": [{"patternProperties": {"^b": {}}}]}, {"bx": 1}),
    ({"unevaluatedProperties": False, "allOf": [{"patternProperties": {"^b": {}}}]}, {"cx": 1}),
    (
        {"$defs": {"p": {"patternProperties": {"^b": {}}}}, "$ref": "#/$defs/p", "unevaluatedProperties": False},
        {"bx": 1},
    ),
    (
        {"$defs": {"p": {"patternProperties": {"^b": {}}}}, "$ref": "#/$defs/p", "unevaluatedProperties": False},
        {"bx": 1, "c": 1},
    ),
    (
        {"if": {"required": ["k"]}, "then": {"patternProperties": {"^k": {}}}, "unevaluatedProperties": False},
        {"k": 1, "kk": 2},
    ),
    (
        {"if": {"required": ["k"]}, "else": {"properties": {"z": {}}}, "unevaluatedProperties": False},
        {"z": 1},
    ),
    ({"dependentSchemas": {"a": {"properties": {"b": {}}}}, "unevaluatedProperties": False}, {"a": 1, "b": 2}),
    ({"unevaluatedProperties": {"type": "integer"}, "properties": {"a": {}}}, {"a": "x", "b": 1}),
    ({"unevaluatedProperties": {"type": "integer"}, "properties": {"a": {}}}, {"a": "x", "b": "y"}),
    (
        {"anyOf": [{"patternProperties": {"^a": {}}}, {"properties": {"q": {}}}], "unevaluatedProperties": False},
        {"a": 1},
    ),
]


@pytest.mark.parametrize(("schema", "instance"), SAME_AS_JSONSCHEMA)
def test_the_safe_validator_judges_ordinary_schemas_as_jsonschema_does(schema, instance):
    ours = SafeValidator(schema, registry=NO_RETRIEVAL)
    theirs = Draft202012Validator(schema)
    assert ours.is_valid(instance) is theirs.is_valid(instance)
    assert {(tuple(e.absolute_path), e.validator) for e in ours.iter_errors(instance)} == {
        (tuple(e.absolute_path), e.validator) for e in theirs.iter_errors(instance)
    }


def test_format_regex_means_what_the_regex_package_compiles():
    schema = {"properties": {"p": {"format": "regex"}}}
    assert schema_errors(schema, {"p": r"^\p{Lu}"}) == []
    assert schema_errors(schema, {"p": "[[:foo:]]"}) == [{"path": "$.p", "message": "fails format"}]


def test_boolean_schemas_are_judged_in_our_words():
    assert schema_errors(True, {"x": 1}) == []
    assert schema_errors(False, 1) == [{"path": "$", "message": "not allowed by the schema (false)"}]
    assert [e["message"] for e in schema_errors({"properties": {"x": False}}, {"x": 1})] == [
        "not allowed by the schema (false)"
    ]


# -- patterns under a time limit -------------------------------------------------------------------------
WHERE_A_PATTERN_RUNS = {
    "pattern": ({"properties": {"x": {"type": "string", "pattern": EVIL}}}, {"x": EVIL_TEXT}, "$.x"),
    "pattern_in_an_array": (
        {"properties": {"x": {"items": {"pattern": EVIL}}}},
        {"x": ["aa", EVIL_TEXT]},
        "$.x[1]",
    ),
    "propertyNames": (
        {"properties": {"x": {"propertyNames": {"pattern": EVIL}}}},
        {"x": {EVIL_TEXT: 1}},
        f"$.x.{EVIL_TEXT}",
    ),
    "patternProperties": ({"patternProperties": {EVIL: {}}}, {EVIL_TEXT: 1}, f"$.{EVIL_TEXT}"),
    "additionalProperties": (
        {"properties": {"x": {"patternProperties": {EVIL: {}}, "additionalProperties": False}}},
        {"x": {EVIL_TEXT: 1}},
        f"$.x.{EVIL_TEXT}",
    ),
}


@pytest.mark.parametrize("name", list(WHERE_A_PATTERN_RUNS))
def test_a_backtracking_pattern_fails_the_result_with_the_place_in_about_the_time_limit(settings, name):
    settings.EVAL_REGEX_TIMEOUT_SECONDS = 0.3
    schema, answer, where = WHERE_A_PATTERN_RUNS[name]
    started = time.monotonic()
    with pytest.raises(ScoringError) as caught:
        scorer_for("structured_match").score(json.dumps(answer), structured(schema))
    elapsed = time.monotonic() - started
    assert f"pattern timed out at {where} (longer than 0.3 s" in caught.value.message
    assert caught.value.details == {"path": where}
    assert len(caught.value.message) <= 300
    # regex checks its clock every so many steps: allow it slack, but nothing like the minutes `re` takes.
    assert elapsed < 10, elapsed


def test_unevaluated_properties_match_their_patterns_under_the_limit_too(settings):
    settings.EVAL_REGEX_TIMEOUT_SECONDS = 0.3
    schema = {"properties": {"x": {"allOf": [{"patternProperties": {EVIL: {}}}], "unevaluatedProperties": False}}}
    with pytest.raises(ScoringError, match=r"pattern timed out at \$\.x\.a+b"):
        schema_errors(schema, {"x": {EVIL_TEXT: 1}})
    # The same schema, the same keyword, on keys it matches quickly: an ordinary verdict.
    assert schema_errors(schema, {"x": {"aaaa": 1}}) == []
    assert schema_errors(schema, {"x": {"zz": 1}}) == [{"path": "$.x", "message": "fails unevaluatedProperties"}]


def test_a_long_key_is_cut_short_in_the_reason(settings):
    settings.EVAL_REGEX_TIMEOUT_SECONDS = 0.2
    key = "a" * 400 + "b"
    with pytest.raises(ScoringError) as caught:
        schema_errors({"propertyNames": {"pattern": EVIL}}, {key: 1})
    assert len(caught.value.details["path"]) == 80
    assert len(caught.value.message) <= 300


def test_a_schema_built_to_do_exponential_work_is_cut_off(settings):
    """Forty `$defs` that each apply the next one twice: 2**40 steps, and not a single pattern."""
    settings.EVAL_REGEX_TIMEOUT_SECONDS = 0.1  # the whole check may take ten times that
    defs = {f"d{i}": {"allOf": [{"$ref": f"#/$defs/d{i + 1}"}, {"$ref": f"#/$defs/d{i + 1}"}]} for i in range(40)}
    schema = {"$defs": {**defs, "d40": {"type": "integer"}}, "$ref": "#/$defs/d0"}
    started = time.monotonic()
    with pytest.raises(ScoringError, match=r"took longer than 1 s; simplify the schema"):
        schema_errors(schema, 1)
    assert time.monotonic() - started < 5


def test_a_stored_pattern_that_does_not_compile_fails_the_result_with_our_reason():
    with pytest.raises(ScoringError, match=r"^The output schema has a pattern that is not valid at position 8\.$"):
        schema_errors({"properties": {"x": {"pattern": "[[:foo:]]"}}}, {"x": "a"})


def test_scoring_waits_beside_the_event_loop(settings):
    """The engine awaits ascore on its loop: while a pattern backtracks, a ticker on the loop keeps ticking."""
    settings.EVAL_REGEX_TIMEOUT_SECONDS = 0.5
    schema, answer, _ = WHERE_A_PATTERN_RUNS["pattern"]

    ticks = loop_ticks_while(
        lambda: scorer_for("structured_match").ascore(json.dumps(answer), structured(schema)),
        raises=ScoringError,
        match="pattern timed out",
    )
    assert ticks >= 10


# -- no fetch, in a real run ------------------------------------------------------------------------------
def reaching_out(url: str) -> dict[str, dict[str, object]]:
    """Schemas the submission check refuses, as they might sit in a database from before it."""
    return {
        "http_ref": {"type": "object", "properties": {"city": {"$ref": f"{url}/x.json"}}},
        "file_ref": {"$ref": "file:///etc/passwd"},
        "relative_ref_under_a_remote_id": {"$id": f"{url}/", "properties": {"city": {"$ref": "x.json"}}},
        "dynamic_ref": {"$dynamicRef": f"{url}/x.json"},
        "ref_hidden_in_an_unknown_keyword": {"x-stash": {"$ref": f"{url}/x.json"}, "$ref": "#/x-stash"},
        "ref_seen_by_unevaluated_properties": {"$ref": f"{url}/x.json", "unevaluatedProperties": False},
    }


def store_unchecked(test_case: TestCase, schema: object) -> None:
    """Put `schema` in the database as is: no model validation, no service."""
    TestCase.objects.filter(pk=test_case.pk).update(output_schema=schema)
    TestCaseRevision.objects.filter(test_case=test_case).update(output_schema=schema)


@pytest.mark.django_db
def test_plain_jsonschema_would_fetch_it(remote):  # noqa: F811 - the fixture
    """The attack is real: jsonschema without an explicit registry downloads an unknown $ref."""
    with pytest.warns(DeprecationWarning, match="Automatically retrieving remote references"):
        Draft202012Validator({"$ref": f"{remote.url}/x.json"}).is_valid("Rome")
    assert remote.hits == ["/x.json"]


@pytest.mark.django_db
def test_a_stored_schema_that_reaches_outside_is_never_fetched_by_a_real_run(owner, remote, settings):  # noqa: F811
    settings.EVAL_MAX_ATTEMPTS = 1
    settings.EVAL_CACHE = False
    schemas = reaching_out(remote.url)
    with FakeServer("openai", default_answer=json.dumps({"city": "Rome"})) as server:
        model = LLMModelFactory(provider="openai_compatible", config={"base_url": server.base_url})
        runs = {}
        for name, schema in schemas.items():
            test_case = TestCaseFactory(
                created_by=owner, evaluation_type="structured_match", expected_output={"city": "Rome"}
            )
            store_unchecked(test_case, schema)
            runs[name] = execution_start(test_case=test_case, models=[model], started_by=owner)
        # A remote $schema names a dialect; it is never fetched either, and the schema is read as 2020-12.
        dialect = TestCaseFactory(
            created_by=owner, evaluation_type="structured_match", expected_output={"city": "Rome"}
        )
        store_unchecked(dialect, {"$schema": f"{remote.url}/meta", "required": ["city"]})
        dialect_run = execution_start(test_case=dialect, models=[model], started_by=owner)
        run_executions([execution.pk for execution in [*runs.values(), dialect_run]])
        assert server.request_count == len(schemas) + 1
    for name, execution in runs.items():
        result = TestResult.objects.get(execution=execution)
        assert (result.status, result.error_type, result.error_message) == (
            "failed",
            "scoring_error",
            OUR_REF_REASON,
        ), name
        stored = json.dumps([result.error_message, result.evaluation_details, result.raw_output])
        assert "fetched-document" not in stored and "root:" not in stored
    assert TestResult.objects.get(execution=dialect_run).status == "completed"
    assert remote.hits == []


# -- a backtracking pattern in a real worker, beside a concurrent run -------------------------------------
def evil_and_plain_runs(owner, evil_server: FakeServer, plain_server: FakeServer) -> tuple[Execution, Execution]:
    """One run whose answer backtracks in its schema's pattern, one ordinary run, posted together."""
    evil_test = TestCaseFactory(
        created_by=owner,
        evaluation_type="structured_match",
        expected_output={"x": "aa"},
        output_schema={"type": "object", "properties": {"x": {"type": "string", "pattern": EVIL}}},
    )
    plain_test = TestCaseFactory(created_by=owner)  # exact match, "Paris"
    evil_model = LLMModelFactory(provider="openai_compatible", config={"base_url": evil_server.base_url})
    plain_model = LLMModelFactory(provider="openai_compatible", config={"base_url": plain_server.base_url})
    with transaction.atomic():
        evil = execution_start(test_case=evil_test, models=[evil_model], started_by=owner)
        plain = execution_start(test_case=plain_test, models=[plain_model], started_by=owner)
    return evil, plain


def assert_the_plain_run_finished_while_the_pattern_ran(evil: Execution, plain: Execution, limit: float) -> None:
    evil.refresh_from_db()
    plain.refresh_from_db()
    evil_result = TestResult.objects.get(execution=evil)
    assert evil_result.status == "failed" and evil_result.error_type == "scoring_error"
    assert evil_result.error_message.startswith(
        f"The output schema's pattern timed out at $.x (longer than {limit:g} s; catastrophic backtracking?)"
    )
    assert plain.status == Execution.Status.COMPLETED
    assert TestResult.objects.get(execution=plain).is_correct is True
    assert evil.status == Execution.Status.FAILED  # its only result failed; the run ended all the same
    # The plain answer came 0.3 s in; the pattern ran for at least `limit` s from about 0 s. Held on the loop,
    # the plain run could only have finished after it.
    assert plain.completed_at is not None and evil.completed_at is not None
    assert (evil.completed_at - plain.completed_at).total_seconds() > limit / 2, (plain.completed_at, evil.completed_at)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_executor_goes_on_with_a_concurrent_run_while_a_pattern_backtracks(owner, settings):
    executor.wait_idle()
    settings.USE_RQ = False
    settings.EVAL_INPROCESS_WORKERS = 1  # one thread, one event loop, both runs in it
    settings.EVAL_CACHE = False
    settings.EVAL_REGEX_TIMEOUT_SECONDS = 3.0
    with (
        FakeServer("openai", default_answer=json.dumps({"x": EVIL_TEXT})) as evil_server,
        FakeServer("openai", default_answer="Paris", latency_ms=300) as plain_server,
    ):
        evil, plain = evil_and_plain_runs(owner, evil_server, plain_server)
        executor.wait_idle()
    assert_the_plain_run_finished_while_the_pattern_ran(evil, plain, 3.0)


@needs_rq
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_rq_worker_goes_on_with_a_concurrent_run_while_a_pattern_backtracks(owner, workers: Workers):  # noqa: F811
    assert django_settings.USE_RQ
    with (
        FakeServer("openai", default_answer=json.dumps({"x": EVIL_TEXT})) as evil_server,
        FakeServer("openai", default_answer="Paris", latency_ms=300) as plain_server,
    ):
        evil, plain = evil_and_plain_runs(owner, evil_server, plain_server)
        workers.start(EVAL_REGEX_TIMEOUT_SECONDS="3")
        workers.wait()
    assert_the_plain_run_finished_while_the_pattern_ran(evil, plain, 3.0)
