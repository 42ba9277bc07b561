# The layer's change counter (models.ChangeCounter): one row, made here, that every change
# increments and every process polls. Not in django-affect: its tables are untouched.

from django.db import migrations, models


def create_the_row(apps, schema_editor):
    ChangeCounter = apps.get_model("affect", "ChangeCounter")
    ChangeCounter.objects.using(schema_editor.connection.alias).get_or_create(pk=1)


class Migration(migrations.Migration):

    dependencies = [
        ('affect', '0002_flag_criteria_set'),
    ]

    operations = [
        migrations.CreateModel(
            name='ChangeCounter',
            fields=[
                ('id', models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('count', models.BigIntegerField(default=0)),
            ],
            options={
                'verbose_name': 'change counter',
                'db_table': 'affect_changes',
            },
        ),
        migrations.RunPython(create_the_row, migrations.RunPython.noop),
    ]
