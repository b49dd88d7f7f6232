"""SPEC §12 repeats: a latest result says which execution it sums up and over how many samples. Every row so
far mirrors one result: its execution is that result's (filled in here), its samples 1."""

from django.db import migrations, models

FILL_EXECUTIONS = """
UPDATE leaderboard_latest_results
SET execution_id = (SELECT tr.execution_id FROM test_results tr WHERE tr.id = leaderboard_latest_results.result_id)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("leaderboard", "0005_interval_memo"),
        ("evaluations", "0005_repeats_and_samples"),
    ]

    operations = [
        migrations.AddField(
            model_name="latestresult",
            name="execution_id",
            field=models.UUIDField(blank=True, help_text="The execution of that result.", null=True),
        ),
        migrations.AddField(
            model_name="latestresult",
            name="samples",
            field=models.PositiveSmallIntegerField(default=1, help_text="Finished samples behind the row (SPEC §12)."),
        ),
        migrations.AlterField(
            model_name="latestresult",
            name="result_id",
            field=models.UUIDField(
                help_text="The TestResult this row mirrors (of several samples, the latest answer)."
            ),
        ),
        # Backwards the columns go, and with them what was filled in.
        migrations.RunSQL(FILL_EXECUTIONS, migrations.RunSQL.noop),
    ]
