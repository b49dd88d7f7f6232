from django.apps import AppConfig


class JudgingConfig(AppConfig):
    """Moderators' labels on scored results and each judge model's agreement with them (SPEC §13)."""

    name = "judging"
    default_auto_field = "django.db.models.BigAutoField"
