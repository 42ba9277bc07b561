"""Cache invalidation, as django-affect wires it (docs/django-affect.md §1.2), with the fixes of
docs/django-affect.md §1.4.7 and §2.3: a change is invalidated again after its transaction commits
(other processes may have cached the old rows in between); a change that is rolled back is
cleared from the cache by the next request (``utils.changed``); a deleted flag's criteria,
relations changed from their other side (``user.criteria_set.add(...)``), both flags of a
conflict and a deleted user's criteria are invalidated, where django-affect's receivers missed
them or failed."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete
from django.dispatch import receiver

from avsb.contrib.affect import utils
from avsb.contrib.affect.models import Criteria, Flag


def criteria_changed(criteria: Criteria, using: str = "default") -> None:
    """Invalidates one criteria now, and again after the commit."""
    utils.uncache_criteria(instance=criteria)
    utils.changed(utils.keys_of(criteria), using, again=lambda: utils.uncache_criteria(instance=criteria))


def flag_changed(flag: Flag, using: str = "default") -> None:
    """Invalidates one flag (its conflicts and its criteria) now, and again after the commit."""
    # Its criteria are read now: after a delete they can no longer be found through the flag.
    criteria = list(flag.criteria_set.using(using).all()) if flag.pk is not None else []
    keys = [utils.FLAG_CONFLICTS_KEY % flag.name, utils.ALL_CRITERIA_KEY]
    keys += [key for c in criteria for key in utils.keys_of(c)]
    utils.uncache_flag(instance=flag)

    def again() -> None:
        utils.cache.set(utils.FLAG_CONFLICTS_KEY % flag.name, None, utils.PLACEHOLDER_SECONDS)
        for c in criteria:
            utils.uncache_criteria(instance=c)

    utils.changed(keys, using, again=again)


@receiver(post_save, sender=Criteria, dispatch_uid="affect-criteria-saved")
@receiver(post_delete, sender=Criteria, dispatch_uid="affect-criteria-deleted")
def _criteria_saved(instance: Criteria, using: str = "default", **kwargs: Any) -> None:
    criteria_changed(instance, using)


@receiver(post_save, sender=Flag, dispatch_uid="affect-flag-saved")
def _flag_saved(instance: Flag, using: str = "default", **kwargs: Any) -> None:
    flag_changed(instance, using)


@receiver(pre_delete, sender=Flag, dispatch_uid="affect-flag-deleting")
def _flag_deleting(instance: Flag, using: str = "default", **kwargs: Any) -> None:
    # After the delete its criteria can no longer be found through it.
    flag_changed(instance, using)


def _related_changed(sender: Any, instance: Any, action: str, reverse: bool, model: Any, pk_set: Any, using: str, **kwargs: Any) -> None:
    if not action.startswith("post_") and action != "pre_clear":
        return
    if isinstance(instance, Criteria):
        criteria_changed(instance, using)
    elif isinstance(instance, Flag) and sender is not Flag.conflicts.through:
        flag_changed(instance, using)
    if model is Criteria:
        for criteria in Criteria.objects.using(using).filter(pk__in=pk_set or ()):
            criteria_changed(criteria, using)
    if sender is Flag.conflicts.through:
        for flag in Flag.objects.using(using).filter(pk__in=pk_set or ()):
            flag_changed(flag, using)
        if isinstance(instance, Flag):
            flag_changed(instance, using)


for through in (Criteria.flags.through, Criteria.users.through, Criteria.groups.through, Flag.conflicts.through):
    m2m_changed.connect(_related_changed, sender=through, dispatch_uid=f"affect-m2m-{through.__name__}")


@receiver(pre_delete, sender=get_user_model(), dispatch_uid="affect-user-deleting")
def _user_deleting(instance: Any, using: str = "default", **kwargs: Any) -> None:
    # The cascade removes the user from Criteria.users without an m2m_changed signal.
    for criteria in Criteria.objects.using(using).filter(users=instance):
        criteria_changed(criteria, using)
