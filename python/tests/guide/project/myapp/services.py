"""The guide's code outside a request (a task, a management command): a scope for one user."""

from myapp.apps import MyAppConfig


def show_new_checkout(user) -> bool:
    """Whether ``user`` sees the new checkout."""
    server = MyAppConfig.avsb_server
    scoped = server.for_user({'kind': 'user', 'key': str(user.id), 'plan': user.plan})
    show_new = scoped.get_bool_flag('checkout-v2', False)
    return show_new
