from django.apps import AppConfig


class OpenBenchConfig(AppConfig):
    """The project package as an app: its one job is per-process start-up that belongs to no feature."""

    name = "openbench"

    def ready(self) -> None:
        from openbench import tracing

        # Here, once per process and before any request or job: web (wsgi, asgi, runserver), rq workers
        # (their forked work horses inherit it), commands, and the in-process executor's threads.
        tracing.setup()
