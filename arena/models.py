"""Arena battles (two anonymised answers to one test, served to one voter) and the votes on them."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from catalog.models import LLMModel, TestCase
from evaluations.models import TestResult


class VoterKind(models.TextChoices):
    PERSON = "person", "Person"
    JUDGE = "judge", "Judge model"


class Winner(models.TextChoices):
    A = "a", "Answer A"
    B = "b", "Answer B"
    TIE = "tie", "Tie"


class Battle(models.Model):
    """One test's answers by two different models, shown as A and B to one voter (a person or a judge).

    The answers are copied from the results they came from, so the battle shows what was voted on even
    if those results are deleted later.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Waiting for a vote"
        DECIDED = "decided", "Voted"
        VOIDED = "voided", "Voided"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    test_case = models.ForeignKey(TestCase, on_delete=models.PROTECT, related_name="+")
    revision = models.PositiveIntegerField()
    model_a = models.ForeignKey(LLMModel, on_delete=models.PROTECT, related_name="+")
    model_b = models.ForeignKey(LLMModel, on_delete=models.PROTECT, related_name="+")
    result_a = models.ForeignKey(TestResult, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    result_b = models.ForeignKey(TestResult, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    answer_a = models.TextField()
    answer_b = models.TextField()
    voter_kind = models.CharField(max_length=8, choices=VoterKind.choices, default=VoterKind.PERSON)
    # The person the battle was served to (only they may vote on it); empty for a judge's battle.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="arena_battles"
    )
    judge_model = models.ForeignKey(LLMModel, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "arena_battles"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "status", "created_at"], name="arena_battle_user_status"),
            models.Index(fields=["model_a", "model_b"], name="arena_battle_pair"),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(model_a=F("model_b")), name="arena_battle_two_models"),
            models.CheckConstraint(condition=Q(status__in=["open", "decided", "voided"]), name="arena_battle_status"),
            models.CheckConstraint(
                condition=(Q(voter_kind="person") & Q(user__isnull=False) & Q(judge_model__isnull=True))
                | (Q(voter_kind="judge") & Q(user__isnull=True) & Q(judge_model__isnull=False)),
                name="arena_battle_voter",
            ),
        ]

    def __str__(self) -> str:
        return f"Battle {self.id} on {self.test_case_id} ({self.status})"


class VoteQuerySet(models.QuerySet["Vote"]):
    def counted(self, *, kind: str = VoterKind.PERSON) -> VoteQuerySet:
        """The votes the ratings of one voter kind are fitted on: not voided."""
        return self.filter(voter_kind=kind, voided=False)


class Vote(models.Model):
    """The one vote on a battle: which answer won, or a tie. A moderator may void it (it then leaves the
    ratings but stays, with who voided it and why)."""

    battle = models.OneToOneField(Battle, on_delete=models.CASCADE, related_name="vote")
    voter_kind = models.CharField(max_length=8, choices=VoterKind.choices, default=VoterKind.PERSON)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="arena_votes"
    )
    judge_model = models.ForeignKey(LLMModel, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    winner = models.CharField(max_length=4, choices=Winner.choices)
    # Copied from the battle so the ratings read one table.
    model_a = models.ForeignKey(LLMModel, on_delete=models.PROTECT, related_name="+")
    model_b = models.ForeignKey(LLMModel, on_delete=models.PROTECT, related_name="+")
    test_case = models.ForeignKey(TestCase, on_delete=models.PROTECT, related_name="+")
    details = models.JSONField(default=dict, blank=True, help_text="A judge's verdicts in both orders.")
    voided = models.BooleanField(default=False)
    voided_at = models.DateTimeField(null=True, blank=True)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    void_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = VoteQuerySet.as_manager()

    class Meta:
        db_table = "arena_votes"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["voter_kind", "voided"], name="arena_vote_kind_voided"),
            models.Index(fields=["user", "voided"], name="arena_vote_user_voided"),
            # The next battle counts each shared test's counted votes: read from this index alone.
            models.Index(fields=["test_case", "voter_kind"], condition=Q(voided=False), name="arena_vote_test_counted"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(winner__in=["a", "b", "tie"]), name="arena_vote_winner"),
            models.CheckConstraint(condition=~Q(model_a=F("model_b")), name="arena_vote_two_models"),
        ]

    def __str__(self) -> str:
        return f"Vote {self.winner} on {self.battle_id}"
