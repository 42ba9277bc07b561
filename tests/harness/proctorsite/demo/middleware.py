"""The application's subclass of django-proctor's middleware, as its README asks for."""

from django.conf import settings

if settings.PROCTOR_PACKAGE == "proctor":
    from proctor.middleware import BaseProctorMiddleware
else:
    from avsb.contrib.proctor.middleware import BaseProctorMiddleware

PRIVILEGE_HEADER = "X-Proctor-Privileged"


class DemoProctorMiddleware(BaseProctorMiddleware):
    """Identifies the user by `?user=`, takes country, loggedIn and plan from the query, and
    trusts force groups only from requests that carry the privilege header."""

    def get_identifiers(self, request):
        identifiers = {"USER": request.GET.get("user", "anon")}
        if "account" in request.GET:
            identifiers["account"] = request.GET["account"]
        return identifiers

    def get_context(self, request):
        # A Python bool on purpose: requests sends it as "True", which Pipet must accept.
        return {
            "country": request.GET.get("country", "US"),
            "loggedIn": request.GET.get("loggedIn") == "true",
            "plan": request.GET.get("plan", "free"),
        }

    def is_privileged(self, request):
        return request.headers.get(PRIVILEGE_HEADER) == "1"

    def process_request(self, request):
        # django-proctor's private views read this attribute; the application must set it.
        request.is_privileged = self.is_privileged(request)
        return super().process_request(request)
