"""Optional TOTP two-factor login for staff (django-otp): off by default, and once a
staff member has a confirmed device, the admin wants its code as well as the password."""

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


def code(device: TOTPDevice, offset: int = 0) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=offset):06d}"


@pytest.fixture
def device(admin) -> TOTPDevice:
    return TOTPDevice.objects.create(user=admin, name="phone", confirmed=True)


def admin_home(client: Client) -> int:
    return client.get("/admin/").status_code


def test_staff_without_a_device_log_in_with_the_password_alone(admin):
    client = Client()
    response = client.post(LOGIN, {"username": "root", "password": "pw-root"})
    assert response.status_code == 302
    assert admin_home(client) == 200


def test_with_a_device_the_password_alone_is_not_enough(admin, device):
    client = Client()
    response = client.post(LOGIN, {"username": "root", "password": "pw-root"})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert admin_home(client) == 302  # back to the login page


def test_with_a_device_a_wrong_code_is_refused(admin, device):
    client = Client()
    wrong = f"{(int(code(device)) + 1) % 1_000_000:06d}"
    client.post(LOGIN, {"username": "root", "password": "pw-root", "otp_token": wrong})
    assert admin_home(client) == 302


def test_with_a_device_the_password_and_the_current_code_open_the_admin(admin, device):
    client = Client()
    response = client.post(LOGIN, {"username": "root", "password": "pw-root", "otp_token": code(device)})
    assert response.status_code == 302, [str(e) for e in response.context["form"].errors.values()]
    assert admin_home(client) == 200


def test_a_session_not_verified_by_the_code_does_not_reach_the_admin(admin, device):
    # Logged in some other way (the agents' login page, a password-only session from
    # before the device was added): the admin asks for the code first.
    client = Client()
    client.force_login(admin)
    assert admin_home(client) == 302


def test_the_admin_login_page_offers_the_code_field(client):
    page = client.get(LOGIN).content.decode()
    assert 'name="otp_token"' in page and "Two-factor code" in page
