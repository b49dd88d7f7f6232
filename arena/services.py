"""Arena writes: serving a battle, casting a vote, voiding votes (SPEC §13)."""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User
from arena.models import Battle, Vote, VoterKind, Winner
from arena.selectors import arena_cache_invalidate, pair_vote_counts
from catalog.models import LLMModel, TestCase
from evaluations.models import TestResult
from leaderboard.models import LatestResult
from openbench.exceptions import ApplicationError

logger = logging.getLogger(__name__)
_random = random.SystemRandom()

# A person's battle not voted on is theirs to answer for this long: asking again serves it again, so nobody can
# draw battles until a model they favour comes up (a tie moves on). After that it may be left behind.
OPEN_BATTLE_REUSE = timedelta(hours=1)

# How many of the least-voted model pairs a battle tries before giving up: pairs that share no
# answered test are skipped, and in practice the first one or two share many.
PAIR_ATTEMPTS = 50


def answered() -> QuerySet[LatestResult]:
    """The answers battles are made of: each model's latest result on an approved, public test at its current
    revision (the leaderboard's read model: `counted`), when that result succeeded."""
    # `is_error=False` is the same as status "completed" (rows hold completed, failed or timeout), but it is in
    # the covering index (model, counted, test_case), so a model's answered tests are read from the index alone.
    return LatestResult.objects.filter(counted=True, is_error=False).order_by()


def pair_key(a: Any, b: Any) -> tuple[str, str]:
    """An unordered model pair, as sorted id strings."""
    low, high = sorted((str(a), str(b)))
    return low, high


def _least(items: Sequence[Any], weight: dict[Any, int]) -> Any:
    """One of the items with the fewest votes, at random among equals."""
    fewest = min(weight.get(item, 0) for item in items)
    return _random.choice([item for item in items if weight.get(item, 0) == fewest])


def _least_voted_shared_test(pair: tuple[str, str], kind: str) -> Any | None:
    """The test with the fewest votes (of this voter kind) among those both models answered, at random among
    equals; None when they share none. One query: both models' answered tests come in test order from the
    covering index (a merge join, bounded by one model's tests, not the whole table) and each shared test's
    votes are counted through the votes' test index."""
    low, high = uuid.UUID(pair[0]), uuid.UUID(pair[1])
    votes = (
        Vote.objects.counted(kind=kind)
        .filter(test_case_id=OuterRef("test_case_id"))
        .order_by()
        .values("test_case_id")
        .annotate(n=Count("test_case_id"))  # not "id": the count is read from arena_vote_test_counted alone
        .values("n")
    )
    return (
        answered()
        .filter(model_id=low, test_case_id__in=answered().filter(model_id=high).values("test_case_id"))
        .annotate(votes=Coalesce(Subquery(votes), 0))
        .order_by("votes", "?")
        .values_list("test_case_id", flat=True)
        .first()
    )


def battle_pick(*, kind: str = VoterKind.PERSON, test_case: TestCase | None = None) -> tuple[Any, tuple[str, str]]:
    """The test and the unordered model pair of the next battle: the pair with the fewest votes (of this voter
    kind), then the test with the fewest votes among those both models answered, at random among equals."""
    pair_votes = pair_vote_counts(kind=kind)
    if test_case is not None:
        if not (test_case.status == TestCase.Status.APPROVED and test_case.is_public):
            raise ApplicationError("Arena battles use approved public tests only.", code="not_in_arena", status=409)
        model_ids = sorted({str(m) for m in answered().filter(test_case=test_case).values_list("model_id", flat=True)})
        if len(model_ids) < 2:
            raise ApplicationError(
                "Fewer than two models have a successful answer to this test's current revision, so there is "
                "nothing to compare yet.",
                code="not_enough_answers",
                status=409,
            )
        pairs = [pair_key(a, b) for i, a in enumerate(model_ids) for b in model_ids[i + 1 :]]
        return test_case.pk, _least(pairs, pair_votes)
    # One index probe per model (does it have any answer?) instead of reading every latest result.
    has_answers = Exists(answered().filter(model_id=OuterRef("pk")))
    model_ids = sorted(str(m) for m in LLMModel.objects.filter(has_answers).values_list("pk", flat=True))
    pairs = [pair_key(a, b) for i, a in enumerate(model_ids) for b in model_ids[i + 1 :]]
    pairs.sort(key=lambda pair: (pair_votes.get(pair, 0), _random.random()))
    for pair in pairs[:PAIR_ATTEMPTS]:
        test_id = _least_voted_shared_test(pair, kind)
        if test_id is not None:
            return test_id, pair
    raise ApplicationError(
        "No approved test has successful answers from two different models yet, so there is no battle to show.",
        code="not_enough_answers",
        status=409,
    )


