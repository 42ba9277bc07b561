"""Cache invalidation: any change to flags, criteria or their relations makes a new version
after the transaction commits (so no process reloads data that could still roll back)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from avsb.contrib.affect import registry
from avsb.contrib.affect.models import Criteria, Flag


def _changed(**kwargs) -> None:
    transaction.on_commit(registry.invalidate)


for model in (Flag, Criteria):
    post_save.connect(_changed, sender=model, dispatch_uid=f"affect-save-{model.__name__}")
    post_delete.connect(_changed, sender=model, dispatch_uid=f"affect-delete-{model.__name__}")
for through in (Flag.conflicts.through, Criteria.flags.through, Criteria.groups.through, Criteria.users.through):
    m2m_changed.connect(_changed, sender=through, dispatch_uid=f"affect-m2m-{through.__name__}")


@receiver(m2m_changed, sender=get_user_model().groups.through, dispatch_uid="affect-user-groups")
def _user_groups_changed(instance, action, reverse, pk_set, **kwargs) -> None:
    if not action.startswith("post_"):
        return
    if reverse:  # group.user_set changed: instance is the group, pk_set the users
        users = pk_set or []
        if action == "post_clear":
            users = None
        if users is None:
            transaction.on_commit(registry.invalidate_all_user_groups)
            return
        for pk in users:
            transaction.on_commit(lambda pk=pk: registry.forget_user_groups(pk))
    else:
        transaction.on_commit(lambda: registry.forget_user_groups(instance.pk))


@receiver(post_delete, sender=Group, dispatch_uid="affect-group-deleted")
def _group_deleted(**kwargs) -> None:
    transaction.on_commit(registry.invalidate_all_user_groups)


@receiver(post_delete, sender=get_user_model(), dispatch_uid="affect-user-deleted")
def _user_deleted(**kwargs) -> None:
    # Deleting a user removes its Criteria.users rows without an m2m_changed signal.
    transaction.on_commit(registry.invalidate)
