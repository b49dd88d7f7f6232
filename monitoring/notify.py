"""Where alerts go (SPEC §12): a webhook (Slack-compatible JSON) and the moderators' mailboxes.

Both happen in the background, after the alert is committed: an rq job on the `default` queue when Redis
is configured, else a thread of this process. The webhook is retried with exponential backoff inside the
job; however it fails, the run and the stored alert are untouched (the alert page still shows it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import connections
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from monitoring.models import Alert

logger = logging.getLogger(__name__)

QUEUE = "default"

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def alert_body(alert: Alert) -> dict[str, Any]:
    """An alert as the API and the webhook show it: exactly SPEC §12's fields."""
    return {
        "id": str(alert.pk),
        "kind": alert.kind,
        "model": str(alert.model_id),
        "schedule": str(alert.schedule_id) if alert.schedule_id else None,
        "previous_execution_ids": alert.previous_execution_ids,
        "current_execution_ids": alert.current_execution_ids,
        "shared_tests": alert.shared_tests,
        "previous_score": alert.previous_score,
        "current_score": alert.current_score,
        "delta": alert.delta,
        "p_value": alert.p_value,
        "method": alert.method,
        "created_at": alert.created_at.isoformat(),
        "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
    }


def alert_text(alert: Alert) -> str:
    """One line a person reads in Slack or an e-mail subject."""
    model = alert.model.display_name or alert.model.name
    if alert.kind == Alert.Kind.ERROR_RATE:
        return (
            f"OpenBench: {model}'s error rate rose from {alert.previous_score:.0%} to {alert.current_score:.0%} "
            f"between two runs of its schedule."
        )
    return (
        f"OpenBench: {model} drifted: mean score {alert.previous_score:.3f} → {alert.current_score:.3f} "
        f"(Δ {alert.delta:+.3f}) on {alert.shared_tests} shared tests, p = {alert.p_value:.2g} ({alert.method})."
    )


def alert_webhook_deliver(*, alert_id: str, sleep: Callable[[float], None] = time.sleep) -> bool:
    """POST the alert to ALERT_WEBHOOK_URL, up to ALERT_WEBHOOK_ATTEMPTS times with doubling waits.

    Returns whether it was delivered; never raises for a failing endpoint (a 2xx is delivered).
    """
    url = settings.ALERT_WEBHOOK_URL
    if not url:
        return False
    alert = Alert.objects.select_related("model").get(pk=alert_id)
    payload = {"text": alert_text(alert), "alert": alert_body(alert)}
    wait = settings.ALERT_WEBHOOK_BACKOFF_SECONDS
    with httpx.Client(timeout=settings.ALERT_WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False) as client:
        for attempt in range(1, settings.ALERT_WEBHOOK_ATTEMPTS + 1):
            Alert.objects.filter(pk=alert.pk).update(webhook_attempts=F("webhook_attempts") + 1)
            try:
                status = client.post(url, json=payload).status_code
            except httpx.HTTPError as error:
                # The class only: an exception's text may quote the URL, and its path may be a secret.
                reason = type(error).__name__
            else:
                if 200 <= status < 300:
                    Alert.objects.filter(pk=alert.pk).update(webhook_delivered_at=timezone.now())
                    return True
                reason = f"HTTP {status}"
            logger.warning("Alert %s: webhook attempt %d failed (%s).", alert.pk, attempt, reason)
            if attempt < settings.ALERT_WEBHOOK_ATTEMPTS:
                sleep(wait)
                wait *= 2
    logger.error(
        "Alert %s: the webhook was not delivered after %d attempts.", alert.pk, settings.ALERT_WEBHOOK_ATTEMPTS
    )
    return False


def alert_email_moderators(*, alert_id: str) -> int:
    """E-mail the alert to every active moderator and admin; returns the number of messages sent."""
    if not settings.ALERT_EMAIL_MODERATORS:
        return 0
    alert = Alert.objects.select_related("model").get(pk=alert_id)
    recipients = list(
        User.objects.filter(is_active=True, role__in=[User.Role.MODERATOR, User.Role.ADMIN])
        .order_by("email")
        .values_list("email", flat=True)
    )
    if not recipients:
        return 0
    text = alert_text(alert)
    body = f"{text}\n\nAcknowledge it on the alerts page (/monitoring/alerts/).\n"
    # One message per person: moderators do not learn each other's addresses. One refused address (a
    # mailbox the SMTP server rejects) must not keep the alert from the moderators after it.
    sent = 0
    for address in recipients:
        try:
            sent += send_mail(subject=text[:150], message=body, from_email=None, recipient_list=[address])
        except Exception:
            logger.exception("Alert %s: the e-mail to a moderator failed.", alert.pk)
    return sent


def alerts_deliver(*, alert_ids: Sequence[str]) -> None:
    """Webhook and e-mail for each alert; one alert's failure does not stop the others."""
    for alert_id in alert_ids:
        for deliver in (alert_webhook_deliver, alert_email_moderators):
            try:
                deliver(alert_id=alert_id)
            except Exception:  # a notification must never take the next one (or the run) down with it
                logger.exception("Alert %s: %s failed.", alert_id, deliver.__name__)


def _in_thread(alert_ids: list[str]) -> None:
    try:
        alerts_deliver(alert_ids=alert_ids)
    finally:
        connections.close_all()


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alerts")
        return _pool


def alerts_notify(*, alert_ids: Sequence[str]) -> Future[None] | str:
    """Hand the alerts to the background (call after commit): an rq job, or a thread of this process."""
    ids = [str(alert_id) for alert_id in alert_ids]
    if settings.USE_RQ:
        import django_rq

        from monitoring.jobs import alerts_deliver_job

        job = django_rq.get_queue(QUEUE).enqueue(alerts_deliver_job, ids, description=f"deliver {len(ids)} alert(s)")
        return str(job.id)
    return _get_pool().submit(_in_thread, ids)


def wait_idle() -> None:
    """Block until this process's alert thread has delivered what it was given (commands and tests)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True)
