"""Table-driven tests for every scorer (SPEC §4)."""

from __future__ import annotations

import pytest

from evaluations.scoring import ScoringError, ScoringTarget, scorer_for
from evaluations.scoring.base import ScoreOutcome
from evaluations.scoring.extraction import json_equal
from evaluations.scoring.registry import custom_scorer_names, get_custom_scorer, register_scorer
from evaluations.tests.conftest import loop_ticks_while
from providers.json_answers import extract_json


def target(evaluation_type: str, expected, config=None, schema=None) -> ScoringTarget:
    return ScoringTarget(
        prompt="Q?",
        expected_output=expected,
        evaluation_type=evaluation_type,
        evaluation_config=config or {},
        output_schema=schema,
    )


# --- extraction ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "found", "value", "source"),
    [
        ('{"a": 1}', True, {"a": 1}, "whole"),
        ("  [1, 2]\n", True, [1, 2], "whole"),
        ("42", True, 42, "whole"),
        ('Here you go:\n```json\n{"a": [1, {"b": null}]}\n```\nDone.', True, {"a": [1, {"b": None}]}, "fenced"),
        ('```\n{"x": "ü"}\n```', True, {"x": "ü"}, "fenced"),
        ('```jsonc\n{"x": 1}\n```', True, {"x": 1}, "fenced"),
        ('The answer is {"city": "Paris"} as requested.', True, {"city": "Paris"}, "embedded"),
        ("Two lists [1, 2] and [3]", True, [1, 2], "embedded"),
        ('Broken {not json} then {"ok": true}', True, {"ok": True}, "embedded"),
        ("no json here", False, None, ""),
        ("", False, None, ""),
        ('{"a": NaN}', False, None, ""),
        ('\ufeff{"bom": 1}', True, {"bom": 1}, "whole"),
    ],
)
def test_it_extracts_json_from_plain_fenced_and_embedded_text(text, found, value, source):
    extracted = extract_json(text)
    assert extracted.found is found
    assert extracted.value == value
    assert extracted.source == source


@pytest.mark.parametrize(
    ("a", "b", "tolerance", "equal"),
    [
        (1, 1.0, 0, True),
        (True, 1, 0, False),
        (False, 0, 0, False),
        ("1", 1, 0, False),
        (None, None, 0, True),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}, 0, True),
        ([1, 2], [2, 1], 0, False),
        (0.1 + 0.2, 0.3, 0, False),
        (0.1 + 0.2, 0.3, 1e-9, True),
        ({"a": [1.0, {"b": True}]}, {"a": [1, {"b": True}]}, 0, True),
    ],
)
def test_it_compares_json_values_as_json_means_them(a, b, tolerance, equal):
    assert json_equal(a, b, float_tolerance=tolerance) is equal


# --- exact_match ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expected", "answer", "config", "passes"),
    [
        ("Paris", "Paris", {}, True),
        ("Paris", "  paris \n", {}, True),
        ("Paris", "PARIS", {"case_sensitive": True}, False),
        ("Paris", "Paris", {"case_sensitive": True}, True),
        ("Paris", " Paris", {"strip": False}, False),
        ("New York", "New   York", {}, True),
        ("New York", "New   York", {"collapse_whitespace": False}, False),
        ("New York", "New\tYork", {}, True),
        ("Paris", "Paris.", {}, False),
        ("Paris", "The answer is Paris", {}, False),
        # Unicode: precomposed vs combining accent (NFC), German sharp s under case folding, CJK.
        ("café", "cafe\u0301", {}, True),
        ("STRASSE", "straße", {}, True),
        ("東京", "東京", {}, True),
        ("東京", "京都", {}, False),
        # A JSON expected output is compared as JSON.
        (42, "42", {}, True),
        (42, "42.0", {}, True),
        (42, "The answer: 42", {}, False),
        (True, "true", {}, True),
        (True, "1", {}, False),
        ({"city": "Paris"}, '```json\n{"city": "paris"}\n```', {}, True),
        ({"city": "Paris"}, '{"city": "paris"}', {"case_sensitive": True}, False),
        ([1, 2, 3], "[1,2,3]", {}, True),
        ([1, 2, 3], "[3,2,1]", {}, False),
        ({"a": 1}, "no json at all", {}, False),
    ],
)
def test_exact_match_normalises_then_compares(expected, answer, config, passes):
    outcome = scorer_for("exact_match").score(answer, target("exact_match", expected, config))
    assert outcome.is_correct is passes
    assert outcome.score == (1.0 if passes else 0.0)


def test_exact_match_explains_what_it_compared():
    outcome = scorer_for("exact_match").score(" PARIS ", target("exact_match", "Paris"))
    assert outcome.details["actual"] == "paris"
    assert outcome.details["normalisation"] == {"case_sensitive": False, "strip": True, "collapse": True}


