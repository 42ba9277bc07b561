# The reverse accessor of Criteria.flags is `flag.criteria_set` again, as in django-affect.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('affect', '0001_initial'),
    ]

    operations = [
        migrations.AlterField(
            model_name='criteria',
            name='flags',
            field=models.ManyToManyField(blank=True, help_text='Flags applied when the criteria matches.', to='affect.flag'),
        ),
    ]
