"""The moderators' tool: pending queue, approve/reject with notes, filters, search and an audit trail."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from accounts.models import User
from catalog.forms import ModerationDecisionForm
from catalog.models import LLMModel, ModerationEvent, PendingTestCase, Suite, Tag, TestCase, TestCaseRevision
from catalog.services import (
    EDITABLE_FIELDS,
    test_case_approve,
    test_case_create,
    test_case_reject,
    test_case_update,
)
from catalog.suites import suite_bump_version_if_changed, suite_definition
from openbench.exceptions import ApplicationError


class ReadOnlyAdminMixin:
    """For records nobody edits by hand: audit events, revisions."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ModerationEventInline(ReadOnlyAdminMixin, admin.TabularInline[ModerationEvent, TestCase]):
    model = ModerationEvent
    extra = 0
    fields = ("created_at", "actor", "action", "from_status", "to_status", "revision", "notes")
    readonly_fields = fields
    ordering = ("-created_at",)
    verbose_name_plural = "audit trail"


class RevisionInline(ReadOnlyAdminMixin, admin.TabularInline[TestCaseRevision, TestCase]):
    model = TestCaseRevision
    extra = 0
    fields = ("revision", "created_at", "created_by", "evaluation_type", "prompt")
    readonly_fields = fields
    ordering = ("-revision",)


def _acting_user(request: HttpRequest) -> User:
    """The admin only lets staff in, so the user is always a real account here."""
    assert isinstance(request.user, User)
    return request.user


REVISION_FIELD = "revision_{pk}"


def _posted_revision(request: HttpRequest, test_case: TestCase) -> int | None:
    """The revision the moderator's page showed for this test (a hidden field per test), if any."""
    try:
        return int(request.POST.get(REVISION_FIELD.format(pk=test_case.pk), ""))
    except ValueError:
        return None


def _decide(
    modeladmin: TestCaseAdminBase, request: HttpRequest, queryset: QuerySet[TestCase], *, approve: bool
) -> HttpResponse | None:
    """Approve or reject the selected tests after asking for notes (required for a rejection).

    Each decision is tied to the revision the moderator saw: the list sends the revision of every row
    it displayed, the confirmation page carries it on, and the service refuses a test that has changed
    since (SPEC §10 "Moderation is tied to what was read").
    """
    form = ModerationDecisionForm(request.POST if "confirm" in request.POST else None, require_notes=not approve)
    if "confirm" in request.POST and form.is_valid():
        done, refused = 0, []
        for test_case in queryset:
            revision = _posted_revision(request, test_case)
            if revision is None:
                refused.append(f"{test_case.title}: the page sent no revision; reload the list and try again.")
                continue
            try:
                if approve:
                    test_case_approve(
                        test_case=test_case,
                        moderator=_acting_user(request),
                        notes=form.cleaned_data["notes"],
                        revision=revision,
                    )
                else:
                    test_case_reject(
                        test_case=test_case,
                        moderator=_acting_user(request),
                        reason=form.cleaned_data["notes"],
                        revision=revision,
                    )
                done += 1
            except ApplicationError as exc:
                refused.append(f"{test_case.title}: {exc.message}")
        verb = "Approved" if approve else "Rejected"
        if done:
            modeladmin.message_user(request, f"{verb} {done} test(s).", messages.SUCCESS)
        for line in refused:
            modeladmin.message_user(request, line, messages.ERROR)
        return None
    rows = []
    for test_case in queryset:
        shown = _posted_revision(request, test_case)
        # Reached without the list's hidden fields (another page's action), the revision shown is this page's.
        rows.append(
            {
                "test": test_case,
                "field": REVISION_FIELD.format(pk=test_case.pk),
                "revision": shown or test_case.revision,
                "changed": shown is not None and shown != test_case.revision,
            }
        )
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Approve tests" if approve else "Reject tests",
        "verb": "Approve" if approve else "Reject",
        "queryset": queryset,
        "rows": rows,
        "form": form,
        "action": "approve_selected" if approve else "reject_selected",
        "opts": modeladmin.model._meta,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/catalog/moderation_decision.html", context)


class TestCaseAdminForm(forms.ModelForm[TestCase]):
    tag_names = forms.CharField(required=False, help_text="Comma-separated tags.", label="Tags")

    class Meta:
        model = TestCase
        fields = EDITABLE_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["tag_names"].initial = ", ".join(tag.name for tag in self.instance.tags.all())

    def tag_list(self) -> list[str]:
        return [name.strip() for name in self.cleaned_data.get("tag_names", "").split(",") if name.strip()]


