"""Admin for users (roles, tiers) and API keys; admins only, since moderators hold no user permissions."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.http import HttpRequest

from accounts.models import ApiKey, User
from accounts.services import api_key_revoke, user_set_role


class UserCreateForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("email", "display_name", "role", "tier")


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = ("email", "display_name", "role", "tier", "is_active")


admin.site.site_header = "OpenBench moderation"
admin.site.site_title = "OpenBench admin"
admin.site.index_title = "Moderation and registry"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserEditForm
    add_form = UserCreateForm
    ordering = ("email",)
    list_display = ("email", "display_name", "role", "tier", "is_active", "created_at")
    list_filter = ("role", "tier", "is_active")
    search_fields = ("email", "display_name")
    readonly_fields = ("created_at", "updated_at", "last_login")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("display_name", "role", "tier", "is_active")}),
        # Empty: the role's default (BUDGET_DAILY_USD_USER / _MODERATOR; admins unlimited). SPEC §11.
        ("Budget", {"fields": ("daily_budget_usd",)}),
        ("Dates", {"fields": ("last_login", "created_at", "updated_at")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "display_name", "role", "tier", "password1", "password2")}),
    )

    def save_model(self, request: HttpRequest, obj: User, form: forms.ModelForm[Any], change: bool) -> None:
        super().save_model(request, obj, form, change)
        # The role decides the admin flags and the moderators group; one service keeps them in step.
        user_set_role(user=obj, role=obj.role)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin[ApiKey]):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "user__email", "prefix")
    # The hash is useless to a person and the secret is never stored: nothing here is editable.
    readonly_fields = ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    exclude = ("key_hash",)
    actions = ("revoke_selected",)

    @admin.action(description="Revoke selected keys")
    def revoke_selected(self, request: HttpRequest, queryset: Any) -> None:
        for api_key in queryset:
            api_key_revoke(api_key=api_key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
