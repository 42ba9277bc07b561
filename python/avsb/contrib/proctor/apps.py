"""The Django application: ``INSTALLED_APPS = [..., "avsb.contrib.proctor"]``."""

from django.apps import AppConfig


class ProctorConfig(AppConfig):
    """Makes the ``forcegroups`` template tags and the private views' templates available."""

    name = "avsb.contrib.proctor"
    # Not "proctor": the label must not clash with django-proctor's while a site migrates.
    label = "avsb_proctor"
    verbose_name = "A vs B (django-proctor API)"
