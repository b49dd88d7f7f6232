from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    """Suites, schedules, drift detection and alerts (SPEC §12)."""

    name = "monitoring"
    default_auto_field = "django.db.models.BigAutoField"
