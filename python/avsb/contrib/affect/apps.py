"""The Django app of the django-affect compatible layer."""

from django.apps import AppConfig


class AffectConfig(AppConfig):
    """``INSTALLED_APPS = [..., 'avsb.contrib.affect']``."""

    name = "avsb.contrib.affect"
    label = "affect"
    verbose_name = "Affect: request flags"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from avsb.contrib.affect import checks, signals  # noqa: F401 - registers the checks, connects cache invalidation
