"""``manage.py affect_criteria NAME``: list, create and change criteria. Options not given leave
the criteria's fields unchanged (unlike waffle, which resets them)."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from avsb.contrib.affect.management.commands.affect_flag import validation_message
from avsb.contrib.affect.models import DEVICE_DESKTOP, DEVICE_MOBILE, DEVICE_SIMPLE, DEVICE_UNKNOWN, Criteria, Flag

DEVICES = {"unknown": DEVICE_UNKNOWN, "desktop": DEVICE_DESKTOP, "mobile": DEVICE_MOBILE, "simple": DEVICE_SIMPLE}
DEVICE_NAMES = {v: k for k, v in DEVICES.items()}
EVERYONE = {"yes": True, "no": False, "unknown": None}
EVERYONE_NAMES = {v: k for k, v in EVERYONE.items()}
BOOLEAN_FIELDS = ("testing", "persistent", "superusers", "staff", "authenticated")


def describe(c: Criteria) -> str:
    parts = [
        f"flags={','.join(f.name for f in c.flags.all()) or '-'}",
        f"everyone={EVERYONE_NAMES[c.everyone]}",
        f"percent={c.percent if c.percent is not None else '-'}",
    ]
    parts += [f"{field}={getattr(c, field)}" for field in BOOLEAN_FIELDS]
    parts.append(f"max_cookie_age={c.max_cookie_age if c.max_cookie_age else 'session'}")
    parts.append(f"device={DEVICE_NAMES.get(c.device_type, c.device_type)}")
    if c.entry_url:
        parts.append(f"entry_url={c.entry_url}")
    if c.referrer:
        parts.append(f"referrer={c.referrer}")
    if c.query_args is not None:
        parts.append(f"query_args={json.dumps(c.query_args, sort_keys=True)}")
    groups = [g.name for g in c.groups.all()]
    if groups:
        parts.append(f"groups={','.join(groups)}")
    users = [u.get_username() for u in c.users.all()]
    if users:
        parts.append(f"users={','.join(users)}")
    if c.note:
        parts.append(f"note={c.note!r}")
    return f"{c.name}: " + " ".join(parts)


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


class Command(BaseCommand):
    help = "List, create or change affect criteria."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name", nargs="?", help="The criteria's name.")
        parser.add_argument("-l", "--list", action="store_true", help="List every criteria with its settings.")
        parser.add_argument("--create", action="store_true", help="Create the criteria if it does not exist.")
        parser.add_argument("--flags", help="Comma-separated flag names (replaces the list unless --append).")
        parser.add_argument("--append", action="store_true", help="Add --flags, --group and --user instead of replacing.")
        parser.add_argument("--everyone", choices=sorted(EVERYONE))
        parser.add_argument("--percent", help="0.0–99.9; '' clears it.")
        for field in BOOLEAN_FIELDS:
            group = parser.add_mutually_exclusive_group()
            group.add_argument(f"--{field}", dest=field, action="store_const", const=True, default=None)
            group.add_argument(f"--no-{field}", dest=field, action="store_const", const=False)
        parser.add_argument("--max-cookie-age", help="Seconds; 0 or '' for a browser-session cookie.")
        parser.add_argument("--device", choices=sorted(DEVICES))
        parser.add_argument("--entry-url", help="Comma-separated paths.")
        parser.add_argument("--referrer", help="Comma-separated referrer host names.")
        parser.add_argument("--query-args", help='JSON: {"foo": "bar"}, {"foo": "*"} or {"foo": ["bar", "baz"]}; "null" clears it.')
        parser.add_argument("--group", action="append", help="A group name (repeatable).")
        parser.add_argument("--user", action="append", help="A username (repeatable).")
        parser.add_argument("--note", help="Notes.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            for c in Criteria.objects.prefetch_related("flags", "groups", "users").order_by("name"):
                self.stdout.write(describe(c))
            return
        name = options["name"]
        if not name:
            raise CommandError("Give a criteria's name, or --list.")
        with transaction.atomic():
            c = Criteria.objects.filter(name=name).first()
            created = c is None
            if created:
                if not options["create"]:
                    raise CommandError(f"No criteria named {name!r} (use --create).")
                c = Criteria(name=name)
            self._set_fields(c, options)
            try:
                c.full_clean()
            except ValidationError as e:
                raise CommandError(validation_message(e)) from e
            c.save()
            self._set_relations(c, options)
        self.stdout.write(("Created " if created else "Updated ") + describe(c))

    def _set_fields(self, c: Criteria, options: dict[str, Any]) -> None:
        if options["everyone"] is not None:
            c.everyone = EVERYONE[options["everyone"]]
        if options["percent"] is not None:
            if options["percent"].strip() == "":
                c.percent = None
            else:
                try:
                    c.percent = Decimal(options["percent"])
                except InvalidOperation as e:
                    raise CommandError(f"percent: {options['percent']!r} is not a number.") from e
        for field in BOOLEAN_FIELDS:
            if options[field] is not None:
                setattr(c, field, options[field])
        if options["max_cookie_age"] is not None:
            text = options["max_cookie_age"].strip()
            if text == "":
                c.max_cookie_age = None
            else:
                try:
                    c.max_cookie_age = int(text)
                except ValueError as e:
                    raise CommandError(f"max_cookie_age: {text!r} is not a whole number of seconds.") from e
        if options["device"] is not None:
            c.device_type = DEVICES[options["device"]]
        if options["entry_url"] is not None:
            c.entry_url = options["entry_url"]
        if options["referrer"] is not None:
            c.referrer = options["referrer"]
        if options["query_args"] is not None:
            try:
                c.query_args = json.loads(options["query_args"])
            except ValueError as e:
                raise CommandError(f"query_args: not JSON ({e}).") from e
        if options["note"] is not None:
            c.note = options["note"]

    def _set_relations(self, c: Criteria, options: dict[str, Any]) -> None:
        append = options["append"]
        if options["flags"] is not None:
            names = _names(options["flags"])
            flags = list(Flag.objects.filter(name__in=names))
            missing = sorted(set(names) - {f.name for f in flags})
            if missing:
                raise CommandError(f"Unknown flag(s): {', '.join(missing)} (create them with affect_flag --create).")
            c.flags.add(*flags) if append else c.flags.set(flags)
        if options["group"]:
            names = [n for g in options["group"] for n in _names(g)]
            groups = list(Group.objects.filter(name__in=names))
            missing = sorted(set(names) - {g.name for g in groups})
            if missing:
                raise CommandError(f"Unknown group(s): {', '.join(missing)}")
            c.groups.add(*groups) if append else c.groups.set(groups)
        if options["user"]:
            User = get_user_model()
            names = [n for u in options["user"] for n in _names(u)]
            users = list(User.objects.filter(**{f"{User.USERNAME_FIELD}__in": names}))
            missing = sorted(set(names) - {u.get_username() for u in users})
            if missing:
                raise CommandError(f"Unknown user(s): {', '.join(missing)}")
            c.users.add(*users) if append else c.users.set(users)
