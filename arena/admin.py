"""Arena in the Django admin: battles and votes, and voiding votes (moderators)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from arena.models import Battle, Vote
from arena.services import votes_void


@admin.register(Battle)
class BattleAdmin(admin.ModelAdmin[Battle]):
    list_display = [
        "id",
        "test_case",
        "model_a",
        "model_b",
        "voter_kind",
        "user",
        "judge_model",
        "status",
        "created_at",
    ]
    list_filter = ["status", "voter_kind"]
    search_fields = ["id", "test_case__title", "user__email", "model_a__name", "model_b__name"]
    list_select_related = ["test_case", "model_a", "model_b", "user", "judge_model"]
    raw_id_fields = ["test_case", "model_a", "model_b", "result_a", "result_b", "user", "judge_model"]
    readonly_fields = ["created_at"]
    date_hierarchy = "created_at"


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin[Vote]):
    list_display = [
        "battle",
        "winner",
        "model_a",
        "model_b",
        "voter_kind",
        "user",
        "judge_model",
        "voided",
        "created_at",
    ]
    list_filter = ["voided", "voter_kind", "winner"]
    search_fields = ["user__email", "model_a__name", "model_b__name", "test_case__title"]
    list_select_related = ["battle", "model_a", "model_b", "user", "judge_model"]
    raw_id_fields = ["battle", "user", "judge_model", "model_a", "model_b", "test_case", "voided_by"]
    # Votes are evidence: a moderator voids them (an action, with who and when), never edits them.
    readonly_fields = [
        "battle",
        "voter_kind",
        "user",
        "judge_model",
        "winner",
        "model_a",
        "model_b",
        "test_case",
        "details",
        "voided",
        "voided_at",
        "voided_by",
        "void_reason",
        "created_at",
    ]
    actions = ["void_selected", "void_all_of_their_voters"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Void the selected votes (they leave the ratings)", permissions=["change"])
    def void_selected(self, request: HttpRequest, queryset: QuerySet[Vote]) -> None:
        count = votes_void(votes=queryset, moderator=request.user, reason="Voided in the admin.")  # type: ignore[arg-type]
        self.message_user(request, f"{count} vote(s) voided.", messages.SUCCESS)

    @admin.action(description="Void every vote of the people who cast the selected votes", permissions=["change"])
    def void_all_of_their_voters(self, request: HttpRequest, queryset: QuerySet[Vote]) -> None:
        voters = queryset.exclude(user=None).values("user")
        count = votes_void(
            votes=Vote.objects.filter(user__in=voters),
            moderator=request.user,  # type: ignore[arg-type]
            reason="Voter voided in the admin.",
        )
        self.message_user(request, f"{count} vote(s) voided.", messages.SUCCESS)
