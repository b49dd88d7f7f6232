"""`exact_match`: the answer equals the expected output after configurable normalisation."""

from __future__ import annotations

import re
import unicodedata
from typing import Any, ClassVar

from evaluations.scoring.base import ScoreOutcome, Scorer, ScoringTarget
from evaluations.scoring.extraction import json_equal
from providers.json_answers import extract_json

_WHITESPACE = re.compile(r"\s+")


def normalise_text(text: str, *, case_sensitive: bool = False, strip: bool = True, collapse: bool = True) -> str:
    """NFC-normalised text, optionally stripped, whitespace-collapsed and case-folded."""
    # NFC first, so "é" typed as e + combining accent equals the precomposed "é".
    text = unicodedata.normalize("NFC", text)
    if collapse:
        text = _WHITESPACE.sub(" ", text)
    if strip:
        text = text.strip()
    if not case_sensitive:
        text = text.casefold()
    return text


class ExactMatchScorer(Scorer):
    """Text compared after normalisation (default: stripped, whitespace collapsed, case-insensitive).

    When the expected output is a JSON value other than a string, the answer is read as JSON
    (whole, fenced or embedded) and compared as JSON; strings inside are normalised the same way.
    """

    evaluation_type: ClassVar[str] = "exact_match"

    def score(self, answer: str, target: ScoringTarget) -> ScoreOutcome:
        config = target.evaluation_config
        options = {
            "case_sensitive": bool(config.get("case_sensitive", False)),
            "strip": bool(config.get("strip", True)),
            "collapse": bool(config.get("collapse_whitespace", True)),
        }
        expected = target.expected_output
        if isinstance(expected, str):
            got, want = normalise_text(answer, **options), normalise_text(expected, **options)
            passed = got == want
            return ScoreOutcome(
                score=1.0 if passed else 0.0,
                is_correct=passed,
                details={"mode": "text", "expected": want, "actual": got, "normalisation": options},
            )

        extracted = extract_json(answer)
        if not extracted.found:
            return ScoreOutcome(
                score=0.0,
                is_correct=False,
                details={"mode": "json", "expected": expected, "error": "The answer contains no JSON value."},
            )
        got_value = _normalise_json(extracted.value, options)
        passed = json_equal(got_value, _normalise_json(expected, options))
        return ScoreOutcome(
            score=1.0 if passed else 0.0,
            is_correct=passed,
            details={"mode": "json", "expected": expected, "actual": extracted.value, "source": extracted.source},
            parsed_output=extracted.value,
        )


def _normalise_json(value: Any, options: dict[str, bool]) -> Any:
    if isinstance(value, str):
        return normalise_text(value, **options)
    if isinstance(value, list):
        return [_normalise_json(item, options) for item in value]
    if isinstance(value, dict):
        return {key: _normalise_json(item, options) for key, item in value.items()}
    return value
