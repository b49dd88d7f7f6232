"""Tests out of OpenBench (SPEC §14): our own JSON lines, Inspect AI samples and a promptfoo tests YAML,
written one test at a time. The foreign formats say what they can in their own terms (an Inspect target,
a promptfoo assertion) and carry the test's full definition in `metadata.openbench`, so that importing an
export gives back the same tests."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import yaml
from django.core.serializers.json import DjangoJSONEncoder

from catalog.models import TestCase
from catalog.services import EDITABLE_FIELDS

EXPORT_FORMATS = ("jsonl", "inspect", "promptfoo")
PROMPTFOO_TEMPLATE = "{{prompt}}"


def native_record(test_case: TestCase) -> dict[str, Any]:
    """The test's own fields and tag names, as import_tests --format jsonl reads them."""
    record = {name: getattr(test_case, name) for name in EDITABLE_FIELDS}
    record["tags"] = sorted(tag.name for tag in test_case.tags.all())
    return record


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, cls=DjangoJSONEncoder)


def inspect_sample(test_case: TestCase) -> dict[str, Any]:
    own = native_record(test_case)
    prompt: Any = test_case.prompt
    if test_case.system_prompt:
        prompt = [{"role": "system", "content": test_case.system_prompt}, {"role": "user", "content": test_case.prompt}]
    sample: dict[str, Any] = {"id": str(test_case.pk), "input": prompt}
    if test_case.expected_output is not None:
        sample["target"] = _text(test_case.expected_output)
    sample["metadata"] = {
        "category": test_case.category,
        "difficulty": test_case.difficulty,
        "tags": own["tags"],
        "openbench": own,
    }
    return sample


def _assertions(test_case: TestCase) -> list[dict[str, Any]]:
    config = test_case.evaluation_config or {}
    kind = test_case.evaluation_type
    if kind == TestCase.EvaluationType.EXACT_MATCH:
        return [{"type": "equals", "value": test_case.expected_output}]
    if kind == TestCase.EvaluationType.STRUCTURED_MATCH:
        return [{"type": "is-json", **({"value": test_case.output_schema} if test_case.output_schema else {})}]
    if kind == TestCase.EvaluationType.LLM_JUDGE:
        rubric = config.get("rubric") or f"Agrees with the reference answer: {_text(test_case.expected_output)}"
        return [{"type": "llm-rubric", "value": rubric}]
    scorer = config.get("scorer")
    if scorer == "regex":
        return [{"type": "regex", "value": config["pattern"]}]
    if scorer == "contains" and config.get("mode", "all") == "all":
        kind_name = "contains" if config.get("case_sensitive") else "icontains"
        return [
            {"type": kind_name, "value": _text(value)} for value in config.get("values") or [test_case.expected_output]
        ]
    return []  # a scorer promptfoo has no assertion for: metadata.openbench still carries it


def promptfoo_test(test_case: TestCase) -> dict[str, Any]:
    test: dict[str, Any] = {"description": test_case.title, "vars": {"prompt": test_case.prompt}}
    assertions = _assertions(test_case)
    if assertions:
        test["assert"] = assertions
    test["metadata"] = {"category": test_case.category, "openbench": native_record(test_case)}
    return test


def _dump_yaml(value: Any) -> str:
    # JSON first: our JSON fields hold only JSON values, and the YAML dumper then sees plain types only.
    plain = json.loads(json.dumps(value, cls=DjangoJSONEncoder))
    return yaml.safe_dump(plain, allow_unicode=True, sort_keys=False, default_flow_style=False, width=1_000_000)


def export_chunks(tests: Iterable[TestCase], fmt: str) -> Iterator[str]:
    """The export as text chunks, one test at a time (`tests` should be an iterator() with tags prefetched)."""
    if fmt == "promptfoo":
        yield "# promptfoo tests exported by OpenBench; metadata.openbench is the full test definition.\n"
        yield _dump_yaml({"prompts": [PROMPTFOO_TEMPLATE]}) + "tests:\n"
        empty = True
        for test_case in tests:
            empty = False
            yield _dump_yaml([promptfoo_test(test_case)])
        if empty:
            yield "  []\n"
        return
    make = native_record if fmt == "jsonl" else inspect_sample
    for test_case in tests:
        yield json.dumps(make(test_case), ensure_ascii=False, cls=DjangoJSONEncoder) + "\n"
