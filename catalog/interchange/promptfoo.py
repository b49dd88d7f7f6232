"""promptfoo test files (YAML): each test's `vars` fill a prompt template, its `assert` becomes our
evaluation.

The template is `--prompt-template` (API: `prompt_template`) when given, else the file's only `prompts:`
entry (a string or `{raw: ...}`); `{{ name }}` is replaced by the var (other template syntax is refused).
Assertions: `equals` → exact_match (case-sensitive); `contains` / `icontains` → the `contains` scorer (one
or several, all required); `regex` → the `regex` scorer; `is-json` / `contains-json` → structured_match
that accepts any JSON object (the assertion's value, when given, is the output schema); `llm-rubric` →
llm_judge with that rubric. Any other type is an error on that test. `description` is the title,
`metadata` may give category, difficulty, tags, and `metadata.openbench` (written by `export_tests --format
promptfoo`) the test's full definition, which wins. Nothing named by `file://` is ever read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

import yaml

from catalog.interchange.base import (
    DEFAULT_CATEGORY,
    ReadOptions,
    Record,
    apply_metadata,
    expanded_limit,
    file_error,
    title_from,
)

_VAR = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")
_ANY_TAG = re.compile(r"\{\{|\{%|\{#")
_MAX_NODES = 1_000_000


def read(stream: BinaryIO, options: ReadOptions) -> Iterator[Record]:
    root = _compose(stream)
    tests_node, template, default = _layout(root, options)
    # Filling vars multiplies text (a defaultTest var used by every test, or a var used many times by the
    # template): what the templates produce is capped (base.expanded_limit), counted before each text is built.
    budget = _Budget(expanded_limit())
    for position, node in enumerate(tests_node.value, 1):
        line = node.start_mark.line + 1
        try:
            test = _constructor().construct_document(node)
            yield Record(line=line, index=position, fields=_fields(test, template, default, budget))
        except ValueError as exc:
            yield Record.refused(line, exc, index=position)


def _constructor() -> yaml.SafeLoader:
    return yaml.SafeLoader("")


def _compose(stream: BinaryIO) -> yaml.Node:
    try:
        text = stream.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise file_error("The file is not UTF-8 text; a promptfoo file is YAML.") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise file_error(f"YAML syntax error at {where}{exc.problem or exc.context}.") from None
    except yaml.YAMLError as exc:
        raise file_error(f"Not a YAML file: {exc}.") from None
    if root is None:
        raise file_error("The file is empty: a promptfoo file is a YAML list of tests or a mapping with `tests:`.")
    _refuse_aliases(root)
    return root


def _refuse_aliases(root: yaml.Node) -> None:
    # An alias makes one node appear many times: nested, a few lines expand to billions of values.
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            raise file_error(f"Line {node.start_mark.line + 1}: YAML anchors and aliases are not supported here.")
        seen.add(id(node))
        if len(seen) > _MAX_NODES:
            raise file_error("The YAML document is too large.")
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))


def _mapping_item(node: yaml.MappingNode, name: str) -> yaml.Node | None:
    return next((value for key, value in node.value if isinstance(key, yaml.ScalarNode) and key.value == name), None)


def _plain(node: yaml.Node | None) -> Any:
    return None if node is None else _constructor().construct_document(node)


def _layout(root: yaml.Node, options: ReadOptions) -> tuple[yaml.SequenceNode, str, dict[str, Any]]:
    """(the tests, the prompt template, defaultTest) or the reason the file is not a promptfoo file."""
    if isinstance(root, yaml.SequenceNode):
        tests, prompts, default = root, None, None
    elif isinstance(root, yaml.MappingNode):
        found = _mapping_item(root, "tests")
        if found is None:
            raise file_error("No `tests:` in the file: a promptfoo file is a list of tests or has `tests:`.")
        if not isinstance(found, yaml.SequenceNode):
            raise file_error(f"Line {found.start_mark.line + 1}: `tests:` must be a list (files are not read).")
        tests, prompts, default = (
            found,
            _plain(_mapping_item(root, "prompts")),
            _plain(_mapping_item(root, "defaultTest")),
        )
    else:
        raise file_error("Not a promptfoo file: expected a list of tests or a mapping with `tests:`.")
    template = options.prompt_template or _template_from(prompts)
    if not template:
        raise file_error(
            "No prompt template: give one (prompt_template) or one `prompts:` entry.", field="prompt_template"
        )
    if _ANY_TAG.search(_VAR.sub("", template)):
        raise file_error("The prompt template may use only {{ name }} placeholders.", field="prompt_template")
    if default is not None and not isinstance(default, dict):
        raise file_error("`defaultTest:` must be a mapping.")
    return tests, template, default or {}


def _template_from(prompts: Any) -> str | None:
    if prompts is None:
        return None
    entries = prompts if isinstance(prompts, list) else [prompts]
    if len(entries) != 1:
        raise file_error("The file has several prompts; choose one with prompt_template.", field="prompts")
    entry = entries[0]
    raw = entry.get("raw") if isinstance(entry, dict) else entry
    if not isinstance(raw, str) or not raw.strip():
        raise file_error("The prompt must be a string or {raw: ...}.", field="prompts")
    if raw.strip().startswith("file://"):
        raise file_error("Prompts in other files are not read; give the template itself.", field="prompts")
    return raw


class _Budget:
    """The characters a file's templates may still produce (UTF-8 takes at least one byte for each)."""

    def __init__(self, limit: int) -> None:
        self.limit = self.left = limit

    def spend(self, size: int) -> None:
        if size > self.left:
            raise file_error(
                f"Filled in with their vars, the tests would hold more than {self.limit} characters of text "
                "(a var used by every test or many times in a template?); split the file."
            )
        self.left -= size


