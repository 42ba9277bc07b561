"""URLs of the demo project. django-proctor's own `proctor.urls` uses `django.conf.urls.url`,
which Django 4 removed, so its private views are wired here with `path()`."""

from django.conf import settings
from django.urls import path

if settings.PROCTOR_PACKAGE == "proctor":
    from proctor.views.private import ForceGroupsView, ShowTestMatrixView
else:
    from avsb.contrib.proctor.views.private import ForceGroupsView, ShowTestMatrixView

from . import views

urlpatterns = [
    path("", views.groups),
    path("untouched/", views.untouched),
    path("button/", views.button),
    path("private/showtestmatrix/", ShowTestMatrixView.as_view()),
    path("private/forcegroups/", ForceGroupsView.as_view()),
]
