"""A judge model votes in the arena (`run_pairwise`): each pair is judged in both orders, so a judge's liking
for the first (or second) position cancels out; when the two verdicts disagree, the vote is a tie.

The judge is reached through its provider adapter, like the `llm_judge` scorer's judge; its votes are stored
with the judge as voter kind and never mix with people's ratings.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from arena.models import Battle, Vote, VoterKind
from arena.selectors import arena_cache_invalidate
from arena.services import answered, battle_build, pair_key, vote_record
from catalog.models import LLMModel, TestCase
from providers.base import GenerationRequest, ProviderError
from providers.json_answers import extract_json
from providers.registry import provider_for_model

PAIRWISE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"winner": {"type": "string", "enum": ["a", "b", "tie"]}, "reasoning": {"type": "string"}},
    "required": ["winner", "reasoning"],
    "additionalProperties": False,
}

PAIRWISE_SYSTEM_PROMPT = (
    "You are an impartial judge comparing two answers by AI assistants to the same task. Judge which answer "
    "serves the task better: correctness first, then helpfulness and clarity. Ignore the answers' order and "
    'length as such. Reply with JSON only, exactly {"winner": "a" | "b" | "tie", "reasoning": "<one short '
    'paragraph>"}.'
)
SWAP = {"a": "b", "b": "a", "tie": "tie"}


class PairwiseError(Exception):
    """The judge gave no usable verdict; the reason is ours (never the vendor's body)."""


@dataclass(frozen=True)
class Verdict:
    winner: str
    reasoning: str


def pairwise_prompt(test_case: TestCase, first: str, second: str) -> str:
    parts = [f"## Task\n{test_case.prompt}"]
    if test_case.system_prompt:
        parts.append(f"## System prompt the assistants had\n{test_case.system_prompt}")
    parts.append(f"## Answer A\n{first}")
    parts.append(f"## Answer B\n{second}")
    parts.append('Which answer is better? Reply with JSON only: {"winner": "a" | "b" | "tie", "reasoning": ...}.')
    return "\n\n".join(parts)


def pairs_to_judge(
    *, judge: LLMModel, test_ids: Sequence[Any] | None = None, limit: int, seed: int | None = None
) -> list[tuple[Any, tuple[str, str]]]:
    """Up to `limit` (test, unordered model pair) the judge has not voted on yet, spread over pairs: each pick
    takes the pair the judge voted on least so far. The judge's own answers are left out (a judge tends to
    prefer its own)."""
    rng = random.Random(seed)
    rows = answered().exclude(model=judge)
    if test_ids is not None:
        rows = rows.filter(test_case_id__in=test_ids)
    by_test: dict[Any, list[str]] = {}
    for test_id, model_id in rows.values_list("test_case_id", "model_id"):
        by_test.setdefault(test_id, []).append(str(model_id))
    done = {
        (test_id, pair_key(a, b))
        for test_id, a, b in Vote.objects.counted(kind=VoterKind.JUDGE)
        .filter(judge_model=judge)
        .values_list("test_case_id", "model_a_id", "model_b_id")
    }
    votes: Counter[tuple[str, str]] = Counter(pair for _, pair in done)
    open_tests: dict[tuple[str, str], list[Any]] = {}
    for test_id, model_ids in by_test.items():
        ordered = sorted(model_ids)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                if (test_id, (a, b)) not in done:
                    open_tests.setdefault((a, b), []).append(test_id)
    for tests in open_tests.values():
        rng.shuffle(tests)
    chosen: list[tuple[Any, tuple[str, str]]] = []
    while len(chosen) < limit and open_tests:
        fewest = min(votes[pair] for pair in open_tests)
        pair = rng.choice(sorted(p for p in open_tests if votes[p] == fewest))
        chosen.append((open_tests[pair].pop(), pair))
        votes[pair] += 1
        if not open_tests[pair]:
            del open_tests[pair]
    return chosen


def combine(in_order: str, swapped: str) -> str:
    """The vote from the verdict on (A, B) and the verdict on (B, A), the latter mapped back to A/B: when they
    disagree, the judge's preference followed the position, not the answer, so it is a tie."""
    back = SWAP[swapped]
    return in_order if in_order == back else "tie"


async def _ask(judge: LLMModel, provider: Any, prompt: str, timeout: float) -> Verdict:
    request = GenerationRequest(
        model_id=judge.provider_model_id,
        prompt=prompt,
        system_prompt=PAIRWISE_SYSTEM_PROMPT,
        temperature=0.0,
        max_tokens=512,
        seed=judge.default_seed,
        timeout=timeout,
        json_schema=PAIRWISE_SCHEMA if (judge.supports_structured_output or judge.supports_json_mode) else None,
        reference_answer={"winner": "tie", "reasoning": "Both answers serve the task equally well."},
        model_name=judge.name,
    )
    try:
        response = await asyncio.wait_for(provider.generate(request), timeout=timeout)
    except ProviderError as exc:
        raise PairwiseError(f"the judge failed ({exc.kind}): {exc.message}") from exc
    except TimeoutError as exc:
        raise PairwiseError(f"the judge did not answer within {timeout:g} s") from exc
    verdict = response.parsed if isinstance(response.parsed, dict) else None
    if verdict is None:
        extracted = extract_json(response.text)
        verdict = extracted.value if extracted.found and isinstance(extracted.value, dict) else None
    winner = str(verdict.get("winner", "")).strip().lower() if verdict else ""
    if winner not in SWAP:
        raise PairwiseError('the judge gave no verdict of the form {"winner": "a" | "b" | "tie"}')
    return Verdict(winner=winner, reasoning=str(verdict.get("reasoning", ""))[:1000] if verdict else "")


async def _judge_all(
    judge: LLMModel, battles: Sequence[Battle], prompts: Sequence[tuple[str, str]], *, timeout: float, concurrency: int
) -> list[tuple[Verdict, Verdict] | PairwiseError]:
    provider = provider_for_model(judge)
    slots = asyncio.Semaphore(concurrency)

    async def one(prompt_pair: tuple[str, str]) -> tuple[Verdict, Verdict] | PairwiseError:
        async with slots:
            try:
                first, second = await asyncio.gather(*(_ask(judge, provider, p, timeout) for p in prompt_pair))
            except PairwiseError as exc:
                return exc
            return first, second

    try:
        return list(await asyncio.gather(*(one(p) for p in prompts)))
    finally:
        await provider.aclose()


@dataclass
class PairwiseReport:
    judged: int = 0
    ties_from_disagreement: int = 0
    failures: list[str] | None = None


def run_pairwise(
    *,
    judge: LLMModel,
    test_ids: Sequence[Any] | None = None,
    limit: int = 50,
    timeout: float = 60.0,
    concurrency: int = 4,
) -> PairwiseReport:
    """Let `judge` vote on up to `limit` pairs it has not judged, each in both orders; store the votes."""
    picks = pairs_to_judge(judge=judge, test_ids=test_ids, limit=limit)
    tests = TestCase.objects.in_bulk([test_id for test_id, _ in picks])
    battles: list[Battle] = []
    prompts: list[tuple[str, str]] = []
    for test_id, pair in picks:
        battle = battle_build(test_id=test_id, pair=pair, kind=VoterKind.JUDGE)
        battle.judge_model = judge
        battles.append(battle)
        test_case = tests[test_id]
        prompts.append(
            (
                pairwise_prompt(test_case, battle.answer_a, battle.answer_b),
                pairwise_prompt(test_case, battle.answer_b, battle.answer_a),
            )
        )
    outcomes = asyncio.run(_judge_all(judge, battles, prompts, timeout=timeout, concurrency=concurrency))
    report = PairwiseReport(failures=[])
    with transaction.atomic():
        for battle, outcome in zip(battles, outcomes, strict=True):
            if isinstance(outcome, PairwiseError):
                report.failures.append(str(outcome))  # type: ignore[union-attr]
                continue
            in_order, swapped = outcome
            winner = combine(in_order.winner, swapped.winner)
            battle.save()
            vote_record(
                battle=battle,
                winner=winner,
                details={
                    "in_order": {"winner": in_order.winner, "reasoning": in_order.reasoning},
                    "swapped": {"winner": swapped.winner, "reasoning": swapped.reasoning},
                    "agreed": in_order.winner == SWAP[swapped.winner],
                },
            )
            report.judged += 1
            report.ties_from_disagreement += in_order.winner != SWAP[swapped.winner]
        if report.judged:
            transaction.on_commit(arena_cache_invalidate)
    return report