# --- structured_match ----------------------------------------------------------------------------
PERSON = {"name": "Ada", "age": 36, "langs": ["en", "fr"], "address": {"city": "London", "zip": "N1"}}
PERSON_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "langs": {"type": "array", "items": {"type": "string"}},
        "address": {"type": "object", "required": ["city"]},
    },
    "required": ["name", "age"],
}


@pytest.mark.parametrize(
    ("answer", "config", "score", "passes"),
    [
        (
            '{"name": "Ada", "age": 36, "langs": ["en", "fr"], "address": {"city": "London", "zip": "N1"}}',
            {},
            1.0,
            True,
        ),
        # Order of keys never matters; order of array items does unless ignored.
        ('{"age": 36, "name": "Ada", "address": {"zip": "N1", "city": "London"}, "langs": ["en", "fr"]}', {}, 1, True),
        (
            '{"name": "Ada", "age": 36, "langs": ["fr", "en"], "address": {"city": "London", "zip": "N1"}}',
            {},
            4 / 6,
            False,
        ),
        (
            '{"name": "Ada", "age": 36, "langs": ["fr", "en"], "address": {"city": "London", "zip": "N1"}}',
            {"ignore_array_order": True},
            1.0,
            True,
        ),
        # One of six leaves wrong: 5/6, below the default threshold 0.95 but above a custom 0.8.
        (
            '{"name": "Ada", "age": 37, "langs": ["en", "fr"], "address": {"city": "London", "zip": "N1"}}',
            {},
            5 / 6,
            False,
        ),
        (
            '{"name": "Ada", "age": 37, "langs": ["en", "fr"], "address": {"city": "London", "zip": "N1"}}',
            {"pass_threshold": 0.8},
            5 / 6,
            True,
        ),
        # A missing nested object loses all its leaves.
        ('{"name": "Ada", "age": 36, "langs": ["en", "fr"]}', {"pass_threshold": 0.5}, 4 / 6, True),
        # Extra fields count against the answer unless ignored.
        (
            '{"name": "Ada", "age": 36, "langs": ["en", "fr"], "address": {"city": "London", "zip": "N1"}, "x": 1}',
            {},
            6 / 7,
            False,
        ),
        (
            '{"name": "Ada", "age": 36, "langs": ["en", "fr"], "address": {"city": "London", "zip": "N1"}, "x": 1}',
            {"ignore_extra_fields": True},
            1.0,
            True,
        ),
        # Fenced and embedded JSON are found.
        (
            "Sure!\n```json\n"
            '{"name": "Ada", "age": 36, "langs": ["en","fr"], "address": {"city": "London", "zip": "N1"}}\n```',
            {},
            1.0,
            True,
        ),
        ("I don't know", {}, 0.0, False),
    ],
)
def test_structured_match_scores_the_fraction_of_matching_leaves(answer, config, score, passes):
    outcome = scorer_for("structured_match").score(answer, target("structured_match", PERSON, config, PERSON_SCHEMA))
    assert outcome.score == pytest.approx(score)
    assert outcome.is_correct is passes


@pytest.mark.parametrize(
    ("expected", "answer", "config", "score"),
    [
        ({"pi": 3.14159}, '{"pi": 3.1416}', {}, 0.0),
        ({"pi": 3.14159}, '{"pi": 3.1416}', {"float_tolerance": 0.001}, 1.0),
        ({"n": 1}, '{"n": 1.0}', {}, 1.0),
        ({"flag": True}, '{"flag": 1}', {}, 0.0),
        ({"v": [0.1, 0.2]}, '{"v": [0.1000001, 0.2]}', {"float_tolerance": 1e-3}, 1.0),
        (
            [{"id": 1, "tags": ["a", "b"]}, {"id": 2, "tags": []}],
            '[{"id": 2, "tags": []}, {"id": 1, "tags": ["b", "a"]}]',
            {"ignore_array_order": True},
            1.0,
        ),
        ([{"id": 1}, {"id": 2}], '[{"id": 2}, {"id": 1}]', {}, 0.0),
        ([1, 2, 3], "[1, 2]", {}, 2 / 3),
        ([1, 2], "[1, 2, 3]", {}, 2 / 3),
        ([], "[]", {}, 1.0),
        ({}, "{}", {}, 1.0),
        ({"a": {"b": {"c": "ü"}}}, '{"a": {"b": {"c": "ü"}}}', {}, 1.0),
        ({"a": {"b": 1}}, '{"a": [1]}', {}, 0.0),
    ],
)
def test_structured_match_handles_floats_arrays_and_nesting(expected, answer, config, score):
    outcome = scorer_for("structured_match").score(answer, target("structured_match", expected, config))
    assert outcome.score == pytest.approx(score)


