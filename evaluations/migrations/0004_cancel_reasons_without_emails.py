"""Cancel reasons written before SPEC §10 named the person by e-mail ("Cancelled by mod@example.com.");
an owner must not learn a moderator's address from their execution. Rewrite them as the code now
writes them: by role, never by address."""

from django.db import migrations


def forward(apps, schema_editor):
    Execution = apps.get_model("evaluations", "Execution")
    old = Execution.objects.filter(status="cancelled", error_message__regex=r"^Cancelled by .+@.+\.$")
    # The owner's own cancel: the address in the text is the creator's.
    for execution in old.select_related("created_by").iterator():
        owner_email = execution.created_by.email if execution.created_by_id else None
        by_owner = owner_email is not None and execution.error_message == f"Cancelled by {owner_email}."
        execution.error_message = "Cancelled by its owner." if by_owner else "Cancelled by a moderator."
        execution.save(update_fields=["error_message"])


class Migration(migrations.Migration):
    dependencies = [("evaluations", "0003_budget_ledger")]

    # Backwards there is nothing to restore: the e-mails are what this migration removes.
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
