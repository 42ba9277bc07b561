from django.contrib import admin
from django.urls import path

from shop import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", views.home, name="home"),
    path("flags/", views.flags, name="flags"),
    path("landing/", views.home, name="landing"),
    path("promo/", views.home, name="promo"),
    path("django/", views.django_template, name="django-template"),
    path("jinja/", views.jinja_template, name="jinja-template"),
    path("beta/", views.beta_only, name="beta-only"),
    path("not-beta/", views.not_beta, name="not-beta"),
    path("beta-or-home/", views.beta_or_home, name="beta-or-home"),
    path("worker/", views.worker, name="worker"),
]