def _order(pair: tuple[str, str], kind: str) -> tuple[str, str]:
    """A or B: each model of a pair is shown first as often as second (the order used less so far, at
    random when both were used equally), so a preference for a position cancels out."""
    low, high = pair
    low_id, high_id = uuid.UUID(low), uuid.UUID(high)
    first = Battle.objects.filter(voter_kind=kind, model_a_id=low_id, model_b_id=high_id).count()
    second = Battle.objects.filter(voter_kind=kind, model_a_id=high_id, model_b_id=low_id).count()
    if first == second:
        return (low, high) if _random.random() < 0.5 else (high, low)
    return (low, high) if first < second else (high, low)


def battle_build(*, test_id: Any, pair: tuple[str, str], kind: str) -> Battle:
    """An unsaved battle of the pair's latest answers to the test, in a balanced A/B order."""
    a, b = _order(pair, kind)
    results = dict(answered().filter(test_case_id=test_id, model_id__in=pair).values_list("model_id", "result_id"))
    by_model = {str(k): v for k, v in results.items()}
    rows = TestResult.objects.only("id", "raw_output", "revision").in_bulk([by_model[a], by_model[b]])
    result_a, result_b = rows[by_model[a]], rows[by_model[b]]
    return Battle(
        test_case_id=test_id,
        revision=result_a.revision,
        model_a_id=a,
        model_b_id=b,
        result_a=result_a,
        result_b=result_b,
        answer_a=result_a.raw_output,
        answer_b=result_b.raw_output,
        voter_kind=kind,
    )


def battle_open_for(user: User) -> Battle | None:
    """The person's battle still waiting for their vote (served within OPEN_BATTLE_REUSE), if any."""
    return (
        Battle.objects.filter(
            user=user,
            voter_kind=VoterKind.PERSON,
            status=Battle.Status.OPEN,
            created_at__gte=timezone.now() - OPEN_BATTLE_REUSE,
        )
        .select_related("test_case")
        .order_by("-created_at")
        .first()
    )


def battle_serve(*, user: User, test_case: TestCase | None = None) -> tuple[Battle, bool]:
    """The battle a person should vote on, and whether it is new: their open battle when they have one (409
    `battle_open` when they ask for another test meanwhile), else a new one."""
    waiting = battle_open_for(user)
    if waiting is None:
        return battle_create(user=user, test_case=test_case), True
    if test_case is not None and waiting.test_case_id != test_case.pk:
        raise ApplicationError(
            f"Vote on your open battle {waiting.pk} first (a tie is a vote); it is served again until then.",
            code="battle_open",
            status=409,
        )
    return waiting, False


def battle_create(*, user: User, test_case: TestCase | None = None) -> Battle:
    """Serve a battle to a person: two different models' answers to one approved public test (the given one, or
    the least-voted pair and test). Never calls a provider: the answers are existing results."""
    test_id, pair = battle_pick(kind=VoterKind.PERSON, test_case=test_case)
    battle = battle_build(test_id=test_id, pair=pair, kind=VoterKind.PERSON)
    battle.user = user
    battle.save()
    return battle


