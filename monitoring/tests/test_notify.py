"""Alerts leave the platform (SPEC §12): a webhook retried with backoff, e-mails to moderators; neither
can fail a run."""

from __future__ import annotations

import importlib
import json
import smtplib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured

from accounts.models import User
from accounts.tests.factories import UserFactory
from catalog.tests.factories import LLMModelFactory
from monitoring import notify
from monitoring.models import Alert
from monitoring.notify import alert_email_moderators, alert_webhook_deliver, alerts_deliver
from monitoring.tests.factories import score_drift_alert

pytestmark = pytest.mark.django_db


class Hook:
    """A local webhook that answers `failures` 500s, then 200s, and keeps what it received."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(json.loads(body))
                status = 500 if len(hook.received) <= hook.failures else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook/secret-path"


@pytest.fixture
def hook_factory() -> Iterator[Any]:
    hooks: list[Hook] = []

    def make(failures: int) -> Hook:
        hooks.append(Hook(failures))
        return hooks[-1]

    yield make
    for hook in hooks:
        hook.server.shutdown()


@pytest.fixture
def alert() -> Alert:
    return score_drift_alert(model=LLMModelFactory(name="gpt-drift", display_name="GPT Drift"))


def test_the_webhook_is_retried_with_doubling_waits_until_it_answers(alert, hook_factory, settings):
    hook = hook_factory(failures=2)
    settings.ALERT_WEBHOOK_URL = hook.url
    settings.ALERT_WEBHOOK_BACKOFF_SECONDS = 0.5
    waits: list[float] = []

    assert alert_webhook_deliver(alert_id=str(alert.pk), sleep=waits.append) is True

    assert len(hook.received) == 3 and waits == [0.5, 1.0]
    payload = hook.received[-1]
    assert "GPT Drift drifted" in payload["text"] and "p = 0.00049" in payload["text"]
    assert payload["alert"]["id"] == str(alert.pk) and payload["alert"]["delta"] == -0.6
    alert.refresh_from_db()
    assert alert.webhook_attempts == 3 and alert.webhook_delivered_at is not None


def test_a_webhook_that_always_fails_gives_up_quietly_and_the_e_mail_still_goes(alert, hook_factory, settings, caplog):
    hook = hook_factory(failures=100)
    settings.ALERT_WEBHOOK_URL = hook.url
    settings.ALERT_WEBHOOK_ATTEMPTS = 3
    settings.ALERT_WEBHOOK_BACKOFF_SECONDS = 0
    UserFactory(email="mod@example.com", role=User.Role.MODERATOR)

    alerts_deliver(alert_ids=[str(alert.pk)])  # does not raise

    assert len(hook.received) == 3
    alert.refresh_from_db()
    assert alert.webhook_delivered_at is None and alert.webhook_attempts == 3
    assert [message.to for message in mail.outbox] == [["mod@example.com"]]
    assert "secret-path" not in caplog.text  # the URL's path may be a token


def test_an_unreachable_webhook_is_a_failed_attempt_not_an_error(alert, settings):
    settings.ALERT_WEBHOOK_URL = "http://127.0.0.1:9/closed"
    settings.ALERT_WEBHOOK_ATTEMPTS = 2
    assert alert_webhook_deliver(alert_id=str(alert.pk), sleep=lambda _: None) is False


def test_alerts_are_e_mailed_to_each_active_moderator_and_admin(alert):
    UserFactory(email="a@example.com", role=User.Role.MODERATOR)
    UserFactory(email="b@example.com", role=User.Role.ADMIN)
    UserFactory(email="gone@example.com", role=User.Role.MODERATOR, is_active=False)
    UserFactory(email="user@example.com")

    assert alert_email_moderators(alert_id=str(alert.pk)) == 2
    assert sorted(message.to[0] for message in mail.outbox) == ["a@example.com", "b@example.com"]
    assert "GPT Drift drifted" in mail.outbox[0].subject


def test_a_refused_address_does_not_keep_the_alert_from_the_other_moderators(alert, monkeypatch):
    UserFactory(email="a@example.com", role=User.Role.MODERATOR)
    UserFactory(email="b@example.com", role=User.Role.MODERATOR)
    real = notify.send_mail

    def refusing_a(**kwargs: Any) -> int:
        if kwargs["recipient_list"] == ["a@example.com"]:
            raise smtplib.SMTPRecipientsRefused({"a@example.com": (550, b"No such user")})
        return real(**kwargs)

    monkeypatch.setattr(notify, "send_mail", refusing_a)
    assert alert_email_moderators(alert_id=str(alert.pk)) == 1
    assert [message.to for message in mail.outbox] == [["b@example.com"]]


def test_a_webhook_url_that_is_not_http_is_refused_when_settings_load(monkeypatch):
    import openbench.settings_monitoring as module

    monkeypatch.setenv("ALERT_WEBHOOK_URL", "file:///etc/passwd")
    with pytest.raises(ImproperlyConfigured, match="ALERT_WEBHOOK_URL"):
        importlib.reload(module)
    monkeypatch.setenv("ALERT_WEBHOOK_URL", "https://hooks.example.com/x")
    assert importlib.reload(module).ALERT_WEBHOOK_URL == "https://hooks.example.com/x"
    monkeypatch.delenv("ALERT_WEBHOOK_URL")
    importlib.reload(module)
