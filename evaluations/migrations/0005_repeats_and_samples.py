"""SPEC §12 repeats: an execution samples each (test, model) `repeats` times, and a result says which sample it
is. Every existing execution ran once and every existing result is its sample 0, so the defaults describe
them. The uniqueness moves from (execution, model) to (execution, model, sample); going back restores the
old one, which holds only while no execution has more than one sample."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("evaluations", "0004_cancel_reasons_without_emails")]

    operations = [
        migrations.AddField(
            model_name="execution",
            name="repeats",
            field=models.PositiveSmallIntegerField(default=1, help_text="Samples per model, 1 to 20 (SPEC §12)."),
        ),
        migrations.AddField(
            model_name="testresult",
            name="sample",
            field=models.PositiveSmallIntegerField(
                default=0, help_text="Which of the execution's repeats, 0…repeats−1."
            ),
        ),
        migrations.AddConstraint(
            model_name="execution",
            constraint=models.CheckConstraint(
                condition=models.Q(("repeats__gte", 1), ("repeats__lte", 20)), name="execution_repeats_range"
            ),
        ),
        migrations.AddConstraint(
            model_name="testresult",
            constraint=models.CheckConstraint(condition=models.Q(("sample__lt", 20)), name="result_sample_range"),
        ),
        # The new uniqueness first, so the rows are never unguarded in between.
        migrations.AddConstraint(
            model_name="testresult",
            constraint=models.UniqueConstraint(
                fields=("execution", "model", "sample"), name="result_one_per_execution_sample"
            ),
        ),
        migrations.RemoveConstraint(model_name="testresult", name="result_one_per_execution_model"),
    ]
