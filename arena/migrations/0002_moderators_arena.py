"""Give the moderators group the arena in the admin: see battles and votes, void votes."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

PERMISSIONS = ["view_battle", "view_vote", "change_vote"]


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="moderators")
    group.permissions.add(*Permission.objects.filter(content_type__app_label="arena", codename__in=PERMISSIONS))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group in Group.objects.filter(name="moderators"):
        group.permissions.remove(*Permission.objects.filter(content_type__app_label="arena", codename__in=PERMISSIONS))


class Migration(migrations.Migration):
    dependencies = [("arena", "0001_initial"), ("accounts", "0003_moderators_pending_queue")]

    operations = [migrations.RunPython(grant, revoke)]
