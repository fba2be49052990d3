"""Bypass tokens get a site (null = every site) and a per-row secret.

Links issued by 1.0 carry neither, so they stop working: the tokens they name are marked
revoked, and each gets its own secret (``AddField`` computes a callable default once, so every
existing row would otherwise share one value).
"""

from typing import Any

import django.db.models.deletion
from django.db import migrations, models

import maintenance_flags.models


def retire_old_tokens(apps: Any, schema_editor: Any) -> None:
    BypassToken = apps.get_model("maintenance_flags", "BypassToken")
    for row in BypassToken.objects.using(schema_editor.connection.alias).only("pk"):
        row.secret = maintenance_flags.models.new_secret()
        row.revoked = True
        row.save(update_fields=["secret", "revoked"])


class Migration(migrations.Migration):
    dependencies = [
        ("maintenance_flags", "0001_initial"),
        ("sites", "0002_alter_domain_unique"),
    ]

    operations = [
        migrations.AddField(
            model_name="bypasstoken",
            name="secret",
            field=models.CharField(default=maintenance_flags.models.new_secret, editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="bypasstoken",
            name="site",
            field=models.ForeignKey(
                blank=True,
                help_text="Leave empty for every site.",
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="sites.site",
                verbose_name="site",
            ),
        ),
        migrations.RunPython(retire_old_tokens, migrations.RunPython.noop, elidable=True),
    ]
