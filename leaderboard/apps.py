from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class LeaderboardConfig(AppConfig):
    """Analytics: latest-result read model, rollups, statistics and the analytics API."""

    name = "leaderboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from catalog.models import LLMModel, TestCase
        from evaluations import signals as engine_signals
        from evaluations.models import TestResult
        from leaderboard import signals

        post_save.connect(signals.test_case_saved, sender=TestCase, dispatch_uid="leaderboard.test_case_saved")
        post_save.connect(signals.llm_model_saved, sender=LLMModel, dispatch_uid="leaderboard.llm_model_saved")
        post_delete.connect(
            signals.test_result_deleted, sender=TestResult, dispatch_uid="leaderboard.test_result_deleted"
        )
        # The engine announces its work; the analytics follow it (the engine does not know they exist).
        engine_signals.results_saved.connect(signals.results_saved, dispatch_uid="leaderboard.results_saved")
        engine_signals.queue_drained.connect(signals.queue_drained, dispatch_uid="leaderboard.queue_drained")
