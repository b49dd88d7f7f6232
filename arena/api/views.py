"""/api/v1/arena: battles for the signed-in caller, votes on them, the ratings, and voiding a voter's votes."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from arena.api.serializers import (
    BattleRequestSerializer,
    BattleSerializer,
    RatingsQuerySerializer,
    RatingsSerializer,
    VoidRequestSerializer,
    VoidSerializer,
    VoteRequestSerializer,
    VoteSerializer,
)
from arena.models import Battle, Vote
from arena.selectors import cached_arena_ratings
from arena.services import battle_serve, user_votes_void, vote_cast
from arena.throttles import ArenaBattleThrottle, ArenaVoteThrottle
from catalog.models import TestCase
from openbench.api.permissions import IsModerator
from openbench.api.schema import ErrorSerializer, error_response
from openbench.api.throttles import DEFAULT_THROTTLES
from openbench.api.viewsets import BaseAPIView


@extend_schema(tags=["arena"])
class BattleCreateView(BaseAPIView):
    """POST /arena/battles: the caller's open battle, else a new one."""

    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [ArenaBattleThrottle, *DEFAULT_THROTTLES]

    @extend_schema(
        summary="Start a battle: two anonymised answers of two different models to one approved test",
        description=(
            "Answers of two different models to one approved public test, taken from their latest successful "
            "results (no provider is called). Without `test_id` the least-voted model pair and, among the tests "
            "both answered, the least-voted test are chosen; A/B positions are balanced per pair. Nothing in "
            "the answer identifies the models. A test the caller cannot see is 404; a visible test that is not "
            "approved and public, or that fewer than two models answered successfully, is 409 "
            "(`not_in_arena`, `not_enough_answers`). A caller with a battle not yet voted on (served within the "
            "last hour) gets that battle again (200), so battles cannot be drawn until a favoured model comes "
            "up; asking for another test meanwhile is 409 `battle_open`. The `arena_battle` rate "
            "(ARENA_BATTLE_RATE) applies."
        ),
        request=BattleRequestSerializer,
        responses={201: BattleSerializer, 200: BattleSerializer, 409: error_response("409")},
    )
    def post(self, request: Request) -> Response:
        data = BattleRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        test_case = None
        test_id = data.validated_data.get("test_id")
        if test_id is not None:
            test_case = get_object_or_404(TestCase.objects.visible_to(request.user), pk=test_id)
        battle, new = battle_serve(user=request.user, test_case=test_case)  # type: ignore[arg-type]
        return Response(BattleSerializer(battle).data, status=status.HTTP_201_CREATED if new else status.HTTP_200_OK)


@extend_schema(tags=["arena"])
class VoteView(BaseAPIView):
    """POST /arena/battles/{id}/vote: the caller's one vote on their battle."""

    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [ArenaVoteThrottle, *DEFAULT_THROTTLES]

    @extend_schema(
        summary="Vote on your battle: answer A, answer B, or a tie; the answer reveals the models",
        description=(
            "One vote per battle; battles belong to the user they were served to (anyone else's is 404). "
            "A second vote, or a vote on a battle a moderator voided, is 409 (`already_voted`, "
            "`battle_voided`). Votes are accepted from accounts at least ARENA_MIN_ACCOUNT_AGE_HOURS old, or "
            "with ARENA_MIN_APPROVED_TESTS approved tests (moderators always); otherwise 403 "
            "`vote_not_allowed` says why. The `arena_vote` rate (ARENA_VOTE_RATE) applies."
        ),
        request=VoteRequestSerializer,
        responses={201: VoteSerializer, 409: error_response("409")},
    )
    def post(self, request: Request, pk: str) -> Response:
        battle = get_object_or_404(Battle.objects.select_related("test_case"), pk=pk, user=request.user)
        data = VoteRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        vote = vote_cast(battle=battle, user=request.user, winner=data.validated_data["winner"])  # type: ignore[arg-type]
        vote = Vote.objects.select_related("model_a", "model_b").get(pk=vote.pk)
        return Response(VoteSerializer(vote).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["arena"])
class RatingsView(BaseAPIView):
    """GET /arena/ratings: Bradley–Terry ratings from people's votes (or judges', apart)."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        summary="Arena ratings: Bradley–Terry by maximum likelihood, Elo-scaled, with bootstrap intervals",
        description=(
            "Fitted on the votes that are not voided; a tie counts half a win to each model. Ratings are "
            "400·log10 strengths with mean 1000; `ci_low`/`ci_high` are the 95% percentile bootstrap over votes "
            "(ARENA_BOOTSTRAP_ROUNDS resamples, fixed seed); `rank_upper`/`rank_lower` are the best and worst "
            "ranks those intervals allow, as on the leaderboard. `source=judge` fits the judge models' votes "
            "(run_pairwise) instead of people's. The ratings are refitted at most every ARENA_REFIT_SECONDS, by "
            "one process at a time: until then the previous fit is served with `stale: true` (votes or voids "
            "landed since `generated_at`), so a vote shows within ARENA_REFIT_SECONDS (plus a fit). Before the "
            "very first fit has finished, 503 `ratings_computing` with Retry-After."
        ),
        parameters=[OpenApiParameter("source", str, enum=["people", "judge"], description="Whose votes.")],
        responses={
            200: RatingsSerializer,
            503: OpenApiResponse(
                response=ErrorSerializer,
                description="`ratings_computing`: the first fit is still running; retry after `Retry-After` seconds.",
            ),
        },
    )
    def get(self, request: Request) -> Response:
        query = RatingsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        # RatingsComputing (503 with Retry-After) goes through the API's exception handler.
        return Response(cached_arena_ratings(source=query.validated_data["source"]))


@extend_schema(tags=["arena"])
class VoidVotesView(BaseAPIView):
    """POST /arena/users/{id}/void-votes: a moderator takes one person's votes out of the ratings."""

    permission_classes = [IsModerator]

    @extend_schema(
        summary="Void every vote of a user (moderators): their votes leave the ratings",
        description=(
            "Marks the user's votes voided (kept, with who voided them, when and `reason`) and voids their "
            "battles, including open ones (a later vote on them is 409). Unknown user → 404."
        ),
        request=VoidRequestSerializer,
        responses={200: VoidSerializer},
    )
    def post(self, request: Request, pk: str) -> Response:
        voter: Any = get_object_or_404(User, pk=pk)
        data = VoidRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        counts = user_votes_void(voter=voter, moderator=request.user, reason=data.validated_data["reason"])  # type: ignore[arg-type]
        return Response(counts)
