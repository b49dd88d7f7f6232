from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0004_revision_reviewed_fields"),
    ]

    operations = [
        migrations.AddField(
            model_name="llmmodel",
            name="sandbox",
            field=models.BooleanField(
                default=False, help_text="Tests that are not approved yet may run on this model (choose cheap ones)."
            ),
        ),
    ]
