from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A user with a plan, whose text id is the key A vs B hashes."""

    id = models.CharField(primary_key=True, max_length=64)
    plan = models.CharField(max_length=20, default="free")
