from django.apps import AppConfig


class EvaluationsConfig(AppConfig):
    name = "evaluations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Project scorers live in `<app>/scorers.py` and register themselves with @register_scorer.
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("scorers")
