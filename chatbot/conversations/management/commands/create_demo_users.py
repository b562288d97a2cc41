"""Demo logins for `make run`: an admin and a support agent, with fresh random passwords,
printed with the full links a new user clicks (the last thing `make run` prints before
the server's own lines)."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create (or reset) the demo admin and agent with random passwords and print them with the links."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.HOST, help="the host `serve` listens on")
        parser.add_argument("--port", type=int, default=settings.PORT, help="the port `serve` listens on")

    def handle(self, host: str, port: int, **options):
        User = get_user_model()
        passwords = {}
        for username, role in (("admin", "admin"), ("agent", "agent")):
            password = secrets.token_urlsafe(12)
            user, _ = User.objects.get_or_create(username=username)
            user.set_password(password)
            if role == "admin":
                user.is_staff = user.is_superuser = True
                user.first_name = "Morgan"  # visitors see display names, never logins
            else:
                user.first_name = "Alex"
            user.save()
            if role == "agent":
                user.groups.add(Group.objects.get(name="Agents"))
            passwords[username] = password
        base = f"http://{host}:{port}"
        rows = [
            ("Demo shop, with the chat widget", f"{base}/", ""),
            ("Agent dashboard", f"{base}/agent/", f"login: agent / {passwords['agent']}"),
            ("Admin", f"{base}/admin/", f"login: admin / {passwords['admin']}"),
            ("Reports", f"{base}/agent/reports/", "the admin login"),
        ]
        width = max(len(url) for _, url, _ in rows)
        lines = [f"  {label + ':':33} {url:{width}}   {login}".rstrip() for label, url, login in rows]
        self.stdout.write("\nNorthwind chatbot (new demo passwords each start):\n" + "\n".join(lines) + "\n")
