"""The host project's own authentication: ``X-Host-User: <username>`` (a stand-in for JWT & co)."""

from django.contrib.auth import get_user_model
from rest_framework.authentication import BaseAuthentication


class HostHeaderAuthentication(BaseAuthentication):
    def authenticate(self, request):
        name = request.META.get("HTTP_X_HOST_USER")
        user = get_user_model().objects.filter(username=name).first() if name else None
        return (user, None) if user else None