class TestCaseAdminBase(admin.ModelAdmin[TestCase]):
    """What the full list and the pending queue share: the edit form, moderation actions, audit inlines."""

    __test__ = False
    form = TestCaseAdminForm
    list_select_related = ("created_by",)
    actions = ("approve_selected", "reject_selected")
    readonly_fields = (
        "status",
        "revision",
        "moderated_by",
        "moderation_notes",
        "approved_at",
        "created_by",
        "created_at",
        "updated_at",
    )
    inlines = (ModerationEventInline, RevisionInline)
    fieldsets = (
        (None, {"fields": ("title", "description", "category", "tag_names", "difficulty", "language", "is_public")}),
        ("Prompt", {"fields": ("system_prompt", "prompt", "timeout_seconds")}),
        ("Scoring", {"fields": ("expected_output", "output_schema", "evaluation_type", "evaluation_config")}),
        (
            "Moderation",
            {
                "fields": (
                    "status",
                    "revision",
                    "moderated_by",
                    "moderation_notes",
                    "approved_at",
                    "created_by",
                    "created_at",
                    "updated_at",
                )
            },
        ),
    )

    def action_checkbox(self, obj: TestCase) -> SafeString:
        """The row's checkbox, plus the revision this row shows: the moderation actions decide on it."""
        box = super().action_checkbox(obj)
        return format_html(
            '{}<input type="hidden" name="{}" value="{}">', box, REVISION_FIELD.format(pk=obj.pk), obj.revision
        )

    @admin.action(description="Approve selected tests", permissions=["change"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[TestCase]) -> HttpResponse | None:
        return _decide(self, request, queryset, approve=True)

    @admin.action(description="Reject selected tests (asks for a reason)", permissions=["change"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[TestCase]) -> HttpResponse | None:
        return _decide(self, request, queryset, approve=False)

    def save_model(self, request: HttpRequest, obj: TestCase, form: forms.ModelForm[Any], change: bool) -> None:
        # Edits go through the services so revisions and the audit trail stay right.
        assert isinstance(form, TestCaseAdminForm)
        fields = {name: form.cleaned_data[name] for name in EDITABLE_FIELDS if name in form.cleaned_data}
        try:
            if change:
                saved = test_case_update(
                    test_case=TestCase.objects.get(pk=obj.pk),
                    editor=_acting_user(request),
                    tags=form.tag_list(),
                    **fields,
                )
            else:
                saved = test_case_create(author=_acting_user(request), tags=form.tag_list(), **fields)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        obj.pk = saved.pk
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: forms.ModelForm[Any], formsets: Any, change: bool) -> None:
        """Tags were set by the service, so the form's m2m is not saved; the read-only inlines save nothing."""
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Delete means archive (results are kept); admins archive through the API or pages.
        return False


@admin.register(TestCase)
class TestCaseAdmin(TestCaseAdminBase):
    """Every test, in every state, with filters and search."""

    list_display = (
        "title",
        "category",
        "difficulty",
        "evaluation_type",
        "status",
        "revision",
        "created_by",
        "created_at",
    )
    list_filter = (
        "status",
        "category",
        "difficulty",
        "evaluation_type",
        "is_public",
        ("created_by", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("title", "prompt", "description")
    date_hierarchy = "created_at"


@admin.register(PendingTestCase)
class PendingQueueAdmin(TestCaseAdminBase):
    """Pending tests, oldest first: the moderators' work queue."""

    list_display = ("title", "category", "difficulty", "evaluation_type", "revision", "created_by", "created_at")
    list_filter = ("category", "difficulty", "evaluation_type", ("created_by", admin.RelatedOnlyFieldListFilter))
    search_fields = ("title", "prompt", "description")

    def get_queryset(self, request: HttpRequest) -> QuerySet[TestCase]:
        return super().get_queryset(request).filter(status=TestCase.Status.PENDING).order_by("created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ModerationEvent)
class ModerationEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[ModerationEvent]):
    """Who approved or rejected what, when, and why. Nobody can change it."""

    list_display = ("created_at", "test_case", "action", "actor", "from_status", "to_status", "revision", "notes")
    list_filter = ("action", ("actor", admin.RelatedOnlyFieldListFilter))
    search_fields = ("test_case__title", "actor__email", "notes")
    list_select_related = ("test_case", "actor")
    date_hierarchy = "created_at"


@admin.register(LLMModel)
class LLMModelAdmin(admin.ModelAdmin[LLMModel]):
    list_display = (
        "display_name",
        "name",
        "provider",
        "provider_model_id",
        "is_active",
        "sandbox",
        "health_status",
        "updated_at",
    )
    list_filter = ("provider", "is_active", "sandbox", "health_status")
    search_fields = ("name", "display_name", "provider_model_id")
    readonly_fields = ("health_status", "health_checked_at", "created_at", "updated_at")


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin[Tag]):
    search_fields = ("name",)


@admin.register(Suite)
class SuiteAdmin(admin.ModelAdmin[Suite]):
    """Suites (SPEC §12); an edit of what a suite selects bumps its version here as in the API."""

    list_display = ("name", "version", "category", "created_by", "updated_at")
    search_fields = ("name", "description")
    raw_id_fields = ("tests",)
    filter_horizontal = ("tags",)
    readonly_fields = ("version", "created_by", "created_at", "updated_at")

    def save_model(self, request: HttpRequest, obj: Suite, form: Any, change: bool) -> None:
        # Compared after the many-to-many fields are saved (save_related), against what was stored before.
        # Kept on the instance (one per request), not on this admin, which all requests share.
        obj._definition_before = suite_definition(Suite.objects.get(pk=obj.pk)) if change else None  # type: ignore[attr-defined]
        if not change:
            obj.created_by = _acting_user(request)
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        before = getattr(form.instance, "_definition_before", None)
        if before is not None:
            suite_bump_version_if_changed(suite=form.instance, before=before)
