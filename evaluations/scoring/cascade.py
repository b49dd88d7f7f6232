"""Cascade scoring for `llm_judge` tests (SPEC §13): a cheap match decides before the judge is asked.

With `evaluation_config.cascade: true`, an answer that matches the expected output is correct (score 1)
without a judge call; any other answer goes to the judge. The cascade only ever says "correct": a miss
proves nothing (the answer may say the same in other words), so it never fails an answer on its own.

"Normalised" is exact_match's default normalisation (`normalise_text`): Unicode NFC, runs of whitespace
collapsed to one space, stripped, case-folded. Then, in this order:

* `exact`: the normalised answer equals the normalised expected text. An expected output that is a JSON
  value other than a string is compared as exact_match compares it (the answer read as JSON, whole,
  fenced or embedded; strings inside normalised the same way).
* `contains` (text expected outputs only): the normalised expected text occurs in the normalised answer
  as a whole phrase, i.e. not glued to a letter or digit on either side where the expected text itself
  starts or ends with one. So "paris" is found in "It is Paris.", but "4" is not found in "14" nor
  "cat" in "category".

An expected text that normalises to "" decides nothing (it would be "contained" in every answer).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from evaluations.scoring.base import ScoreOutcome, ScoringTarget
from evaluations.scoring.exact import ExactMatchScorer, normalise_text

# What `evaluation_details.decided_by` may say: the cheap checks, then the judge.
DECIDED_BY_CASCADE = ("exact", "contains")
DECIDED_BY_JUDGE = "judge"


def cascade_enabled(target: ScoringTarget) -> bool:
    return target.evaluation_config.get("cascade") is True and target.expected_output is not None


def contains_phrase(haystack: str, needle: str) -> bool:
    """Whether `needle` occurs in `haystack` not glued to a letter or digit at an edge where it has one."""
    if not needle:
        return False
    start = haystack.find(needle)
    while start != -1:
        end = start + len(needle)
        open_before = start == 0 or not (haystack[start - 1].isalnum() and needle[0].isalnum())
        open_after = end == len(haystack) or not (haystack[end].isalnum() and needle[-1].isalnum())
        if open_before and open_after:
            return True
        start = haystack.find(needle, start + 1)
    return False


def cascade_decision(answer: str, target: ScoringTarget) -> ScoreOutcome | None:
    """The outcome when a cheap check decides (always correct, score 1); None when the judge must be asked."""
    expected: Any = target.expected_output
    if expected is None or (isinstance(expected, str) and not normalise_text(expected)):
        return None
    # exact_match's defaults, whatever llm_judge options the test has (they mean nothing to exact_match).
    exact = ExactMatchScorer().score(answer, replace(target, evaluation_config={}))
    if exact.is_correct:
        return ScoreOutcome(
            score=1.0,
            is_correct=True,
            details={**exact.details, "decided_by": "exact"},
            parsed_output=exact.parsed_output,
        )
    if isinstance(expected, str):
        want, got = normalise_text(expected), normalise_text(answer)
        if contains_phrase(got, want):
            return ScoreOutcome(
                score=1.0,
                is_correct=True,
                details={"decided_by": "contains", "mode": "text", "expected": want},
            )
    return None
