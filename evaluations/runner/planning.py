"""What a job has to do: the (execution, model, sample) pairs still missing a result, with everything needed to
run them.

Everything here reads the database, so it runs on the job's own thread before the event loop starts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from catalog.models import LLMModel, TestCase, TestCaseRevision
from evaluations.models import Execution, TestResult
from evaluations.scoring import ScoringTarget
from evaluations.scoring.judge import judge_model_name, resolve_judge_model
from providers.base import GenerationRequest

_CHUNK = 1000  # ids per IN (...) query


@dataclass
class Plan:
    """One claimed execution: what its answers are scored against and how many pairs (samples) are left."""

    id: str
    test_case_id: Any
    revision: int
    request_id: str
    target: ScoringTarget
    timeout: float
    remaining: int
    judge_model: LLMModel | None = None
    # The job's lease the execution was claimed under (one engine may run the executions of many jobs).
    lease: str = ""


@dataclass
class Pair:
    """One (execution, model, sample) evaluation to run: the request to send and, maybe, a cached answer."""

    plan: Plan
    model: LLMModel
    request: GenerationRequest
    response_key: str = ""
    sample: int = 0  # which of the execution's repeats (SPEC §12)
    cached: dict[str, Any] | None = field(default=None, repr=False)


def model_parameters(model: LLMModel) -> dict[str, Any]:
    """What an execution snapshots per model (Execution.config_snapshot), so a run is reproducible."""
    return {
        "name": model.name,
        "provider": model.provider,
        "provider_model_id": model.provider_model_id,
        **model.generation_parameters,
    }


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _snapshots(executions: Sequence[Execution]) -> dict[tuple[Any, int], dict[str, Any]]:
    """The scored fields of each (test, revision): the revision row, or the live test when it is that revision."""
    wanted = {(execution.test_case_id, execution.revision) for execution in executions}
    found: dict[tuple[Any, int], dict[str, Any]] = {}
    test_ids = list({test_id for test_id, _ in wanted})
    for chunk in _chunks(test_ids):
        for row in TestCaseRevision.objects.filter(test_case_id__in=chunk).values(
            "test_case_id", "revision", *TestCase.SCORED_FIELDS
        ):
            key = (row["test_case_id"], row["revision"])
            if key in wanted:
                found[key] = row
    for execution in executions:
        key = (execution.test_case_id, execution.revision)
        if key not in found and execution.test_case.revision == execution.revision:
            found[key] = execution.test_case.scored_snapshot()
    return found


def _models_of(executions: Sequence[Execution]) -> dict[Any, list[LLMModel]]:
    """Each execution's models. A batch runs the same models in every execution, so each model is loaded
    once and shared, not once per execution as prefetch_related would."""
    through = Execution.llm_models.through
    model_ids: dict[Any, list[Any]] = {execution.pk: [] for execution in executions}
    for chunk in _chunks(list(model_ids)):
        for execution_id, model_id in through.objects.filter(execution_id__in=chunk).values_list(
            "execution_id", "llmmodel_id"
        ):
            model_ids[execution_id].append(model_id)
    wanted = list({model_id for ids in model_ids.values() for model_id in ids})
    models: dict[Any, LLMModel] = {}
    for chunk in _chunks(wanted):
        models.update(LLMModel.objects.in_bulk(chunk))
    return {execution_id: [models[model_id] for model_id in ids] for execution_id, ids in model_ids.items()}


def response_key(model: LLMModel, request: GenerationRequest, sample: int = 0) -> str:
    """Cache key of an answer: same model (and adapter options), prompt, system prompt and parameters.

    Sample i > 0 of a repeated run has a key of its own, so the cache never hands one answer to every sample
    (that would make a flaky model look stable); sample 0 keeps the key a single run always had.
    """
    payload: list[Any] = [
        model.provider,
        model.provider_model_id,
        model.config,
        request.prompt,
        request.system_prompt,
        request.temperature,
        request.max_tokens,
        request.seed,
        request.json_schema,
    ]
    if sample:
        payload.append({"sample": sample})
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _wants_schema(target: ScoringTarget, model: LLMModel) -> dict[str, Any] | None:
    # Structured output is asked only of models that support it; the others' answers are parsed leniently.
    if target.evaluation_type != TestCase.EvaluationType.STRUCTURED_MATCH or not isinstance(target.output_schema, dict):
        return None
    if model.supports_structured_output or model.supports_json_mode:
        return target.output_schema
    return None


def build_request(target: ScoringTarget, model: LLMModel, params: dict[str, Any], timeout: float) -> GenerationRequest:
    return GenerationRequest(
        model_id=str(params.get("provider_model_id") or model.provider_model_id),
        prompt=target.prompt,
        system_prompt=target.system_prompt,
        temperature=float(params.get("temperature", model.default_temperature)),
        max_tokens=int(params.get("max_tokens", model.default_max_tokens)),
        seed=params.get("seed", model.default_seed),
        timeout=timeout,
        json_schema=_wants_schema(target, model),
        reference_answer=target.expected_output,
    )


def plan_executions(
    execution_ids: Sequence[str], *, use_cache: bool | None = None, lease: str = ""
) -> tuple[list[Plan], list[Pair]]:
    """Plans and missing pairs of the given executions, already claimed under `lease`."""
    use_cache = settings.EVAL_CACHE if use_cache is None else use_cache
    executions: list[Execution] = []
    for chunk in _chunks(list(execution_ids)):
        executions.extend(Execution.objects.filter(pk__in=chunk).select_related("test_case"))
    models_of = _models_of(executions)
    # What a crashed or duplicate run already wrote, sample by sample: only the rest is planned.
    done: set[tuple[str, str, int]] = set()
    for chunk in _chunks([execution.pk for execution in executions]):
        for execution_id, model_id, sample in TestResult.objects.filter(execution_id__in=chunk).values_list(
            "execution_id", "model_id", "sample"
        ):
            done.add((str(execution_id), str(model_id), sample))
    snapshots = _snapshots(executions)
    judges: dict[str, LLMModel | None] = {}

    plans: list[Plan] = []
    pairs: list[Pair] = []
    for execution in executions:
        snapshot = snapshots.get((execution.test_case_id, execution.revision))
        if snapshot is None:
            raise LookupError(f"Test {execution.test_case_id} has no revision {execution.revision}.")
        target = ScoringTarget.from_snapshot(snapshot)
        judge = None
        if target.evaluation_type == TestCase.EvaluationType.LLM_JUDGE:
            name = judge_model_name(target.evaluation_config)
            if name not in judges:
                judges[name] = resolve_judge_model(target)
            judge = judges[name]
        timeout = float(execution.test_case.timeout_seconds)
        missing = [
            (model, sample)
            for model in sorted(models_of[execution.pk], key=lambda m: m.name)
            for sample in range(execution.repeats)
            if (str(execution.pk), str(model.pk), sample) not in done
        ]
        plan = Plan(
            id=str(execution.pk),
            test_case_id=execution.test_case_id,
            revision=execution.revision,
            request_id=execution.request_id,
            target=target,
            timeout=timeout,
            remaining=len(missing),
            judge_model=judge,
            lease=lease,
        )
        plans.append(plan)
        for model, sample in missing:
            params = (execution.config_snapshot or {}).get(str(model.pk)) or model_parameters(model)
            request = build_request(target, model, params, timeout)
            # A run that asked for fresh answers (a schedule's, SPEC §12) neither reads nor feeds the cache.
            cacheable = use_cache and request.temperature == 0 and not params.get("bypass_cache")
            key = response_key(model, request, sample) if cacheable else ""
            pairs.append(Pair(plan=plan, model=model, request=request, response_key=key, sample=sample))

    if use_cache:
        _attach_cached_answers(pairs)
    return plans, pairs


def _attach_cached_answers(pairs: Sequence[Pair]) -> None:
    keys = sorted({pair.response_key for pair in pairs if pair.response_key})
    answers: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(keys):
        rows = (
            TestResult.objects.filter(response_key__in=chunk, status=TestResult.Status.COMPLETED, cached=False)
            .order_by("response_key", "-executed_at")
            .values(
                "id",
                "response_key",
                "raw_output",
                "latency_ms",
                "input_tokens",
                "output_tokens",
                "total_tokens",
                "finish_reason",
                "provider_request_id",
            )
        )
        for row in rows:
            answers.setdefault(row["response_key"], dict(row))
    for pair in pairs:
        if pair.response_key in answers:
            pair.cached = answers[pair.response_key]
