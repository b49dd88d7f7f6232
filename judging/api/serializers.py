"""Shapes of a label request and answer, and of a judge's agreement (SPEC §13)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from judging.models import ResultLabel
from judging.services import NOTE_MAX_LENGTH
from leaderboard.api.serializers import ModelBriefSerializer


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only: "yes", 1 or "false" are refused rather than guessed at."""

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool):
            return data
        self.fail("invalid", input=data)
        raise AssertionError  # fail() raises; this line satisfies the type checker


# POST /results/{id}/label. No docstrings on request/response shapes: drf-spectacular would publish them.
class LabelRequestSerializer(serializers.Serializer):
    is_correct = StrictBooleanField(help_text="Whether the answer is really correct: true or false.")
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=NOTE_MAX_LENGTH)


class ResultLabelSerializer(serializers.ModelSerializer[ResultLabel]):
    class Meta:
        model = ResultLabel
        fields = ["result", "is_correct", "note", "labelled_by", "created_at", "updated_at"]
        read_only_fields = fields


class ConfusionSerializer(serializers.Serializer):
    tp = serializers.IntegerField(help_text="Judge correct, label correct.")
    fp = serializers.IntegerField(help_text="Judge correct, label incorrect.")
    fn = serializers.IntegerField(help_text="Judge incorrect, label correct.")
    tn = serializers.IntegerField(help_text="Judge incorrect, label incorrect.")


class AgreementSerializer(serializers.Serializer):
    judge = ModelBriefSerializer()
    labelled = serializers.IntegerField(help_text="Labelled results this judge decided.")
    agree = serializers.IntegerField(help_text="Of those, how many the judge's verdict matches the label (tp + tn).")
    accuracy = serializers.FloatField(allow_null=True, help_text="agree / labelled; null without labels.")
    cohen_kappa = serializers.FloatField(
        allow_null=True, help_text="Cohen's kappa; null without labels or when chance agreement p_e is 1."
    )
    kappa_ci_low = serializers.FloatField(allow_null=True, help_text="95% interval, low end (see kappa_ci_method).")
    kappa_ci_high = serializers.FloatField(allow_null=True, help_text="95% interval, high end.")
    kappa_ci_method = serializers.CharField()
    confusion = ConfusionSerializer()