def test_structured_match_fails_on_schema_violations_and_lists_each_one():
    answer = '{"name": 7, "age": -1, "langs": ["en", "fr"], "address": {"city": "London", "zip": "N1"}}'
    outcome = scorer_for("structured_match").score(
        answer, target("structured_match", PERSON, {"pass_threshold": 0.5}, PERSON_SCHEMA)
    )
    assert outcome.is_correct is False
    assert outcome.details["schema_valid"] is False
    paths = sorted(error["path"] for error in outcome.details["schema_errors"])
    assert paths == ["$.age", "$.name"]
    assert {m["path"] for m in outcome.details["mismatches"]} == {"$.name", "$.age"}


def test_structured_match_reports_missing_required_fields_from_the_schema():
    outcome = scorer_for("structured_match").score(
        '{"name": "Ada"}', target("structured_match", {"name": "Ada"}, {}, PERSON_SCHEMA)
    )
    assert outcome.score == 1.0
    assert outcome.is_correct is False
    assert any("'age' is a required property" in e["message"] for e in outcome.details["schema_errors"])


# --- custom --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expected", "answer", "config", "score", "passes"),
    [
        # contains
        ("Paris", "I think it's paris.", {"scorer": "contains"}, 1.0, True),
        ("Paris", "I think it's paris.", {"scorer": "contains", "case_sensitive": True}, 0.0, False),
        (None, "red and blue", {"scorer": "contains", "values": ["red", "green"]}, 0.5, False),
        (None, "red and blue", {"scorer": "contains", "values": ["red", "green"], "mode": "any"}, 1.0, True),
        ("", "anything", {"scorer": "contains"}, 0.0, False),
        ("naïve", "a nai\u0308ve answer", {"scorer": "contains"}, 1.0, True),
        # regex
        (None, "Order #12345 shipped", {"scorer": "regex", "pattern": r"#\d{5}\b"}, 1.0, True),
        (None, "ORDER", {"scorer": "regex", "pattern": "order"}, 0.0, False),
        (None, "ORDER", {"scorer": "regex", "pattern": "order", "ignore_case": True}, 1.0, True),
        # numeric
        (42, "The answer is 42.", {"scorer": "numeric"}, 1.0, True),
        (42, "41 or maybe 43", {"scorer": "numeric"}, 0.0, False),
        (42, "41 or maybe 43", {"scorer": "numeric", "abs_tolerance": 1}, 1.0, True),
        (1000, "about 1,010 units", {"scorer": "numeric", "rel_tolerance": 0.02}, 1.0, True),
        (1000, "about 1,030 units", {"scorer": "numeric", "rel_tolerance": 0.02}, 0.0, False),
        ("3.5", "x = 3.5", {"scorer": "numeric"}, 1.0, True),
        (-2, "the result is -2", {"scorer": "numeric"}, 1.0, True),
        (1e-3, "1.0e-3", {"scorer": "numeric"}, 1.0, True),
        (2, "first 2 then 5", {"scorer": "numeric", "take": "first"}, 1.0, True),
        (1, "1,2", {"scorer": "numeric"}, 0.0, False),
        (True, "1", {"scorer": "numeric"}, 0.0, False),
        (5, "no digits", {"scorer": "numeric"}, 0.0, False),
        # json_path
        (
            "Paris",
            '{"data": {"cities": ["Rome", "Paris"]}}',
            {"scorer": "json_path", "path": "$.data.cities[1]"},
            1.0,
            True,
        ),
        (None, '{"ok": true}', {"scorer": "json_path", "path": "ok", "value": True}, 1.0, True),
        (None, '{"ok": 1}', {"scorer": "json_path", "path": "ok", "value": True}, 0.0, False),
        (None, '{"ok": true}', {"scorer": "json_path", "path": "$.missing", "value": True}, 0.0, False),
        (None, "not json", {"scorer": "json_path", "path": "$.a", "value": 1}, 0.0, False),
        # f1
        ("the cat sat on the mat", "the cat sat on the mat", {"scorer": "f1"}, 1.0, True),
        ("the cat sat", "a dog ran", {"scorer": "f1"}, 0.0, False),
        ("red green blue", "red green", {"scorer": "f1"}, 0.8, True),
        ("red green blue", "red green", {"scorer": "f1", "threshold": 0.9}, 0.8, False),
        # levenshtein
        ("kitten", "sitting", {"scorer": "levenshtein"}, 1 - 3 / 7, False),
        ("kitten", "kitten", {"scorer": "levenshtein"}, 1.0, True),
        ("kitten", "kitten", {"scorer": "levenshtein", "threshold": 1.0}, 1.0, True),
        ("hello world", "hello world!", {"scorer": "levenshtein"}, 1 - 1 / 12, True),
        ("", "", {"scorer": "levenshtein"}, 1.0, True),
        ("日本語", "日本", {"scorer": "levenshtein", "threshold": 0.6}, 2 / 3, True),
    ],
)
def test_builtin_custom_scorers(expected, answer, config, score, passes):
    outcome = scorer_for("custom").score(answer, target("custom", expected, config))
    assert outcome.score == pytest.approx(score)
    assert outcome.is_correct is passes
    assert outcome.details["scorer"] == config["scorer"]


