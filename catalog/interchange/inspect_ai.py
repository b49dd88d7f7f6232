"""Inspect AI dataset records (JSON lines or CSV): `input` (a string or chat messages), `target` (a string
or a list), `id`, `metadata`, `choices` (a multiple-choice question, answered with a letter).

Mapping: system messages become the system prompt, the other messages the prompt (one user message as
is, a conversation as "role: text" paragraphs); a single target is an `exact_match` expected answer,
several targets a `contains` scorer that accepts any of them; choices are appended to the prompt as
"A) ...", "B) ..." and the target becomes the letter (`exact_match`). `id` is the title, and
`metadata.category`/`difficulty`/`tags`/`language` fill ours. What `export_tests --format inspect` writes
also carries the test's full definition in `metadata.openbench`, which wins on import (a lossless round
trip).
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from typing import Any, BinaryIO

from catalog.interchange.base import (
    DEFAULT_CATEGORY,
    METADATA_FIELDS,
    LineError,
    ReadOptions,
    Record,
    apply_metadata,
    csv_rows,
    json_lines,
    sniff_first_byte,
    title_from,
)

LETTERS = string.ascii_uppercase
CHOICE_INSTRUCTION = "Answer with the letter of the correct choice only."


def read(stream: BinaryIO, options: ReadOptions) -> Iterator[Record]:
    if sniff_first_byte(stream) == b"{":
        rows: Iterator[tuple[int, dict[str, Any] | LineError]] = json_lines(stream, format_name="Inspect JSONL")
    else:
        rows = ((number, _decode_csv(row)) for number, row in csv_rows(stream, required=("input",)))
    for number, row in rows:
        if isinstance(row, LineError):
            yield Record(line=number, errors=[row])
            continue
        try:
            yield Record(line=number, fields=fields_from_sample(row))
        except ValueError as exc:
            yield Record.refused(number, exc)


def _decode_csv(row: dict[str, str | None]) -> dict[str, Any]:
    # Inspect's CSV cells are text; a list or object (choices, several targets, metadata) is written as JSON.
    decoded: dict[str, Any] = {}
    for key, value in row.items():
        if key is None or value is None or value == "":
            continue
        if key in ("choices", "target", "metadata") and value.strip().startswith(("[", "{")):
            try:
                decoded[key] = json.loads(value)
                continue
            except ValueError:
                pass
        decoded[key] = value
    return decoded


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ValueError(f"{where}: only text content can be imported (no images, audio or tools)")
            parts.append(part["text"])
        return "\n".join(parts)
    raise ValueError(f"{where}: expected text")


def _prompts(value: Any) -> tuple[str, str]:
    """(prompt, system prompt) from `input`."""
    if isinstance(value, str):
        return value, ""
    if not isinstance(value, list) or not value:
        raise ValueError("input: expected a string or a list of chat messages")
    system, turns = [], []
    for position, message in enumerate(value):
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
            raise ValueError(f"input: message {position + 1} needs a role of system, user or assistant")
        text = _text(message.get("content"), f"input[{position}].content")
        if message["role"] == "system":
            system.append(text)
        else:
            turns.append((message["role"], text))
    if len(turns) == 1 and turns[0][0] == "user":
        return turns[0][1], "\n\n".join(system)
    return "\n\n".join(f"{role}: {text}" for role, text in turns), "\n\n".join(system)


def _targets(value: Any) -> list[str]:
    if value is None or value == "" or value == []:
        raise ValueError("target: missing (a test needs an expected answer)")
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str | int | float) and not isinstance(item, bool) for item in values):
        raise ValueError("target: expected a string or a list of strings")
    return [str(item) for item in values]


def fields_from_sample(sample: dict[str, Any]) -> dict[str, Any]:
    """Our fields from one Inspect sample; ValueError("field: why") when it cannot be one test."""
    metadata = sample.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValueError("metadata: expected an object")
    prompt, system_prompt = _prompts(sample.get("input"))
    targets = _targets(sample.get("target")) if "openbench" not in metadata else []
    fields: dict[str, Any] = {"prompt": prompt, "system_prompt": system_prompt, "category": DEFAULT_CATEGORY}
    choices = sample.get("choices")
    if choices is not None and "openbench" not in metadata:
        if not isinstance(choices, list) or not 2 <= len(choices) <= len(LETTERS):
            raise ValueError(f"choices: expected a list of 2 to {len(LETTERS)} answers")
        labels = [_text(choice, "choices") for choice in choices]
        letters = [_choice_letter(target, labels) for target in targets]
        options = "\n".join(f"{LETTERS[i]}) {label}" for i, label in enumerate(labels))
        fields["prompt"] = f"{prompt}\n\n{options}\n\n{CHOICE_INSTRUCTION}"
        targets = letters
    if len(targets) == 1:
        fields.update(expected_output=targets[0], evaluation_type="exact_match")
    elif targets:
        fields.update(
            expected_output=targets[0],
            evaluation_type="custom",
            evaluation_config={"scorer": "contains", "values": targets, "mode": "any"},
        )
    identifier = sample.get("id")
    fields["title"] = str(identifier)[:200] if identifier not in (None, "") else title_from(prompt, "Imported test")
    rest = {key: value for key, value in metadata.items() if key not in (*METADATA_FIELDS, "openbench")}
    if rest:
        fields["description"] = "Inspect metadata: " + json.dumps(rest, ensure_ascii=False, sort_keys=True)
    apply_metadata(fields, metadata)
    return fields


def _choice_letter(target: str, labels: list[str]) -> str:
    letter = target.strip().upper()
    if len(letter) == 1 and letter in LETTERS[: len(labels)]:
        return letter
    if target in labels:
        return LETTERS[labels.index(target)]
    raise ValueError(f"target: {target!r} is neither a choice's letter nor one of the choices")
