"""An rq worker class for the `evaluations` queue that loads the engine and the provider SDKs once.

rq's default worker forks a work horse per job; whatever the parent has imported, every horse gets for
free. Without this, each job would import the vendor SDKs (hundreds of modules, pydantic models) inside
its event loop before the first call. Use it with:

    python manage.py rqworker evaluations --worker-class evaluations.worker.EvaluationWorker
    # or, no fork at all (one long-lived process, lowest per-job overhead):
    python manage.py rqworker evaluations --worker-class evaluations.worker.EvaluationSimpleWorker
"""

from __future__ import annotations

import gc
import importlib
import logging
from typing import Any

from rq import SimpleWorker, Worker

logger = logging.getLogger(__name__)


def preload() -> None:
    """Import the engine and the adapters (with their SDKs) of the providers that have active models.

    Only those: every vendor SDK loaded costs the worker memory whether it is used or not.
    """
    from django.conf import settings

    import evaluations.jobs  # the job functions
    import evaluations.runner.run  # noqa: F401  (the engine, which jobs import lazily)
    from providers.registry import PROVIDER_CLASSES, provider_class

    for module in settings.WORKER_PRELOAD:  # the scorers, and what the engine's listeners use
        importlib.import_module(module)

    try:
        from django.db import connection

        from catalog.models import LLMModel

        wanted = set(LLMModel.objects.active().values_list("provider", flat=True).distinct())
        connection.close()  # a forking worker must not share its parent's connection
    except Exception:  # no database yet: preload nothing rather than fail to start
        logger.warning("Could not read the model registry; the worker starts without preloading.", exc_info=True)
        return
    for name in sorted(wanted & set(PROVIDER_CLASSES)):
        try:
            provider_class(name)
        except Exception:  # an adapter whose SDK is missing must not stop the worker
            logger.warning("Could not preload the %s adapter.", name, exc_info=True)
    if wanted - {"mock"}:
        from providers.pooling import shared_ssl_context

        shared_ssl_context()  # the CA bundle, ~0.1 s, loaded once here rather than in every work horse
    if wanted & {"openai", "together"}:
        # The OpenAI SDK imports its resources lazily, on the first request. (openai_compatible talks
        # plain JSON over aiohttp and never loads the SDK.)
        for module in ("openai.resources.chat.completions", "openai.types.chat"):
            importlib.import_module(module)
    # What is loaded now lives as long as the worker: frozen, it is left out of every later garbage
    # collection, so a full collection during a run (thousands of result objects) does not stall the
    # event loop while it walks Django and the SDKs again; forked jobs also share those pages.
    gc.freeze()


class EvaluationWorker(Worker):
    """rq's forking worker, with the engine preloaded in the parent so every job starts warm.

    A running job takes further waiting jobs into its event loop (evaluations.jobs); when its work horse
    dies, this process retries (or fails) those too, at once, as rq does for the job itself.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        preload()

    def handle_work_horse_killed(self, job: Any, retpid: int, ret_val: int, rusage: Any) -> None:
        from evaluations.jobs import end_taken_jobs

        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        try:
            end_taken_jobs(
                connection=self.connection, job_id=job.id, reason=f"Work-horse terminated unexpectedly ({ret_val})."
            )
        except Exception:  # rq's registry cleanup and recover_executions still find them
            logger.exception("Could not retry the jobs taken in by job %s.", job.id)


class EvaluationSimpleWorker(SimpleWorker):
    """Runs jobs in its own process (no fork); the engine is loaded once for the worker's lifetime."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        preload()
