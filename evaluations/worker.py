"""An rq worker class for the `evaluations` queue that loads the engine and the provider SDKs once.

rq's default worker forks a work horse per job; whatever the parent has imported, every horse gets for
free. Without this, each job would import the vendor SDKs (hundreds of modules, pydantic models) inside
its event loop before the first call. Use it with:

    python manage.py rqworker evaluations --worker-class evaluations.worker.EvaluationWorker
    # or, no fork at all (one long-lived process, lowest per-job overhead):
    python manage.py rqworker evaluations --worker-class evaluations.worker.EvaluationSimpleWorker
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from rq import SimpleWorker, Worker

logger = logging.getLogger(__name__)


def preload() -> None:
    """Import the engine and every registered provider adapter (and their SDKs' request/response types)."""
    import evaluations.jobs  # noqa: F401  (the engine and its scorers)
    from providers.registry import PROVIDER_CLASSES, provider_class

    for name in PROVIDER_CLASSES:
        try:
            provider_class(name)
        except Exception:  # an adapter whose SDK is missing must not stop the worker
            logger.warning("Could not preload the %s adapter.", name, exc_info=True)
    for module in ("openai.resources.chat.completions", "openai.types.chat", "anthropic.resources.messages"):
        try:
            importlib.import_module(module)
        except ImportError:
            continue


class EvaluationWorker(Worker):
    """rq's forking worker, with the engine preloaded in the parent so every job starts warm."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        preload()


class EvaluationSimpleWorker(SimpleWorker):
    """Runs jobs in its own process (no fork); the engine is loaded once for the worker's lifetime."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        preload()
