"""Arena API shapes: a battle never names its models; a vote's answer does."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from arena.models import Battle, Vote, Winner
from leaderboard.api.serializers import ModelBriefSerializer
from leaderboard.selectors.scope import model_brief


class BattleRequestSerializer(serializers.Serializer):
    test_id = serializers.UUIDField(required=False, help_text="A test to battle on; default: the least-voted one.")


class BattleTestSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    title = serializers.CharField()
    prompt = serializers.CharField()


class BattleSerializer(serializers.ModelSerializer):
    """What a voter sees: the test and two answers. No model ids, names, latencies, costs or result ids."""

    test = serializers.SerializerMethodField()

    class Meta:
        model = Battle
        fields = ["id", "test", "answer_a", "answer_b"]

    @extend_schema_field(BattleTestSerializer)
    def get_test(self, battle: Battle) -> dict[str, Any]:
        test = battle.test_case
        return BattleTestSerializer({"id": test.pk, "title": test.title, "prompt": test.prompt}).data


class VoteRequestSerializer(serializers.Serializer):
    winner = serializers.ChoiceField(choices=Winner.values)


class VoteSerializer(serializers.ModelSerializer):
    """The answer to a vote: the models behind A and B are revealed."""

    battle = serializers.UUIDField(source="battle_id")
    model_a = serializers.SerializerMethodField()
    model_b = serializers.SerializerMethodField()

    class Meta:
        model = Vote
        fields = ["battle", "winner", "model_a", "model_b", "created_at"]

    @extend_schema_field(ModelBriefSerializer)
    def get_model_a(self, vote: Vote) -> dict[str, Any]:
        return model_brief(vote.model_a)

    @extend_schema_field(ModelBriefSerializer)
    def get_model_b(self, vote: Vote) -> dict[str, Any]:
        return model_brief(vote.model_b)


class VoidRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")


class VoidSerializer(serializers.Serializer):
    votes_voided = serializers.IntegerField()
    open_battles_voided = serializers.IntegerField()


class RatingEntrySerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    rank_upper = serializers.IntegerField(help_text="The best rank the 95% intervals allow.")
    rank_lower = serializers.IntegerField(help_text="The worst rank the 95% intervals allow.")
    model = ModelBriefSerializer()
    rating = serializers.FloatField(help_text="Bradley–Terry strength on the Elo scale (mean 1000).")
    ci_low = serializers.FloatField()
    ci_high = serializers.FloatField()
    battles = serializers.IntegerField()
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    ties = serializers.IntegerField()


class RatingsSerializer(serializers.Serializer):
    generated_at = serializers.DateTimeField()
    # The metaclass takes declared fields out of the class, so this does not shadow Field.source.
    source = serializers.ChoiceField(choices=["people", "judge"])  # type: ignore[assignment]
    votes = serializers.IntegerField()
    stale = serializers.BooleanField(
        help_text="Votes or voids landed since generated_at; a refit follows within ARENA_REFIT_SECONDS."
    )
    entries = RatingEntrySerializer(many=True)


class RatingsQuerySerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=["people", "judge"], required=False, default="people")  # type: ignore[assignment]
