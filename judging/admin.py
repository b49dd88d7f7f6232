"""Labels in the admin: the results list gains "label correct / incorrect" actions, and labels and their
audit trail get read-only pages. The results admin is evaluations'; it is extended here (unregistered and
registered again as a subclass) because evaluations may not import judging (layers)."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import User
from evaluations.admin import ReadOnlyAdmin, TestResultAdmin
from evaluations.models import TestResult
from judging.models import LabelEvent, ResultLabel
from judging.services import result_label
from openbench.exceptions import ApplicationError


def _label(
    modeladmin: LabellingTestResultAdmin, request: HttpRequest, queryset: QuerySet[TestResult], *, is_correct: bool
) -> None:
    assert isinstance(request.user, User)  # the admin lets staff in only
    done, refused = 0, []
    for result in queryset.select_related("model"):
        try:
            outcome = result_label(result=result, moderator=request.user, is_correct=is_correct)
        except ApplicationError as exc:
            refused.append(f"{result.model.name} on {result.test_case_id}: {exc.message}")
            continue
        done += outcome.changed
    verdict = "correct" if is_correct else "incorrect"
    modeladmin.message_user(request, f"Labelled {done} result(s) {verdict}.", messages.SUCCESS)
    for line in refused:
        modeladmin.message_user(request, line, messages.ERROR)


admin.site.unregister(TestResult)


@admin.register(TestResult)
class LabellingTestResultAdmin(TestResultAdmin):
    """Evaluations' read-only results list, with moderators' label actions and the current label shown."""

    list_display: Any = (*TestResultAdmin.list_display, "human_label")
    list_select_related: ClassVar[Any] = (*TestResultAdmin.list_select_related, "label")
    actions = ("label_correct", "label_incorrect")

    def has_label_permission(self, request: HttpRequest) -> bool:
        return bool(getattr(request.user, "is_moderator", False))

    @admin.display(description="label")
    def human_label(self, obj: TestResult) -> str:
        label = getattr(obj, "label", None)
        return "—" if label is None else ("correct" if label.is_correct else "incorrect")

    @admin.action(description="Label selected results correct", permissions=["label"])
    def label_correct(self, request: HttpRequest, queryset: QuerySet[TestResult]) -> None:
        _label(self, request, queryset, is_correct=True)

    @admin.action(description="Label selected results incorrect", permissions=["label"])
    def label_incorrect(self, request: HttpRequest, queryset: QuerySet[TestResult]) -> None:
        _label(self, request, queryset, is_correct=False)


@admin.register(ResultLabel)
class ResultLabelAdmin(ReadOnlyAdmin):
    """Current labels; changed through the actions on results, the API or the test page (so they are audited)."""

    list_display = ("updated_at", "result", "is_correct", "labelled_by", "note")
    list_filter = ("is_correct", ("labelled_by", admin.RelatedOnlyFieldListFilter))
    search_fields = ("result__id", "result__test_case__title", "result__model__name", "labelled_by__email")
    list_select_related = ("result", "result__model", "result__test_case", "labelled_by")
    date_hierarchy = "updated_at"


@admin.register(LabelEvent)
class LabelEventAdmin(ReadOnlyAdmin):
    """The audit trail of labels: who changed which verdict, when, from what to what. Append-only."""

    list_display = ("created_at", "result", "actor", "old_is_correct", "new_is_correct", "note")
    list_filter = ("new_is_correct", ("actor", admin.RelatedOnlyFieldListFilter))
    search_fields = ("result__id", "result__test_case__title", "result__model__name", "actor__email")
    list_select_related = ("result", "result__model", "result__test_case", "actor")
    date_hierarchy = "created_at"
