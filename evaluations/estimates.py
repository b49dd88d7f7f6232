"""What a run will cost before it starts (SPEC §11 "Estimate before running").

Per (test, model) pair, repeated `repeats` times:

* input tokens: the provider's own token counter where it has one (Anthropic, Gemini: exact, free); for OpenAI
  models (and OpenAI-compatible servers serving them) tiktoken's encodings, counted on this machine
  (providers/tokenizers.py); else the adapters' approximation (about four characters a token). A counter is called
  once per test and provider endpoint (the first chosen model of that endpoint stands for the others), at most
  COUNT_CONCURRENCY at a time, and only for ESTIMATE_COUNT_TIMEOUT seconds in all; a count that fails or is
  not done by then falls back to the approximation. Vendor counts are cached (COUNT_CACHE_SECONDS) by endpoint,
  model and prompt, so estimating the same tests again calls no vendor.
* output tokens: the mean of the model's past completed answers to the test, else the model's `max_tokens`
  (an upper bound: the model may stop earlier).
* cost: the model's prices (providers.pricing.cost_for).
* judge (`llm_judge` tests): the judge model's prices for the judge prompt (the task, the reference, the rubric
  and an answer of the estimated length; approximated) and a JUDGE_VERDICT_TOKENS verdict.

Cached answers (EVAL_CACHE) are not subtracted: the estimate is what the run costs without them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db.models import Avg

from catalog.models import LLMModel, TestCase
from evaluations.models import TestResult
from evaluations.runner.planning import build_request, model_parameters
from evaluations.scoring import ScoringTarget
from evaluations.scoring.judge import JUDGE_SYSTEM_PROMPT, build_judge_prompt, judge_model_name, resolve_judge_model
from providers.base import GenerationRequest, Provider, Usage
from providers.pricing import COST_QUANTUM, cost_for
from providers.registry import adapter_key, provider_for_model
from providers.tokenizers import OPENAI_FORMAT_PROVIDERS, UncountableText, count_tokens, local_encoding_name

logger = logging.getLogger(__name__)

# More evaluations than this in one estimate is refused by the API (400).
MAX_ESTIMATE_EVALUATIONS = 10_000
# Vendor counting calls in flight at once.
COUNT_CONCURRENCY = 8
# A verdict is a short JSON object ({score, pass, reasoning}); the judge may write up to 512 tokens.
JUDGE_VERDICT_TOKENS = 150
# How long a vendor's count of a prompt is reused (a prompt's count does not change).
COUNT_CACHE_SECONDS = 24 * 3600
# Approximate characters per token, the adapters' rule for vendors without a counter.
CHARS_PER_TOKEN = 4
# Providers whose adapter counts tokens with the vendor (overrides Provider.count_tokens). Estimating a run on
# other providers needs no adapter, so no SDK import (the openai SDK's alone is a second of a command's start).
# test_estimates checks this against the adapters.
VENDOR_COUNTERS = frozenset({"anthropic", "google"})

_CHUNK = 500

T = TypeVar("T")


def approximate_tokens(text: str) -> int:
    """About four characters a token (Provider.count_tokens' fallback), at least one."""
    return max(1, len(text) // CHARS_PER_TOKEN)


@dataclass(frozen=True)
class ModelEstimate:
    """One model's share of a run: its evaluations, tokens, and cost (the judge not included)."""

    model: LLMModel
    evaluations: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": str(self.model.pk),
            "evaluations": self.evaluations,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": money(self.cost_usd),
        }


@dataclass(frozen=True)
class RunEstimate:
    """What a run of some tests over some models will cost; `total_usd` adds the judge's cost."""

    evaluations: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    judge_cost_usd: Decimal
    by_model: list[ModelEstimate] = field(default_factory=list)
    # What it was made for (test ids, model ids, repeats): a run that starts right after asking reuses it.
    made_for: tuple[frozenset[Any], frozenset[Any], int] | None = field(default=None, repr=False, compare=False)

    @property
    def total_usd(self) -> Decimal:
        return self.cost_usd + self.judge_cost_usd

    def is_for(self, *, test_cases: Sequence[TestCase], models: Sequence[LLMModel], repeats: int) -> bool:
        """Whether this estimates exactly that run (same tests, models and repeats)."""
        wanted = (frozenset(test.pk for test in test_cases), frozenset(model.pk for model in models), repeats)
        return self.made_for == wanted

    def as_dict(self) -> dict[str, Any]:
        """The SPEC §11 shape; money as decimal strings with 8 places, as the API renders `total_cost`."""
        return {
            "evaluations": self.evaluations,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": money(self.cost_usd),
            "judge_cost_usd": money(self.judge_cost_usd),
            "total_usd": money(self.total_usd),
            "by_model": [model.as_dict() for model in self.by_model],
        }


def money(value: Decimal) -> str:
    """A cost as the API renders DecimalField(decimal_places=8): '0.00012300'."""
    return f"{value.quantize(COST_QUANTUM):f}"


def run_estimate(*, test_cases: Sequence[TestCase], models: Sequence[LLMModel], repeats: int = 1) -> RunEstimate:
    """The estimated tokens and cost of running every test in `test_cases` against every model in `models`,
    `repeats` times each. Reads past results; may call vendors' token counters (bounded in time)."""
    tests = list({test.pk: test for test in test_cases}.values())
    chosen = list({model.pk: model for model in models}.values())
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, not {repeats}.")
    targets = {test.pk: ScoringTarget.from_snapshot(test.scored_snapshot()) for test in tests}
    timeout = _count_timeout()
    # Per model, not per pair (and pk read once): a 50 x 40 batch is 2,000 pairs on the way to its first call.
    parameters = [(model, model.pk, model_parameters(model)) for model in chosen]
    requests = {
        (test_pk, model_pk): build_request(target, model, params, timeout)
        for test_pk, target in targets.items()
        for model, model_pk, params in parameters
    }
    input_tokens = _input_tokens(tests, chosen, requests)
    past_output = _past_output_tokens(tests, chosen)
    judges = _judges(tests, targets)

    by_model: list[ModelEstimate] = []
    judge_cost = Decimal(0)
    test_ids = list(targets)
    for model, model_pk, _ in parameters:
        model_in = model_out = 0
        model_cost = Decimal(0)
        for test_pk in test_ids:
            pair = (test_pk, model_pk)
            tokens_in = input_tokens[pair]
            tokens_out = past_output.get(pair) or requests[pair].max_tokens
            model_in += tokens_in * repeats
            model_out += tokens_out * repeats
            model_cost += _cost(model, tokens_in, tokens_out) * repeats
            judge = judges.get(test_pk)
            if judge is not None:
                judge_in = (
                    approximate_tokens(JUDGE_SYSTEM_PROMPT + build_judge_prompt(targets[test_pk], "")) + tokens_out
                )
                judge_cost += _cost(judge, judge_in, JUDGE_VERDICT_TOKENS) * repeats
        by_model.append(
            ModelEstimate(
                model=model,
                evaluations=len(tests) * repeats,
                input_tokens=model_in,
                output_tokens=model_out,
                cost_usd=model_cost,
            )
        )
    return RunEstimate(
        evaluations=len(tests) * len(chosen) * repeats,
        input_tokens=sum(item.input_tokens for item in by_model),
        output_tokens=sum(item.output_tokens for item in by_model),
        cost_usd=sum((item.cost_usd for item in by_model), Decimal(0)),
        judge_cost_usd=judge_cost,
        by_model=by_model,
        made_for=(frozenset(targets), frozenset(model_pk for _, model_pk, _ in parameters), repeats),
    )


def _cost(model: LLMModel, input_tokens: int, output_tokens: int) -> Decimal:
    return cost_for(model, Usage(input_tokens=input_tokens, output_tokens=output_tokens))


def _count_timeout() -> float:
    return float(getattr(settings, "ESTIMATE_COUNT_TIMEOUT", 5.0))


def _judges(tests: Sequence[TestCase], targets: dict[Any, ScoringTarget]) -> dict[Any, LLMModel]:
    """The judge model of each llm_judge test (tests whose judge is not in the registry cost nothing to judge:
    their scoring fails without a call)."""
    found: dict[Any, LLMModel] = {}
    by_name: dict[str, LLMModel | None] = {}
    for test in tests:
        target = targets[test.pk]
        if target.evaluation_type != TestCase.EvaluationType.LLM_JUDGE:
            continue
        name = judge_model_name(target.evaluation_config)
        if name not in by_name:
            by_name[name] = resolve_judge_model(target)
        judge = by_name[name]
        if judge is not None:
            found[test.pk] = judge
    return found


def _past_output_tokens(tests: Sequence[TestCase], models: Sequence[LLMModel]) -> dict[tuple[Any, Any], int]:
    """Mean output tokens of each (test, model)'s past completed answers, rounded up."""
    means: dict[tuple[Any, Any], int] = {}
    model_ids = [model.pk for model in models]
    test_ids = [test.pk for test in tests]
    for start in range(0, len(test_ids), _CHUNK):
        rows = (
            TestResult.objects.filter(
                test_case_id__in=test_ids[start : start + _CHUNK],
                model_id__in=model_ids,
                status=TestResult.Status.COMPLETED,
                output_tokens__isnull=False,
            )
            .order_by()
            .values("test_case_id", "model_id")
            .annotate(mean=Avg("output_tokens"))
        )
        for row in rows:
            if row["mean"] is not None:
                means[(row["test_case_id"], row["model_id"])] = max(1, math.ceil(row["mean"]))
    return means


def _input_tokens(
    tests: Sequence[TestCase], models: Sequence[LLMModel], requests: dict[tuple[Any, Any], GenerationRequest]
) -> dict[tuple[Any, Any], int]:
    """Input tokens of each (test, model): one count per test and provider endpoint, shared by its models.
    Vendor counts are cached (COUNT_CACHE_SECONDS), so showing the run form again calls no vendor."""
    endpoints: dict[tuple[str, str], list[LLMModel]] = {}
    endpoint_of: dict[Any, tuple[str, str]] = {}
    # Only providers with a vendor counter need their adapter (and its SDK's import) to estimate.
    for model in models:
        if model.provider in VENDOR_COUNTERS:
            endpoint_of[model.pk] = adapter_key(model)
            endpoints.setdefault(endpoint_of[model.pk], []).append(model)
    cache_keys = {
        (test.pk, key): _count_cache_key(key, requests[(test.pk, endpoint_models[0].pk)])
        for key, endpoint_models in endpoints.items()
        for test in tests
    }
    cached = _cache_get_many(list(cache_keys.values())) if cache_keys else {}
    counted = {pair: cached[cache_key] for pair, cache_key in cache_keys.items() if cache_key in cached}
    wanted = [pair for pair in cache_keys if pair not in counted]
    fresh = _run_async(lambda: _count_all(wanted, endpoints, requests)) if wanted else {}
    _cache_set_many({cache_keys[pair]: tokens for pair, tokens in fresh.items()})
    counted.update(fresh)
    unencoded = _without_local_encoding(models)
    newly_unencoded: set[str] = set()
    # One local count per test and encoding, whatever the number of models sharing it (their requests carry the
    # same prompts); None where the encoder refused the text.
    local: dict[tuple[Any, str], int | None] = {}
    result: dict[tuple[Any, Any], int] = {}
    test_ids = [test.pk for test in tests]
    for model in models:
        model_pk = model.pk
        key = endpoint_of.get(model_pk)
        encoding_key = _encoding_cache_key(model)
        # The requests' model id (a model's parameters may name another than its registry row); the same for all tests.
        model_id = requests[(test_ids[0], model_pk)].model_id if test_ids else model.provider_model_id
        encoding = None if encoding_key in unencoded else local_encoding_name(model_id)
        if encoding is None and encoding_key not in unencoded:
            unencoded.add(encoding_key)
            newly_unencoded.add(encoding_key)
        for test_pk in test_ids:
            tokens = counted.get((test_pk, key)) if key is not None else None
            if tokens is None:
                request = requests[(test_pk, model_pk)]
                if encoding is not None:
                    if (test_pk, encoding) not in local:
                        local[(test_pk, encoding)] = _count_locally(encoding, request)
                    tokens = local[(test_pk, encoding)]
                tokens = tokens or approximate_tokens(f"{request.system_prompt}\n{request.prompt}")
            result[(test_pk, model_pk)] = tokens
    _cache_set_many(dict.fromkeys(newly_unencoded & _openai_format_keys(models), 1))
    return result


def _count_locally(encoding: str, request: GenerationRequest) -> int | None:
    try:
        return count_tokens(encoding, system_prompt=request.system_prompt, prompt=request.prompt)
    except UncountableText:  # this text only: the model's encoding stays known for the next estimate
        return None


def _encoding_cache_key(model: LLMModel) -> str:
    digest = hashlib.sha256(f"{model.provider}\n{model.provider_model_id}".encode()).hexdigest()
    return f"estimate:no-encoding:{digest}"


def _openai_format_keys(models: Sequence[LLMModel]) -> set[str]:
    return {_encoding_cache_key(model) for model in models if model.provider in OPENAI_FORMAT_PROVIDERS}


def _without_local_encoding(models: Sequence[LLMModel]) -> set[str]:
    """The models (as _encoding_cache_key) known to have no local encoding: all but the OpenAI-format ones,
    and those a past estimate found none for. Looking a model up loads every encoding the first time in a
    process (a second or more, paid again by each `run_batch`), so a self-hosted model's miss is remembered."""
    openai_format = _openai_format_keys(models)
    known = {_encoding_cache_key(model) for model in models} - openai_format
    return known | set(_cache_get_many(sorted(openai_format))) if openai_format else known


def _count_cache_key(endpoint: tuple[str, str], request: GenerationRequest) -> str:
    payload = [endpoint, request.model_id, request.system_prompt, request.prompt, request.json_schema]
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    return f"estimate:tokens:{digest}"


def _cache_get_many(keys: list[str]) -> dict[str, int]:
    # The cache only saves vendor calls: when it is unreachable, count again rather than fail the estimate.
    try:
        found: dict[str, int] = cache.get_many(keys)
    except Exception:
        logger.warning("estimate: the token-count cache could not be read", exc_info=True)
        return {}
    return found


def _cache_set_many(values: dict[str, int]) -> None:
    if not values:
        return
    try:
        cache.set_many(values, timeout=COUNT_CACHE_SECONDS)
    except Exception:
        logger.warning("estimate: the token-count cache could not be written", exc_info=True)


def _run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine from sync code, also when this thread already runs an event loop (an async caller)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def _has_counter(adapter: Provider) -> bool:
    return type(adapter).count_tokens is not Provider.count_tokens


async def _count_all(
    wanted: Sequence[tuple[Any, tuple[str, str]]],
    endpoints: dict[tuple[str, str], list[LLMModel]],
    requests: dict[tuple[Any, Any], GenerationRequest],
) -> dict[tuple[Any, tuple[str, str]], int]:
    """Vendor counts of the wanted (test, endpoint) pairs whose adapter has a counter and is configured; what
    fails or is not done within the time limit is left out (the caller approximates it)."""
    adapters: dict[tuple[str, str], Provider] = {}
    for key in {key for _, key in wanted}:
        try:
            adapter = provider_for_model(endpoints[key][0])
        except Exception:  # no adapter for this provider: approximated
            logger.info("estimate: no adapter for provider %s; input tokens approximated", key[0])
            continue
        if _has_counter(adapter) and adapter.is_configured:
            adapters[key] = adapter
    counts: dict[tuple[Any, tuple[str, str]], int] = {}
    if not adapters:
        return counts
    limit = asyncio.Semaphore(COUNT_CONCURRENCY)
    timeout = _count_timeout()

    async def count(test_id: Any, key: tuple[str, str]) -> None:
        request = requests[(test_id, endpoints[key][0].pk)]
        async with limit:
            try:
                counted = await asyncio.wait_for(adapters[key].count_tokens(request), timeout=timeout)
            except Exception as exc:  # a vendor error or a slow counter: approximated
                logger.info("estimate: %s could not count tokens (%s); approximated", key[0], type(exc).__name__)
                return
        counts[(test_id, key)] = counted.tokens

    tasks = [asyncio.ensure_future(count(test_id, key)) for test_id, key in wanted if key in adapters]
    try:
        # One limit for all the counting, however many tests: what is not counted by then is approximated.
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    finally:
        for adapter in adapters.values():
            await adapter.aclose()
    return counts
