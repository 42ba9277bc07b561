"""django-affect's models, field for field (docs/django-affect.md §1.1): ``Flag`` and ``Criteria``;
and ``ChangeCounter``, the layer's own one-row table that tells every process a change was made."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
# django-affect's name for the clock its models read (its tests stub ``models.datetime.now``).
from django.utils import timezone as datetime

__all__ = ["ChangeCounter", "Criteria", "Flag", "DEVICE_UNKNOWN", "DEVICE_DESKTOP", "DEVICE_MOBILE", "DEVICE_SIMPLE", "datetime"]

DEVICE_UNKNOWN = 0
DEVICE_DESKTOP = 1
DEVICE_MOBILE = 2
DEVICE_SIMPLE = 4
DEVICE_CHOICES = (
    (DEVICE_UNKNOWN, "Unknown (ignore)"),
    (DEVICE_DESKTOP, "Desktop"),
    (DEVICE_MOBILE, "Mobile or tablet"),
    (DEVICE_SIMPLE, "Dumb phone"),
)

THIRTY_DAYS = 30 * 24 * 60 * 60


class Flag(models.Model):
    """A name attached to requests (``request.affected_flags``) when a criteria matches."""

    name = models.SlugField(max_length=50, unique=True, help_text="The key attached to the request.")
    active = models.BooleanField(default=True, help_text="An inactive flag is never applied.")
    conflicts = models.ManyToManyField(
        "self",
        symmetrical=True,
        blank=True,
        help_text="Flags that cannot apply together with this one: the highest priority wins, ties go to the name first in order.",
    )
    priority = models.IntegerField(default=0, help_text="0 low … 100 high; decides conflicts.")
    note = models.TextField(blank=True, default="", help_text="What the flag is for.")
    created = models.DateTimeField(default=datetime.now, db_index=True, editable=False)
    modified = models.DateTimeField(default=datetime.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.modified = datetime.now()
        super().save(*args, **kwargs)


class Criteria(models.Model):
    """When a request is affected: the first matching check decides (docs/django-affect.md §1.3)."""

    name = models.SlugField(max_length=50, unique=True, help_text="Used in cookie names (dac_<name>, dact_<name>).")
    # No related_name: a flag's criteria are ``flag.criteria_set``, as in django-affect.
    flags = models.ManyToManyField(Flag, blank=True, help_text="Flags applied when the criteria matches.")
    persistent = models.BooleanField(default=False, help_text="Remember the decision in the dac_<name> cookie.")
    max_cookie_age = models.PositiveIntegerField(
        default=THIRTY_DAYS,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="Seconds the cookies live; 0 or blank: until the browser closes.",
    )
    everyone = models.BooleanField(
        null=True,
        blank=True,
        choices=((True, "Yes"), (False, "No")),
        help_text="Yes or No decides for everyone; Unknown uses the other checks.",
    )
    testing = models.BooleanField(default=False, help_text="Allow ?dact_<name>=1 or =0 to decide (remembered in a cookie).")
    percent = models.DecimalField(
        max_digits=3,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.0")), MaxValueValidator(Decimal("99.9"))],
        help_text="0.0–99.9: that share of visitors, chosen by a stable hash of the user or an anonymous id, and remembered in a cookie.",
    )
    superusers = models.BooleanField(default=True, help_text="Superusers always match.")
    staff = models.BooleanField(default=False, help_text="Staff always match.")
    authenticated = models.BooleanField(default=False, help_text="Logged-in users always match.")
    # django-affect's names for the device types (docs/django-affect.md §1.1).
    UNKNOWN_DEVICE = DEVICE_UNKNOWN
    DESKTOP_DEVICE = DEVICE_DESKTOP
    MOBILE_DEVICE = DEVICE_MOBILE
    SIMPLE_DEVICE = DEVICE_SIMPLE
    DEVICE_CHOICES = DEVICE_CHOICES
    device_type = models.IntegerField(choices=DEVICE_CHOICES, default=DEVICE_UNKNOWN)
    entry_url = models.TextField(blank=True, default="", help_text="Comma-separated paths a visit must land on (use with persistent).")
    referrer = models.TextField(blank=True, default="", help_text="Comma-separated referrer host names.")
    query_args = models.JSONField(
        null=True,
        blank=True,
        default=None,
        help_text='Query arguments: {"foo": "bar"}, {"foo": "*"} or {"foo": ["bar", "baz"]}.',
    )
    groups = models.ManyToManyField(Group, blank=True)
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True)
    note = models.TextField(blank=True, default="", help_text="Notes.")
    created = models.DateTimeField(default=datetime.now, db_index=True, editable=False)
    modified = models.DateTimeField(default=datetime.now, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "criteria"

    def __str__(self) -> str:
        return self.name

    @property
    def notes(self) -> str:
        """The README's name for ``note``."""
        return self.note

    @notes.setter
    def notes(self, value: str) -> None:
        self.note = value

    def clean(self) -> None:
        """Refuses query_args that are not ``{name: value | "*" | [values]}``."""
        args = self.query_args
        if args is None:
            return
        if not isinstance(args, dict):
            raise ValidationError({"query_args": 'Expected an object like {"foo": "bar"}, {"foo": "*"} or {"foo": ["bar", "baz"]}.'})
        for key, value in args.items():
            ok = isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
            if not ok:
                raise ValidationError({"query_args": f"{key!r}: the value must be a string, \"*\" or a list of strings."})

    def save(self, *args, **kwargs) -> None:
        self.modified = datetime.now()
        super().save(*args, **kwargs)


class ChangeCounter(models.Model):
    """One row (``id`` 1) whose ``count`` every change to criteria, flags or their relations
    increments, in the change's own transaction. Each process reads it at most once every
    ``AFFECTED_CHANGE_CHECK_SECONDS`` and, when it moved, drops what its cache holds, so a change
    made in one process reaches the others whatever the cache backend (``utils.notice_changes``).
    Not in django-affect, whose tables and cache keys are unchanged."""

    count = models.BigIntegerField(default=0)

    class Meta:
        db_table = "affect_changes"
        verbose_name = "change counter"

    def __str__(self) -> str:
        return f"{self.count} changes"
