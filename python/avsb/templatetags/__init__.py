"""Django template tags of the ``avsb`` app (``INSTALLED_APPS += ['avsb']``, then ``{% load avsb %}``)."""
