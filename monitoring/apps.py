from typing import Any

from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    """Suites, schedules, drift detection and alerts (SPEC §12)."""

    name = "monitoring"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from evaluations.signals import queue_drained

        queue_drained.connect(_check_drift, dispatch_uid="monitoring.drift")


def _check_drift(sender: Any, **kwargs: Any) -> None:
    """When the queue drains, the scheduled runs that have just finished are compared with their previous run."""
    from monitoring.drift import drift_check_finished_runs

    drift_check_finished_runs()
