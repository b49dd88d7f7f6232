"""Users (email login, role, tier) and their API keys."""

from __future__ import annotations

import hashlib
import uuid
from decimal import Decimal
from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models import Q


class UserManager(BaseUserManager["User"]):
    """Creates users by email; roles decide the admin flags (see accounts.services.user_set_role)."""

    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.apply_role_flags()
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra["role"] = User.Role.ADMIN
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person using OpenBench; `role` decides what they may do (SPEC §2), `tier` how fast."""

    class Role(models.TextChoices):
        USER = "user", "User"
        MODERATOR = "moderator", "Moderator"
        ADMIN = "admin", "Admin"

    class Tier(models.TextChoices):
        FREE = "free", "Free"
        PRO = "pro", "Pro"
        UNLIMITED = "unlimited", "Unlimited"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True)
    display_name = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.USER)
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.FREE)
    is_active = models.BooleanField(default=True)
    # Empty: the role's default (BUDGET_DAILY_USD_USER / _MODERATOR; admins unlimited). SPEC §11.
    daily_budget_usd = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="USD this user may spend on runs per day. Empty: the default for the role.",
    )
    is_staff = models.BooleanField(default=False, help_text="Derived from the role: moderators and admins.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        db_table = "users"
        ordering = ["email"]
        constraints = [
            models.CheckConstraint(condition=Q(role__in=["user", "moderator", "admin"]), name="user_role_valid"),
            models.CheckConstraint(condition=Q(tier__in=["free", "pro", "unlimited"]), name="user_tier_valid"),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def is_moderator(self) -> bool:
        """Moderators and admins both moderate."""
        return self.is_active and self.role in (self.Role.MODERATOR, self.Role.ADMIN)

    @property
    def is_admin(self) -> bool:
        return self.is_active and self.role == self.Role.ADMIN

    def apply_role_flags(self) -> None:
        """Keep Django's admin flags in line with the role (group membership is a service's job)."""
        self.is_staff = self.role in (self.Role.MODERATOR, self.Role.ADMIN)
        self.is_superuser = self.role == self.Role.ADMIN

    @property
    def daily_budget_limit(self) -> Decimal | None:
        """USD per day this user may reserve for runs; None is unlimited (SPEC §11)."""
        from django.conf import settings

        if self.daily_budget_usd is not None:
            return self.daily_budget_usd
        if self.role == self.Role.ADMIN:
            return None
        if self.role == self.Role.MODERATOR:
            return Decimal(str(settings.BUDGET_DAILY_USD_MODERATOR))
        return Decimal(str(settings.BUDGET_DAILY_USD_USER))

    def get_full_name(self) -> str:
        return self.display_name or self.email

    def get_short_name(self) -> str:
        return self.display_name or self.email.split("@")[0]


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def active(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True, user__is_active=True)


class ApiKey(models.Model):
    """A long-lived credential sent as `X-API-Key`; only its SHA-256 and a short prefix are stored."""

    PREFIX_LENGTH = 8

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        db_table = "api_keys"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @staticmethod
    def hash_secret(secret: str) -> str:
        # Keys are 256-bit random, so a fast unsalted hash is enough and lets us look them up.
        return hashlib.sha256(secret.encode()).hexdigest()
