"""Shapes of /api/v1/auth requests and responses."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import ApiKey, User


class UserSerializer(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ["id", "email", "display_name", "role", "created_at"]
        read_only_fields = fields


class BudgetSerializer(serializers.Serializer):
    """Today's budget (SPEC §11); money as decimal strings with 8 places, like `total_cost`."""

    daily_usd = serializers.DecimalField(
        max_digits=14, decimal_places=8, allow_null=True, help_text="USD per day; null is unlimited."
    )
    spent_today_usd = serializers.DecimalField(max_digits=14, decimal_places=8)
    reserved_usd = serializers.DecimalField(
        max_digits=14, decimal_places=8, help_text="Held by runs that have not finished yet."
    )
    remaining_usd = serializers.DecimalField(
        max_digits=14, decimal_places=8, allow_null=True, help_text="null when the budget is unlimited."
    )


class MeSerializer(UserSerializer):
    """The caller, with what they may still spend on runs today (`budget`, given in the context)."""

    budget = serializers.SerializerMethodField()

    class Meta(UserSerializer.Meta):
        fields = [*UserSerializer.Meta.fields, "budget"]
        read_only_fields = fields

    @extend_schema_field(BudgetSerializer)
    def get_budget(self, user: User) -> dict[str, Any]:
        return dict(BudgetSerializer(self.context["budget"]).data)


class RegisterSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})
    display_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")


class LoginSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})


class PasswordChangeSerializer(serializers.Serializer):
    old_password = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})
    new_password = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})


class PasswordResetSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class PasswordResetConfirmSerializer(serializers.Serializer):
    uid = serializers.CharField(max_length=64, help_text="The `uid` part of the link in the e-mail.")
    token = serializers.CharField(max_length=128, help_text="The `token` part of the link in the e-mail.")
    new_password = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


class RefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=4096)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField(help_text="JWT access token; send as `Authorization: Bearer <access>`.")
    refresh = serializers.CharField(help_text="Refresh token; each can be used once (rotation).")
    token_type = serializers.ChoiceField(choices=["Bearer"])
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")


class ApiKeySerializer(serializers.ModelSerializer[ApiKey]):
    """A key as listed: never the secret, only its visible prefix."""

    is_revoked = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at", "is_revoked"]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    """The one response that carries the secret."""

    key = serializers.CharField(read_only=True, help_text="The secret, shown this once; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields
