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
from runtime.channels.identity import ORIGIN_KEY, SAME_ORIGIN_KEY


class AnonymousSessionSerializer(serializers.Serializer):
    token = serializers.CharField(
        help_text="Send it as X-Anonymous-Token (or ?anonymous_token= on event streams)."
    )
    expires_at = serializers.DateTimeField()


class AnonymousSessionCreateView(APIView):
    """Mint an anonymous session: a bearer token for a visitor without an account.

    It may run an agent only through that agent's web widget channel, from a page on one of the
    widget's allowed origins, within the widget's limits (docs/publishing.md).
    """

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
        # The page's Origin decides, when the session starts a run, whether the agent's web widget
        # admits it (runtime/channels/admission.py): recorded here, once, by the server.
        origin = request.headers.get("Origin", "").strip()[:300]
        session = anonymous_session_create(
            metadata={
                ORIGIN_KEY: origin,
                SAME_ORIGIN_KEY: bool(origin) and origin == f"{request.scheme}://{request.get_host()}",
            }
        )
        return Response(AnonymousSessionSerializer(session).data, status=status.HTTP_201_CREATED)