def vote_refusal(user: User) -> str:
    """Why this person may not vote yet ("" when they may): a minimum account age, or enough approved tests
    (ballot stuffing with fresh accounts); moderators always may."""
    if user.is_moderator:
        return ""
    hours = settings.ARENA_MIN_ACCOUNT_AGE_HOURS
    if (timezone.now() - user.created_at).total_seconds() >= hours * 3600:
        return ""
    needed = settings.ARENA_MIN_APPROVED_TESTS
    if needed and TestCase.objects.filter(created_by=user, status=TestCase.Status.APPROVED).count() >= needed:
        return ""
    alternative = f", or once {needed} of your tests {'is' if needed == 1 else 'are'} approved" if needed else ""
    return f"Votes are accepted from accounts at least {hours:g} hours old{alternative}."


def vote_cast(*, battle: Battle, user: User, winner: str) -> Vote:
    """Record a person's one vote on their battle; the ratings' cache is dropped when it commits.

    The battle row is locked while its state is checked, and the vote's unique battle is the backstop:
    concurrent second votes get 409, never a second row.
    """
    if winner not in Winner.values:
        raise ApplicationError(
            "winner must be a, b or tie.", code="invalid", details={"winner": ["Must be a, b or tie."]}
        )
    if battle.user_id != user.pk or battle.voter_kind != VoterKind.PERSON:
        raise ApplicationError("Not found.", code="not_found", status=404)
    refusal = vote_refusal(user)
    if refusal:
        raise ApplicationError(refusal, code="vote_not_allowed", status=403)
    try:
        with transaction.atomic():
            locked = Battle.objects.select_for_update().get(pk=battle.pk)
            if locked.status == Battle.Status.VOIDED:
                raise ApplicationError("This battle was voided by a moderator.", code="battle_voided", status=409)
            if locked.status == Battle.Status.DECIDED:
                raise ApplicationError("You already voted on this battle.", code="already_voted", status=409)
            vote = vote_record(battle=locked, winner=winner)
            transaction.on_commit(arena_cache_invalidate)
    except IntegrityError:
        raise ApplicationError("You already voted on this battle.", code="already_voted", status=409) from None
    return vote


def vote_record(*, battle: Battle, winner: str, details: dict[str, Any] | None = None) -> Vote:
    """Store the vote on a battle (its voter's, person or judge) and mark the battle decided; the caller holds
    the transaction and has checked the battle is open."""
    vote = Vote.objects.create(
        battle=battle,
        voter_kind=battle.voter_kind,
        user_id=battle.user_id,
        judge_model_id=battle.judge_model_id,
        winner=winner,
        model_a_id=battle.model_a_id,
        model_b_id=battle.model_b_id,
        test_case_id=battle.test_case_id,
        details=details or {},
    )
    battle.status = Battle.Status.DECIDED
    battle.save(update_fields=["status"])
    return vote


@transaction.atomic
def votes_void(*, votes: QuerySet[Vote], moderator: User, reason: str = "") -> int:
    """Void votes (they leave the ratings, and stay with who voided them and why); their battles are voided
    too. Returns how many votes were voided now."""
    ids = list(votes.select_for_update().filter(voided=False).values_list("pk", flat=True))
    now = timezone.now()
    count = Vote.objects.filter(pk__in=ids).update(
        voided=True, voided_at=now, voided_by=moderator, void_reason=reason[:300]
    )
    Battle.objects.filter(vote__in=ids).update(status=Battle.Status.VOIDED)
    if count:
        logger.info("arena votes voided", extra={"votes": count, "moderator": str(moderator.pk)})
        transaction.on_commit(arena_cache_invalidate)
    return count


@transaction.atomic
def user_votes_void(*, voter: User, moderator: User, reason: str = "") -> dict[str, int]:
    """Void every vote of one person, and the battles they were served but did not vote on yet."""
    votes = votes_void(votes=Vote.objects.filter(user=voter), moderator=moderator, reason=reason)
    battles = Battle.objects.filter(user=voter, status=Battle.Status.OPEN).update(status=Battle.Status.VOIDED)
    return {"votes_voided": votes, "open_battles_voided": battles}


def models_of(battle: Battle) -> tuple[LLMModel, LLMModel]:
    """The two models of a battle, for revealing them after the vote."""
    models = LLMModel.objects.in_bulk([battle.model_a_id, battle.model_b_id])
    return models[battle.model_a_id], models[battle.model_b_id]
