"""The moderators group may read labels and their audit trail in the admin (labelling itself goes through the
results' admin actions, which moderators already see)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

PERMISSIONS = [("judging", "view_resultlabel"), ("judging", "view_labelevent")]


def grant(apps, schema_editor):
    # Permissions are normally made after migrate; make judging's now so the group can hold them.
    config = apps.get_app_config("judging")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None
    group = apps.get_model("auth", "Group").objects.filter(name="moderators").first()
    if group is None:
        return  # accounts.services.moderators_group() creates it with these permissions
    Permission = apps.get_model("auth", "Permission")
    for app_label, codename in PERMISSIONS:
        group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def revoke(apps, schema_editor):
    group = apps.get_model("auth", "Group").objects.filter(name="moderators").first()
    if group is None:
        return
    Permission = apps.get_model("auth", "Permission")
    for app_label, codename in PERMISSIONS:
        group.permissions.remove(*Permission.objects.filter(content_type__app_label=app_label, codename=codename))


class Migration(migrations.Migration):
    dependencies = [
        ("judging", "0001_initial"),
        ("accounts", "0002_moderators_group"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
