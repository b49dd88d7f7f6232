"""Migration 0004 rewrites cancel reasons that named a person by e-mail (SPEC §10)."""

from __future__ import annotations

import importlib

from django.apps import apps

from accounts.models import User
from accounts.tests.factories import UserFactory
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import Execution
from evaluations.services import execution_start

migration = importlib.import_module("evaluations.migrations.0004_cancel_reasons_without_emails")


def _cancelled_with(text: str, owner: User) -> Execution:
    execution = execution_start(test_case=TestCaseFactory(), models=[LLMModelFactory(sandbox=True)], started_by=owner)
    Execution.objects.filter(pk=execution.pk).update(status=Execution.Status.CANCELLED, error_message=text)
    return execution


def test_old_cancel_reasons_lose_the_email_and_say_who_by_role(db: None) -> None:
    owner = UserFactory(email="owner@example.com")
    by_owner = _cancelled_with("Cancelled by owner@example.com.", owner)
    by_moderator = _cancelled_with("Cancelled by mod@example.com.", owner)
    plain = _cancelled_with("Cancelled.", owner)
    overrun = _cancelled_with("Budget overrun: 0.02 USD spent of a 0.01 USD reserve.", owner)

    migration.forward(apps, None)

    texts = dict(Execution.objects.values_list("pk", "error_message"))
    assert texts[by_owner.pk] == "Cancelled by its owner."
    assert texts[by_moderator.pk] == "Cancelled by a moderator."
    assert texts[plain.pk] == "Cancelled."
    assert texts[overrun.pk].startswith("Budget overrun")
    assert not any("@" in text for text in texts.values())
