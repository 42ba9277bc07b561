"""``manage.py affect_flag NAME``: list, create and change flags. Options not given leave the
flag's fields unchanged (unlike waffle, which resets them)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from avsb.contrib.affect.models import Flag


def describe(flag: Flag) -> str:
    conflicts = ",".join(f.name for f in flag.conflicts.all()) or "-"
    return f"{flag.name}: active={flag.active} priority={flag.priority} conflicts={conflicts}" + (f" note={flag.note!r}" if flag.note else "")


def validation_message(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
    return " ".join(error.messages)


class Command(BaseCommand):
    help = "List, create, activate or deactivate affect flags."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name", nargs="?", help="The flag's name.")
        parser.add_argument("-l", "--list", action="store_true", help="List every flag with its settings.")
        parser.add_argument("--create", action="store_true", help="Create the flag if it does not exist.")
        state = parser.add_mutually_exclusive_group()
        state.add_argument("--activate", dest="active", action="store_const", const=True, default=None)
        state.add_argument("--deactivate", dest="active", action="store_const", const=False)
        parser.add_argument("--priority", type=int, help="0 low … 100 high: decides conflicts.")
        parser.add_argument("--conflicts", help="Comma-separated names of conflicting flags (replaces the list; '' clears it).")
        parser.add_argument("--note", help="What the flag is for.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            for flag in Flag.objects.prefetch_related("conflicts").order_by("name"):
                self.stdout.write(describe(flag))
            return
        name = options["name"]
        if not name:
            raise CommandError("Give a flag's name, or --list.")
        with transaction.atomic():
            flag = Flag.objects.filter(name=name).first()
            created = flag is None
            if created:
                if not options["create"]:
                    raise CommandError(f"No flag named {name!r} (use --create).")
                flag = Flag(name=name)
            if options["active"] is not None:
                flag.active = options["active"]
            if options["priority"] is not None:
                flag.priority = options["priority"]
            if options["note"] is not None:
                flag.note = options["note"]
            try:
                flag.full_clean()
            except ValidationError as e:
                raise CommandError(validation_message(e)) from e
            flag.save()
            if options["conflicts"] is not None:
                names = [n.strip() for n in options["conflicts"].split(",") if n.strip()]
                found = list(Flag.objects.filter(name__in=names))
                missing = sorted(set(names) - {f.name for f in found})
                if missing:
                    raise CommandError(f"Unknown flag(s) in --conflicts: {', '.join(missing)}")
                if name in names:
                    raise CommandError("A flag cannot conflict with itself.")
                flag.conflicts.set(found)
        self.stdout.write(("Created " if created else "Updated ") + describe(flag))
