"""Helpers shared by the affect tests."""


def flags_of(client, path="/flags/", **extra):
    """The flags a request through the real middleware gets."""
    response = client.get(path, **extra)
    assert response.status_code == 200, response.content
    return response.json()["flags"]


def set_cookie(response, name):
    """The Morsel set on the response for ``name`` (or None)."""
    return response.cookies.get(name)
