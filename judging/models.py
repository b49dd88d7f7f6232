"""Moderators' labels on scored results (is this answer really correct?) and their audit trail (SPEC §13)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from evaluations.models import TestResult


class ResultLabel(models.Model):
    """The current human verdict on one result; a relabel updates it, and every change leaves a LabelEvent."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    result = models.OneToOneField(TestResult, on_delete=models.CASCADE, related_name="label")
    is_correct = models.BooleanField(help_text="Whether the answer is really correct, in the labeller's judgement.")
    note = models.TextField(blank=True)
    labelled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "result_labels"
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return f"{'correct' if self.is_correct else 'incorrect'}: {self.result_id}"


class LabelEvent(models.Model):
    """One labelling decision: who, when, the verdict before (None for a first label) and after. Never edited."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    result = models.ForeignKey(TestResult, on_delete=models.CASCADE, related_name="label_events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    old_is_correct = models.BooleanField(null=True, help_text="Empty for the first label of the result.")
    new_is_correct = models.BooleanField()
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "label_events"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["result", "created_at"], name="label_event_result_created")]

    def __str__(self) -> str:
        return f"{self.old_is_correct} → {self.new_is_correct} on {self.result_id}"
