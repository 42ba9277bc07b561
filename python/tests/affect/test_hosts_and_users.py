"""Host names compare without case; deleting a user reaches the cached criteria."""

import pytest

from affect_helpers import flags_of

pytestmark = pytest.mark.django_db


def test_referrer_and_entry_hosts_ignore_case(make, client, settings):
    make.criteria("r", referrer="Partner.Example")
    assert flags_of(client, HTTP_REFERER="https://PARTNER.example/x") == ["rev_b"]
    make.criteria("e", flags=["entry"], entry_url="/landing/")
    settings.AFFECTED_NONENTRY_DOMAINS = ["Mail.Example"]
    # The site's own host in another case is not an entry; a non-entry domain is not either.
    assert "entry" not in flags_of(client, "/landing/", HTTP_HOST="SHOP.example", HTTP_REFERER="https://shop.example/")
    assert "entry" not in flags_of(client, "/landing/", HTTP_REFERER="https://mail.example/")
    assert "entry" in flags_of(client, "/landing/", HTTP_REFERER="https://search.example/")


def test_deleting_a_listed_user_invalidates_the_cached_criteria(make, client, django_user_model, committed):
    user = django_user_model.objects.create_user("listed", password="x")
    make.criteria("u", users=[user], superusers=False)
    client.force_login(user)
    assert flags_of(client) == ["rev_b"]
    client.logout()
    pk = user.pk
    with committed():
        user.delete()
    # A new user that reuses the pk (sqlite may) must not inherit the deleted user's criteria.
    reused = django_user_model.objects.create_user("newcomer", password="x")
    if reused.pk != pk:
        reused.delete()
        reused = django_user_model(pk=pk, username="newcomer")
        reused.set_password("x")
        reused.save()
    client.force_login(reused)
    assert flags_of(client) == []
