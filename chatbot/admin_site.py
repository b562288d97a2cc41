"""The admin site with optional TOTP two-factor login for staff (django-otp).

Off by default and per user: a staff member who registered a confirmed TOTP device
(Admin -> TOTP devices) must give its current code with the password at the admin
login, and a session that was not verified with it (one opened at /agent/login/, say)
does not reach the admin. Staff without a device log in as before.
"""

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django_otp import devices_for_user, user_has_device
from django_otp.forms import OTPAuthenticationFormMixin


class TwoFactorAdminLoginForm(OTPAuthenticationFormMixin, AdminAuthenticationForm):
    """The admin login form, plus a code field that is required only of users with a device."""

    otp_device = forms.CharField(required=False, widget=forms.HiddenInput)
    otp_token = forms.CharField(
        required=False,
        label="Two-factor code",
        help_text="Only if you set up an authenticator app.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
    otp_challenge = forms.CharField(required=False, widget=forms.HiddenInput)

    def _chosen_device(self, user):
        # One authenticator app per staff member: the code is checked against the
        # user's confirmed device, with no device picker on the page.
        return super()._chosen_device(user) or next(devices_for_user(user, confirmed=True), None)

    def clean(self):
        cleaned = super().clean()
        user = self.get_user()
        if user is not None and user_has_device(user):
            self.clean_otp(user)  # sets user.otp_device; django-otp marks the session verified at login
        return cleaned


class StaffAdminSite(admin.AdminSite):
    login_form = TwoFactorAdminLoginForm
    login_template = "admin/two_factor_login.html"

    def has_permission(self, request) -> bool:
        user = request.user
        if not super().has_permission(request):
            return False
        return not user_has_device(user) or user.is_verified()
