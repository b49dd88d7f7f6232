"""Per-user rates for creating battles and voting (ARENA_BATTLE_RATE, ARENA_VOTE_RATE): the API and the page
share the counters, so a script cannot go around one through the other."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import throttling

from openbench.api.throttles import ClientAddressMixin


class _ArenaThrottle(ClientAddressMixin, throttling.SimpleRateThrottle):
    setting = ""

    def get_rate(self) -> str:
        rate: str = getattr(settings, self.setting)
        return rate

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        user = request.user
        ident = user.pk if user is not None and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ArenaBattleThrottle(_ArenaThrottle):
    """New battles per user."""

    scope = "arena_battle"
    setting = "ARENA_BATTLE_RATE"


class ArenaVoteThrottle(_ArenaThrottle):
    """Votes per user."""

    scope = "arena_vote"
    setting = "ARENA_VOTE_RATE"


def page_allows(throttle_class: type[_ArenaThrottle], request: Any) -> tuple[bool, float | None]:
    """Whether a page request (a plain Django request) is within the same rate as the API; and the wait."""
    throttle = throttle_class()
    allowed = throttle.allow_request(request, None)  # type: ignore[arg-type]
    return allowed, None if allowed else throttle.wait()
