"""Arena pages: a battle to vote on (keys A / B / T, or the buttons without JavaScript), the models
revealed after the vote, and the ratings."""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from arena.models import Battle, Vote, Winner
from arena.selectors import SOURCES, RatingsComputing, cached_arena_ratings
from arena.services import battle_create, battle_open_for, vote_cast, vote_refusal
from arena.throttles import ArenaBattleThrottle, ArenaVoteThrottle, page_allows
from openbench.exceptions import ApplicationError


def _throttled(request: HttpRequest, throttle: type[ArenaBattleThrottle] | type[ArenaVoteThrottle]) -> bool:
    allowed, wait = page_allows(throttle, request)
    if not allowed:
        seconds = max(1, math.ceil(wait or 1))
        messages.error(request, f"Too many requests; try again in {seconds} s.")
    return not allowed


def _ratings(source: str) -> dict[str, object] | None:
    """The ratings, or None while the very first fit runs elsewhere (the page says so instead of waiting)."""
    try:
        return cached_arena_ratings(source=source)
    except RatingsComputing:
        return None


@require_GET
def arena(request: HttpRequest) -> HttpResponse:
    """The battle to vote on: the visitor's open one, else a new one."""
    context: dict[str, object] = {"ratings": _ratings("people"), "refit_seconds": settings.ARENA_REFIT_SECONDS}
    user = request.user
    if user.is_authenticated:
        battle = battle_open_for(user)
        if battle is None and not _throttled(request, ArenaBattleThrottle):
            try:
                battle = battle_create(user=user)
            except ApplicationError as exc:
                context["unavailable"] = exc.message
        context["battle"] = battle
        context["refusal"] = vote_refusal(user)
    return render(request, "arena/arena.html", context)


@login_required
@require_POST
def vote(request: HttpRequest, pk: str) -> HttpResponse:
    """The form's vote (the keys press its buttons); then the models are revealed."""
    battle = get_object_or_404(Battle, pk=pk, user=request.user)
    winner = request.POST.get("winner", "")
    if winner not in Winner.values:
        messages.error(request, "Choose A, B or a tie.")
        return redirect("arena:arena")
    if _throttled(request, ArenaVoteThrottle):
        return redirect("arena:arena")
    try:
        vote_cast(battle=battle, user=request.user, winner=winner)  # type: ignore[arg-type]
    except ApplicationError as exc:
        messages.error(request, exc.message)
        if exc.code != "already_voted":
            return redirect("arena:arena")
    return redirect("arena:battle", pk=battle.pk)


@login_required
@require_GET
def battle(request: HttpRequest, pk: str) -> HttpResponse:
    """A voted battle with its models revealed; only its voter sees it, and only after voting."""
    shown = get_object_or_404(
        Battle.objects.select_related("test_case", "model_a", "model_b"), pk=pk, user=request.user
    )
    vote = Vote.objects.filter(battle=shown).first()
    if vote is None:
        if shown.status == Battle.Status.OPEN:
            return redirect("arena:arena")
        raise Http404
    return render(request, "arena/battle.html", {"battle": shown, "vote": vote})


@require_GET
def ratings(request: HttpRequest) -> HttpResponse:
    """People's ratings, or the judge models' kept apart (?source=judge)."""
    source = request.GET.get("source", "people")
    if source not in SOURCES:
        source = "people"
    context = {"ratings": _ratings(source), "source": source, "refit_seconds": settings.ARENA_REFIT_SECONDS}
    return render(request, "arena/ratings.html", context)
