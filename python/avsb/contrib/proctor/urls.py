"""The private views under django-proctor's paths and names (``include("avsb.contrib.proctor.urls")``
under a private prefix). Written with ``re_path``: django-proctor's own ``urls`` module needs
``django.conf.urls.url``, which Django 4 removed."""

from django.urls import re_path

from avsb.contrib.proctor.views.private import ForceGroupsView, ShowTestMatrixView

urlpatterns = [
    re_path(r"^showTestMatrix/", ShowTestMatrixView.as_view(), name="showtestmatrix"),
    re_path(r"^proctor/show", ShowTestMatrixView.as_view(), name="proctor_showtestmatrix"),
    re_path(r"^proctor/force/", ForceGroupsView.as_view(), name="forcegroups"),
]
