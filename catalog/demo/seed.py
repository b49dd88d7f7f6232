"""Loading the demo catalog; safe to run any number of times."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from accounts.models import User
from accounts.services import user_create, user_set_role
from catalog.demo.data import DEMO_MODELS, DEMO_TESTS, PENDING_TITLES, REJECTED
from catalog.models import LLMModel, TestCase
from catalog.services import test_case_approve, test_case_create, test_case_reject

DEMO_ACCOUNTS = (
    ("admin@openbench.local", "Demo Admin", User.Role.ADMIN),
    ("moderator@openbench.local", "Demo Moderator", User.Role.MODERATOR),
    ("contributor@openbench.local", "Demo Contributor", User.Role.USER),
)


@dataclass
class SeedReport:
    """What a run created; all zero on a second run."""

    users: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.users or self.models or self.tests)


def _demo_user(email: str, display_name: str, role: str, password: str | None, report: SeedReport) -> User:
    user = User.objects.filter(email=email).first()
    if user is not None:
        return user
    if password:
        user = user_create(email=email, password=password, display_name=display_name)
    else:
        # No password given: the account exists but cannot log in until someone sets one.
        user = User.objects.create_user(email, None, display_name=display_name)
    user_set_role(user=user, role=role)
    report.users.append(email)
    return user


@transaction.atomic
def demo_catalog_seed(*, password: str | None) -> SeedReport:
    """Create the demo accounts, mock models and tests that are missing; never touch existing rows."""
    report = SeedReport()
    admin, moderator, contributor = (
        _demo_user(email, name, role, password, report) for email, name, role in DEMO_ACCOUNTS
    )
    for spec in DEMO_MODELS:
        _, created = LLMModel.objects.get_or_create(
            name=spec["name"], defaults={**spec, "provider": LLMModel.Provider.MOCK, "provider_model_id": spec["name"]}
        )
        if created:
            report.models.append(spec["name"])
    existing_titles = set(TestCase.objects.filter(created_by=contributor).values_list("title", flat=True))
    for spec in DEMO_TESTS:
        if spec["title"] in existing_titles:
            continue
        fields = dict(spec)
        tags = fields.pop("tags", [])
        test_case = test_case_create(author=contributor, tags=[fields["category"], *tags], **fields)
        if spec["title"] in REJECTED:
            test_case_reject(test_case=test_case, moderator=moderator, reason=REJECTED[spec["title"]])
        elif spec["title"] not in PENDING_TITLES:
            test_case_approve(test_case=test_case, moderator=moderator, notes="Demo catalog.")
        report.tests.append(spec["title"])
    del admin
    return report