def render(template: str, variables: dict[str, Any], where: str, budget: _Budget) -> str:
    """The template with its {{ name }} filled in; its size is spent from `budget` before it is built."""
    texts: dict[str, str] = {}
    pieces: list[str] = []
    end = 0
    for match in _VAR.finditer(template):
        name = match.group(1)
        if name not in variables:
            raise ValueError(f"vars.{name}: missing (the template {where} uses it)")
        if name not in texts:
            item = variables[name]
            texts[name] = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
        pieces += (template[end : match.start()], texts[name])
        end = match.end()
    pieces.append(template[end:])
    budget.spend(sum(map(len, pieces)))
    return "".join(pieces)


def _vars(test: dict[str, Any], default: dict[str, Any]) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    for where, value in (("defaultTest.vars", default.get("vars")), ("vars", test.get("vars"))):
        if value is None:
            continue
        if not isinstance(value, dict) or not all(isinstance(name, str) for name in value):
            raise ValueError(f"{where}: expected a mapping of names to values")
        variables.update(value)
    return variables


def _fields(test: Any, template: str, default: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    if not isinstance(test, dict):
        raise ValueError("test: expected a mapping with vars and assert")
    variables = _vars(test, default)
    prompt = render(template, variables, "prompt", budget)
    metadata = test.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValueError("metadata: expected a mapping")
    description = test.get("description")
    fields: dict[str, Any] = {
        "prompt": prompt,
        "category": DEFAULT_CATEGORY,
        "title": str(description)[:200] if description else title_from(prompt, "Imported test"),
    }
    if "openbench" not in metadata:
        asserts = [*(default.get("assert") or []), *(test.get("assert") or [])]
        fields.update(_evaluation(asserts, variables, budget))
    apply_metadata(fields, metadata)
    return fields


def _evaluation(asserts: Any, variables: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    if not isinstance(asserts, list) or not asserts:
        raise ValueError("assert: a test needs an assertion to become an evaluation")
    kinds = []
    for position, item in enumerate(asserts):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise ValueError(f"assert[{position}]: expected a mapping with a type")
        if item["type"] not in _MAPPERS:
            raise ValueError(
                f"assert[{position}].type: {item['type']!r} cannot be imported (supported: {', '.join(_MAPPERS)})"
            )
        kinds.append(item["type"])
    values = [_value(item.get("value"), variables, position, budget) for position, item in enumerate(asserts)]
    if len(asserts) > 1:
        if set(kinds) in ({"contains"}, {"icontains"}) and all(isinstance(v, str) for v in values):
            return {
                "expected_output": values[0],
                "evaluation_type": "custom",
                "evaluation_config": {"scorer": "contains", "values": values, "case_sensitive": kinds[0] == "contains"},
            }
        raise ValueError("assert: only one assertion per test can be imported (or several contains/icontains)")
    return _MAPPERS[kinds[0]](values[0])


def _value(value: Any, variables: dict[str, Any], position: int, budget: _Budget) -> Any:
    if isinstance(value, str):
        if value.strip().startswith("file://"):
            raise ValueError(f"assert[{position}].value: values in other files are not read")
        return render(value, variables, f"of assert[{position}]", budget)
    return value


def _needs_text(kind: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"assert[0].value: {kind} needs a text value")
    return value


def _equals(value: Any) -> dict[str, Any]:
    if value is None:
        raise ValueError("assert[0].value: equals needs a value")
    return {"expected_output": value, "evaluation_type": "exact_match", "evaluation_config": {"case_sensitive": True}}


def _contains(case_sensitive: bool) -> Any:
    def mapper(value: Any) -> dict[str, Any]:
        text = _needs_text("contains", value)
        config = {"scorer": "contains", "case_sensitive": case_sensitive}
        return {"expected_output": text, "evaluation_type": "custom", "evaluation_config": config}

    return mapper


def _regex(value: Any) -> dict[str, Any]:
    pattern = _needs_text("regex", value)
    return {"evaluation_type": "custom", "evaluation_config": {"scorer": "regex", "pattern": pattern}}


def _json(value: Any) -> dict[str, Any]:
    if value is not None and not isinstance(value, dict):
        raise ValueError("assert[0].value: a JSON Schema object (or nothing)")
    return {
        "expected_output": {},
        "output_schema": value,
        "evaluation_type": "structured_match",
        "evaluation_config": {"ignore_extra_fields": True},
    }


def _rubric(value: Any) -> dict[str, Any]:
    rubric = _needs_text("llm-rubric", value)
    return {"evaluation_type": "llm_judge", "evaluation_config": {"rubric": rubric}}


_MAPPERS = {
    "equals": _equals,
    "contains": _contains(True),
    "icontains": _contains(False),
    "regex": _regex,
    "is-json": _json,
    "contains-json": _json,
    "llm-rubric": _rubric,
}
