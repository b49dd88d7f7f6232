"""Exporting tests (SPEC §14) and reading the export back: every evaluation type, field by field."""

from __future__ import annotations

import io
import json

import pytest
import yaml
from django.core.management import call_command

from catalog.interchange.importing import test_cases_import
from catalog.models import Tag, TestCase
from catalog.services import EDITABLE_FIELDS, test_case_approve, test_case_create

pytestmark = pytest.mark.django_db

SPECS = [
    {
        "title": "Exact",
        "category": "geo",
        "prompt": "Capital of France? {{not a var}}",
        "system_prompt": "Answer in one word.",
        "expected_output": "Paris",
        "evaluation_type": "exact_match",
        "evaluation_config": {"case_sensitive": False, "strip": True},
        "difficulty": "easy",
        "language": "fr",
        "timeout_seconds": 17,
        "is_public": False,
        "description": "=cmd|' /C calc'!A0",
        "tags": ["capitals", "europe"],
    },
    {
        "title": "Structured",
        "category": "json",
        "prompt": "Give an object with a list.",
        "expected_output": {"a": [1, 2.5, None], "b": {"c": True}},
        "output_schema": {"type": "object", "required": ["a"]},
        "evaluation_type": "structured_match",
        "evaluation_config": {"ignore_array_order": True, "float_tolerance": 0.01, "pass_threshold": 0.9},
        "difficulty": "hard",
    },
    {
        "title": "Judge",
        "category": "writing",
        "prompt": "Write a haiku about rain.",
        "expected_output": None,
        "evaluation_type": "llm_judge",
        "evaluation_config": {"rubric": "5-7-5 syllables about rain", "pass_threshold": 0.7},
    },
    {
        "title": "Regex",
        "category": "format",
        "prompt": "Give a date.",
        "expected_output": None,
        "evaluation_type": "custom",
        "evaluation_config": {"scorer": "regex", "pattern": r"^\d{4}-\d{2}-\d{2}$", "ignore_case": True},
    },
    {
        "title": "Contains",
        "category": "format",
        "prompt": "Name two colours.",
        "expected_output": "red",
        "evaluation_type": "custom",
        "evaluation_config": {"scorer": "contains", "values": ["red", "blue"], "case_sensitive": True},
        "tags": ["colours"],
    },
    {
        "title": "Numeric",
        "category": "math",
        "prompt": "Pi to two places?",
        "expected_output": 3.14,
        "evaluation_type": "custom",
        "evaluation_config": {"scorer": "numeric", "abs_tolerance": 0.005},
    },
]


def snapshot() -> dict[str, dict]:
    rows = {}
    for test_case in TestCase.objects.prefetch_related("tags"):
        fields = {name: getattr(test_case, name) for name in EDITABLE_FIELDS}
        fields["tags"] = sorted(tag.name for tag in test_case.tags.all())
        rows[test_case.title] = fields
    return rows


@pytest.fixture
def catalog_tests(moderator):
    for spec in SPECS:
        test_case = test_case_create(author=moderator, **spec)
        test_case_approve(test_case=test_case, moderator=moderator)
    test_case_create(author=moderator, **{**SPECS[0], "title": "Still pending"})


@pytest.mark.parametrize("fmt", ["jsonl", "inspect", "promptfoo"])
def test_export_then_import_gives_back_the_same_tests(tmp_path, catalog_tests, moderator, fmt):
    before = snapshot()
    del before["Still pending"]  # --status approved is the default
    target = tmp_path / f"tests.{fmt}"
    err = io.StringIO()
    call_command("export_tests", format=fmt, output=target, stderr=err)
    assert f"Exported {len(SPECS)} test(s)." in err.getvalue()
    TestCase.objects.all().delete()
    Tag.objects.all().delete()
    with target.open("rb") as stream:
        report = test_cases_import(stream=stream, fmt=fmt, author=moderator)
    assert (report.created, report.failed, report.errors) == (len(SPECS), 0, [])
    after = snapshot()
    assert after.keys() == before.keys()
    for title, fields in before.items():
        for name, value in fields.items():
            assert after[title][name] == value, (title, name)


def test_inspect_export_speaks_inspect(tmp_path, catalog_tests):
    target = tmp_path / "tests.jsonl"
    call_command("export_tests", format="inspect", output=target, stderr=io.StringIO())
    samples = {json.loads(line)["metadata"]["openbench"]["title"]: json.loads(line) for line in target.open()}
    exact = samples["Exact"]
    assert exact["input"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Capital of France? {{not a var}}"},
    ]
    assert exact["target"] == "Paris"
    assert exact["metadata"]["tags"] == ["capitals", "europe"]
    assert samples["Numeric"]["target"] == "3.14"


def test_promptfoo_export_speaks_promptfoo(tmp_path, catalog_tests):
    target = tmp_path / "tests.yaml"
    call_command("export_tests", format="promptfoo", status="all", output=target, stderr=io.StringIO())
    document = yaml.safe_load(target.read_text())
    assert document["prompts"] == ["{{prompt}}"]
    tests = {test["description"]: test for test in document["tests"]}
    assert len(tests) == len(SPECS) + 1
    assert tests["Exact"]["assert"] == [{"type": "equals", "value": "Paris"}]
    assert tests["Structured"]["assert"] == [{"type": "is-json", "value": {"type": "object", "required": ["a"]}}]
    assert tests["Judge"]["assert"] == [{"type": "llm-rubric", "value": "5-7-5 syllables about rain"}]
    assert tests["Regex"]["assert"][0]["type"] == "regex"
    assert [a["value"] for a in tests["Contains"]["assert"]] == ["red", "blue"]
    assert "assert" not in tests["Numeric"]  # promptfoo has no such assertion; metadata.openbench keeps it


def test_an_empty_promptfoo_export_is_still_a_promptfoo_file(tmp_path, db):
    target = tmp_path / "empty.yaml"
    call_command("export_tests", format="promptfoo", output=target, stderr=io.StringIO())
    assert yaml.safe_load(target.read_text())["tests"] == []
