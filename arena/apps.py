from django.apps import AppConfig


class ArenaConfig(AppConfig):
    """Pairwise battles between anonymised answers, votes, and Bradley-Terry ratings (SPEC §13)."""

    name = "arena"
    default_auto_field = "django.db.models.BigAutoField"
