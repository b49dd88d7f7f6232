"""Give the moderators group the pending queue (a proxy of test cases) in the admin."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

QUEUE_PERMISSIONS = ["view_pendingtestcase", "change_pendingtestcase"]


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="moderators")
    group.permissions.add(*Permission.objects.filter(content_type__app_label="catalog", codename__in=QUEUE_PERMISSIONS))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group in Group.objects.filter(name="moderators"):
        group.permissions.remove(
            *Permission.objects.filter(content_type__app_label="catalog", codename__in=QUEUE_PERMISSIONS)
        )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_moderators_group"), ("catalog", "0002_pendingtestcase")]

    operations = [migrations.RunPython(grant, revoke)]
