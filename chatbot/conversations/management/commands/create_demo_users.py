"""Demo logins for `make run`: an admin and a support agent, with fresh random passwords."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create (or reset) the demo admin and agent with random passwords and print them."

    def handle(self, **options):
        User = get_user_model()
        lines = []
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
            lines.append(f"  {role:6} login: {username} / {password}")
        self.stdout.write("Demo logins (new passwords each start):\n" + "\n".join(lines))
        self.stdout.write("  admin: /admin/   agent dashboard: /agent/")
