"""The login page, with sign-in throttling (config.login_throttle)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse

from config.login_throttle import client_address, login_throttle_check, login_throttle_clear, login_throttle_fail


class LoginView(auth_views.LoginView):
    """Django's LoginView; while the username or the address is locked it answers 429 with
    the reason and when to retry, without checking the password."""

    template_name = "frontend/login.html"

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        locked = login_throttle_check(username=request.POST.get("username", ""), address=client_address(request))
        if locked is None:
            return super().post(request, *args, **kwargs)
        messages.error(request, locked.message)
        # An unbound form: the page shows the lock, not "wrong password" (nothing was checked).
        response = self.render_to_response(self.get_context_data(form=self.form_class(request)), status=429)
        response["Retry-After"] = str(locked.retry_after)
        return response

    def form_invalid(self, form) -> HttpResponse:  # noqa: ANN001 - an AuthenticationForm
        username = self.request.POST.get("username", "")
        if username:
            login_throttle_fail(username=username, address=client_address(self.request))
        return super().form_invalid(form)

    def form_valid(self, form) -> HttpResponse:  # noqa: ANN001 - an AuthenticationForm
        login_throttle_clear(username=form.get_user().get_username(), address=client_address(self.request))
        return super().form_valid(form)
