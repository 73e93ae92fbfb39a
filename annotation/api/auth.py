"""``POST /api/v1/auth/token/``: DRF's token view with sign-in throttling (config.login_throttle)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from config.login_throttle import (
    LoginLocked,
    client_address,
    login_throttle_check,
    login_throttle_clear,
    login_throttle_fail,
)


def _username(request) -> str:  # noqa: ANN001 - a DRF Request
    value = request.data.get("username", "") if hasattr(request.data, "get") else ""
    return value if isinstance(value, str) else ""


class LoginFailureThrottle(BaseThrottle):
    """Refuses a token request while its username+address or its address is locked."""

    locked: LoginLocked | None = None

    def allow_request(self, request, view) -> bool:  # noqa: ANN001
        self.locked = login_throttle_check(username=_username(request), address=client_address(request))
        return self.locked is None

    def wait(self) -> float | None:
        return float(self.locked.retry_after) if self.locked else None


class TokenObtainApi(ObtainAuthToken):
    throttle_classes = (LoginFailureThrottle,)

    def throttled(self, request, wait) -> None:  # noqa: ANN001
        locked = next((t.locked for t in self.get_throttles() if getattr(t, "locked", None)), None)
        detail = locked.message if locked else None
        raise Throttled(wait=wait, detail=detail)

    def get_throttles(self):  # noqa: ANN201 - keep the instances, throttled() reads their reason
        if not hasattr(self, "_throttles"):
            self._throttles = super().get_throttles()
        return self._throttles

    @extend_schema(
        operation_id="auth_token_create",
        summary="Get an API token",
        description="The token of the user with this username and password. After "
        "LOGIN_FAILURES_PER_USER failed attempts for one username from one address (or "
        "LOGIN_FAILURES_PER_ADDRESS from one address) attempts are refused with 429 until "
        "the window ends (Retry-After).",
        request=inline_serializer("TokenRequest", {"username": serializers.CharField(),
                                                   "password": serializers.CharField()}),
        responses={
            200: inline_serializer("TokenResponse", {"token": serializers.CharField()}),
            400: OpenApiResponse(description="Wrong username or password."),
            429: OpenApiResponse(description="Too many failed attempts; retry after Retry-After seconds."),
        },
        tags=["auth"],
    )
    def post(self, request, *args, **kwargs):  # noqa: ANN001, ANN201
        serializer = self.get_serializer(data=request.data)
        address = client_address(request)
        if not serializer.is_valid():
            if _username(request):
                login_throttle_fail(username=_username(request), address=address)
            raise serializers.ValidationError(serializer.errors)
        user = serializer.validated_data["user"]
        login_throttle_clear(username=user.get_username(), address=address)
        token, _created = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})