def test_a_regex_with_catastrophic_backtracking_fails_the_result_with_the_reason(settings):
    settings.EVAL_REGEX_TIMEOUT_SECONDS = 0.2
    config = {"scorer": "regex", "pattern": "(a|aa)+$"}  # exponential on a long run of a's that fails at the end
    with pytest.raises(ScoringError, match=r"longer than 0.2 s .*catastrophic backtracking") as caught:
        scorer_for("custom").score("a" * 60 + "!", target("custom", None, config))
    assert caught.value.details == {"pattern": "(a|aa)+$", "answer_length": 61}
    # The same pattern on an answer it matches is fine.
    assert scorer_for("custom").score("aaaa", target("custom", None, config)).is_correct is True


def test_a_slow_regex_runs_beside_the_event_loop_not_on_it(settings):
    """The engine awaits ascore on its loop: while a pattern backtracks for its whole time limit, the
    other evaluations' calls must go on (here, a ticker), so the match runs in a thread without the GIL."""
    settings.EVAL_REGEX_TIMEOUT_SECONDS = 0.3
    scorer = scorer_for("custom")
    slow = target("custom", None, {"scorer": "regex", "pattern": "(a|aa)+$"})

    ticks = loop_ticks_while(
        lambda: scorer.ascore("a" * 60 + "!", slow), raises=ScoringError, match=r"longer than 0\.3 s"
    )
    # Held on the loop, the ticker would not tick once in those 0.3 s; beside it, it ticks ~30 times.
    assert ticks >= 5


def test_levenshtein_on_long_answers():
    expected = "the quick brown fox jumps over the lazy dog " * 100  # 4,400 characters
    answer = expected.replace("fox", "cat", 10)  # 30 substitutions
    outcome = scorer_for("custom").score(answer, target("custom", expected, {"scorer": "levenshtein"}))
    assert outcome.details["distance"] == 30
    assert outcome.score == pytest.approx(1 - 30 / len(expected.strip()))
    unrelated = scorer_for("custom").score("x" * 3000, target("custom", "y" * 3000, {"scorer": "levenshtein"}))
    assert (unrelated.details["distance"], unrelated.score) == (3000, 0.0)


def test_every_builtin_custom_scorer_is_registered():
    assert {"contains", "regex", "numeric", "json_path", "f1", "levenshtein"} <= set(custom_scorer_names())


def test_the_decorator_registers_a_project_scorer_and_refuses_a_clash():
    @register_scorer("test_startswith", config_schema={"type": "object", "properties": {}})
    def startswith(answer, expected, config):
        """Passes when the answer starts with the expected text."""
        ok = answer.startswith(expected)
        return ScoreOutcome(score=float(ok), is_correct=ok)

    assert get_custom_scorer("test_startswith").description == "Passes when the answer starts with the expected text."
    outcome = scorer_for("custom").score("Paris!", target("custom", "Par", {"scorer": "test_startswith"}))
    assert outcome.is_correct is True
    # Registering the same function again (a module imported twice) is harmless...
    register_scorer("test_startswith")(startswith)
    # ...but another function under a taken name is refused.
    with pytest.raises(ValueError, match="already registered"):

        @register_scorer("contains")
        def other(answer, expected, config):
            return ScoreOutcome(score=0.0, is_correct=False)


def test_an_unknown_custom_scorer_fails_with_a_reason_instead_of_a_zero():
    with pytest.raises(ScoringError, match="Unknown custom scorer 'nope'"):
        scorer_for("custom").score("x", target("custom", "x", {"scorer": "nope"}))


def test_the_catalog_validates_custom_configs_with_the_scorers_schema():
    from catalog.validation import evaluation_config_errors

    assert evaluation_config_errors("custom", {"scorer": "regex", "pattern": "a+"}) == []
    assert evaluation_config_errors("custom", {"scorer": "regex", "pattern": "("})
    assert evaluation_config_errors("custom", {"scorer": "regex"})
    assert "Unknown scorer" in evaluation_config_errors("custom", {"scorer": "nope"})[0]
