"""The accounts API: minting anonymous sessions for the embeddable widget."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.services import anonymous_session_create
from accounts.throttles import AnonymousSessionMintThrottle
from runtime.api.errors import exception_handler
from runtime.api.serializers import ErrorSerializer


class AnonymousSessionSerializer(serializers.Serializer):
    token = serializers.CharField(
        help_text="Send it as X-Anonymous-Token (or ?anonymous_token= on event streams)."
    )
    expires_at = serializers.DateTimeField()


class AnonymousSessionCreateView(APIView):
    """Mint an anonymous session: a bearer token for a visitor without an account."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AnonymousSessionMintThrottle]

    def get_exception_handler(self):
        return exception_handler

    @extend_schema(
        summary="Mint an anonymous session",
        request=None,
        responses={
            201: AnonymousSessionSerializer,
            429: OpenApiResponse(
                ErrorSerializer, description="Too many sessions from this address; see Retry-After."
            ),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        session = anonymous_session_create()
        return Response(AnonymousSessionSerializer(session).data, status=status.HTTP_201_CREATED)
